/** The environment handlers run in: their logger and the timers they own. */
import * as path from 'node:path';
import type { AdapterEnv, AdapterLogger, Handler, TimerHandle } from './contract';

/**
 * The server's data directory when `--data-dir` is not given: where handlers keep durable
 * state (spools of accepted audit records), one subdirectory per handler.
 */
export const DEFAULT_DATA_DIR = '/var/lib/switchboard';

/** A handler's own directory in a server data directory: `<dataDir>/handlers/<name.handler.namespace>`. */
export function handlerDataDir(dataDir: string, handlerName: string): string {
  return path.join(dataDir, 'handlers', handlerName);
}

/** An environment and the means to end it: `dispose` cancels every pending timer. */
export interface OwnedEnvironment {
  readonly env: AdapterEnv;
  dispose(): void;
}

/**
 * @param clock the handler's `now()`; default Date.now. Timers run on real time whatever the clock.
 * @param where.configFile the file that declared the handler, when there is one (AdapterEnv.configFile)
 * @param where.dataDir the server's data directory (the handler gets its own subdirectory); default {@link DEFAULT_DATA_DIR}
 * @param where.findHandler looks up the running configuration's handlers (AdapterEnv.findHandler); default: none found
 */
export function createAdapterEnv(
  handlerName: string,
  logger: AdapterLogger,
  clock: () => number = Date.now,
  where: {
    readonly dataDir?: string;
    readonly configFile?: string;
    readonly findHandler?: (qualifiedName: string) => Handler | undefined;
  } = {},
): OwnedEnvironment {
  const pending = new Set<NodeJS.Timeout>();
  let disposed = false;
  const own = (timer: NodeJS.Timeout, repeating: boolean): TimerHandle => {
    timer.unref();
    pending.add(timer);
    return {
      cancel(): void {
        if (repeating) clearInterval(timer);
        else clearTimeout(timer);
        pending.delete(timer);
      },
    };
  };
  const refuseAfterDispose = (): void => {
    if (disposed) throw new Error(`handler ${handlerName} is closed: it cannot start timers`);
  };
  const env: AdapterEnv = Object.freeze({
    handlerName,
    ...(where.configFile === undefined ? {} : { configFile: where.configFile }),
    logger,
    dataDir: handlerDataDir(where.dataDir ?? DEFAULT_DATA_DIR, handlerName),
    now: clock,
    findHandler: where.findHandler ?? (() => undefined),
    schedule(callback: () => void, delayMs: number): TimerHandle {
      refuseAfterDispose();
      const timer: NodeJS.Timeout = setTimeout(() => {
        pending.delete(timer);
        callback();
      }, delayMs);
      return own(timer, false);
    },
    every(callback: () => void, intervalMs: number): TimerHandle {
      refuseAfterDispose();
      return own(setInterval(callback, intervalMs), true);
    },
  });
  return {
    env,
    dispose(): void {
      disposed = true;
      for (const timer of pending) clearTimeout(timer);
      pending.clear();
    },
  };
}
