/**
 * The denier's handler: every check answers the configured status; every quota is granted
 * nothing. Mixer's denier answered quotas with an empty result (status OK, amount 0,
 * validity 0), which proxies read as an exhausted quota; this one does the same.
 */
import type { AdapterEnv, Handler } from '../../contract';
import type {
  CheckNothingHandler,
  CheckResult,
  ListEntryHandler,
  QuotaHandler,
  QuotaResult,
} from '../../../templates';
import { OK_STATUS } from '../../../templates';
import type { DenierConfig } from './config';

/** What a quota gets from the denier: nothing, valid for no time (Mixer's empty QuotaResult). */
export const NOTHING_GRANTED: QuotaResult = Object.freeze({
  status: OK_STATUS,
  grantedAmount: 0,
  validDurationMs: 0,
});

class DenierHandler {
  private readonly result: CheckResult;
  private closed = false;

  constructor(
    config: DenierConfig,
    private readonly handlerName: string,
  ) {
    this.result = Object.freeze({
      status: Object.freeze({ code: config.status.code, message: config.status.message }),
      validDurationMs: config.validDuration,
      validUseCount: config.validUseCount,
    });
  }

  handleCheckNothing(): CheckResult {
    this.refuseIfClosed();
    return this.result;
  }

  handleListEntry(): CheckResult {
    this.refuseIfClosed();
    return this.result;
  }

  handleQuota(): QuotaResult {
    this.refuseIfClosed();
    return NOTHING_GRANTED;
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private refuseIfClosed(): void {
    if (this.closed) throw new Error(`denier ${this.handlerName}: the handler is closed`);
  }
}

/** A denier handler for a validated configuration. */
export function createDenierHandler(config: DenierConfig, env: AdapterEnv) {
  return new DenierHandler(config, env.handlerName) satisfies CheckNothingHandler &
    ListEntryHandler &
    QuotaHandler &
    Handler;
}
