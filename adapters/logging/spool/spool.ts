/**
 * The durable spool: a write-ahead log of records in a directory, between the handlers that
 * accept records and the sender that delivers them to a sink (Kafka, Elasticsearch).
 *
 * Records are appended, in call order, to the newest segment file
 * (`segment-000000000001.log`, …; frames as in frame-codec.ts) by one writer loop; an append
 * resolves once its records are in the file (and synced, under `ALWAYS`: see
 * spool-settings.ts). A segment that reaches `maxSegmentBytes` is sealed and a new one begun.
 *
 * One reader (the sender) reads the records in order and acknowledges each batch once the
 * sink has it; a segment is deleted only when every record in it was acknowledged. The
 * position of the last acknowledgement is kept in the file `acknowledged` (written after each
 * acknowledgement, not synced), so a restart resends only the records of the last batch, if
 * any: delivery is at least once.
 *
 * Opening a spool scans its segments: a frame cut short by a crash (or damaged) ends its
 * segment, which is truncated there and the discarded bytes logged; everything before it,
 * past the last acknowledgement, is read again.
 *
 * Size: the bytes of every segment still on disk count against `maxSpoolBytes`; see
 * OverflowPolicy for what a full spool does. Counters in `stats()`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { AdapterLogger, TimerHandle } from '../../contract';
import { SpoolError, SpoolFullError } from './errors';
import { FRAME_HEADER_BYTES, decodeFrames, encodeFrames } from './frame-codec';
import { checkSpoolSettings, type SpoolSettings } from './spool-settings';

/** What the spool needs from its handler's environment (a subset of AdapterEnv). */
export interface SpoolEnvironment {
  readonly logger: AdapterLogger;
  every(callback: () => void, intervalMs: number): TimerHandle;
}

/** A place in the spool: a byte offset in a segment. */
export interface SpoolPosition {
  readonly segmentId: number;
  readonly offset: number;
}

/** Records read from the spool, to be acknowledged once the sink has them all. */
export interface SpoolBatch {
  readonly records: readonly Buffer[];
  /** Where the batch ends: acknowledging it acknowledges everything before. */
  readonly end: SpoolPosition;
}

/** What the spool did, as counters. */
export interface SpoolStats {
  /** Records appended since the spool was opened. */
  readonly acceptedRecords: number;
  /** Records refused because the spool was full (REFUSE) or the write failed. */
  readonly refusedRecords: number;
  /** Records deleted undelivered to make room (DROP_OLDEST). */
  readonly droppedRecords: number;
  /** Records acknowledged by the sink since the spool was opened. */
  readonly acknowledgedRecords: number;
  /** Unacknowledged records found on disk when the spool was opened. */
  readonly recoveredRecords: number;
  /** Bytes of the segments on disk (acknowledged records included until their segment goes). */
  readonly spoolBytes: number;
  readonly segments: number;
  readonly fsyncs: number;
}

interface Segment {
  readonly id: number;
  readonly path: string;
  /** Bytes of whole frames written (readable). */
  bytes: number;
  records: number;
  /** Records the reader has read (or that were acknowledged before the spool opened). */
  readRecords: number;
  /** Records acknowledged (including before the spool opened). */
  acknowledgedRecords: number;
  /** No more records will be appended to it. */
  sealed: boolean;
}

interface PendingAppend {
  readonly frames: Buffer;
  readonly records: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

const SEGMENT_NAME = /^segment-(\d{12})\.log$/;
const CURSOR_FILE = 'acknowledged';

function segmentPath(directory: string, id: number): string {
  return path.join(directory, `segment-${String(id).padStart(12, '0')}.log`);
}

export class Spool {
  private readonly segments: Segment[] = [];
  private active!: Segment;
  private activeHandle!: fs.FileHandle;
  private readPosition: SpoolPosition;
  /** Where the last acknowledged batch ended (or the start, before any). */
  private acknowledgedPosition: SpoolPosition;
  private current: SpoolSettings;
  private readHandle: { readonly segmentId: number; readonly handle: fs.FileHandle } | undefined;
  private queue: PendingAppend[] = [];
  private queuedBytes = 0;
  private writing = false;
  private writerIdle: Promise<void> = Promise.resolve();
  private dirty = false;
  private syncDue = false;
  private broken: string | undefined;
  private closing: Promise<void> | undefined;
  private recordWaiters: (() => void)[] = [];
  private syncTimer: TimerHandle | undefined;
  private refusing = false;
  private counters = {
    acceptedRecords: 0,
    refusedRecords: 0,
    droppedRecords: 0,
    acknowledgedRecords: 0,
    recoveredRecords: 0,
    fsyncs: 0,
  };

  private constructor(
    settings: SpoolSettings,
    private readonly env: SpoolEnvironment,
    private readonly label: string,
    start: SpoolPosition,
  ) {
    this.current = settings;
    this.readPosition = start;
    this.acknowledgedPosition = start;
  }

  /** The settings in force (see reconfigure). */
  get settings(): SpoolSettings {
    return this.current;
  }

  /**
   * Opens the spool in `settings.directory` (creating it), recovering the records a previous
   * process left there, and begins a new segment for appends.
   * @throws Error naming the setting when the settings are unusable, or the I/O error when the directory cannot be used
   */
  static async open(settings: SpoolSettings, env: SpoolEnvironment, label: string): Promise<Spool> {
    const problems = checkSpoolSettings(settings);
    if (problems.length > 0) throw new Error(`${label}: spool ${problems.join('; ')}`);
    const directory = settings.directory;
    await fs.mkdir(directory, { recursive: true });
    const cursor = await readCursor(directory);
    const ids = (await fs.readdir(directory))
      .map((name) => SEGMENT_NAME.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const recovered: Segment[] = [];
    let recoveredRecords = 0;
    for (const id of ids) {
      const file = segmentPath(directory, id);
      const content = await fs.readFile(file);
      const decoded = decodeFrames(content);
      if (decoded.consumedBytes < content.length) {
        const why = decoded.damage ?? 'its last frame is incomplete (the process stopped while writing it)';
        env.logger.warn(
          `${label}: spool segment ${file}: ${why}; truncated to ${decoded.consumedBytes} bytes, ` +
            `${content.length - decoded.consumedBytes} bytes discarded`,
        );
        await fs.truncate(file, decoded.consumedBytes);
      }
      const acknowledgedAll = cursor !== undefined && id < cursor.segmentId;
      if (decoded.consumedBytes === 0 || acknowledgedAll) {
        await fs.unlink(file);
        continue;
      }
      const readRecords =
        cursor !== undefined && id === cursor.segmentId
          ? decodeFrames(content.subarray(0, cursor.offset)).payloads.length
          : 0;
      recoveredRecords += decoded.payloads.length - readRecords;
      recovered.push({
        id,
        path: file,
        bytes: decoded.consumedBytes,
        records: decoded.payloads.length,
        readRecords,
        acknowledgedRecords: readRecords,
        sealed: true,
      });
    }
    const first = recovered[0];
    const start: SpoolPosition =
      first === undefined
        ? { segmentId: (ids.at(-1) ?? 0) + 1, offset: 0 }
        : cursor !== undefined && cursor.segmentId === first.id
          ? { segmentId: first.id, offset: Math.min(cursor.offset, first.bytes) }
          : { segmentId: first.id, offset: 0 };
    const spool = new Spool(settings, env, label, start);
    spool.segments.push(...recovered);
    spool.counters.recoveredRecords = recoveredRecords;
    await spool.beginSegment((ids.at(-1) ?? 0) + 1);
    spool.startSyncTimer();
    if (recoveredRecords > 0) {
      env.logger.info(`${label}: spool ${directory}: ${recoveredRecords} undelivered records recovered`);
    }
    return spool;
  }

  /**
   * Takes new settings for the same directory (a handler rebuilt by a reload with changed
   * spool parameters): bounds and the overflow policy apply to the next append, the fsync
   * policy at once, the segment size from the next segment on.
   * @throws Error naming the setting when the settings are unusable or name another directory
   */
  reconfigure(settings: SpoolSettings): void {
    const problems = checkSpoolSettings(settings);
    if (settings.directory !== this.current.directory) {
      problems.push(`directory must stay ${this.current.directory}, got ${settings.directory}`);
    }
    if (problems.length > 0) throw new Error(`${this.label}: spool ${problems.join('; ')}`);
    const previous = this.current;
    this.current = settings;
    if (previous.fsync !== settings.fsync || previous.fsyncIntervalMs !== settings.fsyncIntervalMs) {
      this.syncTimer?.cancel();
      this.syncTimer = undefined;
      if (this.closing === undefined) this.startSyncTimer();
    }
  }

  /**
   * Forgets what was read but not acknowledged, so the next read starts after the last
   * acknowledgement: for a new reader taking over from one that stopped mid-batch.
   */
  rewindToAcknowledged(): void {
    const acknowledged = this.acknowledgedPosition;
    const first = this.segments.find((s) => s.id >= acknowledged.segmentId);
    this.readPosition =
      first === undefined
        ? acknowledged
        : { segmentId: first.id, offset: first.id === acknowledged.segmentId ? acknowledged.offset : 0 };
    for (const segment of this.segments) segment.readRecords = segment.acknowledgedRecords;
  }

  /**
   * Appends records (whole, in call order). Resolves once they are written to the segment
   * (and synced under `ALWAYS`).
   * @throws SpoolFullError when full under REFUSE (or when the call alone is larger than the
   *   spool may grow); SpoolError CLOSED after close, WRITE_FAILED when the disk refused the write.
   */
  append(payloads: readonly Buffer[]): Promise<void> {
    return this.appendFrames(payloads.length === 0 ? EMPTY : encodeFrames(payloads), payloads.length);
  }

  /**
   * append() for records already framed (frame-codec.ts: encodeFrames, or sealFrame in
   * place): `frames` holds exactly `records` whole frames. Same results and errors as append().
   */
  appendFrames(frames: Buffer, records: number): Promise<void> {
    if (this.closing !== undefined) {
      return Promise.reject(
        new SpoolError('CLOSED', `${this.label}: the spool is closed and accepts no more records`),
      );
    }
    if (this.broken !== undefined) {
      this.counters.refusedRecords += records;
      return Promise.reject(new SpoolError('WRITE_FAILED', `${this.label}: ${this.broken}`));
    }
    if (records === 0) return Promise.resolve();
    if (!this.makeRoom(frames.length, records)) {
      this.counters.refusedRecords += records;
      return Promise.reject(
        new SpoolFullError(
          `${this.label}: the spool in ${this.settings.directory} is full (${this.settings.maxSpoolBytes} bytes ` +
            'of undelivered records); the sink is not keeping up or is down',
        ),
      );
    }
    this.counters.acceptedRecords += records;
    this.queuedBytes += frames.length;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frames, records, resolve, reject });
      this.startWriter();
    });
  }

  /**
   * Reads the next records after the last read, at most `maxRecords` and (past the first)
   * `maxBytes` of frames; undefined when every written record was read. One reader only.
   */
  async read(maxRecords: number, maxBytes: number): Promise<SpoolBatch | undefined> {
    for (;;) {
      const position = this.readPosition;
      const index = this.segments.findIndex((s) => s.id >= position.segmentId);
      const segment = this.segments[index];
      if (segment === undefined) return undefined;
      const offset = segment.id === position.segmentId ? position.offset : 0;
      if (offset >= segment.bytes) {
        const next = this.segments[index + 1];
        if (!segment.sealed || next === undefined) return undefined;
        this.readPosition = { segmentId: next.id, offset: 0 };
        continue;
      }
      const handle = await this.readHandleFor(segment);
      const available = segment.bytes - offset;
      let buffer = await readAt(handle, offset, Math.min(available, Math.max(maxBytes, FRAME_HEADER_BYTES)));
      let decoded = decodeFrames(buffer, maxRecords, maxBytes);
      if (decoded.payloads.length === 0) {
        // One frame larger than maxBytes: read it whole.
        const length = FRAME_HEADER_BYTES + buffer.readUInt32BE(0);
        buffer = await readAt(handle, offset, Math.min(available, length));
        decoded = decodeFrames(buffer, 1);
      }
      if (decoded.payloads.length === 0) {
        throw new Error(
          `${this.label}: spool segment ${segment.path} is damaged at byte ${offset}: ${decoded.damage}`,
        );
      }
      // Dropped while being read (DROP_OLDEST): its records were counted as dropped, so they
      // are not delivered either; the drop moved the position on.
      if (!this.segments.includes(segment)) continue;
      this.readPosition = { segmentId: segment.id, offset: offset + decoded.consumedBytes };
      segment.readRecords += decoded.payloads.length;
      return {
        records: decoded.payloads,
        end: { segmentId: segment.id, offset: offset + decoded.consumedBytes },
      };
    }
  }

  /** Resolves when records are written after the last read, or the spool closes. */
  waitForRecords(): Promise<void> {
    if (this.closing !== undefined || this.hasUnread()) return Promise.resolve();
    return new Promise((resolve) => this.recordWaiters.push(resolve));
  }

  /**
   * Marks a batch (and everything before it) delivered: deletes the segments it completes
   * and records the position in the `acknowledged` file.
   */
  async acknowledge(batch: SpoolBatch): Promise<void> {
    this.counters.acknowledgedRecords += batch.records.length;
    const end = batch.end;
    this.acknowledgedPosition = end;
    const segment = this.segments.find((s) => s.id === end.segmentId);
    if (segment !== undefined) segment.acknowledgedRecords += batch.records.length;
    while (this.segments.length > 0) {
      const oldest = this.segments[0]!;
      const done =
        oldest.id < end.segmentId ||
        (oldest.id === end.segmentId && oldest.sealed && end.offset >= oldest.bytes);
      if (!done) break;
      this.segments.shift();
      await this.closeReadHandle(oldest.id);
      await fs.unlink(oldest.path).catch((error: unknown) => this.logUnlinkFailure(oldest, error));
    }
    const tmp = path.join(this.settings.directory, `${CURSOR_FILE}.tmp`);
    await fs.writeFile(tmp, `${end.segmentId} ${end.offset}\n`);
    await fs.rename(tmp, path.join(this.settings.directory, CURSOR_FILE));
  }

  /** Whether records were written that the reader has not read yet. */
  hasUnread(): boolean {
    const p = this.readPosition;
    for (const segment of this.segments) {
      if (segment.id < p.segmentId) continue;
      if ((segment.id === p.segmentId ? p.offset : 0) < segment.bytes) return true;
    }
    return false;
  }

  stats(): SpoolStats {
    return {
      ...this.counters,
      spoolBytes: this.spoolBytes(),
      segments: this.segments.length,
    };
  }

  /** Bytes in the segments and waiting to be written (stats().spoolBytes, without the copy of the counters). */
  private spoolBytes(): number {
    let bytes = this.queuedBytes;
    for (const segment of this.segments) bytes += segment.bytes;
    return bytes;
  }

  /**
   * Writes what was appended, syncs (unless `NEVER`) and closes the files. Records not yet
   * delivered stay in the directory for the next open. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.syncTimer?.cancel();
    this.wakeReaders();
    await this.writerIdle;
    if (this.settings.fsync !== 'NEVER' && this.broken === undefined) {
      await this.activeHandle.datasync();
      this.counters.fsyncs++;
    }
    await this.activeHandle.close();
    if (this.readHandle !== undefined) await this.readHandle.handle.close();
    this.readHandle = undefined;
  }

  /** Whether `bytes` more fit, after dropping the oldest segments under DROP_OLDEST. */
  private makeRoom(bytes: number, records: number): boolean {
    const max = this.settings.maxSpoolBytes;
    const used = (): number => this.spoolBytes();
    if (used() + bytes <= max) {
      this.refusing = false;
      return true;
    }
    if (this.settings.overflow === 'REFUSE') {
      if (!this.refusing) {
        this.env.logger.warn(
          `${this.label}: spool full (${max} bytes in ${this.settings.directory}); refusing records until the sink catches up`,
        );
      }
      this.refusing = true;
      return false;
    }
    let dropped = 0;
    while (used() + bytes > max) {
      const oldest = this.segments[0];
      if (oldest === undefined || oldest === this.active) break;
      this.segments.shift();
      dropped += oldest.records - oldest.readRecords;
      if (this.readPosition.segmentId <= oldest.id) {
        const next = this.segments[0]!;
        this.readPosition = { segmentId: next.id, offset: 0 };
      }
      void this.closeReadHandle(oldest.id).then(() =>
        fs.unlink(oldest.path).catch((error: unknown) => this.logUnlinkFailure(oldest, error)),
      );
    }
    if (dropped > 0) {
      this.counters.droppedRecords += dropped;
      this.env.logger.warn(
        `${this.label}: spool full (${max} bytes); dropped the ${dropped} oldest undelivered records ` +
          `(${this.counters.droppedRecords} dropped in all)`,
      );
    }
    if (used() + bytes <= max) return true;
    this.env.logger.warn(`${this.label}: refused ${records} records larger than the spool's free room`);
    return false;
  }

  private startWriter(): void {
    if (this.writing) return;
    this.writing = true;
    this.writerIdle = this.writeLoop().catch((error: unknown) => {
      this.broken = `the spool's writer failed: ${(error as Error).message}`;
      this.env.logger.error(`${this.label}: ${this.broken}`);
      for (const b of this.queue) b.reject(new SpoolError('WRITE_FAILED', `${this.label}: ${this.broken}`));
      this.queue = [];
    });
  }

  private startSyncTimer(): void {
    if (this.current.fsync !== 'INTERVAL') return;
    this.syncTimer = this.env.every(() => this.requestSync(), this.current.fsyncIntervalMs);
  }

  /** The INTERVAL timer: a sync is due if anything was written since the last one. */
  private requestSync(): void {
    if (!this.dirty || this.closing !== undefined || this.broken !== undefined) return;
    this.syncDue = true;
    this.startWriter();
  }

  private async writeLoop(): Promise<void> {
    try {
      await this.writeWhileQueued();
    } catch (error) {
      this.writing = false;
      throw error;
    }
  }

  private async writeWhileQueued(): Promise<void> {
    for (;;) {
      if (this.queue.length === 0 && !this.syncDue) {
        // In the same turn as this last look at the queue, so no append is left behind.
        this.writing = false;
        return;
      }
      const batch = this.queue;
      this.queue = [];
      if (this.broken !== undefined) {
        for (const b of batch) b.reject(new SpoolError('WRITE_FAILED', `${this.label}: ${this.broken}`));
        this.syncDue = false;
        continue;
      }
      if (batch.length === 0) {
        this.syncDue = false;
        await this.sync().catch((error: unknown) =>
          this.env.logger.error(
            `${this.label}: syncing ${this.active.path} failed: ${(error as Error).message}`,
          ),
        );
        continue;
      }
      const frames = batch.length === 1 ? batch[0]!.frames : Buffer.concat(batch.map((b) => b.frames));
      let records = 0;
      for (const b of batch) records += b.records;
      try {
        await writeAll(this.activeHandle, frames);
        this.active.bytes += frames.length;
        this.active.records += records;
        this.queuedBytes -= frames.length;
        this.dirty = true;
        if (this.settings.fsync === 'ALWAYS') await this.sync();
      } catch (error) {
        this.queuedBytes -= frames.length;
        this.counters.acceptedRecords -= records;
        this.counters.refusedRecords += records;
        const reason = `writing to the spool segment ${this.active.path} failed: ${(error as Error).message}`;
        this.env.logger.error(`${this.label}: ${reason}; ${records} records refused`);
        await this.activeHandle.truncate(this.active.bytes).catch(() => {
          this.broken = `${reason}, and the segment could not be truncated to its last whole record`;
        });
        for (const b of batch) b.reject(new SpoolError('WRITE_FAILED', `${this.label}: ${reason}`));
        continue;
      }
      if (this.active.bytes >= this.settings.maxSegmentBytes) {
        this.active.sealed = true;
        for (const b of batch) b.resolve();
        this.wakeReaders();
        await this.rotate();
        continue;
      }
      for (const b of batch) b.resolve();
      this.wakeReaders();
    }
  }

  private async sync(): Promise<void> {
    this.dirty = false;
    await this.activeHandle.datasync();
    this.counters.fsyncs++;
  }

  private async rotate(): Promise<void> {
    const previous = this.activeHandle;
    if (this.settings.fsync !== 'NEVER') {
      await previous.datasync();
      this.counters.fsyncs++;
    }
    this.dirty = false;
    await previous.close();
    await this.beginSegment(this.active.id + 1);
  }

  private async beginSegment(id: number): Promise<void> {
    const file = segmentPath(this.settings.directory, id);
    this.activeHandle = await fs.open(file, 'wx');
    if (this.settings.fsync !== 'NEVER') await syncDirectory(this.settings.directory);
    this.active = {
      id,
      path: file,
      bytes: 0,
      records: 0,
      readRecords: 0,
      acknowledgedRecords: 0,
      sealed: false,
    };
    this.segments.push(this.active);
  }

  private async readHandleFor(segment: Segment): Promise<fs.FileHandle> {
    if (this.readHandle?.segmentId === segment.id) return this.readHandle.handle;
    if (this.readHandle !== undefined) await this.readHandle.handle.close();
    this.readHandle = undefined;
    const handle = await fs.open(segment.path, 'r');
    this.readHandle = { segmentId: segment.id, handle };
    return handle;
  }

  private async closeReadHandle(segmentId: number): Promise<void> {
    const current = this.readHandle;
    if (current?.segmentId !== segmentId) return;
    this.readHandle = undefined;
    await current.handle.close();
  }

  private wakeReaders(): void {
    const waiters = this.recordWaiters;
    this.recordWaiters = [];
    for (const wake of waiters) wake();
  }

  private logUnlinkFailure(segment: Segment, error: unknown): void {
    this.env.logger.error(
      `${this.label}: could not delete spool segment ${segment.path}: ${(error as Error).message}`,
    );
  }
}

async function readCursor(directory: string): Promise<SpoolPosition | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path.join(directory, CURSOR_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const match = /^(\d+) (\d+)\n?$/.exec(text);
  return match === null ? undefined : { segmentId: Number(match[1]), offset: Number(match[2]) };
}

async function readAt(handle: fs.FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

const EMPTY = Buffer.alloc(0);

async function writeAll(handle: fs.FileHandle, buffer: Buffer): Promise<void> {
  let written = 0;
  while (written < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, written, buffer.length - written);
    written += bytesWritten;
  }
}

/** Makes a new file's name durable (its directory entry), as fsync of the file alone does not. */
async function syncDirectory(directory: string): Promise<void> {
  const handle = await fs.open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
