/**
 * Active health checking of a cluster's endpoints. Each endpoint is checked in its own loop:
 * a probe, then `intervalMs` after its verdict the next one, so there is never more than one
 * check in flight per endpoint however slow the endpoint is (a check that outlasts the
 * interval delays the next one instead of overlapping it).
 *
 * Endpoints start healthy: a proxy that starts (or reloads) serves at once instead of
 * refusing traffic until the first round of checks is in, and an endpoint that is down is
 * taken out after `unhealthyThreshold` failed checks in a row. An unhealthy endpoint returns
 * after `healthyThreshold` passed checks in a row. The first checks start when the checker
 * does; `close()` stops every loop and cancels the probes in flight.
 */
import type { ClusterConfig, HealthCheckConfig } from './contract';
import type { EndpointState } from './endpoint-state';
import { startProbe, type HealthProbe } from './health-probe';

/** One endpoint's checking loop. */
class CheckedEndpoint {
  passesInARow = 0;
  failuresInARow = 0;
  timer: NodeJS.Timeout | undefined;
  probe: HealthProbe | undefined;

  constructor(readonly state: EndpointState) {}
}

export class HealthChecker {
  private readonly endpoints: readonly CheckedEndpoint[];
  private closed = false;

  /**
   * @param onVerdict called when an endpoint's health changes: after `unhealthyThreshold`
   *   failures in a row for a healthy endpoint, `healthyThreshold` passes for an unhealthy one
   */
  constructor(
    states: readonly EndpointState[],
    private readonly check: HealthCheckConfig,
    private readonly protocol: ClusterConfig['protocol'],
    private readonly onVerdict: (state: EndpointState, healthy: boolean) => void,
  ) {
    this.endpoints = states.map((state) => new CheckedEndpoint(state));
    this.runCheck = this.runCheck.bind(this);
  }

  /** Starts the first check of every endpoint. */
  start(): void {
    for (const endpoint of this.endpoints) this.runCheck(endpoint);
  }

  /** Stops every loop and cancels the checks in flight; no verdict follows. Idempotent. */
  close(): void {
    this.closed = true;
    for (const endpoint of this.endpoints) {
      clearTimeout(endpoint.timer);
      endpoint.timer = undefined;
      endpoint.probe?.cancel();
      endpoint.probe = undefined;
    }
  }

  private runCheck(endpoint: CheckedEndpoint): void {
    endpoint.timer = undefined;
    if (this.closed) return;
    endpoint.probe = startProbe(endpoint.state.endpoint, this.check, this.protocol, (passed) =>
      this.onProbeDone(endpoint, passed),
    );
  }

  private onProbeDone(endpoint: CheckedEndpoint, passed: boolean): void {
    endpoint.probe = undefined;
    if (this.closed) return;
    const state = endpoint.state;
    if (passed) {
      endpoint.failuresInARow = 0;
      endpoint.passesInARow++;
      if (!state.healthy && endpoint.passesInARow >= this.check.healthyThreshold) this.onVerdict(state, true);
    } else {
      endpoint.passesInARow = 0;
      endpoint.failuresInARow++;
      if (state.healthy && endpoint.failuresInARow >= this.check.unhealthyThreshold)
        this.onVerdict(state, false);
    }
    endpoint.timer = setTimeout(this.runCheck, this.check.intervalMs, endpoint);
    // The listeners keep the proxy alive; checks alone should not keep a finished process running.
    endpoint.timer.unref();
  }
}
