/**
 * Passive outlier detection: counts each endpoint's consecutive failures from the outcomes of
 * real attempts and ejects an endpoint whose streak reaches a threshold.
 *
 * - A 5xx response, a connect failure, a reset or a timeout counts toward `consecutive5xx`
 *   (Envoy maps local failures to 5xx the same way). 502, 503, 504 and the three local
 *   failures also count toward `consecutiveGatewayErrors`; another 5xx breaks only that
 *   streak. Any response below 500 ends both streaks.
 * - The n-th ejection in a row lasts `baseEjectionTimeMs × n`, at most `maxEjectionTimeMs`.
 *   The multiplier n decays by one for every `baseEjectionTimeMs` an endpoint spends back in
 *   service, so an endpoint that recovered for good is soon ejected briefly again.
 * - At most `maxEjectionPercent` of the cluster's endpoints are ejected at once, except that
 *   one endpoint may always be ejected when the percentage is above 0 (as Envoy long did, and
 *   gRPC does): with the default 10% a cluster of fewer than ten endpoints could otherwise
 *   never eject anything. 0 turns ejection off.
 * - Ejections end lazily: the cluster returns due endpoints on its next pick, by the injected
 *   clock, so no timer runs per ejection.
 */
import type { AttemptOutcome, OutlierDetectionConfig } from './contract';
import type { EndpointSet } from './endpoint-set';
import type { EndpointState } from './endpoint-state';

export class OutlierDetector {
  /** Ejections since the cluster started. */
  ejections = 0;
  /** Ejections refused because maxEjectionPercent was reached. */
  ejectionsRefused = 0;
  private readonly maxMultiplier: number;

  constructor(
    private readonly config: OutlierDetectionConfig,
    private readonly endpoints: EndpointSet,
    private readonly now: () => number,
  ) {
    // Beyond this the cap applies anyway; a bounded multiplier also decays back in bounded time.
    this.maxMultiplier = Math.ceil(config.maxEjectionTimeMs / config.baseEjectionTimeMs);
  }

  /** Counts how an attempt on `state` ended, and ejects it when a streak reaches its threshold. */
  record(state: EndpointState, outcome: AttemptOutcome): void {
    let gatewayError: boolean;
    if (outcome.kind === 'response') {
      const status = outcome.status;
      if (status < 500) {
        state.consecutive5xx = 0;
        state.consecutiveGatewayErrors = 0;
        return;
      }
      gatewayError = status === 502 || status === 503 || status === 504;
    } else {
      gatewayError = true;
    }
    state.consecutive5xx++;
    if (gatewayError) state.consecutiveGatewayErrors++;
    else state.consecutiveGatewayErrors = 0;

    const config = this.config;
    const tripped =
      (config.consecutive5xx > 0 && state.consecutive5xx >= config.consecutive5xx) ||
      (config.consecutiveGatewayErrors > 0 &&
        state.consecutiveGatewayErrors >= config.consecutiveGatewayErrors);
    if (tripped) this.eject(state);
  }

  private eject(state: EndpointState): void {
    const now = this.now();
    const endpoints = this.endpoints;
    endpoints.returnDue(now);
    // Attempts that were in flight when it was ejected finish later; they do not extend the ejection.
    if (state.ejectedUntil !== 0) return;
    const percent = this.config.maxEjectionPercent;
    const ejected = endpoints.ejectedCount;
    if (percent === 0 || (ejected > 0 && (ejected + 1) * 100 > percent * endpoints.states.length)) {
      this.ejectionsRefused++;
      // Start a new streak, so the next refusal comes after another full streak, not every failure.
      state.consecutive5xx = 0;
      state.consecutiveGatewayErrors = 0;
      return;
    }
    const base = this.config.baseEjectionTimeMs;
    let multiplier = state.ejectionMultiplier;
    if (state.returnedAt >= 0)
      multiplier = Math.max(0, multiplier - Math.floor((now - state.returnedAt) / base));
    multiplier = Math.min(multiplier + 1, this.maxMultiplier);
    state.ejectionMultiplier = multiplier;
    state.consecutive5xx = 0;
    state.consecutiveGatewayErrors = 0;
    this.ejections++;
    endpoints.eject(state, now + Math.min(base * multiplier, this.config.maxEjectionTimeMs));
  }
}
