/**
 * Field-level redaction of an instance's variables, applied before a record leaves the
 * handler (and before it is spooled): nothing redacted is ever written to disk or sent.
 *
 * A rule names a field, matched without regard to case against every variable's name and
 * every key of every map variable (so `authorization` catches the variable `authorization`
 * and the header `authorization` inside a `requestHeaders` map), and says what to do:
 * - `DROP`: the field is left out of the record;
 * - `MASK`: its value becomes `[REDACTED]`;
 * - `HASH`: its value becomes `hmac-sha256:<64 hex digits>`, the HMAC-SHA256 under the
 *   handler's `hashKey` of the value's text: equal values stay comparable (to follow one
 *   session across records) without being readable, and without the key they cannot be
 *   guessed by hashing candidates.
 */
import { createHmac } from 'node:crypto';
import { isStringMap, type AttributeValue } from '../../../attributes';
import { toJsonValue, type JsonValue } from './json-value';

export type RedactionAction = 'DROP' | 'MASK' | 'HASH';
export const REDACTION_ACTIONS: readonly RedactionAction[] = ['DROP', 'MASK', 'HASH'];

export interface RedactionRule {
  readonly field: string;
  readonly action: RedactionAction;
}

/** The rules a handler has when it names none: credentials and cookies masked. */
export const DEFAULT_REDACTION_RULES: readonly RedactionRule[] = Object.freeze([
  { field: 'authorization', action: 'MASK' },
  { field: 'proxy-authorization', action: 'MASK' },
  { field: 'cookie', action: 'MASK' },
  { field: 'set-cookie', action: 'MASK' },
]);

export const MASKED = '[REDACTED]';
export const HASH_PREFIX = 'hmac-sha256:';

/** Every problem with a set of rules, as `{ path, message }` under `prefix`; no I/O. */
export function checkRedactionRules(
  rules: readonly RedactionRule[],
  hashKey: string | undefined,
  prefix: string,
): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const seen = new Map<string, number>();
  rules.forEach((rule, i) => {
    const name = rule.field.toLowerCase();
    if (name === '') problems.push({ path: `${prefix}[${i}].field`, message: 'must not be empty' });
    const earlier = seen.get(name);
    if (earlier !== undefined) {
      problems.push({
        path: `${prefix}[${i}].field`,
        message: `repeats ${prefix}[${earlier}].field "${rule.field}"`,
      });
    }
    seen.set(name, i);
    if (rule.action === 'HASH' && (hashKey === undefined || hashKey.length < 16)) {
      problems.push({
        path: `${prefix}[${i}].action`,
        message: 'HASH needs hashKey: set params.hashKey to a secret of at least 16 characters',
      });
    }
  });
  return problems;
}

/** Names whose decision a Redactor remembers, at most (map keys come from traffic: bounded). */
const MAX_CACHED_NAMES = 4096;
/** Variable-name lists whose sorted order a Redactor remembers (one per instance shape), at most. */
const MAX_CACHED_ORDERS = 8;

/** A redacted variables object: plain, keys in name order (code-unit order, as Array#sort). */
export type RedactedVariables = { [name: string]: JsonValue };

/** Rules compiled for the hot path. */
export class Redactor {
  private readonly actions: ReadonlyMap<string, RedactionAction>;
  /**
   * Each name seen (variable or map key, as written) → its rule's action, or null: saves
   * lower-casing every name of every record. Cleared when it reaches MAX_CACHED_NAMES.
   */
  private readonly decisions = new Map<string, RedactionAction | null>();
  /**
   * Per instance shape (its variable names in their Map order): the names sorted, and a
   * template of the redacted object: an instance's variables come in the same order every
   * time (its configuration's), so the sort is done once per shape, not once per record.
   */
  private orders: VariablesShape[] = [];

  constructor(
    rules: readonly RedactionRule[],
    private readonly hashKey: string | undefined,
  ) {
    this.actions = new Map(rules.map((r) => [r.field.toLowerCase(), r.action]));
  }

  /** The variables as JSON values, redacted; in name order. */
  redact(variables: ReadonlyMap<string, AttributeValue>): Map<string, JsonValue> {
    return new Map(Object.entries(this.redactToObject(variables)));
  }

  /**
   * The variables as one plain object of JSON values, redacted, keys in name order: what
   * redact() returns, without the Map (the record builders' form).
   */
  redactToObject(variables: ReadonlyMap<string, AttributeValue>): RedactedVariables {
    const shape = this.shapeOf(variables);
    // A copy of the shape's template has every key the loop sets, in the same order, as
    // in-object fields: setting them does not add properties. Built key by key instead,
    // an object of this many keys becomes a hash table, three times slower to build, to
    // walk (the record builders' for…in) and to JSON.stringify.
    const template = shape.template;
    const out: RedactedVariables = template === undefined ? {} : { ...template };
    const checkMaps = this.actions.size > 0;
    for (const name of shape.sorted) {
      const value = variables.get(name);
      const action = this.actionFor(name);
      if (action !== null) {
        if (action !== 'DROP') setOwn(out, name, this.replace(action, toJsonValue(value)));
        continue;
      }
      if (checkMaps && isStringMap(value)) {
        const map: { [key: string]: JsonValue } = {};
        for (const key of [...value.keys()].sort()) {
          const keyAction = this.actionFor(key);
          const text = value.get(key) ?? null;
          if (keyAction === null) map[key] = text;
          else if (keyAction !== 'DROP') map[key] = this.replace(keyAction, text);
        }
        setOwn(out, name, map);
        continue;
      }
      setOwn(out, name, toJsonValue(value));
    }
    // The first record of a shape gives the template its keys, and its values the kinds of
    // field (number, string, object) later records most likely have.
    if (template === undefined) shape.template = JSON.parse(JSON.stringify(out)) as RedactedVariables;
    return out;
  }

  /** The rule's action for a name (compared without regard to case), or null. */
  private actionFor(name: string): RedactionAction | null {
    if (this.actions.size === 0) return null;
    let action = this.decisions.get(name);
    if (action === undefined) {
      action = this.actions.get(name.toLowerCase()) ?? null;
      if (this.decisions.size >= MAX_CACHED_NAMES) this.decisions.clear();
      this.decisions.set(name, action);
    }
    return action;
  }

  /** The variables' shape: remembered per list of names. */
  private shapeOf(variables: ReadonlyMap<string, AttributeValue>): VariablesShape {
    const size = variables.size;
    for (const order of this.orders) {
      if (order.names.length !== size) continue;
      let i = 0;
      let same = true;
      for (const name of variables.keys()) {
        if (order.names[i++] !== name) {
          same = false;
          break;
        }
      }
      if (same) return order;
    }
    const names = [...variables.keys()];
    const shape: VariablesShape = { names, sorted: [...names].sort(), template: undefined };
    if (this.orders.length >= MAX_CACHED_ORDERS) this.orders = [];
    this.orders.push(shape);
    return shape;
  }

  private replace(action: 'MASK' | 'HASH', value: JsonValue): string {
    if (action === 'MASK') return MASKED;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return (
      HASH_PREFIX +
      createHmac('sha256', this.hashKey ?? '')
        .update(text)
        .digest('hex')
    );
  }
}

/** Variable names in Map order, the same sorted, and the redacted object's template (see redactToObject). */
interface VariablesShape {
  readonly names: readonly string[];
  readonly sorted: readonly string[];
  template: RedactedVariables | undefined;
}

/** `object[key] = value`, as an own property even for `__proto__` (as Object.fromEntries does). */
function setOwn(object: RedactedVariables, key: string, value: JsonValue): void {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    object[key] = value;
  }
}
