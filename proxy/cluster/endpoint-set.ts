/**
 * A cluster's endpoints and which of them may be picked. An endpoint is available when active
 * health checking has not marked it unhealthy and outlier detection has not ejected it. When
 * none is available the cluster is in panic mode and balances across all of them (see
 * README.md): sending to endpoints believed bad beats refusing every request outright, and is
 * what Envoy does.
 */
import type { Endpoint, EndpointConfig } from './contract';
import { EndpointPool } from './endpoint-pool';
import { EndpointState } from './endpoint-state';

export class EndpointSet {
  readonly states: readonly EndpointState[];
  /** Every endpoint: what panic mode balances across. */
  readonly all: EndpointPool;
  /** The available endpoints; replaced whenever availability changes. */
  available: EndpointPool;
  /** Endpoints ejected now (as of the last `returnDue`). */
  ejectedCount = 0;
  /** The earliest end of a current ejection (environment clock, ms); Infinity when none. */
  nextReturnAt = Infinity;
  /** Picks made in panic mode. */
  panicPicks = 0;
  private readonly byId = new Map<string, EndpointState>();
  private readonly random: () => number;

  constructor(configs: readonly EndpointConfig[], random: () => number) {
    this.random = random;
    this.states = Object.freeze(configs.map((config, i) => new EndpointState(config, i)));
    for (const state of this.states) this.byId.set(state.id, state);
    this.all = new EndpointPool(this.states, this.states.length, random());
    this.available = this.all;
    this.rebuild();
  }

  /**
   * The state of `endpoint`, found by id so that an endpoint picked from the previous
   * configuration's cluster (a retry across a reload) still resolves; undefined when the
   * cluster has no such endpoint.
   */
  find(endpoint: Endpoint): EndpointState | undefined {
    return this.byId.get(endpoint.id);
  }

  /** The pool the next pick draws from: the available endpoints, or all of them in panic mode. */
  poolForPick(): EndpointPool {
    if (this.available.size > 0) return this.available;
    this.panicPicks++;
    return this.all;
  }

  /** Active health checking changed its verdict on `state`. */
  setHealthy(state: EndpointState, healthy: boolean): void {
    if (state.healthy === healthy) return;
    state.healthy = healthy;
    this.rebuild();
  }

  /** Takes `state` out of balancing until `until` (environment clock, ms). */
  eject(state: EndpointState, until: number): void {
    if (state.ejectedUntil === 0) this.ejectedCount++;
    state.ejectedUntil = until;
    if (until < this.nextReturnAt) this.nextReturnAt = until;
    this.rebuild();
  }

  /**
   * Returns every endpoint whose ejection has ended by `now` to balancing. Cheap when nothing
   * is due (one comparison), so the cluster calls it before each pick while any endpoint is
   * ejected: expiry is checked lazily instead of by timers.
   */
  returnDue(now: number): void {
    if (now < this.nextReturnAt) return;
    let next = Infinity;
    for (const state of this.states) {
      const until = state.ejectedUntil;
      if (until === 0) continue;
      if (until <= now) {
        state.ejectedUntil = 0;
        // The scheduled end, not `now`: the return happened then, whenever it is noticed.
        state.returnedAt = until;
        // A fresh start: errors counted while it was ejected do not carry over.
        state.consecutive5xx = 0;
        state.consecutiveGatewayErrors = 0;
        this.ejectedCount--;
      } else if (until < next) {
        next = until;
      }
    }
    this.nextReturnAt = next;
    this.rebuild();
  }

  private rebuild(): void {
    const members: EndpointState[] = [];
    for (const state of this.states) {
      state.available = state.healthy && state.ejectedUntil === 0;
      if (state.available) members.push(state);
    }
    this.available =
      members.length === this.states.length
        ? this.all
        : new EndpointPool(Object.freeze(members), this.states.length, this.random());
  }
}
