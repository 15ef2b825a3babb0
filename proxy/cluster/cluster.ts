/**
 * A running cluster. (A first version: round robin over every endpoint, breakers counting
 * slots; the cluster work adds the other balancers, health checks and outlier detection.)
 */
import type {
  AttemptOutcome,
  BreakerResource,
  Cluster,
  ClusterConfig,
  ClusterEnvironment,
  ClusterStats,
  Endpoint,
  HashSource,
  PickContext,
} from './contract';

const LIMIT_OF: Record<BreakerResource, keyof ClusterConfig['circuitBreakers']> = {
  connections: 'maxConnections',
  pendingRequests: 'maxPendingRequests',
  requests: 'maxRequests',
  retries: 'maxRetries',
};

export function createCluster(config: ClusterConfig, _environment?: Partial<ClusterEnvironment>): Cluster {
  const endpoints: Endpoint[] = config.endpoints.map((e) =>
    Object.freeze({ ...e, id: e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}` }),
  );
  let next = 0;
  const held: Record<BreakerResource, number> = {
    connections: 0,
    pendingRequests: 0,
    requests: 0,
    retries: 0,
  };
  const trips: Record<BreakerResource, number> = {
    connections: 0,
    pendingRequests: 0,
    requests: 0,
    retries: 0,
  };
  return {
    name: config.name,
    config,
    pick(context?: PickContext): Endpoint | undefined {
      for (let i = 0; i < endpoints.length; i++) {
        const endpoint = endpoints[next++ % endpoints.length] as Endpoint;
        if (endpoint !== context?.avoid || endpoints.length === 1) return endpoint;
      }
      return undefined;
    },
    hashKey(_source: HashSource): string | undefined {
      return undefined;
    },
    tryAcquire(resource: BreakerResource): boolean {
      if (held[resource] >= config.circuitBreakers[LIMIT_OF[resource]]) {
        trips[resource]++;
        return false;
      }
      held[resource]++;
      return true;
    },
    release(resource: BreakerResource): void {
      held[resource] = Math.max(0, held[resource] - 1);
    },
    attemptStarted(_endpoint: Endpoint): void {},
    attemptFinished(_endpoint: Endpoint, _outcome: AttemptOutcome): void {},
    stats(): ClusterStats {
      return {
        healthyEndpoints: endpoints.length,
        ejectedEndpoints: 0,
        breakerTrips: { ...trips },
        ejections: 0,
      };
    },
    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}
