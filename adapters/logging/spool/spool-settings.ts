/**
 * The settings of a spool: where it lives, how often it syncs to disk, how large it may
 * grow, and what happens when it is full.
 */

/**
 * When appended records are synced to disk (fsync):
 * - `ALWAYS`: before an append resolves. A Report answered OK survives a crash of the
 *   machine itself; each append waits for the disk (appends arriving meanwhile share the
 *   next sync).
 * - `INTERVAL` (default): every `fsyncIntervalMs`, and when a segment is sealed or the spool
 *   closes. An append resolves once the records are written to the file, so a killed
 *   process (even SIGKILL) loses nothing; a crash of the machine or a power loss can lose at
 *   most the records appended in the last `fsyncIntervalMs` (default 200 ms).
 * - `NEVER`: the operating system decides when to write. A killed process loses nothing; a
 *   machine crash loses what the kernel had not written yet.
 */
export type FsyncPolicy = 'ALWAYS' | 'INTERVAL' | 'NEVER';
export const FSYNC_POLICIES: readonly FsyncPolicy[] = ['ALWAYS', 'INTERVAL', 'NEVER'];

/**
 * What a full spool does with a new append:
 * - `REFUSE` (default): refuses it (SpoolFullError, answered RESOURCE_EXHAUSTED) so the
 *   caller keeps the records and sends them again later; nothing accepted is ever lost.
 * - `DROP_OLDEST`: deletes the oldest sealed segments, undelivered, to make room; every
 *   dropped record is counted (`droppedRecords`) and each drop is logged with its count.
 */
export type OverflowPolicy = 'REFUSE' | 'DROP_OLDEST';
export const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ['REFUSE', 'DROP_OLDEST'];

export interface SpoolSettings {
  /** The spool's own directory (created if absent). One spool per directory. */
  readonly directory: string;
  readonly fsync: FsyncPolicy;
  /** The bound of the `INTERVAL` policy, in milliseconds. */
  readonly fsyncIntervalMs: number;
  /** The most bytes (frames of every segment, delivered or not) the spool holds. */
  readonly maxSpoolBytes: number;
  /** A segment is sealed, and a new one started, once it holds this many bytes. */
  readonly maxSegmentBytes: number;
  readonly overflow: OverflowPolicy;
}

export const DEFAULT_FSYNC_INTERVAL_MS = 200;
export const DEFAULT_MAX_SPOOL_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_MAX_SEGMENT_BYTES = 16 * 1024 * 1024;

/** Settings with the defaults filled in for what `partial` leaves out. */
export function spoolSettings(
  partial: Partial<SpoolSettings> & { readonly directory: string },
): SpoolSettings {
  return {
    fsync: 'INTERVAL',
    fsyncIntervalMs: DEFAULT_FSYNC_INTERVAL_MS,
    maxSpoolBytes: DEFAULT_MAX_SPOOL_BYTES,
    maxSegmentBytes: DEFAULT_MAX_SEGMENT_BYTES,
    overflow: 'REFUSE',
    ...partial,
  };
}

/** Every problem with the settings, as messages naming the setting; empty when they are usable. */
export function checkSpoolSettings(settings: SpoolSettings): string[] {
  const problems: string[] = [];
  if (!FSYNC_POLICIES.includes(settings.fsync)) {
    problems.push(`fsync must be one of ${FSYNC_POLICIES.join(', ')}, got ${String(settings.fsync)}`);
  }
  if (!OVERFLOW_POLICIES.includes(settings.overflow)) {
    problems.push(
      `overflow must be one of ${OVERFLOW_POLICIES.join(', ')}, got ${String(settings.overflow)}`,
    );
  }
  for (const name of ['fsyncIntervalMs', 'maxSpoolBytes', 'maxSegmentBytes'] as const) {
    const value = settings[name];
    if (!Number.isSafeInteger(value) || value <= 0)
      problems.push(`${name} must be a positive integer, got ${value}`);
  }
  // Room for two sealed segments besides the one being written, so DROP_OLDEST always has
  // something to drop before the bound is reached.
  if (settings.maxSpoolBytes < 4 * settings.maxSegmentBytes) {
    problems.push(
      `maxSpoolBytes (${settings.maxSpoolBytes}) must be at least 4 × maxSegmentBytes (${settings.maxSegmentBytes})`,
    );
  }
  return problems;
}
