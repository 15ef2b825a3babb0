/**
 * The proxy's admin endpoint: a small HTTP/1.1 server, apart from the listeners, for probes
 * and operators (`switchboard proxy --admin HOST:PORT`). Every answer is JSON.
 *
 * | route        | 200 when                          | body                                                    |
 * |--------------|-----------------------------------|---------------------------------------------------------|
 * | `GET /ready` | a configuration serves, not closing | `{"ready":true,"generation":N}` (503 `{"ready":false,…}`) |
 * | `GET /stats` | always                            | {@link ProxyAdminStats}                                 |
 *
 * HEAD is answered like GET without a body; other methods get 405, other paths 404.
 *
 * In one process it answers from the proxy itself; with `--workers N` the supervisor serves
 * it and asks each worker (proxy-workers.ts): `/ready` then also says how many workers
 * serve, and `/stats` lists each worker's and sums their counters.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { PolicyClientView } from './policy/policy-client';
import type { Proxy, ProxyStats } from './proxy';

/** What `GET /stats` answers. */
export interface ProxyAdminStats {
  readonly pid: number;
  /** Seconds since the process started. */
  readonly uptimeSeconds: number;
  /** The data path: generation, request and connection counters, listeners, clusters, access log. */
  readonly proxy: ProxyStats;
  /** The policy client's counters (checks, cache hits, quotas, reports sent and dropped); null without one. */
  readonly policy: PolicyClientView | null;
}

/** `/ready`'s answer. */
export interface ReadyView {
  readonly ready: boolean;
  readonly [field: string]: unknown;
}

/** What the endpoint answers from: the proxy in this process, or a supervisor's workers. */
export interface ProxyAdminSource {
  /** `/ready`'s body: 200 when `ready`, 503 otherwise. */
  ready(): ReadyView | Promise<ReadyView>;
  /** `/stats`'s body. */
  stats(): unknown;
}

/** Options of {@link createProxyAdminEndpoint}. */
export type ProxyAdminOptions = {
  /** `HOST:PORT`; port 0 picks a free port. */
  readonly address: string;
} & (
  | {
      readonly proxy: Proxy;
      /** The policy client the proxy uses as its hook, when it has one. */
      readonly policy?: { view(): PolicyClientView };
    }
  | { readonly source: ProxyAdminSource }
);

/** The admin view of a proxy in this process (and of a worker, for its supervisor). */
export function proxyAdminSource(proxy: Proxy, policy?: { view(): PolicyClientView }): ProxyAdminSource {
  return {
    ready() {
      const generation = proxy.generation;
      return generation === 0
        ? { ready: false, reason: 'configuration is loading', generation }
        : { ready: true, generation };
    },
    stats(): ProxyAdminStats {
      return {
        pid: process.pid,
        uptimeSeconds: Math.round(process.uptime()),
        proxy: proxy.stats(),
        policy: policy?.view() ?? null,
      };
    },
  };
}

export interface ProxyAdminEndpoint {
  /** Binds; resolves with where it listens. @throws Error when the address cannot be bound */
  start(): Promise<{ readonly address: string; readonly port: number }>;
  /** Stops answering; idempotent. */
  close(): Promise<void>;
}

export function createProxyAdminEndpoint(options: ProxyAdminOptions): ProxyAdminEndpoint {
  const colon = options.address.lastIndexOf(':');
  const host = options.address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(options.address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`admin address must be HOST:PORT, e.g. 127.0.0.1:15000, got "${options.address}"`);
  }
  let server: Server | undefined;
  let closing: Promise<void> | undefined;
  const source = 'source' in options ? options.source : proxyAdminSource(options.proxy, options.policy);

  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const send = (status: number, body: unknown): void => {
      const text = `${JSON.stringify(body, null, 2)}\n`;
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'only GET and HEAD' });
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/ready') {
      let ready: ReadyView;
      try {
        ready = await source.ready();
      } catch (error) {
        return send(503, { ready: false, reason: (error as Error).message });
      }
      if (closing !== undefined)
        return send(503, { ...ready, ready: false, reason: 'the proxy is stopping' });
      return send(ready.ready ? 200 : 503, ready);
    }
    if (path === '/stats') {
      try {
        return send(200, await source.stats());
      } catch (error) {
        return send(500, { error: (error as Error).message });
      }
    }
    return send(404, { error: `no ${path}; try /stats or /ready` });
  };

  return {
    start() {
      const listening = createServer((req, res) => void answer(req, res));
      server = listening;
      return new Promise((resolve, reject) => {
        listening.once('error', reject);
        listening.listen(port, host, () => {
          listening.off('error', reject);
          const bound = listening.address();
          const boundPort = typeof bound === 'object' && bound !== null ? bound.port : port;
          resolve({ address: `${host.includes(':') ? `[${host}]` : host}:${boundPort}`, port: boundPort });
        });
      });
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (server === undefined || !server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
