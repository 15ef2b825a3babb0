/**
 * The type checker: gives every node of an expression its static type, against an
 * attribute manifest, following Mixer's rules — both sides of `==`, `!=`, the
 * orderings, `+` and `|` have one type; `&&` and `||` take BOOL; indexing takes a
 * STRING_MAP and a STRING key; functions take the types of their signature.
 *
 * One deliberate widening of Mixer: a string literal that reads as a duration
 * (`"10ms"`) is a DURATION, as in Mixer, unless it stands where a STRING is
 * required, where Mixer refused it and we take it as the string it is.
 */
import { Duration, ValueType, valueTypeName, type AttributeFinder, type AttributeValue } from '../attributes';
import type { BinaryOperator, ExpressionNode } from './ast';
import { ExpressionError } from './errors';
import { FUNCTION_SIGNATURES, type FunctionSignature } from './functions';
import { compilePattern } from './regex';

export type TypedNode =
  | {
      readonly kind: 'literal';
      readonly type: ValueType;
      readonly value: AttributeValue;
      readonly column: number;
    }
  | { readonly kind: 'attribute'; readonly type: ValueType; readonly name: string; readonly column: number }
  | {
      readonly kind: 'binary';
      readonly type: ValueType;
      readonly op: BinaryOperator;
      /** The common type of both operands. */
      readonly operandType: ValueType;
      readonly left: TypedNode;
      readonly right: TypedNode;
      readonly column: number;
    }
  | {
      readonly kind: 'index';
      readonly type: ValueType;
      readonly target: TypedNode;
      readonly key: TypedNode;
      readonly column: number;
    }
  | {
      readonly kind: 'call';
      readonly type: ValueType;
      readonly signature: FunctionSignature;
      /** Target first for methods, then the arguments. */
      readonly operands: readonly TypedNode[];
      readonly column: number;
    };

const { STRING, INT64, DOUBLE, BOOL, TIMESTAMP, DURATION, STRING_MAP, VALUE_TYPE_UNSPECIFIED } = ValueType;

const ORDERED_TYPES = new Set([STRING, INT64, DOUBLE, TIMESTAMP, DURATION]);
const ADDABLE_TYPES = new Set([STRING, INT64, DOUBLE]);

/**
 * Type-checks a parsed expression.
 * @param expected when given, the type the result must have (an instance field's type, BOOL for a match)
 * @throws ExpressionError (kind `type`) naming the problem and its column
 */
export function checkExpression(
  node: ExpressionNode,
  finder: AttributeFinder,
  expected?: ValueType,
): TypedNode {
  const typed = new Checker(finder).check(node, expected);
  if (expected !== undefined && expected !== VALUE_TYPE_UNSPECIFIED && typed.type !== expected) {
    throw new ExpressionError(
      'type',
      firstColumn(node),
      `expression has type ${valueTypeName(typed.type)}, but ${valueTypeName(expected)} is required here`,
    );
  }
  return typed;
}

class Checker {
  constructor(private readonly finder: AttributeFinder) {}

  /** `hint` is the type the context wants; it only decides how a duration-like string literal is read. */
  check(node: ExpressionNode, hint?: ValueType): TypedNode {
    switch (node.kind) {
      case 'literal':
        if (node.type === STRING && hint !== STRING) {
          const duration = Duration.parse(node.value as string);
          if (duration !== undefined)
            return { kind: 'literal', type: DURATION, value: duration, column: node.column };
        }
        return { kind: 'literal', type: node.type, value: node.value, column: node.column };
      case 'attribute': {
        const info = this.finder.find(node.name);
        if (info === undefined)
          throw new ExpressionError('type', node.column, unknownAttribute(node.name, this.finder));
        return { kind: 'attribute', type: info.valueType, name: node.name, column: node.column };
      }
      case 'binary':
        return this.checkBinary(node.op, node.left, node.right, node.column, hint);
      case 'index': {
        const target = this.check(node.target);
        if (target.type !== STRING_MAP) {
          throw new ExpressionError(
            'type',
            node.column,
            `only a STRING_MAP can be indexed, got ${valueTypeName(target.type)}`,
          );
        }
        const key = this.check(node.key, STRING);
        if (key.type !== STRING) {
          throw new ExpressionError(
            'type',
            firstColumn(node.key),
            `a map key must be a STRING, got ${valueTypeName(key.type)}`,
          );
        }
        return { kind: 'index', type: STRING, target, key, column: node.column };
      }
      case 'call':
        return this.checkCall(node.name, node.target, node.args, node.column, hint);
    }
  }

  private checkBinary(
    op: BinaryOperator,
    leftNode: ExpressionNode,
    rightNode: ExpressionNode,
    column: number,
    hint: ValueType | undefined,
  ): TypedNode {
    if (op === '&&' || op === '||') {
      const left = this.check(leftNode, BOOL);
      const right = this.check(rightNode, BOOL);
      for (const [side, operand, node] of [
        ['left', left, leftNode],
        ['right', right, rightNode],
      ] as const) {
        if (operand.type !== BOOL) {
          throw new ExpressionError(
            'type',
            firstColumn(node),
            `${op} needs BOOL operands, got ${valueTypeName(operand.type)} on the ${side}`,
          );
        }
      }
      return { kind: 'binary', type: BOOL, op, operandType: BOOL, left, right, column };
    }
    // The result of `|` and `+` has the operands' type, so the context's hint passes down to them.
    const passHint = op === '|' || op === '+' ? hint : undefined;
    let left = this.check(leftNode, passHint);
    const right = this.check(rightNode, left.type);
    if (left.type === DURATION && right.type === STRING && isDurationLiteral(leftNode)) {
      left = this.check(leftNode, STRING);
    }
    if (left.type !== right.type) {
      const what =
        op === '|'
          ? 'both sides of | must have the same type'
          : `both sides of ${op} must have the same type`;
      throw new ExpressionError(
        'type',
        column,
        `${what}, got ${valueTypeName(left.type)} and ${valueTypeName(right.type)}`,
      );
    }
    const operandType = left.type;
    if ((op === '<' || op === '<=' || op === '>' || op === '>=') && !ORDERED_TYPES.has(operandType)) {
      throw new ExpressionError(
        'type',
        column,
        `${op} is not defined for ${valueTypeName(operandType)} values`,
      );
    }
    if (op === '+' && !ADDABLE_TYPES.has(operandType)) {
      throw new ExpressionError(
        'type',
        column,
        `+ is not defined for ${valueTypeName(operandType)} values; it adds STRING, INT64 and DOUBLE`,
      );
    }
    const type = op === '|' || op === '+' ? operandType : BOOL;
    return { kind: 'binary', type, op, operandType, left, right, column };
  }

  private checkCall(
    name: string,
    targetNode: ExpressionNode | undefined,
    argNodes: readonly ExpressionNode[],
    column: number,
    hint: ValueType | undefined,
  ): TypedNode {
    const signature = FUNCTION_SIGNATURES.get(name);
    if (signature === undefined) throw new ExpressionError('type', column, unknownFunction(name));
    if (signature.method && targetNode === undefined) {
      throw new ExpressionError(
        'type',
        column,
        `${name} is a method: call it on a value, as in ${signature.usage}`,
      );
    }
    if (!signature.method && targetNode !== undefined) {
      throw new ExpressionError(
        'type',
        column,
        `${name} is a function, not a method: call it as ${signature.usage}`,
      );
    }
    const expectedCount = signature.argumentTypes.length;
    if (argNodes.length !== expectedCount) {
      const plural = expectedCount === 1 ? 'argument' : 'arguments';
      throw new ExpressionError(
        'type',
        column,
        `${name} takes ${expectedCount} ${plural}, got ${argNodes.length}; use it as ${signature.usage}`,
      );
    }
    const operands: TypedNode[] = [];
    if (targetNode !== undefined) {
      const target = this.check(targetNode, signature.targetType);
      if (target.type !== signature.targetType) {
        throw new ExpressionError(
          'type',
          firstColumn(targetNode),
          `${name} must be called on a ${valueTypeName(signature.targetType!)}, got ${valueTypeName(target.type)}`,
        );
      }
      operands.push(target);
    }
    let generic: ValueType | undefined;
    for (let i = 0; i < argNodes.length; i++) {
      const wanted = signature.argumentTypes[i]!;
      const argHint = wanted === VALUE_TYPE_UNSPECIFIED ? (generic ?? hint) : wanted;
      const arg = this.check(argNodes[i]!, argHint);
      if (wanted === VALUE_TYPE_UNSPECIFIED) {
        if (generic === undefined) {
          generic = arg.type;
        } else if (arg.type !== generic) {
          // A duration-like literal earlier on may have to be the string it is. (No method is generic,
          // so argument i is operand i.)
          const first = signature.argumentTypes.indexOf(VALUE_TYPE_UNSPECIFIED);
          if (generic === DURATION && arg.type === STRING && isDurationLiteral(argNodes[first]!)) {
            operands[first] = this.check(argNodes[first]!, STRING);
            generic = STRING;
          } else {
            throw new ExpressionError(
              'type',
              firstColumn(argNodes[i]!),
              `argument ${i + 1} of ${name} must have the type of argument ${first + 1}, ${valueTypeName(generic)}; got ${valueTypeName(arg.type)}`,
            );
          }
        }
      } else if (arg.type !== wanted) {
        throw new ExpressionError(
          'type',
          firstColumn(argNodes[i]!),
          `argument ${i + 1} of ${name} must be a ${valueTypeName(wanted)}, got ${valueTypeName(arg.type)}`,
        );
      }
      operands.push(arg);
    }
    if (name === 'matches') checkConstantPattern(operands[0]!);
    const type = signature.returnType === VALUE_TYPE_UNSPECIFIED ? generic! : signature.returnType;
    return { kind: 'call', type, signature, operands, column };
  }
}

/** A constant pattern is compiled now, so that a bad one is a configuration error. */
function checkConstantPattern(pattern: TypedNode): void {
  if (pattern.kind !== 'literal') return;
  const compiled = compilePattern(pattern.value as string);
  if (!compiled.ok) {
    throw new ExpressionError(
      'type',
      pattern.column,
      `invalid regular expression ${JSON.stringify(pattern.value)}: ${compiled.problem}`,
    );
  }
}

function isDurationLiteral(node: ExpressionNode): boolean {
  return (
    node.kind === 'literal' && node.type === STRING && Duration.parse(node.value as string) !== undefined
  );
}

/** The column where a node's text starts. */
export function firstColumn(node: ExpressionNode): number {
  switch (node.kind) {
    case 'binary':
      return firstColumn(node.left);
    case 'index':
      return firstColumn(node.target);
    case 'call':
      return node.target === undefined ? node.column : firstColumn(node.target);
    default:
      return node.column;
  }
}

function unknownAttribute(name: string, finder: AttributeFinder): string {
  const list = (finder as { list?: () => Array<{ name: string }> }).list?.().map((a) => a.name) ?? [];
  const suggestion = closest(name, list);
  return `unknown attribute '${name}'` + (suggestion === undefined ? '' : `; did you mean '${suggestion}'?`);
}

function unknownFunction(name: string): string {
  const suggestion = closest(name, [...FUNCTION_SIGNATURES.keys()]);
  return `unknown function '${name}'` + (suggestion === undefined ? '' : `; did you mean '${suggestion}'?`);
}

/** The candidate nearest to name by edit distance, when it is near enough to be a likely typo. */
function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 4)) + 1;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}
