/**
 * Circuit breakers: a counter per resource (connections, pending requests, requests, retries)
 * against its limit. A slot is taken before the request path uses the resource and given back
 * when it is done; a refusal is a trip, counted, and the request path answers 503 naming the
 * breaker. The counters live on the cluster, so every route to it shares them.
 */
import type { BreakerResource, CircuitBreakerConfig } from './contract';

type Counts = Record<BreakerResource, number>;

export class CircuitBreakers {
  // Plain objects of one shape, so the per-request lookups stay monomorphic.
  private readonly limits: Readonly<Counts>;
  private readonly held: Counts = { connections: 0, pendingRequests: 0, requests: 0, retries: 0 };
  private readonly trips: Counts = { connections: 0, pendingRequests: 0, requests: 0, retries: 0 };

  constructor(config: CircuitBreakerConfig) {
    this.limits = {
      connections: config.maxConnections,
      pendingRequests: config.maxPendingRequests,
      requests: config.maxRequests,
      retries: config.maxRetries,
    };
  }

  tryAcquire(resource: BreakerResource): boolean {
    if (this.held[resource] >= this.limits[resource]) {
      this.trips[resource]++;
      return false;
    }
    this.held[resource]++;
    return true;
  }

  /** Gives a slot back; a release without an acquire is ignored rather than freeing a slot nobody took. */
  release(resource: BreakerResource): void {
    if (this.held[resource] > 0) this.held[resource]--;
  }

  /** Refusals since the cluster started, per resource. */
  tripCounts(): Readonly<Counts> {
    return { ...this.trips };
  }
}
