/**
 * The proxy runtime: loads the configuration file, runs its listeners and clusters, and
 * replaces them when the file changes.
 *
 * A reload validates the new file whole (every problem reported; an invalid change is
 * refused, logged, and the running generation keeps serving), then builds the new
 * generation: clusters whose configuration did not change are kept (with their pools,
 * health and ejections), listeners whose address, port, protocol and TLS files did not
 * change are kept and get the new routes for their next request, the others are drained —
 * they stop accepting, their requests in flight finish (HTTP/1.1 connections close after
 * their response, HTTP/2 sessions get GOAWAY), and what is left after `drainTimeout` is
 * closed. Requests keep the generation they started on to their end.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { http2ServerFromEnvironment, type Http2ServerKind } from '../http2';
import { AccessLog } from './access-log';
import type { ClusterEnvironment } from './cluster';
import { parseProxyConfig } from './config-parser';
import { ProxyConfigLoadError, formatProxyConfigError, type ProxyConfigError } from './config-errors';
import type { ListenerConfig, ProxyConfig } from './config-model';
import { watchConfigFile, type ConfigWatcher } from './config-watcher';
import { DEFAULT_ENVIRONMENT, type ProxyEnvironment } from './environment';
import { HttpListener, readTlsMaterial, type BoundAddress, type TlsMaterial } from './http-listener';
import {
  ProxyGeneration,
  type ProxyCounters,
  type ProxyLogger,
  type ProxyServices,
} from './proxy-generation';
import { TcpListener } from './tcp-listener';
import { NO_HOOK, type TrafficHook } from './traffic-hook';
import { UpstreamCluster } from './upstream-cluster';

/** Options of {@link createProxy}. */
export interface ProxyOptions {
  /** The YAML configuration file (see proxy/README.md). */
  readonly configFile: string;
  /** Reload when the file changes. Default true. */
  readonly watch?: boolean;
  /** Quiet time after a change before reloading, in ms. Default 200. */
  readonly reloadDelayMs?: number;
  /** How often the file is also polled for changes the watcher missed, in ms. Default 2000. */
  readonly pollIntervalMs?: number;
  /** Sees every request and TCP connection (the policy client). Default: none. */
  readonly hook?: TrafficHook;
  /** Randomness and clock; tests pass a seeded random. Defaults Math.random and Date.now. */
  readonly environment?: Partial<ProxyEnvironment>;
  /** Default: lines on stderr. */
  readonly logger?: ProxyLogger;
  /**
   * Which server takes plaintext h2c: our own HTTP/2 server (`own`) or `node:http2` (`node`).
   * Default: the environment's `SWITCHBOARD_HTTP2_SERVER`, read at `start` (unset: `own`;
   * another value fails the start). TLS listeners always use Node's secure server.
   */
  readonly http2Server?: Http2ServerKind;
}

/** A listener, bound. */
export interface ListeningAddress extends BoundAddress {
  readonly name: string;
  readonly protocol: 'http' | 'tcp';
  readonly role: 'inbound' | 'outbound';
}

/** The outcome of a reload. */
export type ReloadOutcome =
  | { readonly applied: true; readonly generation: number }
  | { readonly applied: false; readonly unchanged: true; readonly generation: number }
  | { readonly applied: false; readonly unchanged?: false; readonly errors: readonly ProxyConfigError[] };

/** A refused configuration change. */
export interface ProxyConfigRefusal {
  readonly at: Date;
  readonly errors: readonly ProxyConfigError[];
}

export interface ProxyStats {
  readonly generation: number;
  readonly counters: Readonly<ProxyCounters>;
  readonly listeners: ReadonlyArray<ListeningAddress & { readonly connections: number }>;
  readonly clusters: Readonly<Record<string, unknown>>;
  readonly accessLog: { readonly written: number; readonly dropped: number } | undefined;
  readonly lastRefusal: ProxyConfigRefusal | undefined;
}

export interface Proxy {
  /**
   * Loads the configuration and binds every listener; resolves with where they listen.
   * @throws ProxyConfigLoadError when the configuration does not load, or an Error when a
   *   listener cannot bind (everything started is stopped again)
   */
  start(): Promise<readonly ListeningAddress[]>;
  /** Reads the file again now (the watcher calls this). Never throws for a bad file: it refuses it. */
  reload(): Promise<ReloadOutcome>;
  /** Where the listeners of the running generation listen. */
  listening(): readonly ListeningAddress[];
  /** The running generation's number (1 after start). */
  readonly generation: number;
  stats(): ProxyStats;
  /**
   * Stops: listeners stop accepting and drain (up to the configuration's drainTimeout),
   * clusters and the access log close, then the hook. Idempotent.
   */
  close(): Promise<void>;
}

const STDERR_LOGGER: ProxyLogger = Object.freeze({
  error: (message: string) => void process.stderr.write(`${message}\n`),
  info: (message: string) => void process.stderr.write(`${message}\n`),
});

type RunningListener = { readonly key: string; readonly bound: ListeningAddress } & (
  | { readonly kind: 'http'; readonly listener: HttpListener }
  | { readonly kind: 'tcp'; readonly listener: TcpListener }
);

/** Creates a proxy; nothing is read or bound until `start()`. */
export function createProxy(options: ProxyOptions): Proxy {
  const environment: ProxyEnvironment = { ...DEFAULT_ENVIRONMENT, ...options.environment };
  const clusterEnvironment: ClusterEnvironment = { random: environment.random, now: environment.now };
  const logger = options.logger ?? STDERR_LOGGER;
  const services: ProxyServices = {
    environment,
    hook: options.hook ?? NO_HOOK,
    logger,
    counters: { httpRequests: 0, tcpConnections: 0, retries: 0, reasons: {}, refusedRequests: 0 },
  };
  let current: ProxyGeneration | undefined;
  let currentText: string | undefined;
  let listeners = new Map<string, RunningListener>();
  let watcher: ConfigWatcher | undefined;
  let lastRefusal: ProxyConfigRefusal | undefined;
  let reloading: Promise<unknown> = Promise.resolve();
  let closing: Promise<void> | undefined;
  /** Which server plaintext h2c runs on: settled at start, the same for every listener after. */
  let h2cServer: Http2ServerKind = 'own';
  const retiring = new Set<Promise<void>>();

  /** Parses the file; reads TLS material (the one I/O a configuration needs before it can run). */
  const load = async (): Promise<
    | { ok: true; config: ProxyConfig; text: string; tls: Map<string, TlsMaterial> }
    | { ok: false; errors: readonly ProxyConfigError[] }
  > => {
    let text: string;
    try {
      text = await readFile(options.configFile, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const message =
        code === 'ENOENT'
          ? 'file does not exist; check the --config path'
          : `cannot read the file: ${(error as Error).message}; check that it is readable`;
      return { ok: false, errors: [{ file: options.configFile, line: undefined, message }] };
    }
    const parsed = parseProxyConfig(text, options.configFile);
    if (!parsed.ok) return parsed;
    const tls = new Map<string, TlsMaterial>();
    const errors: ProxyConfigError[] = [];
    await Promise.all(
      parsed.config.listeners.map(async (listener, i) => {
        if (listener.protocol !== 'http' || listener.tls === undefined) return;
        try {
          tls.set(listener.name, (await readTlsMaterial(listener))!);
        } catch (error) {
          const path = `listeners[${i}].tls`;
          errors.push({
            file: options.configFile,
            line: parsed.lineOf(path),
            path,
            message: `${(error as Error).message}; give PEM files the proxy can read (relative paths are relative to the configuration file)`,
          });
        }
      }),
    );
    if (errors.length > 0) return { ok: false, errors };
    return { ok: true, config: parsed.config, text, tls };
  };

  const buildGeneration = (
    number: number,
    config: ProxyConfig,
    previous: ProxyGeneration | undefined,
  ): ProxyGeneration => {
    const clusters = new Map<string, UpstreamCluster>();
    for (const clusterConfig of config.clusters) {
      const old = previous?.clusters.get(clusterConfig.name);
      clusters.set(
        clusterConfig.name,
        old !== undefined && JSON.stringify(old.config) === JSON.stringify(clusterConfig)
          ? old
          : new UpstreamCluster(clusterConfig, clusterEnvironment),
      );
    }
    const logPath = config.accessLog?.path;
    const accessLog =
      logPath === undefined
        ? undefined
        : previous?.accessLog?.path === logPath
          ? previous.accessLog
          : new AccessLog(logPath);
    return new ProxyGeneration(number, config, clusters, accessLog);
  };

  /**
   * What identifies a running listener across reloads: where it listens and how, including
   * its certificate's content (a renewed certificate replaces the listener). Port 0 (tests)
   * binds a new port each time, so such listeners are told apart by name too.
   */
  const listenerKey = (l: ListenerConfig, tls: ReadonlyMap<string, TlsMaterial>): string => {
    let base = `${l.protocol}|${l.address}|${l.port}`;
    const material = tls.get(l.name);
    if (material !== undefined) {
      base += `|${createHash('sha256').update(material.cert).update(material.key).digest('hex')}`;
    }
    return l.port === 0 ? `${base}|${l.name}` : base;
  };

  /** Binds or updates the listeners of `generation`; returns the new set and those to retire. */
  const applyListeners = async (
    generation: ProxyGeneration,
    tls: Map<string, TlsMaterial>,
  ): Promise<{ next: Map<string, RunningListener>; retired: RunningListener[]; failures: string[] }> => {
    const next = new Map<string, RunningListener>();
    const keep = new Map<string, RunningListener>();
    const wanted = new Set(generation.config.listeners.map((l) => listenerKey(l, tls)));
    const retired: RunningListener[] = [];
    for (const running of listeners.values()) {
      if (wanted.has(running.key)) keep.set(running.key, running);
      else retired.push(running);
    }
    // Retired listeners stop accepting first, so that a protocol change on one port can bind it.
    for (const r of retired) void r.listener.drain(generation.config.drainTimeoutMs);
    const failures: string[] = [];
    for (const config of generation.config.listeners) {
      const key = listenerKey(config, tls);
      const kept = keep.get(key);
      if (config.protocol === 'http') {
        const context = { generation, listener: config, routes: generation.routeTableFor(config), services };
        if (kept !== undefined && kept.kind === 'http') {
          kept.listener.update(config, context);
          next.set(key, { ...kept, bound: { ...kept.bound, name: config.name, role: config.role } });
          continue;
        }
        const listener = new HttpListener(config, context, tls.get(config.name), h2cServer);
        try {
          const bound = await listener.listen();
          next.set(key, {
            key,
            kind: 'http',
            listener,
            bound: { ...bound, name: config.name, protocol: 'http', role: config.role },
          });
        } catch (error) {
          failures.push(
            `listener ${config.name} cannot listen on ${config.address}:${config.port}: ${(error as Error).message}`,
          );
        }
      } else {
        const context = { generation, listener: config, services };
        if (kept !== undefined && kept.kind === 'tcp') {
          kept.listener.update(config, context);
          next.set(key, { ...kept, bound: { ...kept.bound, name: config.name, role: config.role } });
          continue;
        }
        const listener = new TcpListener(config, context);
        try {
          const bound = await listener.listen();
          next.set(key, {
            key,
            kind: 'tcp',
            listener,
            bound: { ...bound, name: config.name, protocol: 'tcp', role: config.role },
          });
        } catch (error) {
          failures.push(
            `listener ${config.name} cannot listen on ${config.address}:${config.port}: ${(error as Error).message}`,
          );
        }
      }
    }
    return { next, retired, failures };
  };

  /** Closes what `old` had and `next` does not, once nothing holds `old`. */
  const retire = (old: ProxyGeneration, next: ProxyGeneration | undefined): void => {
    const done: Promise<void> = old
      .whenIdle()
      .then(async () => {
        const closings: Promise<void>[] = [];
        for (const [name, cluster] of old.clusters) {
          if (next?.clusters.get(name) !== cluster) closings.push(cluster.close());
        }
        if (old.accessLog !== undefined && next?.accessLog !== old.accessLog)
          closings.push(old.accessLog.close());
        await Promise.all(closings);
      })
      .finally(() => retiring.delete(done));
    retiring.add(done);
  };

  const reloadNow = async (): Promise<ReloadOutcome> => {
    if (closing !== undefined || current === undefined) return { applied: false, errors: [] };
    const loaded = await load();
    if (!loaded.ok) {
      lastRefusal = { at: new Date(), errors: loaded.errors };
      logger.error(
        [
          `switchboard proxy: configuration change refused, generation ${current.number} keeps serving (${loaded.errors.length} ${loaded.errors.length === 1 ? 'error' : 'errors'}):`,
          ...loaded.errors.map(formatProxyConfigError),
        ].join('\n'),
      );
      return { applied: false, errors: loaded.errors };
    }
    if (loaded.text === currentText) return { applied: false, unchanged: true, generation: current.number };
    const previous = current;
    const generation = buildGeneration(previous.number + 1, loaded.config, previous);
    announce(generation);
    const { next, retired, failures } = await applyListeners(generation, loaded.tls);
    current = generation;
    currentText = loaded.text;
    listeners = next;
    lastRefusal = undefined;
    for (const failure of failures) logger.error(`switchboard proxy: ${failure}`);
    retire(previous, generation);
    logger.info(
      `switchboard proxy: configuration generation ${generation.number} applied` +
        (retired.length === 0 ? '' : `; draining ${retired.map((r) => r.bound.name).join(', ')}`),
    );
    return { applied: true, generation: generation.number };
  };

  const listening = (): ListeningAddress[] => [...listeners.values()].map((l) => l.bound);

  /** Tells the hook a generation is about to serve. */
  const announce = (generation: ProxyGeneration): void => {
    try {
      services.hook.configurationApplied?.(generation.config, generation.number);
    } catch (error) {
      logger.error(`traffic hook configurationApplied threw: ${(error as Error).stack ?? String(error)}`);
    }
  };

  return {
    async start() {
      if (current !== undefined) return listening();
      // Refused before anything is read or bound when the environment names no server we have.
      h2cServer = options.http2Server ?? http2ServerFromEnvironment();
      const loaded = await load();
      if (!loaded.ok) throw new ProxyConfigLoadError(options.configFile, loaded.errors);
      const generation = buildGeneration(1, loaded.config, undefined);
      announce(generation);
      const { next, failures } = await applyListeners(generation, loaded.tls);
      if (failures.length > 0) {
        for (const l of next.values()) l.listener.destroy();
        await Promise.all([...generation.clusters.values()].map((c) => c.close()));
        await generation.accessLog?.close();
        throw new Error(failures.join('; '));
      }
      current = generation;
      currentText = loaded.text;
      listeners = next;
      if (options.watch ?? true) {
        watcher = watchConfigFile(
          options.configFile,
          () => {
            reloading = reloading.then(reloadNow, () => undefined);
          },
          { delayMs: options.reloadDelayMs, pollIntervalMs: options.pollIntervalMs, onError: logger.error },
        );
      }
      return listening();
    },
    reload() {
      const outcome = reloading.then(reloadNow, reloadNow);
      reloading = outcome;
      return outcome;
    },
    listening,
    get generation() {
      return current?.number ?? 0;
    },
    stats() {
      const clusters: Record<string, unknown> = {};
      for (const [name, cluster] of current?.clusters ?? []) {
        clusters[name] = { ...cluster.cluster.stats(), pools: cluster.connectionStats() };
      }
      return {
        generation: current?.number ?? 0,
        counters: services.counters,
        listeners: [...listeners.values()].map((l) => ({ ...l.bound, connections: l.listener.connections })),
        clusters,
        accessLog: current?.accessLog?.stats(),
        lastRefusal,
      };
    },
    close() {
      closing ??= (async () => {
        watcher?.close();
        await reloading.catch(() => undefined);
        const drainMs = current?.config.drainTimeoutMs ?? 0;
        await Promise.all([...listeners.values()].map((l) => l.listener.drain(drainMs)));
        if (current !== undefined) retire(current, undefined);
        await Promise.all([...retiring]);
        await services.hook.close?.();
      })();
      return closing;
    },
  };
}
