/**
 * The contract between the proxy's request path and its upstream clusters: what a cluster's
 * configuration is once validated, and what the request path asks of a running cluster
 * (pick an endpoint, hold a circuit-breaker slot, say how an attempt ended). Load balancing,
 * health checking, outlier detection and circuit breaking live behind it, in this folder.
 */

/** One problem of a proxy configuration: where (`clusters[1].endpoints[0].port`) and what, with the fix. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

/** A static upstream endpoint. */
export interface EndpointConfig {
  /** Host name or IP address (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
  /** Relative share of traffic, a whole number ≥ 1. Default 1. */
  readonly weight: number;
}

/** Where a consistent hash takes its key from. */
export type HashKeySource =
  { readonly header: string } | { readonly cookie: string } | { readonly sourceIp: true };

export type LoadBalancingPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH';

export interface LoadBalancingConfig {
  /** Default ROUND_ROBIN. */
  readonly policy: LoadBalancingPolicy;
  /** Required for RING_HASH, refused for the others. */
  readonly hashOn?: HashKeySource;
}

/** Active health checking: an HTTP GET of `http.path`, or a TCP connect. */
export interface HealthCheckConfig {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Failed checks in a row that mark a healthy endpoint unhealthy. */
  readonly unhealthyThreshold: number;
  /** Passed checks in a row that mark an unhealthy endpoint healthy again. */
  readonly healthyThreshold: number;
  /** Present for HTTP checks; absent means a TCP connect check. */
  readonly http?: { readonly path: string; readonly expectedStatuses: readonly number[] };
}

/** Passive outlier detection (Envoy's model, simplified). */
export interface OutlierDetectionConfig {
  /** 5xx answers in a row that eject an endpoint; 0 turns this detector off. */
  readonly consecutive5xx: number;
  /** Gateway errors (502, 503, 504, connect failure, reset, timeout) in a row that eject; 0 turns it off. */
  readonly consecutiveGatewayErrors: number;
  /** First ejection time; the n-th ejection of the same endpoint lasts n times this. */
  readonly baseEjectionTimeMs: number;
  /** Upper bound of any ejection time. */
  readonly maxEjectionTimeMs: number;
  /** At most this share (0–100) of the cluster's endpoints is ejected at once. */
  readonly maxEjectionPercent: number;
}

/** Circuit-breaker limits; each is a whole number ≥ 1. */
export interface CircuitBreakerConfig {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
}

/** A cluster's configuration after validation, defaults applied, frozen. */
export interface ClusterConfig {
  readonly name: string;
  /** Protocol spoken to the endpoints: `http1`, or `http2` (prior knowledge, as gRPC needs). */
  readonly protocol: 'http1' | 'http2';
  readonly endpoints: readonly EndpointConfig[];
  readonly loadBalancing: LoadBalancingConfig;
  /** Time allowed to open a connection to an endpoint. Default 5000. */
  readonly connectTimeoutMs: number;
  readonly healthCheck?: HealthCheckConfig;
  readonly outlierDetection?: OutlierDetectionConfig;
  readonly circuitBreakers: CircuitBreakerConfig;
}

/** A running endpoint, as the request path sees it. */
export interface Endpoint {
  /** `host:port` (IPv6 in brackets); unique in its cluster. */
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
}

/** What a pick may use: the hash key of the request (for RING_HASH), endpoints to avoid (a retry). */
export interface PickContext {
  readonly hashKey?: string | undefined;
  readonly avoid?: Endpoint | undefined;
}

/** The request facts a hash key may come from. */
export interface HashSource {
  /** Lower-case header names, as Node gives them. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly sourceIp: string;
}

/** Which circuit breaker a slot is held on. */
export type BreakerResource = 'connections' | 'pendingRequests' | 'requests' | 'retries';

/** How one upstream attempt ended, for outlier detection and least-request balancing. */
export type AttemptOutcome =
  | { readonly kind: 'response'; readonly status: number }
  | { readonly kind: 'connectFailure' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'timeout' };

/** Counters a cluster keeps, for the admin endpoint and tests. */
export interface ClusterStats {
  /** Endpoints that may be picked now: not marked unhealthy by health checks, not ejected. */
  readonly healthyEndpoints: number;
  /** Endpoints ejected by outlier detection now. */
  readonly ejectedEndpoints: number;
  /** Trips per breaker: how many times `tryAcquire` answered false. */
  readonly breakerTrips: Readonly<Record<BreakerResource, number>>;
  /** Ejections since the cluster started. */
  readonly ejections: number;
  /**
   * Added by the cluster work (optional, so other implementations need not keep it): outliers
   * left in service since the cluster started because `maxEjectionPercent` was reached.
   */
  readonly ejectionsRefused?: number;
  /**
   * Added by the cluster work (optional): picks made in panic mode, with no endpoint
   * available, across all endpoints regardless of health (see proxy/cluster/README.md).
   */
  readonly panicPicks?: number;
  /** Added by the cluster work (optional): attempts under way now, across all endpoints. */
  readonly activeRequests?: number;
}

/** A running cluster. */
export interface Cluster {
  readonly name: string;
  readonly config: ClusterConfig;
  /**
   * An endpoint for the next attempt, skipping unhealthy and ejected ones (and
   * `context.avoid` when another is available); undefined when none is available.
   */
  pick(context?: PickContext): Endpoint | undefined;
  /** The RING_HASH key of a request from the cluster's `hashOn`; undefined for other policies or when absent. */
  hashKey(source: HashSource): string | undefined;
  /** Takes one slot of a breaker; false means the breaker tripped (answer 503, name it). */
  tryAcquire(resource: BreakerResource): boolean;
  /** Gives back a slot taken by a successful `tryAcquire`. */
  release(resource: BreakerResource): void;
  /** An attempt on `endpoint` starts (least-request counts it). */
  attemptStarted(endpoint: Endpoint): void;
  /** The attempt on `endpoint` ended so (outlier detection, least-request). */
  attemptFinished(endpoint: Endpoint, outcome: AttemptOutcome): void;
  /**
   * The attempt on `endpoint` was given up by the proxy's side before an outcome (the client
   * left, its body went over the limit): least-request stops counting it; outlier detection
   * hears nothing, as the endpoint did nothing wrong.
   */
  attemptAbandoned(endpoint: Endpoint): void;
  /**
   * The response of an attempt that finished with its head (`attemptFinished`) failed while
   * its body streamed: outlier detection counts that too; least-request counted it done.
   */
  responseFailed(endpoint: Endpoint, outcome: AttemptOutcome): void;
  stats(): ClusterStats;
  /** Stops health checks and timers. Idempotent. */
  close(): Promise<void>;
}

/** What a cluster may use from its surroundings; tests inject seeded randomness and a clock. */
export interface ClusterEnvironment {
  /** Uniform in [0, 1). Default Math.random. */
  readonly random: () => number;
  /** Milliseconds. Default Date.now. */
  readonly now: () => number;
}
