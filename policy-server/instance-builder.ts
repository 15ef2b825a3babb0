/**
 * Instances: a template's fields filled from expressions over the request's attributes.
 * An instance configuration is compiled once, when configuration loads — every
 * expression parsed and type-checked against the template field it fills — into a
 * builder that makes the instance for a bag with no further lookups.
 */
import { ValueType, valueTypeName, type AttributeFinder, type AttributeValue, type Bag } from '../attributes';
import { EvaluationError, ExpressionError, compileExpression, type CompiledExpression } from '../expressions';
import type { FieldSpec, FieldType, TemplateInfo } from '../templates';
import { FixedKeyMap, FixedKeys } from './fixed-key-map';
import { createRepeatEvaluator, type Evaluator } from './repeat-evaluator';

/** A configuration problem: where in the resource (`spec.params.dimensions.source`) and what. */
export interface InstanceProblem {
  readonly path: string;
  readonly message: string;
}

/** Makes instances of one instance configuration. */
export interface InstanceBuilder {
  /** The instance's fully qualified name, which handlers receive as `instance.name`. */
  readonly name: string;
  readonly template: TemplateInfo;
  /**
   * Builds the instance for a bag. An expression that fails (an absent attribute without a
   * default) fails the instance: the EvaluationError is returned, with the field it filled.
   */
  build(bag: Bag): Record<string, unknown> | InstanceBuildError;
}

/** An instance that could not be built for a request. */
export class InstanceBuildError {
  constructor(
    readonly instance: string,
    readonly field: string,
    readonly cause: EvaluationError,
  ) {}

  get message(): string {
    return `instance ${this.instance}: ${this.field}: ${this.cause.message}`;
  }
}

type FieldMaker = (bag: Bag) => unknown;

const STRING_LIKE = new Set([ValueType.STRING, ValueType.EMAIL_ADDRESS, ValueType.URI, ValueType.DNS_NAME]);
const EMPTY_MAP: ReadonlyMap<string, AttributeValue> = new Map();

/** A field's value when the configuration leaves it out, as Mixer's zero values. */
function zeroValue(type: FieldType): unknown {
  if (type.kind === 'map') return EMPTY_MAP;
  if (type.kind !== 'value') return undefined;
  switch (type.type) {
    case ValueType.STRING:
      return '';
    case ValueType.INT64:
      return 0n;
    case ValueType.DOUBLE:
      return 0;
    case ValueType.BOOL:
      return false;
    default:
      return undefined;
  }
}

/**
 * Compiles an instance configuration. `params` is the mapping of template fields to
 * expressions as written; `path` is where it is in the resource (`spec.params`).
 * Problems are added to `problems`; the builder is meaningless when any were added.
 */
export function compileInstance(
  name: string,
  template: TemplateInfo,
  params: unknown,
  path: string,
  finder: AttributeFinder,
  problems: InstanceProblem[],
): InstanceBuilder {
  const make = compileMessage(template.fields, params, path, finder, problems, `template ${template.name}`);
  return Object.freeze({
    name,
    template,
    build(bag: Bag): Record<string, unknown> | InstanceBuildError {
      const built = make(bag);
      if (built instanceof FieldFailure) return new InstanceBuildError(name, built.field, built.cause);
      (built as { name: string }).name = name;
      return built as Record<string, unknown>;
    },
  });
}

/** A field whose expression failed, carried up through nested messages. */
class FieldFailure {
  constructor(
    readonly field: string,
    readonly cause: EvaluationError,
  ) {}
}

function compileMessage(
  fields: readonly FieldSpec[],
  params: unknown,
  path: string,
  finder: AttributeFinder,
  problems: InstanceProblem[],
  owner: string,
): (bag: Bag) => Record<string, unknown> | FieldFailure {
  const given = params === undefined || params === null ? {} : params;
  if (typeof given !== 'object' || Array.isArray(given)) {
    problems.push({ path, message: `must be a mapping of ${owner}'s fields to expressions` });
    return () => ({});
  }
  const byName = new Map<string, FieldSpec>();
  for (const f of fields) {
    byName.set(f.protoName, f);
    byName.set(f.name, f);
  }
  const makers: Array<readonly [string, FieldMaker]> = [];
  const seen = new Set<string>();
  for (const [key, value] of Object.entries(given as Record<string, unknown>)) {
    const spec = byName.get(key);
    const fieldPath = `${path}.${key}`;
    if (spec === undefined) {
      const known = fields.map((f) => f.protoName).join(', ') || 'none';
      problems.push({ path: fieldPath, message: `is not a field of ${owner}; its fields: ${known}` });
      continue;
    }
    if (seen.has(spec.name)) {
      problems.push({
        path: fieldPath,
        message: `sets ${spec.protoName} a second time (as ${key}); keep one`,
      });
      continue;
    }
    seen.add(spec.name);
    makers.push([spec.name, compileField(spec, value, fieldPath, finder, problems, owner)]);
  }
  const defaultFields = fields.filter((f) => !seen.has(f.name));
  // Parallel arrays walked by index: a Report builds an instance per record, and iterating
  // tuples costs an iterator and a destructuring per field.
  const defaultNames = defaultFields.map((f) => f.name);
  const defaultValues = defaultFields.map((f) => zeroValue(f.type));
  const names = makers.map(([name]) => name);
  const makeField = makers.map(([, maker]) => maker);
  return (bag) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < defaultNames.length; i++) out[defaultNames[i]!] = defaultValues[i];
    for (let i = 0; i < names.length; i++) {
      const value = makeField[i]!(bag);
      if (value instanceof FieldFailure) return new FieldFailure(`${names[i]!}.${value.field}`, value.cause);
      if (value instanceof EvaluationError) return new FieldFailure(names[i]!, value);
      out[names[i]!] = value;
    }
    return out;
  };
}

function compileField(
  spec: FieldSpec,
  value: unknown,
  path: string,
  finder: AttributeFinder,
  problems: InstanceProblem[],
  owner: string,
): FieldMaker {
  const type = spec.type;
  switch (type.kind) {
    case 'message': {
      const make = compileMessage(
        type.fields,
        value,
        path,
        finder,
        problems,
        `${owner} field ${spec.protoName}`,
      );
      return make;
    }
    case 'map': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        problems.push({ path, message: 'must be a mapping of names to expressions' });
        return () => EMPTY_MAP;
      }
      const keys: string[] = [];
      const evaluators: Evaluator[] = [];
      for (const [key, source] of Object.entries(value as Record<string, unknown>)) {
        const expression = compileSource(source, `${path}.${key}`, finder, problems, undefined);
        if (expression === undefined) continue;
        keys.push(key);
        evaluators.push(createRepeatEvaluator(expression));
      }
      // The keys are the configuration's: made once here, each instance keeps only its values.
      const layout = new FixedKeys(keys);
      return (bag) => {
        const values = new Array<AttributeValue>(evaluators.length);
        for (let i = 0; i < evaluators.length; i++) {
          const v = evaluators[i]!(bag);
          if (v instanceof EvaluationError) return new FieldFailure(keys[i]!, v);
          values[i] = v;
        }
        return new FixedKeyMap(layout, values);
      };
    }
    case 'any':
    case 'value': {
      const expression = compileSource(
        value,
        path,
        finder,
        problems,
        type.kind === 'value' ? type.type : undefined,
      );
      if (expression === undefined) return () => undefined;
      return createRepeatEvaluator(expression);
    }
  }
}

/** Compiles one expression source, checking its type against the field's; undefined on a problem. */
function compileSource(
  source: unknown,
  path: string,
  finder: AttributeFinder,
  problems: InstanceProblem[],
  expected: ValueType | undefined,
): CompiledExpression | undefined {
  if (typeof source !== 'string' && typeof source !== 'number' && typeof source !== 'boolean') {
    problems.push({ path, message: 'must be an expression, such as source.name | "unknown"' });
    return undefined;
  }
  const text = String(source);
  let expression: CompiledExpression;
  try {
    expression = compileExpression(text, finder);
    if (expected !== undefined && expression.type !== expected && !STRING_LIKE.has(expression.type)) {
      // The field's type decides what a duration-like literal ("10s") is.
      expression = compileExpression(text, finder, { expectedType: expected });
    }
  } catch (error) {
    if (!(error instanceof ExpressionError)) throw error;
    problems.push({ path, message: `${error.kind} error in ${JSON.stringify(text)} at ${error.message}` });
    return undefined;
  }
  if (expected !== undefined) {
    const ok =
      expression.type === expected || (expected === ValueType.STRING && STRING_LIKE.has(expression.type));
    if (!ok) {
      problems.push({
        path,
        message: `${JSON.stringify(text)} has type ${valueTypeName(expression.type)}, but the field is ${valueTypeName(expected)}`,
      });
      return undefined;
    }
  }
  return expression;
}
