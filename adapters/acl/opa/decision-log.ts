/**
 * The decision log: every decision a handler makes, one JSON object per line, appended to
 * a file through the stdio adapter's bounded write queue (no call waits for the disk).
 *
 * A record:
 *
 * ```json
 * {"time":"2025-01-02T03:04:05.678Z","handler":"authz.handler.istio-system",
 *  "instance":"authz.instance.istio-system","revision":"3f2a9c1b7e40","input":{…},
 *  "result":{"allow":false,"reason":"…"},"decision":"deny","code":7,"reason":"…",
 *  "dryRun":false,"evalMicros":12}
 * ```
 *
 * `decision` is `allow`, `deny`, or `error` (no decision: an evaluation error, a timeout, an
 * undefined or malformed answer; `error` then says why and `code` is what failClose
 * answered); `dryRun` marks decisions that were not enforced; `input` is left out when
 * `includeInput` is false. When the file cannot keep up and the queue is full, records
 * are dropped and counted (`dropped` in the handler's stats), never allowed to slow Checks.
 */
import type { AdapterEnv } from '../../contract';
import { FileOutput, WriteQueue, type WriteQueueStats } from '../../logging/stdio';

/** One decision, as the handler saw it. */
export interface DecisionRecord {
  readonly timeMs: number;
  readonly instance: string;
  readonly revision: string;
  readonly input: unknown;
  readonly result: unknown;
  readonly decision: 'allow' | 'deny' | 'error';
  readonly code: number;
  readonly reason: string;
  readonly error?: string;
  readonly dryRun: boolean;
  readonly evalMicros: number;
}

export interface DecisionLogStats extends WriteQueueStats {
  /** Records not written because the queue was full or the file broken. */
  readonly dropped: number;
}

const SETTINGS = {
  maxBufferedBytes: 1024 * 1024,
  maxPendingBytes: 16 * 1024 * 1024,
  maxWriteBytes: 64 * 1024,
  minRetryDelayMs: 100,
  maxRetryDelayMs: 5000,
};

export class DecisionLog {
  private dropped = 0;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly output: FileOutput,
    private readonly queue: WriteQueue,
    private readonly handlerName: string,
    private readonly includeInput: boolean,
    private readonly env: AdapterEnv,
  ) {}

  /**
   * Opens `file` for appending (its folder must exist).
   * @throws Error saying what is wrong with the path
   */
  static async open(file: string, includeInput: boolean, env: AdapterEnv): Promise<DecisionLog> {
    const label = `opa/${env.handlerName}: decision log`;
    const output = await FileOutput.open(file, undefined, {
      now: () => env.now(),
      logger: env.logger,
      label,
    });
    return new DecisionLog(
      output,
      new WriteQueue(output, SETTINGS, env, label),
      env.handlerName,
      includeInput,
      env,
    );
  }

  /** Queues one record; never waits, never throws. */
  write(record: DecisionRecord): void {
    if (this.closing !== undefined) {
      this.dropped++;
      return;
    }
    const line =
      JSON.stringify({
        time: new Date(record.timeMs).toISOString(),
        handler: this.handlerName,
        instance: record.instance,
        revision: record.revision,
        ...(this.includeInput ? { input: record.input } : {}),
        result: record.result ?? null,
        decision: record.decision,
        code: record.code,
        reason: record.reason,
        ...(record.error === undefined ? {} : { error: record.error }),
        dryRun: record.dryRun,
        evalMicros: record.evalMicros,
      }) + '\n';
    try {
      const waiting = this.queue.enqueue([line], Buffer.byteLength(line));
      // Held, not dropped: the queue writes it once there is room.
      waiting?.catch(() => {
        this.dropped++;
      });
    } catch {
      this.dropped++;
    }
  }

  stats(): DecisionLogStats {
    return { ...this.queue.stats(), dropped: this.dropped };
  }

  /** Writes everything queued, then closes the file. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.queue.drain();
      await this.output.close();
      const { failedRecords } = this.queue.stats();
      if (failedRecords > 0) {
        this.env.logger.error(
          `opa/${this.handlerName}: ${failedRecords} decisions could not be written to the decision log`,
        );
      }
    })();
    return this.closing;
  }
}
