/** Compiling an expression: parse, type-check against a manifest, compile to closures. */
import {
  STANDARD_MANIFEST,
  ValueType,
  type AttributeFinder,
  type AttributeValue,
  type Bag,
} from '../attributes';
import { checkExpression, type TypedNode } from './checker';
import { compileNode } from './compiler';
import { EvaluationError } from './errors';
import { parseExpression } from './parser';

/** A compiled expression, ready to evaluate against any number of bags. Immutable. */
export interface CompiledExpression {
  /** The text it was compiled from. */
  readonly source: string;
  /** Its static type. */
  readonly type: ValueType;
  /** Every attribute it may read, sorted; what it actually reads depends on the bag. */
  readonly attributes: readonly string[];
  /**
   * Evaluates against a bag; reads only through `bag.get`, so a ReferenceRecordingBag
   * records exactly what the result depended on.
   * @throws EvaluationError when an attribute is absent (and no `|` default applies) or a function fails
   */
  evaluate(bag: Bag): AttributeValue;
  /** As evaluate, but returns the EvaluationError instead of throwing it (the hot path). */
  tryEvaluate(bag: Bag): AttributeValue | EvaluationError;
}

export interface CompileOptions {
  /** When set, the expression must have this type (BOOL for a rule's match). */
  readonly expectedType?: ValueType;
}

/**
 * Compiles an expression against an attribute vocabulary (default: the standard Istio manifest).
 * @throws ExpressionError for a syntax error (kind `syntax`) or a type error (kind `type`), with its column
 */
export function compileExpression(
  source: string,
  finder: AttributeFinder = STANDARD_MANIFEST,
  options: CompileOptions = {},
): CompiledExpression {
  const typed = checkExpression(parseExpression(source), finder, options.expectedType);
  const evaluator = compileNode(typed);
  return Object.freeze({
    source,
    type: typed.type,
    attributes: Object.freeze(collectAttributes(typed)),
    evaluate(bag: Bag): AttributeValue {
      const result = evaluator(bag);
      if (result instanceof EvaluationError) throw result;
      return result as AttributeValue;
    },
    tryEvaluate(bag: Bag): AttributeValue | EvaluationError {
      return evaluator(bag) as AttributeValue | EvaluationError;
    },
  });
}

function collectAttributes(root: TypedNode): string[] {
  const names = new Set<string>();
  const visit = (node: TypedNode): void => {
    switch (node.kind) {
      case 'attribute':
        names.add(node.name);
        break;
      case 'binary':
        visit(node.left);
        visit(node.right);
        break;
      case 'index':
        visit(node.target);
        visit(node.key);
        break;
      case 'call':
        node.operands.forEach(visit);
        break;
      case 'literal':
        break;
    }
  };
  visit(root);
  return [...names].sort();
}
