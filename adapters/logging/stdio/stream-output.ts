/** Where the write queue hands its chunks: a stream (stdout, stderr, one given in tests) or a file. */
import type { Writable } from 'node:stream';

/** A destination for chunks of whole lines. The queue never has two writes in flight. */
export interface LineOutput {
  /** Where it writes, for messages: `stdout`, `/var/log/access.log`. */
  readonly description: string;
  /** Resolves once the destination has taken the whole chunk; rejects on an I/O error. */
  write(chunk: Buffer): Promise<void>;
  /** Why it can never be written again, or undefined while it can. */
  brokenReason(): string | undefined;
  /** Releases what the output holds, once every write has settled. */
  close(): Promise<void>;
}

/**
 * A Writable the handler does not own (process.stdout, or one given in tests): it is
 * never ended. Each write resolves when the stream's callback says the chunk was handed
 * on, so at most one chunk waits inside the stream, whatever its high-water mark.
 */
export class StreamOutput implements LineOutput {
  private failure: Error | undefined;
  private pending: { reject: (error: Error) => void } | undefined;

  constructor(
    private readonly stream: Writable,
    readonly description: string,
  ) {
    // Without a listener a stream error (EPIPE on a closed stdout) would crash the process.
    // Every stdout handler listens to the one process.stdout: raise its listener limit
    // by one (and lower it on close) so that a dozen handlers are not taken for a leak.
    adjustMaxListeners(stream, +1);
    stream.on('error', this.onError);
    stream.on('close', this.onClose);
  }

  write(chunk: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const pending = { reject };
      this.pending = pending;
      this.stream.write(chunk, (error) => {
        if (this.pending === pending) this.pending = undefined;
        if (error) reject(error);
        else resolve();
      });
    });
  }

  /** A stream that failed once never writes again in Node: later writes fail, or never call back. */
  brokenReason(): string | undefined {
    const failure = this.failure ?? this.stream.errored ?? undefined;
    if (failure !== undefined) return failure.message;
    if (this.stream.destroyed) return 'the stream was destroyed';
    if (this.stream.writableEnded) return 'the stream was ended';
    return undefined;
  }

  async close(): Promise<void> {
    this.stream.off('error', this.onError);
    this.stream.off('close', this.onClose);
    adjustMaxListeners(this.stream, -1);
  }

  // A stream destroyed in the middle of a write does not call that write's callback;
  // settling it here keeps the queue (and close) from waiting forever.
  private readonly onError = (error: Error): void => {
    this.failure ??= error;
    this.settlePending(error);
  };

  private readonly onClose = (): void => {
    this.settlePending(new Error('the stream was closed before the write completed'));
  };

  private settlePending(error: Error): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
  }
}

function adjustMaxListeners(stream: Writable, delta: number): void {
  const limit = stream.getMaxListeners();
  // 0 means no limit.
  if (limit !== 0 && limit !== Infinity) stream.setMaxListeners(Math.max(limit + delta, 1));
}
