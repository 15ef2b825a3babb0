/**
 * The decision log: every decision a handler makes, to one of two places:
 * - a file (`decisionLog.path`): one JSON object per line, appended through the stdio
 *   adapter's bounded write queue (no call waits for the disk);
 * - a handler (`decisionLog.handler`): each decision an `opa-decision` log entry whose
 *   variables are the record's fields (input and result as JSON text; `instance` as
 *   `checkedInstance`), handed to that
 *   handler's handleLogEntry in batches off the Check path — into an export handler's
 *   durable spool, for instance (kafka, elasticsearch).
 *
 * A record in the file:
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
import * as path from 'node:path';
import { Timestamp, type AttributeValue } from '../../../attributes';
import type { LogEntryHandler, LogEntryInstance } from '../../../templates';
import type { AdapterEnv, TimerHandle } from '../../contract';
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

export interface FileDecisionLogStats extends WriteQueueStats {
  /** Records not written because the queue was full or the file broken. */
  readonly dropped: number;
}

export interface HandlerDecisionLogStats {
  readonly handler: string;
  /** Decisions the handler accepted. */
  readonly delivered: number;
  /** Decisions waiting (at most MAX_PENDING). */
  readonly pending: number;
  /** Decisions given up on: more than MAX_PENDING waiting, or still waiting at close. */
  readonly dropped: number;
  /** Batches the handler refused or that found no handler, each retried later. */
  readonly failedAttempts: number;
}

export type DecisionLogStats = FileDecisionLogStats | HandlerDecisionLogStats;

/** Where decisions go. */
export interface DecisionLog {
  /** Queues one record; never waits, never throws. */
  write(record: DecisionRecord): void;
  stats(): DecisionLogStats;
  /** Delivers what is queued (within a bound), then lets go. Idempotent. */
  close(): Promise<void>;
}

/** The decision log a handler's `decisionLog` parameters ask for. */
export function openDecisionLog(
  config: {
    readonly path?: string | undefined;
    readonly handler?: string | undefined;
    readonly includeInput: boolean;
  },
  baseDir: string,
  env: AdapterEnv,
): Promise<DecisionLog> | DecisionLog {
  if (config.handler !== undefined) return new HandlerDecisionLog(config.handler, config.includeInput, env);
  return FileDecisionLog.open(path.resolve(baseDir, config.path ?? ''), config.includeInput, env);
}

/** The record's fields, in the order the file writes them. */
function recordFields(
  record: DecisionRecord,
  handlerName: string,
  includeInput: boolean,
): Record<string, unknown> {
  return {
    time: new Date(record.timeMs).toISOString(),
    handler: handlerName,
    instance: record.instance,
    revision: record.revision,
    ...(includeInput ? { input: record.input } : {}),
    result: record.result ?? null,
    decision: record.decision,
    code: record.code,
    reason: record.reason,
    ...(record.error === undefined ? {} : { error: record.error }),
    dryRun: record.dryRun,
    evalMicros: record.evalMicros,
  };
}

const SETTINGS = {
  maxBufferedBytes: 1024 * 1024,
  maxPendingBytes: 16 * 1024 * 1024,
  maxWriteBytes: 64 * 1024,
  minRetryDelayMs: 100,
  maxRetryDelayMs: 5000,
};

export class FileDecisionLog implements DecisionLog {
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
  static async open(file: string, includeInput: boolean, env: AdapterEnv): Promise<FileDecisionLog> {
    const label = `opa/${env.handlerName}: decision log`;
    const output = await FileOutput.open(file, undefined, {
      now: () => env.now(),
      logger: env.logger,
      label,
    });
    return new FileDecisionLog(
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
    const line = JSON.stringify(recordFields(record, this.handlerName, this.includeInput)) + '\n';
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

  stats(): FileDecisionLogStats {
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

/** The most decisions waiting for the handler; beyond it, new ones are dropped and counted. */
export const MAX_PENDING = 10_000;
const BATCH = 500;
const FLUSH_DELAY_MS = 50;
const MIN_RETRY_DELAY_MS = 100;
const MAX_RETRY_DELAY_MS = 5_000;
/** How long close waits for the handler to take what is queued. */
const CLOSE_WAIT_MS = 5_000;

/**
 * Decisions to another handler, looked up by name at each delivery (so the handler a
 * reload rebuilt is the one used). A batch the handler refuses, or that finds no such
 * handler, stays queued and is offered again after a back-off; the first failure and the
 * recovery are logged.
 */
export class HandlerDecisionLog implements DecisionLog {
  private readonly target: string;
  private pending: LogEntryInstance[] = [];
  private sending = false;
  private timer: TimerHandle | undefined;
  private failures = 0;
  private closing: Promise<void> | undefined;
  private counters = { delivered: 0, dropped: 0, failedAttempts: 0 };
  private idleWaiters: (() => void)[] = [];

  constructor(
    handler: string,
    private readonly includeInput: boolean,
    private readonly env: AdapterEnv,
  ) {
    this.target = qualifiedHandlerName(handler, env.handlerName);
    // Named once now, so the server knows to close this handler before its target.
    env.findHandler(this.target);
  }

  write(record: DecisionRecord): void {
    if (this.closing !== undefined || this.pending.length >= MAX_PENDING) {
      if (this.counters.dropped++ === 0) {
        this.env.logger.warn(
          `opa/${this.env.handlerName}: decision log: ${MAX_PENDING} decisions wait for ${this.target}; ` +
            'dropping new ones (counted as dropped) until it takes them',
        );
      }
      return;
    }
    this.pending.push(
      decisionEntry(recordFields(record, this.env.handlerName, this.includeInput), record.timeMs),
    );
    if (this.pending.length >= BATCH) this.flushSoon(0);
    else this.flushSoon(FLUSH_DELAY_MS);
  }

  stats(): HandlerDecisionLogStats {
    return { handler: this.target, ...this.counters, pending: this.pending.length };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const deadline = Date.now() + CLOSE_WAIT_MS;
      while ((this.pending.length > 0 || this.sending) && Date.now() < deadline) {
        if (!this.sending) await this.send();
        else await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
        if (this.failures > 0) break;
      }
      this.timer?.cancel();
      if (this.pending.length > 0) {
        this.counters.dropped += this.pending.length;
        this.env.logger.error(
          `opa/${this.env.handlerName}: decision log: ${this.pending.length} decisions not taken by ${this.target} before close`,
        );
        this.pending = [];
      }
    })();
    return this.closing;
  }

  private flushSoon(delayMs: number): void {
    if (this.sending || this.closing !== undefined) return;
    if (this.timer !== undefined && delayMs > 0) return;
    this.timer?.cancel();
    this.timer = this.env.schedule(() => {
      this.timer = undefined;
      void this.send();
    }, delayMs);
  }

  private async send(): Promise<void> {
    if (this.sending || this.pending.length === 0) return;
    this.sending = true;
    const batch = this.pending.splice(0, BATCH);
    let failed: string | undefined;
    const handler = this.env.findHandler(this.target) as (Partial<LogEntryHandler> & object) | undefined;
    if (handler === undefined || typeof handler.handleLogEntry !== 'function') {
      failed =
        handler === undefined
          ? 'no handler of that name in the running configuration'
          : 'that handler does not take logentry instances';
    } else {
      try {
        await handler.handleLogEntry(batch, { signal: new AbortController().signal });
      } catch (error) {
        failed = (error as Error).message;
      }
    }
    this.sending = false;
    if (failed === undefined) {
      this.counters.delivered += batch.length;
      if (this.failures > 0) {
        this.env.logger.info(
          `opa/${this.env.handlerName}: decision log: ${this.target} takes decisions again`,
        );
      }
      this.failures = 0;
      if (this.pending.length > 0) this.flushSoon(0);
    } else {
      this.counters.failedAttempts++;
      if (this.failures++ === 0) {
        this.env.logger.warn(
          `opa/${this.env.handlerName}: decision log: ${this.target} did not take ${batch.length} decisions ` +
            `(${failed}); they wait and are offered again`,
        );
      }
      // Back at the front, in order; the bound applies to new decisions only.
      this.pending = batch.concat(this.pending);
      if (this.closing === undefined) {
        const delay = Math.min(MAX_RETRY_DELAY_MS, MIN_RETRY_DELAY_MS * 2 ** Math.min(this.failures - 1, 10));
        this.timer?.cancel();
        this.timer = this.env.schedule(() => {
          this.timer = undefined;
          void this.send();
        }, delay);
      }
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}

/** `audit` → `audit.handler.<namespace of the opa handler>`; a qualified name stays. */
export function qualifiedHandlerName(name: string, ownName: string): string {
  if (name.includes('.handler.')) return name;
  const namespace = ownName.slice(ownName.indexOf('.handler.') + '.handler.'.length);
  const dot = name.indexOf('.');
  return dot < 0 ? `${name}.handler.${namespace}` : `${name.slice(0, dot)}.handler.${name.slice(dot + 1)}`;
}

/**
 * A decision as a log entry: fields as variables (`instance`, the checked instance, as
 * `checkedInstance`, since log outputs use `instance` for the entry's own name), input and
 * result as JSON text.
 */
function decisionEntry(fields: Record<string, unknown>, timeMs: number): LogEntryInstance {
  const variables = new Map<string, AttributeValue>();
  for (const [field, value] of Object.entries(fields)) {
    if (field === 'time') continue;
    const name = field === 'instance' ? 'checkedInstance' : field;
    if (typeof value === 'string' || typeof value === 'boolean') variables.set(name, value);
    else if (typeof value === 'number') variables.set(name, BigInt(Math.round(value)));
    else variables.set(name, JSON.stringify(value) ?? 'null');
  }
  return {
    name: 'opa-decision',
    variables,
    timestamp: new Timestamp(Math.floor(timeMs / 1000), (timeMs % 1000) * 1e6),
    severity: fields['decision'] === 'allow' ? 'INFO' : 'WARNING',
    monitoredResourceType: '',
    monitoredResourceDimensions: new Map(),
  };
}
