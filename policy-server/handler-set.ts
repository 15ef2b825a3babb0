/**
 * The built handlers of the running configuration, and their lifecycle across reloads:
 * a handler whose adapter configuration is unchanged is kept (with its connections and
 * state); new and changed handlers are built before the new configuration serves; handlers
 * that are gone or replaced are closed after it serves.
 */
import {
  createAdapterEnv,
  DEFAULT_DATA_DIR,
  type AdapterLogger,
  type Handler,
  type OwnedEnvironment,
} from '../adapters';
import type { ConfigError } from './config-error';
import type { HandlerConfig, RuntimeConfig } from './runtime-config';

interface LiveHandler {
  readonly configKey: string;
  readonly handler: Handler;
  readonly owned: OwnedEnvironment;
}

/** Handlers ready for a configuration, and what to do once it serves (or is abandoned). */
export interface PreparedHandlers {
  readonly handlers: ReadonlyMap<string, Handler>;
  /**
   * The new configuration serves now: its handlers become the live set. Returns the
   * closing of the handlers it retired, to run once no call uses them any more.
   */
  commit(): () => Promise<void>;
  /** The new configuration will not serve: close the handlers built for it. */
  abandon(): Promise<void>;
}

export type PrepareOutcome = { ok: true; prepared: PreparedHandlers } | { ok: false; errors: ConfigError[] };

export class HandlerSet {
  private live = new Map<string, LiveHandler>();
  private closed = false;
  /** Names handlers looked up (AdapterEnv.findHandler): they pass records to them. */
  private readonly targets = new Set<string>();

  constructor(
    private readonly logger: AdapterLogger,
    private readonly clock: () => number = Date.now,
    /** The server's data directory; each handler's env gets its own subdirectory of it. */
    private readonly dataDir: string = DEFAULT_DATA_DIR,
  ) {}

  /**
   * What each live handler that keeps counters says of itself (`stats()`, as memquota,
   * redisquota and stdio have), by qualified name, sorted; a handler whose stats() throws
   * shows the error instead.
   */
  stats(): Record<string, unknown> {
    const views: Record<string, unknown> = {};
    for (const name of [...this.live.keys()].sort()) {
      const handler = (this.live.get(name) as LiveHandler).handler as Handler & { stats?: () => unknown };
      if (typeof handler.stats !== 'function') continue;
      try {
        views[name] = handler.stats();
      } catch (error) {
        views[name] = { error: error instanceof Error ? error.message : String(error) };
      }
    }
    return views;
  }

  /** Builds what `config` needs that is not live already. Build failures are configuration errors. */
  async prepare(config: RuntimeConfig): Promise<PrepareOutcome> {
    if (this.closed) throw new Error('the handler set is closed');
    const next = new Map<string, LiveHandler>();
    const built: LiveHandler[] = [];
    const errors: ConfigError[] = [];
    await Promise.all(
      [...config.handlers.values()].map(async (h) => {
        const current = this.live.get(h.qualifiedName);
        if (current !== undefined && current.configKey === h.configKey) {
          next.set(h.qualifiedName, current);
          return;
        }
        try {
          const fresh = await this.build(h);
          built.push(fresh);
          next.set(h.qualifiedName, fresh);
        } catch (error) {
          errors.push({
            file: h.resource.file,
            line: h.resource.line,
            message: `${h.adapter.name}: handler ${h.qualifiedName} could not be built: ${error instanceof Error ? error.message : String(error)}`,
          });
        }
      }),
    );
    if (errors.length > 0) {
      await Promise.all(built.map((b) => closeQuietly(b, this.logger)));
      return { ok: false, errors };
    }
    const handlers = new Map([...next].map(([name, live]) => [name, live.handler] as const));
    let settled = false;
    return {
      ok: true,
      prepared: {
        handlers,
        commit: () => {
          if (settled) return async () => undefined;
          settled = true;
          const retired = [...this.live]
            .filter(([name, live]) => next.get(name) !== live)
            .map(([, live]) => live);
          this.live = next;
          return async () => {
            await Promise.all(retired.map((r) => closeQuietly(r, this.logger)));
          };
        },
        abandon: async () => {
          if (settled) return;
          settled = true;
          await Promise.all(built.map((b) => closeQuietly(b, this.logger)));
        },
      },
    };
  }

  /** Closes every live handler. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const all = [...this.live.entries()];
    // Handlers that pass records on (opa's decision log) flush into their targets as they
    // close: the targets close after them.
    const targets = all.filter(([name]) => this.targets.has(name)).map(([, live]) => live);
    const others = all.filter(([name]) => !this.targets.has(name)).map(([, live]) => live);
    await Promise.all(others.map((h) => closeQuietly(h, this.logger)));
    this.live = new Map();
    await Promise.all(targets.map((h) => closeQuietly(h, this.logger)));
  }

  private async build(h: HandlerConfig): Promise<LiveHandler> {
    const owned = createAdapterEnv(h.qualifiedName, this.logger, this.clock, {
      dataDir: this.dataDir,
      configFile: h.resource.file,
      findHandler: (name) => {
        this.targets.add(name);
        return this.live.get(name)?.handler;
      },
    });
    try {
      const handler = await h.adapter.build(h.config as never, owned.env);
      return { configKey: h.configKey, handler, owned };
    } catch (error) {
      owned.dispose();
      throw error;
    }
  }
}

async function closeQuietly(live: LiveHandler, logger: AdapterLogger): Promise<void> {
  try {
    await live.handler.close();
  } catch (error) {
    logger.error(
      `closing handler ${live.owned.env.handlerName} failed: ${error instanceof Error ? error.message : String(error)}`,
    );
  } finally {
    live.owned.dispose();
  }
}
