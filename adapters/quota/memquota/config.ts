/**
 * The `memquota` configuration (`params` of a handler with `compiledAdapter: memquota`).
 *
 * Field names, aliases and the meaning of each field follow Mixer's
 * `mixer/adapter/memquota/config/config.proto`; `rateLimitAlgorithm` and `bucketDuration`
 * follow Mixer's redisquota, so the two quota adapters read alike. Where a default or a
 * rule differs from Mixer it says so below.
 */
import { s, type ConfigProblem, type SchemaType } from '../../schema';
import { checkWholeMilliseconds, DEFAULT_BUCKET_DURATION_MS, validateQuotaLimits } from '../common';

export { DEFAULT_BUCKET_DURATION_MS, formatDurationMs } from '../common';

/** The rate-limit algorithms: counted per window of validDuration, or over a window rolling by buckets. */
export const RATE_LIMIT_ALGORITHMS = ['FIXED_WINDOW', 'ROLLING_WINDOW'] as const;
export type RateLimitAlgorithm = (typeof RATE_LIMIT_ALGORITHMS)[number];

/**
 * Mixer's memquota only had rolling windows: every quota with a validDuration counted
 * grants in 100 ms ticks over the window (`newRollingWindow` in memquota.go, with
 * `ticksPerSecond = 10` in dedup.go). Those are our defaults.
 */
export const DEFAULT_RATE_LIMIT_ALGORITHM: RateLimitAlgorithm = 'ROLLING_WINDOW';

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

  validateQuotaLimits(params.quotas, problem);
  return problems;
}
