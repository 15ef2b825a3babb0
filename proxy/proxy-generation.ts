/**
 * One generation of configuration, serving traffic: the validated configuration, its
 * route tables compiled, its running clusters, its access log. A request or connection
 * holds the generation it started on until it ends, so a reload never changes the rules
 * under a request in flight; a retired generation's leftovers (clusters no longer
 * configured, an access log no longer used) are closed once nothing holds it.
 */
import type { AccessLog } from './access-log';
import type { HttpListenerConfig, ProxyConfig, RouteTable } from './config-model';
import type { ProxyEnvironment } from './environment';
import { CompiledRouteTable } from './route-table';
import type { TrafficHook } from './traffic-hook';
import type { ProxyReason } from './traffic-facts';
import type { UpstreamCluster } from './upstream-cluster';

/** Where the proxy writes what an operator should see. */
export interface ProxyLogger {
  /** A problem worth a line: a refused reload, a failed bind, a hook that threw. */
  error(message: string): void;
  /** Progress an operator may want: a reload applied. */
  info(message: string): void;
}

/** Counters of one proxy process since it started. */
export interface ProxyCounters {
  httpRequests: number;
  tcpConnections: number;
  /** Retries made (attempts after the first), stale-connection replays excluded. */
  retries: number;
  /** Local answers and cut exchanges, by reason. */
  reasons: Partial<Record<ProxyReason, number>>;
  /**
   * Requests a server answered itself before any exchange: a malformed head (400, 501, 505)
   * or one over the listener's limits (431, or 413 for an announced body).
   */
  refusedRequests: number;
}

/** What every generation shares: the environment, the hook, the logger, the counters. */
export interface ProxyServices {
  readonly environment: ProxyEnvironment;
  readonly hook: TrafficHook;
  readonly logger: ProxyLogger;
  readonly counters: ProxyCounters;
}

export class ProxyGeneration {
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly tables = new Map<string, CompiledRouteTable>();

  constructor(
    readonly number: number,
    readonly config: ProxyConfig,
    readonly clusters: ReadonlyMap<string, UpstreamCluster>,
    readonly accessLog: AccessLog | undefined,
  ) {
    const compiled = new Map<RouteTable, CompiledRouteTable>();
    for (const listener of config.listeners) {
      if (listener.protocol !== 'http') continue;
      let table = compiled.get(listener.routeTable);
      if (table === undefined) {
        table = new CompiledRouteTable(listener.routeTable);
        compiled.set(listener.routeTable, table);
      }
      this.tables.set(listener.name, table);
    }
  }

  /** The compiled route table of an HTTP listener of this generation. */
  routeTableFor(listener: HttpListenerConfig): CompiledRouteTable {
    return this.tables.get(listener.name)!;
  }

  /** A request or connection starts on this generation; pair with {@link release}. */
  acquire(): this {
    this.inFlight++;
    return this;
  }

  release(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  get active(): number {
    return this.inFlight;
  }

  /** Resolves once nothing holds this generation. */
  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
