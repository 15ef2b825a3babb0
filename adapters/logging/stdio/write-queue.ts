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
 *
 * Failures:
 * - A chunk the output fails to write is kept and written again after minRetryDelayMs, then
 *   twice as long each time up to maxRetryDelayMs (a full disk may get room again). The buffer fills
 *   meanwhile, so callers wait and then are refused as above: backpressure, not loss. The
 *   first failure and the recovery are logged.
 * - When the output is broken for good (a stream that failed or was destroyed: Node never
 *   writes to it again), or a write fails while the handler closes, the queue gives up:
 *   everything buffered is lost, counted (`failedRecords`) and logged in one line, and
 *   waiting calls are refused with OUTPUT_BROKEN.
 */
import type { AdapterLogger, TimerHandle } from '../../contract';
import { StdioError } from './errors';
import type { LineOutput } from './stream-output';

/** Bounds of the queue, in bytes of UTF-8 output, and how it retries a failed write. */
export interface WriteQueueSettings {
  /** Above this many bytes accepted and not yet written, calls wait for room. */
  readonly maxBufferedBytes: number;
  /** Calls that would take buffered plus waiting bytes past this are refused. */
  readonly maxPendingBytes: number;
  /** The largest chunk handed to the output at once (a longer line is a chunk by itself). */
  readonly maxWriteBytes: number;
  /** The wait before the first retry of a failed write; it doubles with each failure. */
  readonly minRetryDelayMs: number;
  /** The longest wait between retries. */
  readonly maxRetryDelayMs: number;
}

/** What the queue needs from its handler's environment. */
export interface WriteQueueEnvironment {
  readonly logger: AdapterLogger;
  /** A timer the environment owns (AdapterEnv.schedule); may throw once the environment is disposed. */
  schedule(callback: () => void, delayMs: number): TimerHandle;
}

/** What the queue did, as counters. */
export interface WriteQueueStats {
  /** Records taken into the buffer: written, being written, or waiting to be. */
  readonly acceptedRecords: number;
  /** Records the output took. */
  readonly writtenRecords: number;
  /** Accepted records that could not be written: the output broke, or failed while closing (logged). */
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

interface Chunk {
  readonly bytes: Buffer;
  readonly records: number;
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
  /** Set when the environment refuses timers: a failed write is not retried. */
  private cannotRetry = false;
  /** Ends the pump's wait before a retry at once (close wants the last attempt now). */
  private wake: (() => void) | undefined;
  private readonly logger: AdapterLogger;

  constructor(
    private readonly output: LineOutput,
    private readonly settings: WriteQueueSettings,
    private readonly environment: WriteQueueEnvironment,
    /** Prefix for messages: `stdio/accesslog.handler.istio-system`. */
    private readonly label: string,
  ) {
    this.logger = environment.logger;
  }

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
    if (held + bytes > this.settings.maxPendingBytes || signal?.aborted === true) {
      throw this.refuse(
        lines.length,
        signal?.aborted === true
          ? new StdioError('DEADLINE', this.deadlineMessage(lines.length))
          : new StdioError(
              'OVERLOADED',
              `${this.label}: ${this.output.description} is not keeping up: ${held} bytes are held ` +
                `and this call's ${lines.length} records (${bytes} bytes) would pass the limit of ` +
                `${this.settings.maxPendingBytes}; they were not accepted. Wait for each call before making the next.`,
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
    this.wake?.();
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
    return this.bufferedBytes === 0 || this.bufferedBytes + bytes <= this.settings.maxBufferedBytes;
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
        await this.write(this.takeChunk());
        this.admitWaiters();
      }
    } finally {
      this.pump = undefined;
    }
  }

  /** Writes one chunk, retrying while the output may recover; gives up when it cannot. */
  private async write(chunk: Chunk): Promise<void> {
    let delayMs = this.settings.minRetryDelayMs;
    for (let attempt = 1; ; attempt++) {
      const broken = this.output.brokenReason();
      if (broken !== undefined) return this.giveUp(chunk, broken);
      try {
        await this.output.write(chunk.bytes);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        if (this.output.brokenReason() !== undefined || this.draining || this.cannotRetry) {
          return this.giveUp(chunk, reason);
        }
        if (attempt === 1) {
          this.logger.warn(
            `${this.label}: writing to ${this.output.description} failed (${reason}); retrying, ` +
              `keeping the records: calls wait for room meanwhile, and are refused past the limit`,
          );
        }
        await this.sleep(delayMs);
        delayMs = Math.min(delayMs * 2, this.settings.maxRetryDelayMs);
        continue;
      }
      this.writtenRecords += chunk.records;
      this.bufferedBytes -= chunk.bytes.length;
      if (attempt > 1) {
        this.logger.warn(
          `${this.label}: writing to ${this.output.description} again after ${attempt - 1} failed ` +
            'attempts; no records were lost',
        );
      }
      return;
    }
  }

  /**
   * The output cannot take `chunk` (it is broken for good, or the handler is closing):
   * it and everything else buffered are lost, and calls waiting for room are refused.
   */
  private giveUp(chunk: Chunk, reason: string): void {
    const records = chunk.records + (this.lines.length - this.head);
    this.failedRecords += records;
    this.lines = [];
    this.head = 0;
    this.bufferedBytes = 0;
    const cause = `cannot write to ${this.output.description} (${reason})`;
    this.logger.error(`${this.label}: ${cause}; ${records} accepted records were lost`);
    for (const waiter of this.waiters.splice(0)) {
      this.waitingBytes -= waiter.bytes;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      this.refusedRecords += waiter.lines.length;
      waiter.reject(
        new StdioError(
          'OUTPUT_BROKEN',
          `${this.label}: ${cause}; the call's ${waiter.lines.length} records were not accepted`,
        ),
      );
    }
  }

  /** Waits `delayMs` on a timer the environment owns, or less if close wakes it. */
  private sleep(delayMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: TimerHandle | undefined;
      const done = (): void => {
        this.wake = undefined;
        timer?.cancel();
        resolve();
      };
      this.wake = done;
      try {
        timer = this.environment.schedule(done, delayMs);
      } catch {
        // The environment is disposed: one more attempt, then give up.
        this.cannotRetry = true;
        done();
      }
    });
  }

  /** Takes whole lines up to maxWriteBytes (at least one line) off the front of the buffer. */
  private takeChunk(): Chunk {
    const start = this.head;
    let end = start;
    let size = 0;
    // Sizes in UTF-16 units here: a cheap stand-in for bytes, only to cut chunks.
    while (
      end < this.lines.length &&
      (end === start || size + this.lines[end]!.length <= this.settings.maxWriteBytes)
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
