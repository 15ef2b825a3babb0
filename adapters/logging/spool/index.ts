/**
 * The durable spool shared by the export adapters (kafka, elasticsearch): a write-ahead log
 * of accepted records in the server's data directory and a sender that delivers it to a
 * sink at least once. See spool.ts and spool-sender.ts.
 */
export { Spool } from './spool';
export type { SpoolBatch, SpoolEnvironment, SpoolPosition, SpoolStats } from './spool';
export { SpoolSender } from './spool-sender';
export type {
  SpoolSenderEnvironment,
  SpoolSenderSettings,
  SpoolSenderStats,
  SpoolSink,
} from './spool-sender';
export {
  DEFAULT_FSYNC_INTERVAL_MS,
  DEFAULT_MAX_SEGMENT_BYTES,
  DEFAULT_MAX_SPOOL_BYTES,
  FSYNC_POLICIES,
  OVERFLOW_POLICIES,
  checkSpoolSettings,
  spoolSettings,
} from './spool-settings';
export type { FsyncPolicy, OverflowPolicy, SpoolSettings } from './spool-settings';
export { SpoolError, SpoolFullError } from './errors';
export type { SpoolErrorCode } from './errors';
export { FRAME_HEADER_BYTES, decodeFrames, encodeFrames, sealFrame } from './frame-codec';
