/**
 * The sender: one loop that reads batches from a spool, hands each to the sink, and
 * acknowledges it once the sink has it all, so the spool deletes what was delivered.
 *
 * When records arrive after the sender was idle, it lingers `lingerMs` before reading, so
 * that a trickle of records leaves as one batch rather than one each; under load the spool
 * fills the next batch while one is in flight, and nothing lingers.
 *
 * A batch the sink fails is offered again, whole, after minRetryDelayMs, then twice as long
 * each time up to maxRetryDelayMs, for as long as it takes: records are never given up on.
 * The first failure of an outage and the recovery are logged. Delivery is at least once: a
 * batch the sink took but whose acknowledgement was lost (a crash between the two, or a sink
 * that failed after storing part of it) is sent again, so sinks deduplicate by the record's
 * own id where they can (the elasticsearch adapter does).
 */
import type { AdapterLogger, TimerHandle } from '../../contract';
import type { Spool, SpoolBatch } from './spool';

/** Where the sender delivers. */
export interface SpoolSink {
  /** For messages: `kafka topic audit at 127.0.0.1:9092`. */
  readonly description: string;
  /**
   * Delivers the records, in order. Resolves once the sink has acknowledged every one;
   * rejects (with the reason) to have the whole batch offered again later. `signal` is
   * aborted when the sender closes: a sink waiting to retry inside a delivery stops then.
   */
  deliver(records: readonly Buffer[], signal: AbortSignal): Promise<void>;
}

export interface SpoolSenderSettings {
  /** The most records handed to the sink at once. */
  readonly maxBatchRecords: number;
  /** The most bytes handed to the sink at once (a larger record goes alone). */
  readonly maxBatchBytes: number;
  /** The wait before offering a failed batch again; doubles with each failure. */
  readonly minRetryDelayMs: number;
  /** The longest wait between offers. */
  readonly maxRetryDelayMs: number;
  /** How long to wait for more records once some arrive while idle; default 0 (none). */
  readonly lingerMs?: number;
}

/** What the sender needs from its handler's environment (a subset of AdapterEnv). */
export interface SpoolSenderEnvironment {
  readonly logger: AdapterLogger;
  schedule(callback: () => void, delayMs: number): TimerHandle;
}

export interface SpoolSenderStats {
  /** Records the sink acknowledged (a record sent twice counts twice). */
  readonly deliveredRecords: number;
  readonly deliveredBatches: number;
  /** Failed offers of a batch. */
  readonly failedAttempts: number;
}

export class SpoolSender {
  private running: Promise<void> | undefined;
  private stopping = false;
  private wakeRetry: (() => void) | undefined;
  private idleWaiters: (() => void)[] = [];
  private counters = { deliveredRecords: 0, deliveredBatches: 0, failedAttempts: 0 };
  private inFlight: SpoolBatch | undefined;
  private stop!: () => void;
  private readonly aborter = new AbortController();
  private readonly stopped = new Promise<void>((resolve) => (this.stop = resolve));

  constructor(
    private readonly spool: Spool,
    private readonly sink: SpoolSink,
    private readonly settings: SpoolSenderSettings,
    private readonly env: SpoolSenderEnvironment,
    private readonly label: string,
  ) {}

  /** Starts the loop (once). */
  start(): void {
    this.running ??= this.loop();
  }

  /** Resolves once every record written to the spool so far is delivered (for tests and flushes). */
  idle(): Promise<void> {
    if (!this.spool.hasUnread() && this.inFlight === undefined) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stats(): SpoolSenderStats {
    return { ...this.counters };
  }

  /**
   * Stops after the batch in flight (its retry wait cut short); what is not delivered stays
   * in the spool for the next start. Idempotent.
   */
  async close(): Promise<void> {
    this.stopping = true;
    this.stop();
    this.aborter.abort();
    this.wakeRetry?.();
    await this.running;
    this.wakeIdle();
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      let batch: SpoolBatch | undefined;
      try {
        batch = await this.spool.read(this.settings.maxBatchRecords, this.settings.maxBatchBytes);
      } catch (error) {
        this.env.logger.error(`${this.label}: reading the spool failed: ${(error as Error).message}`);
        await this.pause(this.settings.maxRetryDelayMs);
        continue;
      }
      if (batch === undefined) {
        this.wakeIdle();
        await Promise.race([this.spool.waitForRecords(), this.stopped]);
        const linger = this.settings.lingerMs ?? 0;
        if (linger > 0) await this.pause(linger);
        continue;
      }
      this.inFlight = batch;
      while (!this.stopping) {
        try {
          await this.sink.deliver(batch.records, this.aborter.signal);
        } catch (error) {
          this.counters.failedAttempts++;
          if (failures++ === 0) {
            this.env.logger.warn(
              `${this.label}: delivering to ${this.sink.description} failed (${(error as Error).message}); ` +
                'the records stay in the spool and are sent again',
            );
          }
          await this.pause(
            Math.min(
              this.settings.maxRetryDelayMs,
              this.settings.minRetryDelayMs * 2 ** Math.min(failures - 1, 20),
            ),
          );
          continue;
        }
        if (failures > 0) {
          this.env.logger.info(
            `${this.label}: delivering to ${this.sink.description} again after ${failures} failures`,
          );
          failures = 0;
        }
        this.counters.deliveredRecords += batch.records.length;
        this.counters.deliveredBatches++;
        try {
          await this.spool.acknowledge(batch);
        } catch (error) {
          // The records were delivered; failing to note it only means they are sent again after a restart.
          this.env.logger.error(
            `${this.label}: acknowledging in the spool failed: ${(error as Error).message}`,
          );
        }
        break;
      }
      this.inFlight = undefined;
    }
  }

  private pause(delayMs: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.env.schedule(() => {
        this.wakeRetry = undefined;
        resolve();
      }, delayMs);
      this.wakeRetry = () => {
        timer.cancel();
        this.wakeRetry = undefined;
        resolve();
      };
    });
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
