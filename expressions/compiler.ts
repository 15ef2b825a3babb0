/**
 * The compiler: turns a type-checked expression into a tree of closures, once, at
 * configuration time. Evaluation then runs the closures; nothing is parsed, looked
 * up or allocated per call beyond what the values themselves need.
 *
 * Each closure returns its value, or an EvaluationError instance when evaluation
 * fails (returned, not thrown: a rule whose attribute is absent is common and must
 * stay cheap). Errors that do not depend on the request, such as "attribute x is
 * absent", are allocated once here and shared.
 *
 * Operands of the default operator `|` are compiled in "try" mode, where an absent
 * attribute or map key yields `undefined` so that the right side is taken instead —
 * Mixer's rule: only absence falls through to the default, a failing function does not.
 */
import {
  Duration,
  IpAddress,
  Timestamp,
  ValueType,
  bytesEqual,
  isStringMap,
  stringMapsEqual,
  valueTypeName,
  type AttributeValue,
  type Bag,
  type StringMap,
} from '../attributes';
import type { TypedNode } from './checker';
import { EvaluationError } from './errors';
import { FunctionFailure } from './functions';
import { dnsNameEqual, emailEqual, uriEqual } from './network-names';

/** A compiled expression node: its value, or why it failed (or, in try mode, undefined when absent). */
export type Evaluator = (bag: Bag) => unknown;

const {
  STRING,
  INT64,
  DOUBLE,
  BOOL,
  TIMESTAMP,
  DURATION,
  IP_ADDRESS,
  EMAIL_ADDRESS,
  URI,
  DNS_NAME,
  STRING_MAP,
  BYTES,
} = ValueType;

/** Compiles a node for a context where absence is an error. */
export function compileNode(node: TypedNode): Evaluator {
  switch (node.kind) {
    case 'literal': {
      const value = node.value;
      return () => value;
    }
    case 'attribute': {
      const name = node.name;
      const absent = new EvaluationError(
        node.column,
        `attribute '${name}' is absent; give a default with |, as in ${name} | ${exampleDefault(node.type)}`,
      );
      const hasType = VALUE_CHECKS[node.type];
      const mistyped = mistypedError(node);
      return (bag) => {
        const value = bag.get(name);
        return value === undefined ? absent : hasType(value) ? value : mistyped;
      };
    }
    case 'index':
      return compileIndex(node.target, node.key, false);
    case 'binary':
      return compileBinary(node);
    case 'call':
      return compileCall(node);
  }
}

/** Compiles a node for the left of `|`: absence yields undefined. */
function compileTry(node: TypedNode): Evaluator {
  switch (node.kind) {
    case 'attribute': {
      const name = node.name;
      const hasType = VALUE_CHECKS[node.type];
      const mistyped = mistypedError(node);
      return (bag) => {
        const value = bag.get(name);
        return value === undefined || hasType(value) ? value : mistyped;
      };
    }
    case 'index':
      return compileIndex(node.target, node.key, true);
    case 'binary':
      if (node.op === '|') return compileDefault(node.left, node.right, true);
      return compileNode(node);
    default:
      return compileNode(node);
  }
}

function compileIndex(targetNode: TypedNode, keyNode: TypedNode, tryMode: boolean): Evaluator {
  const target = tryMode ? compileTry(targetNode) : compileNode(targetNode);
  if (keyNode.kind === 'literal') {
    const key = keyNode.value as string;
    if (tryMode) {
      return (bag) => {
        const map = target(bag);
        if (map === undefined || map instanceof EvaluationError) return map;
        return (map as StringMap).get(key);
      };
    }
    // A key absent from a present map reads as the empty string (Mixer's rule).
    return (bag) => {
      const map = target(bag);
      if (map instanceof EvaluationError) return map;
      return (map as StringMap).get(key) ?? '';
    };
  }
  const keyOf = tryMode ? compileTry(keyNode) : compileNode(keyNode);
  return (bag) => {
    const map = target(bag);
    if (map === undefined || map instanceof EvaluationError) return map;
    const key = keyOf(bag);
    if (key === undefined || key instanceof EvaluationError) return key;
    const value = (map as StringMap).get(key as string);
    return value === undefined && !tryMode ? '' : value;
  };
}

function compileDefault(leftNode: TypedNode, rightNode: TypedNode, tryMode: boolean): Evaluator {
  const left = compileTry(leftNode);
  const right = tryMode ? compileTry(rightNode) : compileNode(rightNode);
  return (bag) => {
    const value = left(bag);
    return value !== undefined ? value : right(bag);
  };
}

function compileBinary(node: Extract<TypedNode, { kind: 'binary' }>): Evaluator {
  switch (node.op) {
    case '|':
      return compileDefault(node.left, node.right, false);
    case '&&': {
      const left = compileNode(node.left);
      const right = compileNode(node.right);
      return (bag) => {
        const l = left(bag);
        return l === true ? right(bag) : l;
      };
    }
    case '||': {
      const left = compileNode(node.left);
      const right = compileNode(node.right);
      return (bag) => {
        const l = left(bag);
        return l === false ? right(bag) : l;
      };
    }
    case '==':
    case '!=':
      return compileEquality(node, node.op === '!=');
    case '<':
    case '<=':
    case '>':
    case '>=':
      return compileOrdering(node, node.op);
    case '+':
      return compileAddition(node);
  }
}

/** Equality by the operands' type; Mixer's rules for e-mail, DNS names, URIs, IPs and timestamps. */
function equalityOf(type: ValueType): ((a: never, b: never) => boolean) | undefined {
  switch (type) {
    case TIMESTAMP:
      return (a: Timestamp, b: Timestamp) => Timestamp.compare(a, b) === 0;
    case DURATION:
      return (a: Duration, b: Duration) => Duration.compare(a, b) === 0;
    case IP_ADDRESS:
      return (a: IpAddress, b: IpAddress) => IpAddress.equal(a, b);
    case EMAIL_ADDRESS:
      return emailEqual;
    case DNS_NAME:
      return dnsNameEqual;
    case URI:
      return uriEqual;
    case STRING_MAP:
      return stringMapsEqual;
    case BYTES:
      return bytesEqual;
    default:
      return undefined; // STRING, INT64, DOUBLE, BOOL: ===
  }
}

function compileEquality(node: Extract<TypedNode, { kind: 'binary' }>, negate: boolean): Evaluator {
  const left = compileNode(node.left);
  const equal = equalityOf(node.operandType) as ((a: unknown, b: unknown) => boolean) | undefined;
  if (equal === undefined && node.right.kind === 'literal') {
    const constant = node.right.value;
    return negate
      ? (bag) => {
          const l = left(bag);
          return l instanceof EvaluationError ? l : l !== constant;
        }
      : (bag) => {
          const l = left(bag);
          return l instanceof EvaluationError ? l : l === constant;
        };
  }
  const right = compileNode(node.right);
  const same = equal ?? ((a: unknown, b: unknown) => a === b);
  return (bag) => {
    const l = left(bag);
    if (l instanceof EvaluationError) return l;
    const r = right(bag);
    if (r instanceof EvaluationError) return r;
    return same(l, r) !== negate;
  };
}

function compileOrdering(
  node: Extract<TypedNode, { kind: 'binary' }>,
  op: '<' | '<=' | '>' | '>=',
): Evaluator {
  const left = compileNode(node.left);
  const right = compileNode(node.right);
  const type = node.operandType;
  const compare =
    type === TIMESTAMP
      ? (a: unknown, b: unknown) => Timestamp.compare(a as Timestamp, b as Timestamp)
      : type === DURATION
        ? (a: unknown, b: unknown) => Duration.compare(a as Duration, b as Duration)
        : undefined;
  const test: (a: never, b: never) => boolean =
    compare !== undefined
      ? op === '<'
        ? (a, b) => compare(a, b) < 0
        : op === '<='
          ? (a, b) => compare(a, b) <= 0
          : op === '>'
            ? (a, b) => compare(a, b) > 0
            : (a, b) => compare(a, b) >= 0
      : op === '<'
        ? (a: number, b: number) => a < b
        : op === '<='
          ? (a: number, b: number) => a <= b
          : op === '>'
            ? (a: number, b: number) => a > b
            : (a: number, b: number) => a >= b;
  const holds = test as (a: unknown, b: unknown) => boolean;
  return (bag) => {
    const l = left(bag);
    if (l instanceof EvaluationError) return l;
    const r = right(bag);
    if (r instanceof EvaluationError) return r;
    return holds(l, r);
  };
}

function compileAddition(node: Extract<TypedNode, { kind: 'binary' }>): Evaluator {
  const left = compileNode(node.left);
  const right = compileNode(node.right);
  // INT64 wraps around on overflow, as Go's int64 does.
  const add =
    node.operandType === INT64
      ? (a: unknown, b: unknown) => BigInt.asIntN(64, (a as bigint) + (b as bigint))
      : (a: unknown, b: unknown) => (a as number) + (b as number);
  return (bag) => {
    const l = left(bag);
    if (l instanceof EvaluationError) return l;
    const r = right(bag);
    if (r instanceof EvaluationError) return r;
    return add(l, r);
  };
}

function compileCall(node: Extract<TypedNode, { kind: 'call' }>): Evaluator {
  const { signature, column } = node;
  if (signature.name === 'conditional' || signature.name === 'conditionalString') {
    const [condition, whenTrue, whenFalse] = node.operands.map(compileNode) as [
      Evaluator,
      Evaluator,
      Evaluator,
    ];
    return (bag) => {
      const c = condition(bag);
      return c === true ? whenTrue(bag) : c === false ? whenFalse(bag) : c;
    };
  }
  const implementation = signature.implementation as (...args: unknown[]) => AttributeValue | FunctionFailure;
  const finish = (result: AttributeValue | FunctionFailure): unknown =>
    result instanceof FunctionFailure ? new EvaluationError(column, result.problem) : result;

  // Calls on constants are folded now, unless they fail: a failure stays an evaluation error.
  if (node.operands.every((o) => o.kind === 'literal')) {
    const result = implementation(...node.operands.map((o) => (o as { value: AttributeValue }).value));
    if (!(result instanceof FunctionFailure)) return () => result;
  }
  const constant = signature.withConstant;
  const fixed = constant === undefined ? undefined : node.operands[constant.operand];
  if (constant !== undefined && fixed !== undefined && fixed.kind === 'literal') {
    const bind = constant.bind as (
      value: AttributeValue,
    ) => (other: unknown) => AttributeValue | FunctionFailure;
    const bound = bind(fixed.value);
    const other = compileNode(node.operands[1 - constant.operand]!);
    return (bag) => {
      const x = other(bag);
      return x instanceof EvaluationError ? x : finish(bound(x));
    };
  }
  const operands = node.operands.map(compileNode);
  switch (operands.length) {
    case 0:
      return () => finish(implementation());
    case 1: {
      const [a] = operands as [Evaluator];
      return (bag) => {
        const x = a(bag);
        return x instanceof EvaluationError ? x : finish(implementation(x));
      };
    }
    case 2: {
      const [a, b] = operands as [Evaluator, Evaluator];
      return (bag) => {
        const x = a(bag);
        if (x instanceof EvaluationError) return x;
        const y = b(bag);
        return y instanceof EvaluationError ? y : finish(implementation(x, y));
      };
    }
    default:
      return (bag) => {
        const values: unknown[] = [];
        for (const operand of operands) {
          const v = operand(bag);
          if (v instanceof EvaluationError) return v;
          values.push(v);
        }
        return finish(implementation(...values));
      };
  }
}

/**
 * Whether a bag value has the runtime form of a type. Decoders type every value by the
 * manifest, so this fails only for a bag built wrongly in process; it costs one typeof.
 */
const VALUE_CHECKS: Readonly<Record<ValueType, (value: unknown) => boolean>> = {
  [ValueType.VALUE_TYPE_UNSPECIFIED]: () => false,
  [STRING]: isString,
  [EMAIL_ADDRESS]: isString,
  [URI]: isString,
  [DNS_NAME]: isString,
  [INT64]: (v) => typeof v === 'bigint',
  [DOUBLE]: (v) => typeof v === 'number',
  [BOOL]: (v) => typeof v === 'boolean',
  [TIMESTAMP]: (v) => v instanceof Timestamp,
  [DURATION]: (v) => v instanceof Duration,
  [IP_ADDRESS]: (v) => v instanceof IpAddress,
  [BYTES]: (v) => v instanceof Uint8Array,
  [STRING_MAP]: isStringMap,
};

function isString(value: unknown): boolean {
  return typeof value === 'string';
}

function mistypedError(node: Extract<TypedNode, { kind: 'attribute' }>): EvaluationError {
  return new EvaluationError(
    node.column,
    `attribute '${node.name}' does not hold a ${valueTypeName(node.type)} value, as the manifest declares`,
  );
}

function exampleDefault(type: ValueType): string {
  switch (type) {
    case STRING:
      return '"unknown"';
    case INT64:
      return '0';
    case DOUBLE:
      return '0.0';
    case BOOL:
      return 'false';
    case DURATION:
      return '"0s"';
    case STRING_MAP:
      return 'emptyStringMap()';
    case IP_ADDRESS:
      return 'ip("0.0.0.0")';
    case TIMESTAMP:
      return 'timestamp("1970-01-01T00:00:00Z")';
    default:
      return `a ${valueTypeName(type)} value`;
  }
}
