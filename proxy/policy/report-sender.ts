/**
 * The proxy's Report batching: completed requests and TCP connection events queue here and
 * leave as delta-encoded Report batches — when `reportBatchEntries` are waiting, or
 * `reportBatchDelayMs` after the first — one batch in flight at a time, never blocking
 * traffic.
 *
 * Every batch carries the request metadata `x-switchboard-report-id` (128 random bits,
 * hex). A batch the server did not take is kept whole and sent first again, with the same
 * id and exactly the same records, so the server can give its records stable ids. While the
 * server does not take batches, records wait in a buffer of `reportBufferEntries`; beyond it
 * the oldest records not yet in a batch are dropped (a failed batch keeps its records unless
 * it alone exceeds the bound), and every drop is counted.
 */
import { randomBytes } from 'node:crypto';
import { encodeReportRequest, type AttributeBag } from '../../attributes';
import type { GrpcUnaryClient, UnaryResult } from './grpc-unary-client';
import type { PolicySettings } from './policy-settings';

const REPORT_PATH = '/istio.mixer.v1.Mixer/Report';
/** Request metadata of every Report batch: the same value when the same batch is sent again. */
export const REPORT_ID_HEADER = 'x-switchboard-report-id';

/** The sender's counters (part of the policy client's). */
export interface ReportCounters {
  reportsSent: number;
  reportBatchesSent: number;
  reportBatchesFailed: number;
  /** Records not reported: beyond the buffer while the server did not take Reports, or left at close. */
  reportsDropped: number;
}

/** A Report batch as sent: resent whole, with the same id, until the server takes it. */
interface ReportBatch {
  readonly bags: AttributeBag[];
  readonly id: string;
}

export class ReportSender {
  /** Records not yet in a batch: `pending[pendingHead…]`, oldest first. */
  private pending: AttributeBag[] = [];
  private pendingHead = 0;
  /** A batch the server did not take, sent again (first) with its id. */
  private retryBatch: ReportBatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** A send due at once (a full batch is waiting): on the next turn of the event loop. */
  private immediate: NodeJS.Immediate | undefined;
  private sending: Promise<void> | undefined;
  /** Set by close(): no more timers; close() sends what is left itself. */
  private closing = false;

  /**
   * @param target the settings and client of now (they change with the configuration);
   *   undefined while policy is off
   * @param counters updated as batches go
   * @param onAnswer every answer the server gave a batch (the client reads its generation)
   */
  constructor(
    private readonly target: () => { settings: PolicySettings; client: GrpcUnaryClient } | undefined,
    private readonly counters: ReportCounters,
    private readonly onAnswer: (result: UnaryResult) => void,
  ) {}

  /** Records waiting, a failed batch included. */
  get pendingCount(): number {
    return this.waiting + (this.retryBatch?.bags.length ?? 0);
  }

  /** Records not yet in a batch. */
  private get waiting(): number {
    return this.pending.length - this.pendingHead;
  }

  /** Queues one record; the bag is the sender's from now on. */
  queue(attributes: AttributeBag): void {
    const settings = this.target()?.settings;
    if (settings === undefined) return;
    this.pending.push(attributes);
    this.bound(settings);
    // A batch in flight sends what waits when it ends.
    if (this.sending !== undefined) return;
    if (this.waiting >= settings.reportBatchEntries) this.flushSoon(0);
    else this.flushSoon(settings.reportBatchDelayMs);
  }

  /**
   * Sends what is pending (batch after batch, while the server takes them); what it does not
   * take is counted as dropped. Idempotent; later records are not queued.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.cancelFlush();
    await this.sending;
    while (this.pendingCount > 0 && (await this.sendBatch())) {
      // One batch after the other until none is left or the server stops taking them.
    }
    this.cancelFlush();
    // What the server would not take by now is lost with the process: counted, not hidden.
    this.counters.reportsDropped += this.pendingCount;
    this.pending = [];
    this.pendingHead = 0;
    this.retryBatch = undefined;
  }

  /** Beyond the bound: the oldest records not yet in a batch go first, then a failed batch whole. */
  private bound(settings: PolicySettings): void {
    const held = this.retryBatch?.bags.length ?? 0;
    const overflow = this.waiting + held - settings.reportBufferEntries;
    if (overflow <= 0) return;
    const fromPending = Math.min(overflow, this.waiting);
    this.advance(fromPending);
    this.counters.reportsDropped += fromPending;
    if (overflow > fromPending && this.retryBatch !== undefined) {
      this.counters.reportsDropped += this.retryBatch.bags.length;
      this.retryBatch = undefined;
    }
  }

  /** Takes the `count` oldest waiting records off the queue, and returns them. */
  private advance(count: number): AttributeBag[] {
    const head = this.pendingHead;
    const taken = this.pending.slice(head, head + count);
    this.pendingHead = head + taken.length;
    // Compacted now and then, not on every take: a drop per request must not copy the queue.
    if (this.pendingHead >= 1024 && this.pendingHead * 2 >= this.pending.length) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    } else if (this.pendingHead === this.pending.length) {
      this.pending = [];
      this.pendingHead = 0;
    }
    return taken;
  }

  /**
   * Sends after `delayMs`, or on the next turn of the event loop when 0. A send already due
   * stays due: later records never push it back.
   */
  private flushSoon(delayMs: number): void {
    if (this.closing || this.immediate !== undefined) return;
    if (delayMs > 0) {
      if (this.timer !== undefined) return;
      this.timer = setTimeout(this.onFlush, delayMs);
      this.timer.unref();
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.immediate = setImmediate(this.onFlush);
    this.immediate.unref();
  }

  private cancelFlush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
  }

  private readonly onFlush = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    if (this.sending !== undefined) return;
    const sending = this.sendBatch().then(
      () => undefined,
      () => undefined,
    );
    this.sending = sending;
    void sending.then(() => {
      if (this.sending === sending) this.sending = undefined;
    });
  };

  /** Sends one batch (a failed one again first); false when the server did not take it. */
  private async sendBatch(): Promise<boolean> {
    const target = this.target();
    if (target === undefined) return true;
    const { settings, client } = target;
    let batch = this.retryBatch;
    this.retryBatch = undefined;
    if (batch === undefined) {
      if (this.waiting === 0) return true;
      batch = {
        bags: this.advance(settings.reportBatchEntries),
        id: randomBytes(16).toString('hex'),
      };
    }
    const result = await client.call(
      REPORT_PATH,
      encodeReportRequest(batch.bags),
      settings.checkTimeoutMs * 5,
      {
        [REPORT_ID_HEADER]: batch.id,
      },
    );
    if (result.code === 0) {
      this.onAnswer(result);
      this.counters.reportsSent += batch.bags.length;
      this.counters.reportBatchesSent++;
      if (this.waiting > 0)
        this.flushSoon(this.waiting >= settings.reportBatchEntries ? 0 : settings.reportBatchDelayMs);
      return true;
    }
    // Kept whole, with its id, for the next attempt, within the buffer's bound.
    this.counters.reportBatchesFailed++;
    this.retryBatch = batch;
    this.bound(settings);
    this.flushSoon(Math.max(settings.reportBatchDelayMs, 100));
    return false;
  }
}
