/** RANDOM: an endpoint drawn with probability proportional to its weight. */
import type { EndpointPool } from './endpoint-pool';
import type { EndpointState } from './endpoint-state';
import type { LoadBalancer } from './load-balancer';

export class RandomBalancer implements LoadBalancer {
  constructor(private readonly random: () => number) {}

  pick(pool: EndpointPool, _hashKey: string | undefined, avoid: EndpointState | undefined): EndpointState {
    return pool.size === 1 ? pool.members[0]! : pool.draw(this.random(), avoid);
  }
}
