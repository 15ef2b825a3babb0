/**
 * The `memquota` configuration (`params` of a handler with `compiledAdapter: memquota`).
 *
 * Field names, aliases and the meaning of each field follow Mixer's
 * `mixer/adapter/memquota/config/config.proto`; `rateLimitAlgorithm` and `bucketDuration`
 * follow Mixer's redisquota, so the two quota adapters read alike. Where a default or a
 * rule differs from Mixer it says so below.
 */
import { Duration } from '../../../attributes';
import { joinPath, s, type ConfigProblem, type SchemaType } from '../../schema';

/** The rate-limit algorithms: counted per window of validDuration, or over a window rolling by buckets. */
export const RATE_LIMIT_ALGORITHMS = ['FIXED_WINDOW', 'ROLLING_WINDOW'] as const;
export type RateLimitAlgorithm = (typeof RATE_LIMIT_ALGORITHMS)[number];

/**
 * Mixer's memquota only had rolling windows: every quota with a validDuration counted
 * grants in 100 ms ticks over the window (`newRollingWindow` in memquota.go, with
 * `ticksPerSecond = 10` in dedup.go). Those are our defaults.
 */
export const DEFAULT_RATE_LIMIT_ALGORITHM: RateLimitAlgorithm = 'ROLLING_WINDOW';
export const DEFAULT_BUCKET_DURATION_MS = 100;

/** Mixer's default (`DefaultConfig` of memquota in mixer/adapter/metadata/inventory.go): 1 s. */
export const DEFAULT_MIN_DEDUPLICATION_DURATION_MS = 1000;

const OVERRIDE = s.object(
  {
    /** Dimension name to the text its value must have; every one listed must match. */
    dimensions: s.record(s.string()),
    maxAmount: s.integer({ min: 0 }),
    /** Milliseconds; default: the quota's validDuration (Mixer's default was 0, a non-expiring quota). */
    validDuration: s.duration({ positive: true }).optionalField(),
  },
  { aliases: { max_amount: 'maxAmount', valid_duration: 'validDuration' } },
);

const QUOTA = s.object(
  {
    /** The quota instance this limit is for: its full name (`requestcount.instance.istio-system`) or short name (`requestcount`). */
    name: s.string(),
    /** The most that may be granted per window. */
    maxAmount: s.integer({ min: 0 }),
    /** The window, in milliseconds. Required: Mixer's 0 (a quota never released) is not supported. */
    validDuration: s.duration({ positive: true }),
    rateLimitAlgorithm: s.enumeration(RATE_LIMIT_ALGORITHMS).default(DEFAULT_RATE_LIMIT_ALGORITHM),
    /** ROLLING_WINDOW only: the granularity, in milliseconds, at which the window rolls. */
    bucketDuration: s.duration({ positive: true }).default(DEFAULT_BUCKET_DURATION_MS),
    /** Tried in order; the first whose dimensions all match applies, else the quota's own limit. */
    overrides: s.list(OVERRIDE).default(Object.freeze([])),
  },
  {
    aliases: {
      max_amount: 'maxAmount',
      valid_duration: 'validDuration',
      rate_limit_algorithm: 'rateLimitAlgorithm',
      bucket_duration: 'bucketDuration',
    },
  },
);

/** The schema of memquota's params; durations parse to milliseconds. */
export const MEMQUOTA_PARAMS = s.object(
  {
    /** At least one (validation says so, with the same message whether the list is empty or absent). */
    quotas: s.list(QUOTA).default(Object.freeze([])),
    /** How long, in milliseconds, a retried call with the same deduplication id gets the first call's result. */
    minDeduplicationDuration: s.duration({ positive: true }).default(DEFAULT_MIN_DEDUPLICATION_DURATION_MS),
  },
  { aliases: { min_deduplication_duration: 'minDeduplicationDuration' } },
);

export type MemquotaParams = SchemaType<typeof MEMQUOTA_PARAMS>;
export type QuotaParams = MemquotaParams['quotas'][number];
export type OverrideParams = QuotaParams['overrides'][number];

/** A duration in milliseconds as configuration writes it: `1s`, `100ms`, `1m30s`. */
export function formatDurationMs(ms: number): string {
  return Duration.fromNanos(BigInt(Math.round(ms * 1e6))).toString();
}

/**
 * The rules between fields that the schema cannot state. Mixer's memquota checked only
 * that minDeduplicationDuration is > 0 (`builder.Validate` in memquota.go); its redisquota
 * added non-empty names, rolling windows longer than their buckets and non-empty override
 * dimensions (`builder.Validate` in redisquota.go). We check those, and what exact
 * counting needs besides: whole milliseconds, windows that are a whole number of buckets,
 * distinct quota names, and overrides that can apply at all.
 */
export function validateMemquotaParams(params: MemquotaParams): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const problem = (path: string, message: string): void => {
    problems.push({ path, message });
  };

  checkWholeMilliseconds(params.minDeduplicationDuration, 'minDeduplicationDuration', problem);
  if (params.quotas.length === 0) {
    problem(
      'quotas',
      'must list at least one quota: a memquota handler without quotas cannot serve any instance',
    );
  }

  const firstWithName = new Map<string, number>();
  params.quotas.forEach((quota, q) => {
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
  return problems;
}

type Problem = (path: string, message: string) => void;

function checkWholeMilliseconds(ms: number, path: string, problem: Problem): boolean {
  if (Number.isInteger(ms)) return true;
  problem(path, `must be a whole number of milliseconds, got ${formatDurationMs(ms)}`);
  return false;
}

/** A rolling window is validDuration cut into buckets: more than one, all whole. */
function checkQuotaBuckets(quota: QuotaParams, at: string, problem: Problem): void {
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
  quota: QuotaParams,
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
function isShadowedBy(later: OverrideParams, earlier: OverrideParams): boolean {
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
