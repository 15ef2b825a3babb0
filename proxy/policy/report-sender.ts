/**
 * The proxy's Report batching: completed requests and TCP connection events queue here and
 * leave as delta-encoded Report batches — when `reportBatchEntries` are waiting, or
 * `reportBatchDelayMs` after the first — one batch in flight at a time, never blocking
 * traffic.
 *
 * A record is encoded into the open batch as it arrives (delta-encoded against the record
 * before it), so waiting batches hold bytes, not attribute bags. As Istio's proxies did, a
 * record that lacks an attribute the record before it had cannot be delta-encoded: it closes
 * the open batch and starts the next one.
 *
 * Every batch carries the request metadata `x-switchboard-report-id` (128 random bits,
 * hex). A batch the server did not take is kept whole and sent first again, with the same
 * id and exactly the same bytes, so the server can give its records stable ids. While the
 * server does not take batches, they wait within a bound of `reportBufferEntries` records;
 * beyond it the oldest batch not in flight is dropped whole, and every dropped record is
 * counted.
 */
import { ReportRequestEncoder, type AttributeBag, type ReportSetWriter } from '../../attributes';
import { randomHex } from '../entropy-pool';
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

/** A closed Report batch: sent, and resent whole with the same id, until the server takes it. */
interface ReportBatch {
  readonly body: Uint8Array;
  readonly records: number;
  readonly id: string;
}

export class ReportSender {
  /** The batch records are being written into. */
  private open: ReportRequestEncoder | undefined;
  /** Closed batches, oldest first; the first is the one in flight, or the next to go. */
  private closed: ReportBatch[] = [];
  /** Records in `closed`. */
  private closedRecords = 0;
  private inFlight: ReportBatch | undefined;
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

  /** Records waiting, a failed batch and the one in flight included. */
  get pendingCount(): number {
    return this.closedRecords + (this.open?.count ?? 0);
  }

  /**
   * Queues one record: a bag, the sender's from now on (it must not change), or a set writer
   * prepared with it (written at once).
   * @throws when the record holds a value no attribute type can carry (counted as dropped)
   */
  queue(record: AttributeBag | ReportSetWriter): void {
    const settings = this.target()?.settings;
    if (settings === undefined) return;
    try {
      let open = (this.open ??= new ReportRequestEncoder());
      if (!open.add(record)) {
        this.closeOpenBatch();
        open = this.open = new ReportRequestEncoder();
        open.add(record);
      }
      if (open.count >= settings.reportBatchEntries) this.closeOpenBatch();
    } catch (error) {
      this.counters.reportsDropped++;
      throw error;
    }
    this.bound(settings);
    // A batch in flight sends what waits when it ends.
    if (this.sending !== undefined) return;
    this.flushSoon(this.closed.length > 0 ? 0 : settings.reportBatchDelayMs);
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
    this.open = undefined;
    this.closed = [];
    this.closedRecords = 0;
  }

  private closeOpenBatch(): void {
    const open = this.open;
    this.open = undefined;
    if (open === undefined || open.count === 0) return;
    this.closed.push({ body: open.finish(), records: open.count, id: randomHex(16) });
    this.closedRecords += open.count;
  }

  /** Beyond the bound: the oldest batches not in flight go, whole, counted. */
  private bound(settings: PolicySettings): void {
    while (this.pendingCount > settings.reportBufferEntries) {
      const at = this.closed[0] === this.inFlight && this.inFlight !== undefined ? 1 : 0;
      if (at >= this.closed.length) {
        if ((this.open?.count ?? 0) === 0) return;
        this.closeOpenBatch();
        continue;
      }
      const [dropped] = this.closed.splice(at, 1);
      this.closedRecords -= dropped!.records;
      this.counters.reportsDropped += dropped!.records;
    }
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
    if (this.closed.length === 0) this.closeOpenBatch();
    const batch = this.closed[0];
    if (batch === undefined) return true;
    this.inFlight = batch;
    let result: UnaryResult;
    try {
      result = await client.call(REPORT_PATH, batch.body, settings.checkTimeoutMs * 5, {
        [REPORT_ID_HEADER]: batch.id,
      });
    } finally {
      this.inFlight = undefined;
    }
    if (result.code === 0) {
      // Still first: bound() never drops the batch in flight.
      this.closed.shift();
      this.closedRecords -= batch.records;
      this.onAnswer(result);
      this.counters.reportsSent += batch.records;
      this.counters.reportBatchesSent++;
      if (this.pendingCount > 0) this.flushSoon(this.closed.length > 0 ? 0 : settings.reportBatchDelayMs);
      return true;
    }
    // Kept whole, with its id, for the next attempt, within the buffer's bound.
    this.counters.reportBatchesFailed++;
    this.bound(settings);
    this.flushSoon(Math.max(settings.reportBatchDelayMs, 100));
    return false;
  }
}
