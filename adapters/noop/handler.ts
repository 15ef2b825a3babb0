/**
 * The noop handler: every check passes, every quota is granted in full, every report is
 * accepted and dropped. Validity is Mixer's noop's: 10^9 seconds and 10^9 uses, so a proxy
 * never needs to ask again.
 */
import type { AdapterEnv, Handler } from '../contract';
import type {
  ApiKeyHandler,
  AuthorizationHandler,
  CheckNothingHandler,
  CheckResult,
  EdgeHandler,
  ListEntryHandler,
  LogEntryHandler,
  MetricHandler,
  QuotaArgs,
  QuotaHandler,
  QuotaResult,
  ReportNothingHandler,
  TraceSpanHandler,
} from '../../templates';
import { OK_STATUS } from '../../templates';

/** 10^9 seconds, in milliseconds: Mixer's noop validity. */
export const NOOP_VALID_DURATION_MS = 1e12;
/** Mixer's noop use count. */
export const NOOP_VALID_USE_COUNT = 1e9;

const PASS: CheckResult = Object.freeze({
  status: OK_STATUS,
  validDurationMs: NOOP_VALID_DURATION_MS,
  validUseCount: NOOP_VALID_USE_COUNT,
});

class NoopHandler {
  private closed = false;

  constructor(private readonly handlerName: string) {}

  handleCheckNothing(): CheckResult {
    return this.pass();
  }

  handleListEntry(): CheckResult {
    return this.pass();
  }

  handleAuthorization(): CheckResult {
    return this.pass();
  }

  handleApiKey(): CheckResult {
    return this.pass();
  }

  handleQuota(_instance: unknown, args: QuotaArgs): QuotaResult {
    this.refuseIfClosed();
    return { status: OK_STATUS, grantedAmount: args.amount, validDurationMs: NOOP_VALID_DURATION_MS };
  }

  handleReportNothing(): void {
    this.refuseIfClosed();
  }

  handleLogEntry(): void {
    this.refuseIfClosed();
  }

  handleMetric(): void {
    this.refuseIfClosed();
  }

  handleTraceSpan(): void {
    this.refuseIfClosed();
  }

  handleEdge(): void {
    this.refuseIfClosed();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private pass(): CheckResult {
    this.refuseIfClosed();
    return PASS;
  }

  private refuseIfClosed(): void {
    if (this.closed) throw new Error(`noop ${this.handlerName}: the handler is closed`);
  }
}

/** A noop handler; it has no configuration. */
export function createNoopHandler(_config: unknown, env: AdapterEnv) {
  return new NoopHandler(env.handlerName) satisfies CheckNothingHandler &
    ListEntryHandler &
    AuthorizationHandler &
    ApiKeyHandler &
    QuotaHandler &
    ReportNothingHandler &
    LogEntryHandler &
    MetricHandler &
    TraceSpanHandler &
    EdgeHandler &
    Handler;
}
