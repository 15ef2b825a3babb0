/**
 * The parameters every export adapter (kafka, elasticsearch) has besides its sink's own:
 * the spool, redaction, and how the sender hands records to the sink. An adapter spreads
 * EXPORT_COMMON_PARAMS into its `s.object({…})` and adds checkExportParams to its validate.
 */
import type { ConfigProblem, SchemaType } from '../../schema';
import { s } from '../../schema';
import { DEFAULT_REDACTION_RULES, REDACTION_ACTIONS, checkRedactionRules } from '../audit';
import {
  DEFAULT_FSYNC_INTERVAL_MS,
  DEFAULT_MAX_SEGMENT_BYTES,
  DEFAULT_MAX_SPOOL_BYTES,
  FSYNC_POLICIES,
  OVERFLOW_POLICIES,
  checkSpoolSettings,
  spoolSettings,
  type SpoolSenderSettings,
  type SpoolSettings,
} from '../spool';

const SPOOL_PARAMS = s.object({
  /** ALWAYS, INTERVAL (default) or NEVER: see adapters/logging/spool/README.md. */
  fsync: s.enumeration(FSYNC_POLICIES).default('INTERVAL'),
  /** The bound of INTERVAL: at most this much of the newest records can be lost to a power cut. */
  fsyncInterval: s.duration({ positive: true }).default(DEFAULT_FSYNC_INTERVAL_MS),
  /** The most bytes of records the spool keeps on disk. */
  maxSpoolBytes: s.integer({ min: 1 }).default(DEFAULT_MAX_SPOOL_BYTES),
  /** A segment file is sealed at this size. */
  maxSegmentBytes: s.integer({ min: 1 }).default(DEFAULT_MAX_SEGMENT_BYTES),
  /** REFUSE (default: the Report is answered RESOURCE_EXHAUSTED and the proxy keeps it) or DROP_OLDEST (counted). */
  overflow: s.enumeration(OVERFLOW_POLICIES).default('REFUSE'),
});

/** The sender's linger when the configuration names none: Kafka 4's producer default. */
export const DEFAULT_LINGER_MS = 5;

const DELIVERY_PARAMS = s.object({
  /** The most records handed to the sink in one batch. */
  maxBatchRecords: s.integer({ min: 1, max: 100_000 }).default(1000),
  /** The most bytes of records in one batch (a larger record goes alone). */
  maxBatchBytes: s.integer({ min: 1 }).default(1024 * 1024),
  /**
   * How long the sender waits for more records once some arrive after a quiet spell, so that
   * a trickle leaves in fuller batches; 0 sends at once. Under load it never waits.
   */
  linger: s.duration().default(DEFAULT_LINGER_MS),
  /** The wait before a failed batch is offered again; doubles each time. */
  minRetryDelay: s.duration({ positive: true }).default(100),
  /** The longest wait between offers of a failed batch. Records are never given up on. */
  maxRetryDelay: s.duration({ positive: true }).default(30_000),
});

const REDACTION_RULE = s.object({
  /** A variable's name, or a key of a map variable (a header), compared without regard to case. */
  field: s.string(),
  action: s.enumeration(REDACTION_ACTIONS),
});

export const EXPORT_COMMON_PARAMS = {
  spool: SPOOL_PARAMS.default(SPOOL_PARAMS.parse({}, 'spool', [])),
  /** Replaces the default rules (authorization, cookies masked) whole when given. */
  redaction: s.list(REDACTION_RULE).default(DEFAULT_REDACTION_RULES),
  /** The key of HASH redaction (HMAC-SHA256); at least 16 characters. */
  hashKey: s.string().optionalField(),
  delivery: DELIVERY_PARAMS.default(DELIVERY_PARAMS.parse({}, 'delivery', [])),
};

/** The common parameters, parsed. */
export interface ExportCommonParams {
  readonly spool: SchemaType<typeof SPOOL_PARAMS>;
  readonly redaction: SchemaType<typeof EXPORT_COMMON_PARAMS.redaction>;
  readonly hashKey?: string | undefined;
  readonly delivery: SchemaType<typeof DELIVERY_PARAMS>;
}

/** Problems among the common parameters (relations between fields), with their paths. */
export function checkExportParams(params: ExportCommonParams): ConfigProblem[] {
  const problems: ConfigProblem[] = checkRedactionRules(params.redaction, params.hashKey, 'redaction');
  const spool = params.spool;
  if (spool.maxSpoolBytes < 4 * spool.maxSegmentBytes) {
    problems.push({
      path: 'spool.maxSpoolBytes',
      message: `must be at least 4 × spool.maxSegmentBytes (${4 * spool.maxSegmentBytes}), got ${spool.maxSpoolBytes}`,
    });
  }
  if (params.delivery.maxRetryDelay < params.delivery.minRetryDelay) {
    problems.push({
      path: 'delivery.maxRetryDelay',
      message: `must be at least delivery.minRetryDelay (${params.delivery.minRetryDelay} ms)`,
    });
  }
  return problems;
}

/** The spool's settings for a handler whose spool lives in `directory`. */
export function exportSpoolSettings(params: ExportCommonParams, directory: string): SpoolSettings {
  const settings = spoolSettings({
    directory,
    fsync: params.spool.fsync,
    fsyncIntervalMs: Math.max(1, Math.round(params.spool.fsyncInterval)),
    maxSpoolBytes: params.spool.maxSpoolBytes,
    maxSegmentBytes: params.spool.maxSegmentBytes,
    overflow: params.spool.overflow,
  });
  const problems = checkSpoolSettings(settings);
  if (problems.length > 0) throw new Error(`spool: ${problems.join('; ')}`);
  return settings;
}

export function exportSenderSettings(params: ExportCommonParams): SpoolSenderSettings {
  return {
    maxBatchRecords: params.delivery.maxBatchRecords,
    maxBatchBytes: params.delivery.maxBatchBytes,
    minRetryDelayMs: params.delivery.minRetryDelay,
    maxRetryDelayMs: params.delivery.maxRetryDelay,
    lingerMs: params.delivery.linger,
  };
}
