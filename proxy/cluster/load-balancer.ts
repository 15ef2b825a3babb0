/**
 * The load-balancing policies, one per file, and the explicit table that maps each policy
 * of the configuration to its balancer (a new policy is added to `LoadBalancingPolicy` and
 * here; the compiler insists on both).
 */
import type { LoadBalancingConfig, LoadBalancingPolicy } from './contract';
import type { EndpointPool } from './endpoint-pool';
import type { EndpointSet } from './endpoint-set';
import type { EndpointState } from './endpoint-state';
import { LeastRequestBalancer } from './least-request';
import { RandomBalancer } from './random-balancer';
import { RingHashBalancer } from './ring-hash';
import { RoundRobinBalancer } from './round-robin';

/** Chooses the endpoint of each attempt. Called per request: must not allocate. */
export interface LoadBalancer {
  /**
   * An endpoint of `pool` (never empty): never `avoid` unless it is the pool's only member.
   * `hashKey` is the request's RING_HASH key; other policies ignore it.
   */
  pick(pool: EndpointPool, hashKey: string | undefined, avoid: EndpointState | undefined): EndpointState;
}

/** What a balancer is built from: the cluster's endpoints and its (seedable) random source. */
export interface LoadBalancerContext {
  readonly endpoints: EndpointSet;
  readonly config: LoadBalancingConfig;
  /** Uniform in [0, 1). */
  readonly random: () => number;
}

const BALANCERS: Readonly<Record<LoadBalancingPolicy, (context: LoadBalancerContext) => LoadBalancer>> = {
  ROUND_ROBIN: () => new RoundRobinBalancer(),
  LEAST_REQUEST: (context) => new LeastRequestBalancer(context.random),
  RANDOM: (context) => new RandomBalancer(context.random),
  RING_HASH: (context) => new RingHashBalancer(context.endpoints, context.random),
};

export function createLoadBalancer(context: LoadBalancerContext): LoadBalancer {
  return BALANCERS[context.config.policy](context);
}
