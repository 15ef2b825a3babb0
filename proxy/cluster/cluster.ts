/**
 * A running cluster: its endpoints with their health and ejections, the load balancer, the
 * circuit breakers, and the health checker it owns. `pick`, `tryAcquire`, `release`,
 * `attemptStarted` and `attemptFinished` run on every request: they read precomputed state,
 * allocate nothing and create no closures.
 */
import { CircuitBreakers } from './circuit-breakers';
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
import { EndpointSet } from './endpoint-set';
import type { EndpointState } from './endpoint-state';
import { createHashKeyReader, type HashKeyReader } from './hash-key';
import { HealthChecker } from './health-checker';
import { createLoadBalancer, type LoadBalancer } from './load-balancer';
import { OutlierDetector } from './outlier-detector';

class UpstreamCluster implements Cluster {
  readonly name: string;
  private readonly endpoints: EndpointSet;
  private readonly balancer: LoadBalancer;
  private readonly breakers: CircuitBreakers;
  private readonly outliers: OutlierDetector | undefined;
  private readonly healthChecker: HealthChecker | undefined;
  private readonly readHashKey: HashKeyReader | undefined;
  private readonly now: () => number;
  private closing: Promise<void> | undefined;

  constructor(
    readonly config: ClusterConfig,
    environment: ClusterEnvironment,
  ) {
    this.name = config.name;
    this.now = environment.now;
    this.endpoints = new EndpointSet(config.endpoints, environment.random);
    this.balancer = createLoadBalancer({
      endpoints: this.endpoints,
      config: config.loadBalancing,
      random: environment.random,
    });
    this.breakers = new CircuitBreakers(config.circuitBreakers);
    const hashOn = config.loadBalancing.hashOn;
    this.readHashKey =
      config.loadBalancing.policy === 'RING_HASH' && hashOn !== undefined
        ? createHashKeyReader(hashOn)
        : undefined;
    this.outliers =
      config.outlierDetection === undefined
        ? undefined
        : new OutlierDetector(config.outlierDetection, this.endpoints, environment.now);
    if (config.healthCheck !== undefined) {
      const endpoints = this.endpoints;
      this.healthChecker = new HealthChecker(
        endpoints.states,
        config.healthCheck,
        config.protocol,
        (state, healthy) => endpoints.setHealthy(state, healthy),
      );
      this.healthChecker.start();
    }
  }

  /**
   * Never undefined: with no endpoint available the cluster is in panic mode and picks among
   * all of them. Still answers after `close()`, from the last known health, so that requests
   * in flight across a reload can retry.
   */
  pick(context?: PickContext): Endpoint | undefined {
    const endpoints = this.endpoints;
    if (endpoints.ejectedCount > 0) endpoints.returnDue(this.now());
    const pool = endpoints.poolForPick();
    let avoid: EndpointState | undefined;
    let hashKey: string | undefined;
    if (context !== undefined) {
      hashKey = context.hashKey;
      if (context.avoid !== undefined) avoid = endpoints.find(context.avoid);
    }
    return this.balancer.pick(pool, hashKey, avoid).endpoint;
  }

  hashKey(source: HashSource): string | undefined {
    return this.readHashKey === undefined ? undefined : this.readHashKey(source);
  }

  tryAcquire(resource: BreakerResource): boolean {
    return this.breakers.tryAcquire(resource);
  }

  release(resource: BreakerResource): void {
    this.breakers.release(resource);
  }

  attemptStarted(endpoint: Endpoint): void {
    const state = this.endpoints.find(endpoint);
    if (state !== undefined) state.activeRequests++;
  }

  attemptFinished(endpoint: Endpoint, outcome: AttemptOutcome): void {
    const state = this.endpoints.find(endpoint);
    if (state === undefined) return;
    if (state.activeRequests > 0) state.activeRequests--;
    if (this.outliers !== undefined) this.outliers.record(state, outcome);
  }

  attemptAbandoned(endpoint: Endpoint): void {
    const state = this.endpoints.find(endpoint);
    if (state !== undefined && state.activeRequests > 0) state.activeRequests--;
  }

  responseFailed(endpoint: Endpoint, outcome: AttemptOutcome): void {
    const state = this.endpoints.find(endpoint);
    if (state !== undefined && this.outliers !== undefined) this.outliers.record(state, outcome);
  }

  stats(): ClusterStats {
    const endpoints = this.endpoints;
    if (endpoints.ejectedCount > 0) endpoints.returnDue(this.now());
    return {
      healthyEndpoints: endpoints.available.size,
      ejectedEndpoints: endpoints.ejectedCount,
      breakerTrips: this.breakers.tripCounts(),
      ejections: this.outliers?.ejections ?? 0,
      ejectionsRefused: this.outliers?.ejectionsRefused ?? 0,
      panicPicks: endpoints.panicPicks,
      activeRequests: endpoints.states.reduce((sum, state) => sum + state.activeRequests, 0),
    };
  }

  close(): Promise<void> {
    if (this.closing === undefined) {
      this.healthChecker?.close();
      this.closing = Promise.resolve();
    }
    return this.closing;
  }
}

/**
 * Starts a cluster from a parsed configuration: builds its balancer and, when configured,
 * starts health checking at once (the first check of every endpoint is sent now). The
 * environment defaults to `Math.random` and `Date.now`; tests inject a seeded random source
 * and a clock they move. The caller owns the cluster and must `close()` it.
 */
export function createCluster(config: ClusterConfig, environment?: Partial<ClusterEnvironment>): Cluster {
  return new UpstreamCluster(config, {
    random: environment?.random ?? Math.random,
    now: environment?.now ?? Date.now,
  });
}
