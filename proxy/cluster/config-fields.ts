/**
 * Small readers for the fields of a cluster's configuration. Each reads one field of a
 * YAML-shaped mapping, pushes a problem naming the field's full path and what would be right
 * when the value is wrong, and returns the value (or the default when the field is absent).
 *
 * The proxy's configuration types are fixed by `contract.ts` (the request path is written
 * against them), so the cluster parser reads into those types with these helpers rather than
 * deriving the types from a schema as the adapters' `s.object` does; the wording of the
 * messages follows that schema's (`is not a known field; known fields: …`, `got "abc"`).
 */
import type { ConfigProblem } from './contract';

/** Node's timers fire at once for delays above 2^31 − 1 ms (about 24.8 days), so no duration may exceed it. */
export const MAX_DURATION_MS = 2_147_483_647;

export type Mapping = Readonly<Record<string, unknown>>;

export function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How a wrong value is shown after `got`: strings quoted, containers named. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

/** `clusters[0]` + `loadBalancing` → `clusters[0].loadBalancing`. */
export function fieldPath(path: string, field: string): string {
  return path === '' ? field : `${path}.${field}`;
}

/**
 * Reports every key of `raw` that is not in `known`, so a misspelt key is an error instead
 * of a silently applied default; suggests the known key it most likely meant.
 */
export function checkKnownKeys(
  raw: Mapping,
  path: string,
  known: readonly string[],
  problems: ConfigProblem[],
): void {
  for (const key of Object.keys(raw)) {
    if (known.includes(key)) continue;
    const guess = closestKey(key, known);
    problems.push({
      path: fieldPath(path, key),
      message:
        `is not a known field${guess === undefined ? '' : ` (did you mean ${guess}?)`}; ` +
        `known fields: ${known.join(', ')}`,
    });
  }
}

/** The known key a misspelling most likely meant: same letters ignoring case, or at most two edits away. */
function closestKey(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = candidate.toLowerCase() === lower ? 0 : editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance; configuration keys are short, so the quadratic table is fine. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

export interface WholeNumberRule {
  readonly min: number;
  /** Inclusive; absent means any safe integer. */
  readonly max?: number;
  /** Says `milliseconds` in the message, for fields named `…Ms`. */
  readonly milliseconds?: boolean;
}

/** `a whole number ≥ 1`, `a whole number of milliseconds from 1 to 2147483647`. */
function describeWholeNumber(rule: WholeNumberRule): string {
  const noun = rule.milliseconds === true ? 'a whole number of milliseconds' : 'a whole number';
  return rule.max === undefined ? `${noun} ≥ ${rule.min}` : `${noun} from ${rule.min} to ${rule.max}`;
}

/** Checks that `value` (at `path`) is a whole number within `rule`; true when it is. */
export function checkWholeNumber(
  value: unknown,
  path: string,
  rule: WholeNumberRule,
  problems: ConfigProblem[],
): value is number {
  if (
    typeof value === 'number' &&
    Number.isSafeInteger(value) &&
    value >= rule.min &&
    (rule.max === undefined || value <= rule.max)
  ) {
    return true;
  }
  problems.push({ path, message: `must be ${describeWholeNumber(rule)}, got ${describeValue(value)}` });
  return false;
}

/** Reads `raw[key]` as a whole number within `rule`, or `fallback` when absent (or wrong: a problem is pushed then). */
export function readWholeNumber(
  raw: Mapping,
  path: string,
  key: string,
  rule: WholeNumberRule,
  fallback: number,
  problems: ConfigProblem[],
): number {
  const value = raw[key];
  if (value === undefined) return fallback;
  return checkWholeNumber(value, fieldPath(path, key), rule, problems) ? value : fallback;
}

/** Reads `raw[key]` as one of `allowed`, or `fallback` when absent. */
export function readChoice<const T extends string>(
  raw: Mapping,
  path: string,
  key: string,
  allowed: readonly T[],
  fallback: T,
  problems: ConfigProblem[],
): T {
  const value = raw[key];
  if (value === undefined) return fallback;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  problems.push({
    path: fieldPath(path, key),
    message: `must be one of ${allowed.join(', ')}, got ${describeValue(value)}`,
  });
  return fallback;
}

/**
 * Reads an optional section (`healthCheck`, `outlierDetection`, …): undefined when absent;
 * a problem when present but not a mapping (YAML's empty `healthCheck:` is null, and turning a
 * feature on with defaults is better written `healthCheck: {}`).
 */
export function readSection(
  raw: Mapping,
  path: string,
  key: string,
  problems: ConfigProblem[],
): Mapping | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (isMapping(value)) return value;
  problems.push({
    path: fieldPath(path, key),
    message: `must be a mapping (write ${key}: {} for the defaults), got ${describeValue(value)}`,
  });
  return undefined;
}
