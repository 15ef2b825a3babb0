/** Fault injection: each request draws whether it is delayed and whether it is aborted. */
import type { FaultConfig } from './config-model';

/** What happens to one request: a delay (ms, 0 for none), then perhaps an abort with a status. */
export interface FaultDecision {
  readonly delayMs: number;
  /** 0 when the request is not aborted. */
  readonly abortStatus: number;
}

export const NO_FAULT: FaultDecision = Object.freeze({ delayMs: 0, abortStatus: 0 });

/** Draws the faults of one request: independently, a delay with its percentage, an abort with its own. */
export function decideFault(fault: FaultConfig, random: () => number): FaultDecision {
  const delayMs = fault.delay !== undefined && random() * 100 < fault.delay.percent ? fault.delay.fixedMs : 0;
  const abortStatus =
    fault.abort !== undefined && random() * 100 < fault.abort.percent ? fault.abort.status : 0;
  return delayMs === 0 && abortStatus === 0 ? NO_FAULT : { delayMs, abortStatus };
}
