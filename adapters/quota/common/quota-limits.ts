/**
 * Rules every quota adapter's limits follow (memquota, redisquota): distinct non-empty
 * names, whole milliseconds, rolling windows that are a whole number of buckets, and
 * overrides that can apply at all. Each adapter checks its own fields besides.
 */
import { Duration } from '../../../attributes';
import { joinPath } from '../../schema';

/** The fields of a configured quota these rules read. */
export interface QuotaLimitParams {
  readonly name: string;
  readonly validDuration: number;
  readonly rateLimitAlgorithm: string;
  readonly bucketDuration: number;
  readonly overrides: readonly OverrideLimitParams[];
}

export interface OverrideLimitParams {
  readonly dimensions: Readonly<Record<string, string>>;
  readonly validDuration?: number | undefined;
}

/** Mixer's rolling-window granularity (100 ms ticks), the default bucket of both quota adapters. */
export const DEFAULT_BUCKET_DURATION_MS = 100;

export type Problem = (path: string, message: string) => void;

/** A duration in milliseconds as configuration writes it: `1s`, `100ms`, `1m30s`. */
export function formatDurationMs(ms: number): string {
  return Duration.fromNanos(BigInt(Math.round(ms * 1e6))).toString();
}

/** Checks `quotas` (at `quotas[i]`), reporting every problem through `problem`. */
export function validateQuotaLimits(quotas: readonly QuotaLimitParams[], problem: Problem): void {
  const firstWithName = new Map<string, number>();
  quotas.forEach((quota, q) => {
    const at = joinPath('quotas', q);
    if (quota.name === '') {
      problem(
        joinPath(at, 'name'),
        'must not be empty: give the name of the quota instance it limits, such as requestcount.instance.istio-system',
      );
    } else {
      const first = firstWithName.get(quota.name);
      if (first !== undefined) {
        problem(
          joinPath(at, 'name'),
          `duplicates quotas[${first}].name ${JSON.stringify(quota.name)}: each quota needs its own name; merge the two or rename one`,
        );
      } else {
        firstWithName.set(quota.name, q);
      }
    }

    const validOk = checkWholeMilliseconds(quota.validDuration, joinPath(at, 'validDuration'), problem);
    const rolling = quota.rateLimitAlgorithm === 'ROLLING_WINDOW';
    const bucketOk =
      rolling && checkWholeMilliseconds(quota.bucketDuration, joinPath(at, 'bucketDuration'), problem);
    if (rolling && validOk && bucketOk) checkQuotaBuckets(quota, at, problem);

    quota.overrides.forEach((override, o) => {
      const overrideAt = joinPath(joinPath(at, 'overrides'), o);
      const names = Object.keys(override.dimensions);
      if (names.length === 0) {
        problem(
          joinPath(overrideAt, 'dimensions'),
          "must name at least one dimension: an override without dimensions would apply to every instance; change the quota's own maxAmount instead",
        );
      } else {
        const shadow = quota.overrides.slice(0, o).findIndex((earlier) => isShadowedBy(override, earlier));
        if (shadow !== -1) {
          problem(
            overrideAt,
            `can never apply: ${at}.overrides[${shadow}] comes first and matches every instance this one matches ` +
              `(${describeDimensions(quota.overrides[shadow]!.dimensions)}); move this override before it`,
          );
        }
      }
      if (override.validDuration !== undefined) {
        const path = joinPath(overrideAt, 'validDuration');
        if (checkWholeMilliseconds(override.validDuration, path, problem) && rolling && bucketOk) {
          checkOverrideBuckets(override.validDuration, quota, at, path, problem);
        }
      }
    });
  });
}

export function checkWholeMilliseconds(ms: number, path: string, problem: Problem): boolean {
  if (Number.isInteger(ms)) return true;
  problem(path, `must be a whole number of milliseconds, got ${formatDurationMs(ms)}`);
  return false;
}

/** A rolling window is validDuration cut into buckets: more than one, all whole. */
function checkQuotaBuckets(quota: QuotaLimitParams, at: string, problem: Problem): void {
  const valid = quota.validDuration;
  const bucket = quota.bucketDuration;
  const path = joinPath(at, 'bucketDuration');
  const got = `got ${formatDurationMs(bucket)}${bucket === DEFAULT_BUCKET_DURATION_MS ? ' (the default when not given)' : ''}`;
  if (bucket >= valid) {
    const tenth = valid % 10 === 0 ? valid / 10 : valid - 1;
    const suggestion = largestDivisorAtMost(valid, tenth);
    const fix =
      suggestion < valid
        ? `give a divisor of validDuration such as ${formatDurationMs(suggestion)}, or use FIXED_WINDOW`
        : 'use FIXED_WINDOW';
    problem(
      path,
      `must be shorter than validDuration (${formatDurationMs(valid)}) for ROLLING_WINDOW, ${got}; ${fix}`,
    );
  } else if (valid % bucket !== 0) {
    problem(
      path,
      `must divide validDuration (${formatDurationMs(valid)}) into whole buckets for ROLLING_WINDOW, ${got}; ` +
        `give a divisor of validDuration such as ${formatDurationMs(largestDivisorAtMost(valid, bucket))}`,
    );
  }
}

/** An override's window rolls by its quota's buckets, so it too must be a whole number of them. */
function checkOverrideBuckets(
  valid: number,
  quota: QuotaLimitParams,
  at: string,
  path: string,
  problem: Problem,
): void {
  const bucket = quota.bucketDuration;
  const bucketText = `${at}.bucketDuration is ${formatDurationMs(bucket)}`;
  if (valid <= bucket) {
    problem(
      path,
      `must be longer than the bucket for ROLLING_WINDOW (${bucketText}), got ${formatDurationMs(valid)}; ` +
        `give a multiple of it such as ${formatDurationMs(bucket * 2)}`,
    );
  } else if (valid % bucket !== 0) {
    const below = Math.floor(valid / bucket) * bucket;
    const above = below + bucket;
    const choices =
      below > bucket ? `${formatDurationMs(below)} or ${formatDurationMs(above)}` : formatDurationMs(above);
    problem(
      path,
      `must be a whole number of buckets for ROLLING_WINDOW (${bucketText}), got ${formatDurationMs(valid)}; ` +
        `give a multiple of the bucket such as ${choices}`,
    );
  }
}

/** The largest divisor of `valueMs` that is at most `limitMs` (1 when there is no other). */
function largestDivisorAtMost(valueMs: number, limitMs: number): number {
  let best = 1;
  for (let d = 1; d * d <= valueMs; d++) {
    if (valueMs % d !== 0) continue;
    const pair = valueMs / d;
    if (d <= limitMs && d > best) best = d;
    if (pair <= limitMs && pair > best) best = pair;
  }
  return best;
}

/** True when `earlier` matches whenever `later` does: its every condition is one of later's. */
function isShadowedBy(later: OverrideLimitParams, earlier: OverrideLimitParams): boolean {
  const conditions = Object.entries(earlier.dimensions);
  return (
    conditions.length > 0 &&
    conditions.every(
      ([name, text]) => Object.hasOwn(later.dimensions, name) && later.dimensions[name] === text,
    )
  );
}

function describeDimensions(dimensions: Readonly<Record<string, string>>): string {
  return Object.entries(dimensions)
    .map(([name, text]) => `${name}=${JSON.stringify(text)}`)
    .join(', ');
}
