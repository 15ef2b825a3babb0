/**
 * LEAST_REQUEST: the power of two choices. Two endpoints are drawn by weight and the one with
 * fewer active requests per unit of weight wins; a tie keeps the first draw. An idle cluster
 * is therefore balanced exactly by weight, and under load the active requests of each endpoint
 * tend to its share of the weight. (Draws are with replacement, as Envoy's are.)
 */
import type { EndpointPool } from './endpoint-pool';
import type { EndpointState } from './endpoint-state';
import type { LoadBalancer } from './load-balancer';

export class LeastRequestBalancer implements LoadBalancer {
  constructor(private readonly random: () => number) {}

  pick(pool: EndpointPool, _hashKey: string | undefined, avoid: EndpointState | undefined): EndpointState {
    if (pool.size === 1) return pool.members[0]!;
    const first = pool.draw(this.random(), avoid);
    const second = pool.draw(this.random(), avoid);
    // second.active / second.weight < first.active / first.weight, in integers.
    return second.activeRequests * first.weight < first.activeRequests * second.weight ? second : first;
  }
}
