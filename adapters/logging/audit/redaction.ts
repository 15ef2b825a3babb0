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

/** Rules compiled for the hot path. */
export class Redactor {
  private readonly actions: ReadonlyMap<string, RedactionAction>;

  constructor(
    rules: readonly RedactionRule[],
    private readonly hashKey: string | undefined,
  ) {
    this.actions = new Map(rules.map((r) => [r.field.toLowerCase(), r.action]));
  }

  /** The variables as JSON values, redacted; in name order. */
  redact(variables: ReadonlyMap<string, AttributeValue>): Map<string, JsonValue> {
    const out = new Map<string, JsonValue>();
    for (const name of [...variables.keys()].sort()) {
      const value = variables.get(name);
      const action = this.actions.get(name.toLowerCase());
      if (action !== undefined) {
        if (action !== 'DROP') out.set(name, this.replace(action, toJsonValue(value)));
        continue;
      }
      if (isStringMap(value) && this.actions.size > 0) {
        const map: { [key: string]: JsonValue } = {};
        for (const key of [...value.keys()].sort()) {
          const keyAction = this.actions.get(key.toLowerCase());
          const text = value.get(key) ?? null;
          if (keyAction === undefined) map[key] = text;
          else if (keyAction !== 'DROP') map[key] = this.replace(keyAction, text);
        }
        out.set(name, map);
        continue;
      }
      out.set(name, toJsonValue(value));
    }
    return out;
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
