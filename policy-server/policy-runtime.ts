/**
 * The running configuration and its replacement. The runtime loads the configuration
 * directory, builds the runtime configuration (no I/O), builds the handlers it needs, and
 * swaps in a new dispatcher atomically: a call in flight finishes on the configuration it
 * started with, and handlers that the new configuration retired are closed only after
 * every such call has finished. A change that does not load is refused as a whole; the
 * running configuration stays, and the refusal is kept for the admin endpoint.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AdapterLogger, AdapterRegistry } from '../adapters';
import { ConfigLoadError, type ConfigError } from './config-error';
import { loadConfigDirectory } from './config-loader';
import { createEmptySnapshot, type ConfigSnapshot } from './config-resource';
import { Dispatcher, type DispatcherOptions } from './dispatcher';
import { HandlerSet } from './handler-set';
import { buildRuntimeConfig, type RuntimeConfigOptions } from './runtime-config';

/** One generation of configuration, serving calls. */
export class ActiveConfig {
  private inFlight = 0;
  private waiting: Array<() => void> = [];

  constructor(
    readonly generation: number,
    readonly snapshot: ConfigSnapshot,
    readonly dispatcher: Dispatcher,
  ) {}

  /** Marks a call started on this configuration; pair with {@link release}. */
  acquire(): this {
    this.inFlight++;
    return this;
  }

  release(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.waiting.length > 0) {
      const waiting = this.waiting;
      this.waiting = [];
      for (const resolve of waiting) resolve();
    }
  }

  /** Resolves once no call is in flight on this configuration. */
  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

export interface PolicyRuntimeOptions extends RuntimeConfigOptions, Omit<DispatcherOptions, 'logger'> {
  /** The configuration directory; none means an empty configuration (no rules). */
  readonly configDir?: string;
  readonly registry: AdapterRegistry;
  readonly logger: AdapterLogger;
  /** Watch the directory and reload on change. Default false. */
  readonly watch?: boolean;
  /** Quiet time after a change before reloading, in milliseconds. Default 200. */
  readonly reloadDelayMs?: number;
  /** How often the directory is also polled for changes the watcher missed, in milliseconds. Default 2000. */
  readonly pollIntervalMs?: number;
  /** Handlers' clock; default Date.now. */
  readonly clock?: () => number;
  /** Where handlers keep durable state (see AdapterEnv.dataDir). Default DEFAULT_DATA_DIR (adapters/). */
  readonly dataDir?: string;
}

/** A refused reload, for the admin endpoint. */
export interface ConfigRefusal {
  readonly at: Date;
  readonly errors: readonly ConfigError[];
}

export class PolicyRuntime {
  private active: ActiveConfig | undefined;
  private readonly handlers: HandlerSet;
  private generation = 0;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  /** The configuration files' names, sizes and times as last seen, for the poll. */
  private fingerprint: string | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> = Promise.resolve();
  private closed = false;
  /** Closings of retired handlers still waiting for their calls to finish. */
  private readonly retiring = new Set<Promise<void>>();
  /** The last refused configuration, cleared by the next one that loads. */
  lastRefusal: ConfigRefusal | undefined;

  constructor(private readonly options: PolicyRuntimeOptions) {
    this.handlers = new HandlerSet(options.logger, options.clock, options.dataDir);
  }

  /**
   * Loads the first configuration and starts watching when asked.
   * @throws ConfigLoadError when it does not load (nothing is left running)
   */
  async start(): Promise<void> {
    const errors = await this.load();
    if (errors !== undefined) {
      await this.handlers.close();
      throw new ConfigLoadError(this.options.configDir ?? '(none)', errors);
    }
    if (this.options.watch === true && this.options.configDir !== undefined)
      this.startWatching(this.options.configDir);
  }

  /** The configuration serving now. @throws Error before start() */
  current(): ActiveConfig {
    if (this.active === undefined) throw new Error('the policy runtime has not started');
    return this.active;
  }

  /** The counters of the live handlers that keep some, by qualified name (see HandlerSet.stats). */
  handlerStats(): Record<string, unknown> {
    return this.handlers.stats();
  }

  get currentGeneration(): number {
    return this.active?.generation ?? 0;
  }

  /** Loads the directory again now; the outcome is the active generation and any refusal. */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(async () => {
      if (this.closed) return;
      const errors = await this.load();
      if (errors !== undefined) {
        this.lastRefusal = { at: new Date(), errors };
        this.options.logger.error(
          `configuration change refused, generation ${this.currentGeneration} keeps serving:\n` +
            new ConfigLoadError(this.options.configDir ?? '(none)', errors).message,
        );
      }
    });
    return this.reloading;
  }

  /** Stops watching, lets calls in flight finish, closes every handler. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.poller);
    clearTimeout(this.reloadTimer);
    await this.reloading;
    await this.active?.whenIdle();
    await Promise.all([...this.retiring]);
    await this.handlers.close();
  }

  /** Loads and, when valid, swaps in a new configuration; returns the errors otherwise. */
  private async load(): Promise<ConfigError[] | undefined> {
    let snapshot: ConfigSnapshot;
    const next = this.generation + 1;
    if (this.options.configDir === undefined) {
      snapshot = createEmptySnapshot(next);
    } else {
      try {
        snapshot = await loadConfigDirectory(this.options.configDir, { generation: next });
      } catch (error) {
        if (error instanceof ConfigLoadError) return [...error.errors];
        throw error;
      }
    }
    const built = buildRuntimeConfig(snapshot.resources, this.options.registry, this.options);
    if (!built.ok) return built.errors;
    const prepared = await this.handlers.prepare(built.config);
    if (!prepared.ok) return prepared.errors;
    if (this.closed) {
      await prepared.prepared.abandon();
      return undefined;
    }
    const dispatcher = new Dispatcher(built.config, prepared.prepared.handlers, {
      ...this.options,
      logger: this.options.logger,
    });
    const previous = this.active;
    this.generation = next;
    this.active = new ActiveConfig(next, snapshot, dispatcher);
    this.lastRefusal = undefined;
    const retire = prepared.prepared.commit();
    // Retired handlers close once every call that started on the previous generation is done.
    const closing: Promise<void> = (previous?.whenIdle() ?? Promise.resolve())
      .then(retire)
      .finally(() => this.retiring.delete(closing));
    this.retiring.add(closing);
    return undefined;
  }

  /**
   * Watches the directory two ways. fs.watch answers at once, but on Linux a recursive
   * watcher stops seeing files replaced by rename (what editors and Kubernetes ConfigMap
   * updates do) after the first such event, so it is made afresh after each rename. A poll
   * of the files' sizes and times every `pollIntervalMs` catches whatever the watcher misses.
   */
  private startWatching(dir: string): void {
    const delay = this.options.reloadDelayMs ?? 200;
    const scheduleReload = (): void => {
      clearTimeout(this.reloadTimer);
      this.reloadTimer = setTimeout(() => {
        // The fingerprint is taken before the files are read: a change made while the
        // reload runs (or just after it) then differs from it, and the poll catches it even
        // when the watcher missed its event.
        void fingerprintOf(dir).then(async (before) => {
          await this.reload();
          this.fingerprint = before;
        });
      }, delay);
      this.reloadTimer.unref();
    };
    const open = (): void => {
      try {
        this.watcher = watch(dir, { recursive: true }, (event) => {
          scheduleReload();
          if (event === 'rename' && !this.closed) {
            this.watcher?.close();
            open();
          }
        });
        this.watcher.on('error', (error) =>
          this.options.logger.error(`watching ${dir} failed: ${error.message}`),
        );
        this.watcher.unref();
      } catch (error) {
        this.options.logger.error(`watching ${dir} failed: ${(error as Error).message}; polling only`);
      }
    };
    open();
    void fingerprintOf(dir).then((f) => {
      this.fingerprint = f;
    });
    this.poller = setInterval(() => {
      void fingerprintOf(dir).then((f) => {
        if (this.fingerprint !== undefined && f !== this.fingerprint && !this.closed) scheduleReload();
        this.fingerprint = f;
      });
    }, this.options.pollIntervalMs ?? 2000);
    this.poller.unref();
  }
}

/** Names, sizes and modification times of every file below `dir`, as one string. */
async function fingerprintOf(dir: string): Promise<string> {
  const parts: string[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    if (depth > 16) return;
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = join(d, entry.name);
      try {
        const st = await stat(full);
        if (st.isDirectory()) await walk(full, depth + 1);
        else parts.push(`${full}:${st.size}:${st.mtimeMs}:${st.ino}`);
      } catch {
        // vanished while walking; the next poll sees the outcome
      }
    }
  };
  await walk(dir, 0);
  return parts.sort().join('\n');
}
