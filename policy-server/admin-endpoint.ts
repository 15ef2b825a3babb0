/**
 * The admin endpoint: a small HTTP/1.1 server for probes and operators, apart from the
 * gRPC port so that a probe never competes with proxies' calls. Every answer is JSON.
 *
 * | route          | 200 when                                 | body                                      |
 * |----------------|------------------------------------------|-------------------------------------------|
 * | `GET /healthz` | the process is up and not draining       | `{"status":"SERVING"}` (503 NOT_SERVING)  |
 * | `GET /readyz`  | a configuration serves, not draining     | `{"ready":true,"generation":N}` (503 …)   |
 * | `GET /config`  | a configuration serves                   | {@link AdminConfigView}                   |
 * | `GET /stats`   | always                                   | {@link AdminStatsView}                    |
 *
 * `/healthz` is liveness: it answers SERVING while the configuration is still loading, so a
 * liveness probe never kills a server that is starting; `/readyz` is readiness. HEAD is
 * answered like GET without a body; other methods get 405, other paths 404, both with
 * `{"error": "…"}`.
 *
 * The endpoint only renders what its {@link AdminSource} says: the policy server gives it a
 * source reading its own runtime; the worker supervisor (workers.ts) one that asks its
 * workers over IPC.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import * as path from 'node:path';
import { formatConfigError } from './config-error';
import type { DispatcherStats } from './dispatcher';
import type { PolicyRuntime } from './policy-runtime';

/** What `GET /config` answers: the configuration being served. */
export interface AdminConfigView {
  /** Generation being served; 1 for the first configuration loaded. */
  readonly generation: number;
  /** The configuration directory, absolute; null when the server runs without one. */
  readonly configDir: string | null;
  /** How many resources the directory holds (every kind, including unknown ones). */
  readonly resources: number;
  /** Qualified names of the handlers, e.g. `refuse.handler.istio-system`, sorted. */
  readonly handlers: readonly string[];
  /** Qualified names of the rules, e.g. `deny-reviews-v3.rule.istio-system`, sorted. */
  readonly rules: readonly string[];
  /** The last refused change (cleared by the next one that loads), or null. */
  readonly lastRefusal: {
    /** When it was refused, ISO 8601. */
    readonly at: string;
    /** Every problem, as `file:line: path: message`. */
    readonly errors: readonly string[];
  } | null;
}

/** What `GET /stats` answers for one server process. */
export interface AdminStatsView {
  readonly pid: number;
  /** Seconds since the process started. */
  readonly uptimeSeconds: number;
  /** The generation the counters belong to; 0 before a configuration serves. */
  readonly generation: number;
  /**
   * Counters of the dispatcher serving `generation`: each reload builds a new dispatcher,
   * so they restart from zero when the generation moves. Null before a configuration serves.
   */
  readonly dispatcher: DispatcherStats | null;
  /**
   * What each handler that keeps counters reports (`stats()`: redisquota its quotas'
   * configuration and decisions, memquota its counters, stdio its writes), by qualified name.
   */
  readonly handlers: Readonly<Record<string, unknown>>;
}

/** Readiness, as `GET /readyz` reports it. */
export interface AdminReadiness {
  readonly ready: boolean;
  /** Why not ready, e.g. `configuration is loading`; absent when ready. */
  readonly reason?: string;
  /** Anything else worth showing (the generation, workers serving). */
  readonly [detail: string]: unknown;
}

/** What the endpoint renders. Each method is called once per request. */
export interface AdminSource {
  /** True once the server drains (close() was called): liveness and readiness turn 503. */
  draining(): boolean;
  readiness(): AdminReadiness;
  /** The configuration view, or undefined before one serves (answered 503). May reject: 503. */
  config(): Promise<object | undefined> | object | undefined;
  /** The counters. May reject: answered 503 with the message. */
  stats(): Promise<object> | object;
}

/** Options of {@link createAdminEndpoint}. */
export interface AdminEndpointOptions {
  /** `HOST:PORT` to listen on; port 0 picks a free port. IPv6 hosts in brackets. */
  readonly address: string;
  readonly source: AdminSource;
  /**
   * Milliseconds `close()` lets requests in progress finish before cutting their
   * connections. Default 1000.
   */
  readonly closeTimeoutMs?: number;
}

/** A started admin endpoint. */
export interface AdminEndpoint {
  /**
   * Binds the address. Calling it again returns the same promise.
   * @throws Error naming the address when it cannot be bound
   */
  start(): Promise<{ readonly address: string; readonly port: number }>;
  /** Stops listening and ends idle connections. Idempotent; never rejects. */
  close(): Promise<void>;
}

const ROUTES = ['/healthz', '/readyz', '/config', '/stats'] as const;

/**
 * Creates the admin endpoint; nothing is bound until `start()`.
 * @throws TypeError when the address is not `HOST:PORT`
 */
export function createAdminEndpoint(options: AdminEndpointOptions): AdminEndpoint {
  const { host, port } = splitAddress(options.address);
  const { source } = options;
  const closeTimeoutMs = options.closeTimeoutMs ?? 1_000;
  let server: Server | undefined;
  let starting: Promise<{ address: string; port: number }> | undefined;
  let closing: Promise<void> | undefined;

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const method = request.method ?? 'GET';
    const route = (request.url ?? '/').split('?', 1)[0] as string;
    if (!(ROUTES as readonly string[]).includes(route)) {
      send(response, method, 404, { error: `no route ${route}; routes are ${ROUTES.join(', ')}` });
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      send(response, method, 405, { error: `${route} answers GET and HEAD only, not ${method}` });
      return;
    }
    try {
      switch (route) {
        case '/healthz': {
          const serving = !source.draining();
          send(response, method, serving ? 200 : 503, { status: serving ? 'SERVING' : 'NOT_SERVING' });
          return;
        }
        case '/readyz': {
          const readiness = source.readiness();
          send(response, method, readiness.ready ? 200 : 503, readiness);
          return;
        }
        case '/config': {
          const view = await source.config();
          if (view === undefined) send(response, method, 503, { error: 'no configuration serves yet' });
          else send(response, method, 200, view);
          return;
        }
        default: {
          send(response, method, 200, await source.stats());
          return;
        }
      }
    } catch (error) {
      send(response, method, 503, { error: (error as Error).message });
    }
  };

  const listen = (): Promise<{ address: string; port: number }> =>
    new Promise((resolve, reject) => {
      const http = createServer({ keepAliveTimeout: 5_000 }, (request, response) => {
        void handle(request, response);
      });
      http.once('error', (error: NodeJS.ErrnoException) =>
        reject(new Error(`cannot listen on ${options.address} (admin): ${describeListenError(error)}`)),
      );
      // Requests are answered from memory; a client that sends nothing is not waited for long.
      http.requestTimeout = 10_000;
      http.listen({ host, port, exclusive: true }, () => {
        server = http;
        const bound = http.address();
        const boundPort = typeof bound === 'object' && bound !== null ? bound.port : port;
        const shownHost = host.includes(':') ? `[${host}]` : host;
        resolve({ address: `${shownHost}:${boundPort}`, port: boundPort });
      });
    });

  const shutDown = async (): Promise<void> => {
    if (starting !== undefined) await starting.catch(() => undefined);
    const http = server;
    if (http === undefined) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => http.closeAllConnections(), closeTimeoutMs);
      http.close(() => {
        clearTimeout(timer);
        resolve();
      });
      http.closeIdleConnections();
    });
  };

  return {
    start() {
      if (closing !== undefined) return Promise.reject(new Error('admin endpoint is closed'));
      starting ??= listen();
      return starting;
    },
    close() {
      closing ??= shutDown();
      return closing;
    },
  };
}

/** The `/config` view of what a runtime serves. */
export function describeConfig(runtime: PolicyRuntime, configDir: string | undefined): AdminConfigView {
  const active = runtime.current();
  const config = active.dispatcher.config;
  const rules: string[] = [];
  for (const namespaceRules of config.rulesByNamespace.values()) {
    for (const rule of namespaceRules) rules.push(rule.qualifiedName);
  }
  const refusal = runtime.lastRefusal;
  return {
    generation: active.generation,
    configDir: configDir === undefined ? null : path.resolve(configDir),
    resources: active.snapshot.resources.length,
    handlers: [...config.handlers.values()].map((h) => h.qualifiedName).sort(),
    rules: rules.sort(),
    lastRefusal:
      refusal === undefined
        ? null
        : { at: refusal.at.toISOString(), errors: refusal.errors.map(formatConfigError) },
  };
}

/** The `/stats` view of this process; counters are zero before a configuration serves. */
export function describeStats(runtime: PolicyRuntime | undefined): AdminStatsView {
  const active = runtime !== undefined && runtime.currentGeneration > 0 ? runtime.current() : undefined;
  return {
    pid: process.pid,
    uptimeSeconds: Math.round(process.uptime() * 1000) / 1000,
    generation: active?.generation ?? 0,
    dispatcher: active === undefined ? null : { ...active.dispatcher.stats },
    handlers: runtime === undefined ? {} : runtime.handlerStats(),
  };
}

function send(response: ServerResponse, method: string, status: number, body: object): void {
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  response.end(method === 'HEAD' ? undefined : text);
}

/** `HOST:PORT` to a host `listen` accepts (IPv6 without brackets) and a port. */
function splitAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(address);
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || !(port <= 65535)) {
    throw new TypeError(
      `admin address must be HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9093, got "${address}"`,
    );
  }
  return { host: (match[1] ?? match[2]) as string, port };
}

function describeListenError(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'EADDRINUSE':
      return 'the address is already in use; stop what listens there or choose another port';
    case 'EADDRNOTAVAIL':
      return 'no network interface has this address; choose a local one';
    case 'EACCES':
      return 'permission denied; choose a port above 1023';
    default:
      return error.message;
  }
}
