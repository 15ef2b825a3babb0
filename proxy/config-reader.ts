/**
 * Small readers for validating plain YAML data: each reads one value at a path, pushes a
 * problem (`{ path, message }`, the message saying what is wrong and how to fix it) when
 * the value does not fit, and returns the value or undefined. Validation goes on after a
 * problem, so that one pass reports every problem of a file.
 */
import { Duration } from '../attributes';
import { compilePattern } from '../expressions';
import type { ConfigProblem } from './cluster';

export type Problems = ConfigProblem[];
export type Mapping = Readonly<Record<string, unknown>>;

/** `routes[0]` + `match` → `routes[0].match`; `routes` + 2 → `routes[2]`. */
export function at(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

/** How a value reads in a message: `the string "x"`, `the number 3`, `a list`, `a mapping`, `null`. */
export function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return `${value}`;
  return typeof value;
}

export function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The mapping at `path`, with every key not in `known` reported (with the nearest known key
 * when one is close: a typo must not silently fall back to a default). Undefined, after a
 * problem, when the value is not a mapping.
 */
export function readMapping(
  value: unknown,
  path: string,
  problems: Problems,
  known: readonly string[],
  example: string,
): Mapping | undefined {
  if (!isMapping(value)) {
    problems.push({ path, message: `must be a mapping, got ${describe(value)}; write it as ${example}` });
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const near = nearest(key, known);
    problems.push({
      path: at(path, key),
      message:
        near === undefined
          ? `unknown key; the keys here are ${known.join(', ')}`
          : `unknown key; did you mean ${near}? The keys here are ${known.join(', ')}`,
    });
  }
  return value;
}

/** The known key within two edits of `key`, if exactly one is nearest. */
function nearest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** A string; `required` reports its absence, `nonEmpty` an empty one. */
export function readString(
  mapping: Mapping,
  key: string,
  path: string,
  problems: Problems,
  options: { required?: boolean; nonEmpty?: boolean; example: string },
): string | undefined {
  const value = mapping[key];
  const where = at(path, key);
  if (value === undefined || value === null) {
    if (options.required === true)
      problems.push({ path: where, message: `is required, e.g. ${options.example}` });
    return undefined;
  }
  if (typeof value !== 'string') {
    const scalar = typeof value === 'number' || typeof value === 'boolean';
    problems.push({
      path: where,
      message: scalar
        ? `must be a string, got ${describe(value)}; quote it: ${key}: "${String(value)}"`
        : `must be a string, got ${describe(value)}; e.g. ${options.example}`,
    });
    return undefined;
  }
  if (options.nonEmpty === true && value === '') {
    problems.push({ path: where, message: `must not be empty, e.g. ${options.example}` });
    return undefined;
  }
  return value;
}

/** A whole number in [min, max]; `fallback` when absent. */
export function readWholeNumber(
  mapping: Mapping,
  key: string,
  path: string,
  problems: Problems,
  options: { min: number; max?: number; fallback?: number; required?: boolean; example: string },
): number | undefined {
  const value = mapping[key];
  const where = at(path, key);
  if (value === undefined || value === null) {
    if (options.required === true)
      problems.push({ path: where, message: `is required, e.g. ${options.example}` });
    return options.fallback;
  }
  const range = options.max === undefined ? `≥ ${options.min}` : `from ${options.min} to ${options.max}`;
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < options.min ||
    (options.max !== undefined && value > options.max)
  ) {
    problems.push({
      path: where,
      message: `must be a whole number ${range}, got ${describe(value)}; e.g. ${options.example}`,
    });
    return undefined;
  }
  return value;
}

const BYTE_UNITS: Readonly<Record<string, number>> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/**
 * A number of bytes from `min` (to `max`): a whole number, or a whole number with a unit (`64KiB`,
 * `10MiB`, `1GiB`, `512B`); `fallback` when absent.
 */
export function readByteSize(
  mapping: Mapping,
  key: string,
  path: string,
  problems: Problems,
  options: { min: number; max?: number; fallback?: number; example: string },
): number | undefined {
  const value = mapping[key];
  if (value === undefined || value === null) return options.fallback;
  let bytes: number | undefined;
  if (typeof value === 'number') {
    bytes = value;
  } else if (typeof value === 'string') {
    const m = /^\s*(\d+)\s*(B|KiB|MiB|GiB)\s*$/.exec(value);
    if (m !== null) bytes = Number(m[1]) * BYTE_UNITS[m[2]!]!;
  }
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  if (bytes === undefined || !Number.isSafeInteger(bytes) || bytes < options.min || bytes > max) {
    const range =
      options.max === undefined ? `of at least ${options.min}` : `from ${options.min} to ${options.max}`;
    problems.push({
      path: at(path, key),
      message: `must be a size ${range} bytes: a whole number, or one with a unit (B, KiB, MiB, GiB), got ${describe(value)}; e.g. ${options.example}`,
    });
    return undefined;
  }
  return bytes;
}

/** A percentage: a number from 0 to 100, decimals allowed. */
export function readPercent(
  mapping: Mapping,
  key: string,
  path: string,
  problems: Problems,
  fallback: number,
): number | undefined {
  const value = mapping[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100) {
    problems.push({
      path: at(path, key),
      message: `must be a percentage from 0 to 100, got ${describe(value)}; e.g. ${key}: 10 or ${key}: 0.5`,
    });
    return undefined;
  }
  return value;
}

/** A duration written as Go writes them (`15s`, `250ms`, `1m30s`, or 0), in milliseconds. */
export function readDurationMs(
  mapping: Mapping,
  key: string,
  path: string,
  problems: Problems,
  options: { fallback?: number; required?: boolean; positive?: boolean },
): number | undefined {
  const value = mapping[key];
  const where = at(path, key);
  if (value === undefined || value === null) {
    if (options.required === true) problems.push({ path: where, message: `is required, e.g. ${key}: 1s` });
    return options.fallback;
  }
  const parsed =
    value === 0 ? new Duration(0, 0) : typeof value === 'string' ? Duration.parse(value) : undefined;
  const ms = parsed === undefined ? undefined : Number(parsed.toNanos()) / 1e6;
  if (ms === undefined || ms < 0) {
    problems.push({
      path: where,
      message: `must be a duration such as 15s, 250ms or 1m30s, got ${describe(value)}; write the unit, e.g. ${key}: 1s`,
    });
    return undefined;
  }
  if (options.positive === true && ms === 0) {
    problems.push({ path: where, message: `must be longer than 0, e.g. ${key}: 1s` });
    return undefined;
  }
  return ms;
}

export function readBoolean(
  mapping: Mapping,
  key: string,
  path: string,
  problems: Problems,
  fallback: boolean,
): boolean | undefined {
  const value = mapping[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') {
    problems.push({ path: at(path, key), message: `must be true or false, got ${describe(value)}` });
    return undefined;
  }
  return value;
}

/** A list; undefined after a problem, or when absent. */
export function readList(
  mapping: Mapping,
  key: string,
  path: string,
  problems: Problems,
  example: string,
): readonly unknown[] | undefined {
  const value = mapping[key];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) {
    problems.push({
      path: at(path, key),
      message: `must be a list, got ${describe(value)}; e.g. ${example}`,
    });
    return undefined;
  }
  return value;
}

/** A mapping of names to strings (labels, header values). */
export function readStringMap(
  mapping: Mapping,
  key: string,
  path: string,
  problems: Problems,
  example: string,
): Record<string, string> | undefined {
  const value = mapping[key];
  if (value === undefined || value === null) return undefined;
  const where = at(path, key);
  if (!isMapping(value)) {
    problems.push({
      path: where,
      message: `must be a mapping of names to strings, got ${describe(value)}; e.g. ${example}`,
    });
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      problems.push({
        path: at(where, name),
        message: `must be a string, got ${describe(v)}; quote it, e.g. ${name}: "${String(v)}"`,
      });
      continue;
    }
    out[name] = v;
  }
  return out;
}

/** An HTTP field name (RFC 9110 token), lower-cased; pseudo-headers are refused. */
export function checkHeaderName(name: string, path: string, problems: Problems): string | undefined {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) {
    problems.push({
      path,
      message: `${JSON.stringify(name)} is not a header name; use letters, digits and - (pseudo-headers such as :path have their own match keys)`,
    });
    return undefined;
  }
  return name.toLowerCase();
}

/**
 * A regular expression in RE2 syntax (as Envoy and Mixer use), compiled once here to match
 * a whole value: anchors are implied.
 */
export function compileWholeMatch(pattern: string, path: string, problems: Problems): RegExp | undefined {
  const compiled = compilePattern(pattern);
  if (!compiled.ok) {
    problems.push({
      path,
      message: `does not compile: ${compiled.problem}; write an RE2 regular expression, e.g. "^/users/[0-9]+$"`,
    });
    return undefined;
  }
  try {
    return new RegExp(`^(?:${compiled.regex.source})$`, compiled.regex.flags);
  } catch (error) {
    problems.push({
      path,
      message: `does not compile: ${(error as Error).message}; write an RE2 regular expression, e.g. "^/users/[0-9]+$"`,
    });
    return undefined;
  }
}

/** Freezes a value and everything in it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value) && !(value instanceof RegExp)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
