/**
 * The bounded buffer between the handler and its output.
 *
 * Lines are accepted whole, a call's lines together and in call order, and written in that
 * order by one background pump that hands the output chunks of whole lines, one at a time.
 *
 * Backpressure:
 * - A call is accepted at once while its lines fit under `maxBufferedBytes` (bytes accepted
 *   and not yet written), or when nothing is buffered (so one large call still goes).
 * - Otherwise it waits, first come first served, and its promise resolves once its lines
 *   fit. Its records are held, not dropped; close() writes them too.
 * - A caller that does not wait could still make that queue of waiting calls grow without
 *   bound, so a call that would take everything held (buffered plus waiting) past
 *   `maxPendingBytes` is refused at once with StdioError OVERLOADED, and so is a call whose
 *   deadline passes while it waits (DEADLINE). A refused call's records are not accepted:
 *   they are counted (`refusedRecords`) and the caller gets the error; the first refusal of
 *   an episode and the episode's total are logged.
 * - A chunk the output fails to write is logged with the number of records it held and
 *   counted (`failedRecords`); the records after it are still written.
 */
import type { AdapterLogger } from '../../contract';
import { StdioError } from './errors';
import type { LineOutput } from './stream-output';

/** Bounds of the queue, in bytes of UTF-8 output. */
export interface WriteQueueLimits {
  /** Above this many bytes accepted and not yet written, calls wait for room. */
  readonly maxBufferedBytes: number;
  /** Calls that would take buffered plus waiting bytes past this are refused. */
  readonly maxPendingBytes: number;
  /** The largest chunk handed to the output at once (a longer line is a chunk by itself). */
  readonly maxWriteBytes: number;
}

/** What the queue did, as counters. */
export interface WriteQueueStats {
  /** Records taken into the buffer: written, being written, or waiting to be. */
  readonly acceptedRecords: number;
  /** Records the output took. */
  readonly writtenRecords: number;
  /** Accepted records whose write failed (each failure is logged). */
  readonly failedRecords: number;
  /** Records of calls refused (overloaded, or their deadline passed while waiting); not accepted. */
  readonly refusedRecords: number;
  /** Bytes accepted and not yet written. */
  readonly bufferedBytes: number;
  /** Bytes of calls waiting for room. */
  readonly waitingBytes: number;
  /** The most bytes ever buffered at once. */
  readonly peakBufferedBytes: number;
  /** The most bytes ever held at once, buffered plus waiting. */
  readonly peakPendingBytes: number;
}

interface Waiter {
  readonly lines: readonly string[];
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

export class WriteQueue {
  private lines: string[] = [];
  /** Index of the first line not yet taken by the pump. */
  private head = 0;
  private readonly waiters: Waiter[] = [];
  private bufferedBytes = 0;
  private waitingBytes = 0;
  private pump: Promise<void> | undefined;
  private acceptedRecords = 0;
  private writtenRecords = 0;
  private failedRecords = 0;
  private refusedRecords = 0;
  private peakBufferedBytes = 0;
  private peakPendingBytes = 0;
  /** Records refused since the last call that was not refused; > 0 means an overload episode. */
  private refusedInEpisode = 0;
  /** Once set, every call is accepted at once: the queue is being drained for close. */
  private draining = false;

  constructor(
    private readonly output: LineOutput,
    private readonly limits: WriteQueueLimits,
    private readonly logger: AdapterLogger,
    /** Prefix for messages: `stdio/accesslog.handler.istio-system`. */
    private readonly label: string,
  ) {}

  /**
   * Takes one call's lines (each ending in a newline), `bytes` their UTF-8 size.
   * Returns undefined when they were accepted at once, or a promise that resolves when
   * they are accepted after waiting for room (rejects with StdioError DEADLINE if `signal`
   * aborts first).
   * @throws StdioError OVERLOADED when they would take the bytes held past maxPendingBytes
   */
  enqueue(lines: readonly string[], bytes: number, signal?: AbortSignal): Promise<void> | undefined {
    if (this.draining || (this.waiters.length === 0 && this.fits(bytes))) {
      this.endEpisode();
      this.accept(lines, bytes);
      return undefined;
    }
    const held = this.bufferedBytes + this.waitingBytes;
    if (held + bytes > this.limits.maxPendingBytes || signal?.aborted === true) {
      throw this.refuse(
        lines.length,
        signal?.aborted === true
          ? new StdioError('DEADLINE', this.deadlineMessage(lines.length))
          : new StdioError(
              'OVERLOADED',
              `${this.label}: ${this.output.description} is not keeping up: ${held} bytes are held ` +
                `and this call's ${lines.length} records (${bytes} bytes) would pass the limit of ` +
                `${this.limits.maxPendingBytes}; they were not accepted. Wait for each call before making the next.`,
            ),
      );
    }
    this.endEpisode();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        lines,
        bytes,
        resolve,
        reject,
        signal,
        onAbort: () => this.abandon(waiter),
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.waitingBytes += bytes;
      this.notePeaks();
    });
  }

  /**
   * Accepts every waiting call whatever the room, refuses none from now on, and resolves
   * once everything accepted has been written or has failed. Never rejects.
   */
  async drain(): Promise<void> {
    this.draining = true;
    while (this.waiters.length > 0) this.admit(this.waiters.shift()!);
    while (this.pump !== undefined) await this.pump;
  }

  stats(): WriteQueueStats {
    return {
      acceptedRecords: this.acceptedRecords,
      writtenRecords: this.writtenRecords,
      failedRecords: this.failedRecords,
      refusedRecords: this.refusedRecords,
      bufferedBytes: this.bufferedBytes,
      waitingBytes: this.waitingBytes,
      peakBufferedBytes: this.peakBufferedBytes,
      peakPendingBytes: this.peakPendingBytes,
    };
  }

  private fits(bytes: number): boolean {
    return this.bufferedBytes === 0 || this.bufferedBytes + bytes <= this.limits.maxBufferedBytes;
  }

  private accept(lines: readonly string[], bytes: number): void {
    for (const line of lines) this.lines.push(line);
    this.bufferedBytes += bytes;
    this.acceptedRecords += lines.length;
    this.notePeaks();
    this.pump ??= this.run();
  }

  private admit(waiter: Waiter): void {
    this.waitingBytes -= waiter.bytes;
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    this.accept(waiter.lines, waiter.bytes);
    waiter.resolve();
  }

  /** Admits waiting calls, in order, while the first fits. */
  private admitWaiters(): void {
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.bytes)) this.admit(this.waiters.shift()!);
  }

  /** A waiting call whose deadline passed: it leaves the queue, not accepted. */
  private abandon(waiter: Waiter): void {
    const index = this.waiters.indexOf(waiter);
    if (index === -1) return;
    this.waiters.splice(index, 1);
    this.waitingBytes -= waiter.bytes;
    this.refusedRecords += waiter.lines.length;
    waiter.reject(new StdioError('DEADLINE', this.deadlineMessage(waiter.lines.length)));
    // The calls behind it may fit now.
    this.admitWaiters();
  }

  private refuse(records: number, error: StdioError): StdioError {
    this.refusedRecords += records;
    if (error.code === 'OVERLOADED') {
      if (this.refusedInEpisode === 0) this.logger.warn(error.message);
      this.refusedInEpisode += records;
    }
    return error;
  }

  private endEpisode(): void {
    if (this.refusedInEpisode === 0) return;
    this.logger.warn(
      `${this.label}: accepting records again; ${this.refusedInEpisode} records were refused ` +
        `while ${this.output.description} was not keeping up`,
    );
    this.refusedInEpisode = 0;
  }

  private deadlineMessage(records: number): string {
    return (
      `${this.label}: the call's deadline passed while it waited for room to write to ` +
      `${this.output.description}; its ${records} records were not accepted`
    );
  }

  private notePeaks(): void {
    if (this.bufferedBytes > this.peakBufferedBytes) this.peakBufferedBytes = this.bufferedBytes;
    const pending = this.bufferedBytes + this.waitingBytes;
    if (pending > this.peakPendingBytes) this.peakPendingBytes = pending;
  }

  /** The pump: writes chunks until nothing is buffered. Never rejects. */
  private async run(): Promise<void> {
    // Let the calls of this turn of the event loop join the first chunk.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (this.head < this.lines.length) {
        const chunk = this.takeChunk();
        const records = chunk.records;
        try {
          await this.output.write(chunk.bytes);
          this.writtenRecords += records;
        } catch (error) {
          this.failedRecords += records;
          this.logger.error(
            `${this.label}: writing to ${this.output.description} failed, ${records} records lost: ` +
              `${error instanceof Error ? error.message : String(error)}`,
          );
        }
        this.bufferedBytes -= chunk.bytes.length;
        this.admitWaiters();
      }
    } finally {
      this.pump = undefined;
    }
  }

  /** Takes whole lines up to maxWriteBytes (at least one line) off the front of the buffer. */
  private takeChunk(): { bytes: Buffer; records: number } {
    const start = this.head;
    let end = start;
    let size = 0;
    // Sizes in UTF-16 units here: a cheap stand-in for bytes, only to cut chunks.
    while (
      end < this.lines.length &&
      (end === start || size + this.lines[end]!.length <= this.limits.maxWriteBytes)
    ) {
      size += this.lines[end]!.length;
      end++;
    }
    const text = end - start === 1 ? this.lines[start]! : this.lines.slice(start, end).join('');
    this.head = end;
    if (this.head === this.lines.length) {
      this.lines = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.lines.length) {
      this.lines = this.lines.slice(this.head);
      this.head = 0;
    }
    return { bytes: Buffer.from(text, 'utf8'), records: end - start };
  }
}
