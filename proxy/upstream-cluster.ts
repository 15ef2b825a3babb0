/**
 * A running cluster as the request path uses it: the cluster itself (endpoint picking,
 * breakers, outlier detection: proxy/cluster/), the connection pools to its endpoints, and
 * the counters of its retry budget. Kept across reloads while its configuration is unchanged,
 * so that pools, health and ejections survive.
 */
import {
  createCluster,
  type Cluster,
  type ClusterConfig,
  type ClusterEnvironment,
  type Endpoint,
} from './cluster';
import { Http1ConnectionPool } from './http1-connection-pool';
import { Http2SessionPool } from './http2-session-pool';
import type { RetryBudgetCounters } from './retry-policy';

export type EndpointPool = Http1ConnectionPool | Http2SessionPool;

export class UpstreamCluster {
  readonly name: string;
  readonly cluster: Cluster;
  /** Requests routed here and not finished, and retries in flight: the retry budget's inputs. */
  readonly budget: RetryBudgetCounters = { activeRequests: 0, activeRetries: 0 };
  private readonly pools = new Map<string, EndpointPool>();
  private closing: Promise<void> | undefined;

  constructor(
    readonly config: ClusterConfig,
    environment: ClusterEnvironment,
  ) {
    this.name = config.name;
    this.cluster = createCluster(config, environment);
  }

  /** The pool of connections to `endpoint`, made on first use. */
  poolFor(endpoint: Endpoint): EndpointPool {
    let pool = this.pools.get(endpoint.id);
    if (pool === undefined) {
      pool =
        this.config.protocol === 'http2'
          ? new Http2SessionPool(endpoint, this.cluster, this.config.connectTimeoutMs)
          : new Http1ConnectionPool(endpoint, this.cluster, this.config.connectTimeoutMs);
      this.pools.set(endpoint.id, pool);
    }
    return pool;
  }

  /** Open connections (HTTP/1.1) or sessions (HTTP/2) per endpoint, for stats. */
  connectionStats(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [id, pool] of this.pools) out[id] = pool.stats();
    return out;
  }

  /** Closes the pools (idle connections now, busy ones after their request) and the cluster. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const pool of this.pools.values()) pool.close();
      await this.cluster.close();
    })();
    return this.closing;
  }
}
