/**
 * The policy server: loads the configuration, serves the Mixer API and the gRPC health
 * service on the gRPC transport (grpc-transport.ts, its own HTTP/2), and shuts down gracefully.
 */
import { createBuiltinRegistry, type AdapterRegistry } from '../adapters';
import { http2ServerFromEnvironment } from '../http2';
import { createAdminEndpoint, describeConfig, describeStats, type AdminEndpoint } from './admin-endpoint';
import type { ConfigSnapshot } from './config-resource';
import { createGrpcServer, type GrpcMethod, type GrpcServer } from './grpc-transport';
import { createHealthService, HEALTH_CHECK_PATH, HEALTH_WATCH_PATH } from './health-service';
import { adapterLogger, STDERR_LOGGER } from './logger';
import type { PolicyServerLogger } from './logger';
import {
  CHECK_PATH,
  createMixerMethods,
  DEFAULT_VALID_DURATION_MS,
  DEFAULT_VALID_USE_COUNT,
  REPORT_PATH,
} from './mixer-service';
import { PolicyRuntime } from './policy-runtime';

/** Mixer's address: loopback only unless asked otherwise, on Mixer's gRPC port. */
export const DEFAULT_ADDRESS = '127.0.0.1:9091';

/** How long `close()` lets calls in flight finish before cutting them off. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5_000;

/** Options of {@link createPolicyServer}; every one is optional. */
export interface PolicyServerOptions {
  /**
   * `HOST:PORT` to listen on (IPv6 hosts in brackets, `[::1]:9091`); port 0 picks a free
   * port, reported by `start()`. Default `127.0.0.1:9091` (Mixer's port, loopback only).
   */
  readonly address?: string;
  /**
   * Directory of YAML configuration, loaded by `start()` (see `loadConfigDirectory`).
   * Default: none, and the server runs with an empty configuration (no rules).
   */
  readonly configDir?: string;
  /**
   * Milliseconds a proxy may reuse a Check result that no rule decided, and the validity
   * of granted quotas no instance serves. Default 60000 (Mixer's one minute). Whole, > 0.
   */
  readonly validDurationMs?: number;
  /** Uses a proxy may make of such a Check result. Default 10000 (Mixer's). Whole, 1 to 2^31-1. */
  readonly validUseCount?: number;
  /**
   * Milliseconds `close()` waits for calls in flight before forcing the server down.
   * Default 5000. Whole, ≥ 0.
   */
  readonly shutdownTimeoutMs?: number;
  /** The adapters handlers may use. Default: a fresh registry of the built-in adapters. */
  readonly registry?: AdapterRegistry;
  /**
   * The data directory: where handlers keep durable state, each in
   * `<dataDir>/handlers/<name.handler.namespace>` (the export adapters' spools of accepted
   * records, replayed when a server restarts with the same directory). Default
   * `/var/lib/switchboard` (DEFAULT_DATA_DIR); nothing is created there unless a handler
   * needs it.
   */
  readonly dataDir?: string;
  /** The namespace whose rules apply to all traffic. Default `istio-system`. */
  readonly defaultNamespace?: string;
  /**
   * Milliseconds a client connection may go without a call before it is sent GOAWAY and
   * closed; 0: never. Default 300000 (DEFAULT_IDLE_TIMEOUT_MS).
   */
  readonly idleTimeoutMs?: number;
  /**
   * The largest header list a call may send, announced to clients (SETTINGS_MAX_HEADER_LIST_SIZE);
   * a call over it is answered 431. Default 65536 (DEFAULT_MAX_HEADER_LIST_BYTES).
   */
  readonly maxHeaderListBytes?: number;
  /** How long a handler may take for one call, in milliseconds. Default 1000. */
  readonly handlerTimeoutMs?: number;
  /** Reload the configuration directory when it changes. Default true. */
  readonly watch?: boolean;
  /**
   * Quiet time after a change in the configuration directory before reloading, in
   * milliseconds: an editor's several writes become one reload. Default 200.
   */
  readonly reloadDelayMs?: number;
  /**
   * `HOST:PORT` of the admin HTTP endpoint (`/healthz`, `/readyz`, `/config`, `/stats`; see
   * admin-endpoint.ts); port 0 picks a free port. Default: none, and no admin endpoint runs.
   * It listens before the configuration loads (so `/readyz` answers 503 meanwhile) and
   * stops last, after calls have drained.
   */
  readonly adminAddress?: string;
  /** Where faults are logged. Default: stderr. */
  readonly logger?: PolicyServerLogger;
}

/** Where a started server listens. */
export interface ListeningAddress {
  /** `HOST:PORT` with the port actually bound, e.g. `127.0.0.1:40123`. */
  readonly address: string;
  readonly port: number;
  /** Where the admin endpoint listens, when `adminAddress` asked for one. */
  readonly admin?: { readonly address: string; readonly port: number };
}

/** A policy server; create it with {@link createPolicyServer}. */
export interface PolicyServer {
  /**
   * Loads the configuration, binds the address and starts serving; health turns SERVING.
   * Calling it again returns the same promise.
   * @throws ConfigLoadError when the configuration does not load (nothing is bound)
   * @throws Error when the address cannot be bound, or the server was closed
   */
  start(): Promise<ListeningAddress>;
  /**
   * Stops the server: health turns NOT_SERVING, new calls are refused, calls in flight get
   * `shutdownTimeoutMs` to finish before being cancelled. Idempotent: every call returns
   * the same promise. Safe before `start()`, or while it runs. Never rejects.
   */
  close(): Promise<void>;
  /** Generation of the configuration being served; 0 until `start()` has loaded one. */
  readonly generation: number;
  /** The configuration runtime (reload, last refusal); undefined until `start()` has loaded it. */
  readonly runtime: PolicyRuntime | undefined;
  /** The configuration being served; undefined until `start()` has loaded it. */
  readonly snapshot: ConfigSnapshot | undefined;
}

/**
 * Creates a policy server; nothing is read or bound until `start()`.
 * @throws TypeError when an option is malformed (e.g. an address without a port)
 */
export function createPolicyServer(options: PolicyServerOptions = {}): PolicyServer {
  const address = options.address ?? DEFAULT_ADDRESS;
  const { host, port: requestedPort } = parseAddress(address);
  const validDurationMs = checkWhole(
    'validDurationMs',
    options.validDurationMs ?? DEFAULT_VALID_DURATION_MS,
    1,
  );
  const validUseCount = checkWhole(
    'validUseCount',
    options.validUseCount ?? DEFAULT_VALID_USE_COUNT,
    1,
    2 ** 31 - 1,
  );
  const shutdownTimeoutMs = checkWhole(
    'shutdownTimeoutMs',
    options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS,
    0,
  );
  const logger = options.logger ?? STDERR_LOGGER;
  if (options.reloadDelayMs !== undefined) checkWhole('reloadDelayMs', options.reloadDelayMs, 0);

  let runtime: PolicyRuntime | undefined;
  let grpcServer: GrpcServer | undefined;
  let starting: Promise<ListeningAddress> | undefined;
  let closing: Promise<void> | undefined;
  const healthService = createHealthService();
  let serving = false;
  const admin: AdminEndpoint | undefined =
    options.adminAddress === undefined
      ? undefined
      : createAdminEndpoint({
          address: options.adminAddress,
          source: {
            draining: () => closing !== undefined,
            readiness: () => {
              if (closing !== undefined) return { ready: false, reason: 'draining' };
              if (!serving || runtime === undefined)
                return { ready: false, reason: 'configuration is loading' };
              return { ready: true, generation: runtime.currentGeneration };
            },
            config: () => (runtime === undefined ? undefined : describeConfig(runtime, options.configDir)),
            stats: () => describeStats(runtime),
          },
        });

  const startServing = async (): Promise<ListeningAddress> => {
    // The admin endpoint first: probes get answers (503 not ready) while the configuration loads.
    const adminListening = await admin?.start();
    const loaded = new PolicyRuntime({
      ...(options.configDir === undefined ? {} : { configDir: options.configDir }),
      ...(options.defaultNamespace === undefined ? {} : { defaultNamespace: options.defaultNamespace }),
      ...(options.handlerTimeoutMs === undefined ? {} : { handlerTimeoutMs: options.handlerTimeoutMs }),
      ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
      registry: options.registry ?? createBuiltinRegistry(),
      logger: adapterLogger(logger),
      watch: options.watch ?? true,
      ...(options.reloadDelayMs === undefined ? {} : { reloadDelayMs: options.reloadDelayMs }),
      defaultValidDurationMs: validDurationMs,
      defaultValidUseCount: validUseCount,
    });
    await loaded.start();
    if (closing !== undefined) {
      await loaded.close();
      throw new Error('policy server was closed while starting');
    }
    runtime = loaded;

    const mixerMethods = createMixerMethods(loaded, logger);
    const server = createGrpcServer({
      http2: http2ServerFromEnvironment(),
      ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
      ...(options.maxHeaderListBytes === undefined ? {} : { maxHeaderListBytes: options.maxHeaderListBytes }),
      methods: new Map<string, GrpcMethod>([
        [CHECK_PATH, { kind: 'unary', handle: mixerMethods.check }],
        [REPORT_PATH, { kind: 'unary', handle: mixerMethods.report }],
        [HEALTH_CHECK_PATH, { kind: 'unary', handle: healthService.check }],
        [HEALTH_WATCH_PATH, { kind: 'serverStream', handle: healthService.watch }],
      ]),
      onError: (error) => logger.error(`switchboard: gRPC server error: ${error.message}`),
    });
    const port = await server.listen(host.replace(/^\[|\]$/g, ''), requestedPort).catch((error: unknown) => {
      throw new Error(`cannot listen on ${address}: ${describeBindError(error)}`, { cause: error });
    });
    grpcServer = server;
    // close() may have been called while binding; it shuts down grpcServer once this settles.
    if (closing === undefined) {
      healthService.setServing();
      serving = true;
    }
    return {
      address: `${host}:${port}`,
      port,
      ...(adminListening === undefined ? {} : { admin: adminListening }),
    };
  };

  const shutDown = async (): Promise<void> => {
    healthService.shutdown();
    if (starting !== undefined) await starting.catch(() => undefined);
    const server = grpcServer;
    if (server === undefined) {
      await runtime?.close();
      await admin?.close();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, shutdownTimeoutMs);
      void server.shutdown().then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    // Calls have ended: handlers flush and close.
    await runtime?.close();
    // Last, so that probes see NOT_SERVING for the whole drain.
    await admin?.close();
  };

  return {
    start(): Promise<ListeningAddress> {
      if (closing !== undefined)
        return Promise.reject(new Error('policy server is closed; create a new one'));
      // A start that fails leaves nothing bound, the admin endpoint included.
      starting ??= startServing().catch(async (error: unknown) => {
        await admin?.close();
        throw error;
      });
      return starting;
    },
    close(): Promise<void> {
      closing ??= shutDown();
      return closing;
    },
    get generation(): number {
      return runtime?.currentGeneration ?? 0;
    },
    get snapshot(): ConfigSnapshot | undefined {
      return runtime === undefined ? undefined : runtime.current().snapshot;
    },
    get runtime(): PolicyRuntime | undefined {
      return runtime;
    },
  };
}

/**
 * Splits `HOST:PORT` (IPv6 hosts in brackets).
 * @throws TypeError naming the expected form
 */
export function parseAddress(address: string): { host: string; port: number } {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(address);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || !(port <= 65535)) {
    throw new TypeError(
      `address must be HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9091, got "${address}"`,
    );
  }
  return { host: match[1] as string, port };
}

/** Names the usual causes of a failed bind plainly. */
function describeBindError(error: unknown): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return 'the address is already in use; stop what listens there or choose another port';
    case 'EADDRNOTAVAIL':
      return 'no network interface has this address; choose a local one';
    case 'EACCES':
      return 'permission denied; choose a port above 1023';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

function checkWhole(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`${name} must be a whole number from ${min} to ${max}, got ${value}`);
  }
  return value;
}
