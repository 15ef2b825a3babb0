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

/** Options of {@link createProxyAdminEndpoint}. */
export interface ProxyAdminOptions {
  /** `HOST:PORT`; port 0 picks a free port. */
  readonly address: string;
  readonly proxy: Proxy;
  /** The policy client the proxy uses as its hook, when it has one. */
  readonly policy?: { view(): PolicyClientView };
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

  const answer = (req: IncomingMessage, res: ServerResponse): void => {
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
      const generation = options.proxy.generation;
      if (closing !== undefined)
        return send(503, { ready: false, reason: 'the proxy is stopping', generation });
      if (generation === 0)
        return send(503, { ready: false, reason: 'configuration is loading', generation });
      return send(200, { ready: true, generation });
    }
    if (path === '/stats') {
      const stats: ProxyAdminStats = {
        pid: process.pid,
        uptimeSeconds: Math.round(process.uptime()),
        proxy: options.proxy.stats(),
        policy: options.policy?.view() ?? null,
      };
      return send(200, stats);
    }
    return send(404, { error: `no ${path}; try /stats or /ready` });
  };

  return {
    start() {
      const listening = createServer(answer);
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
