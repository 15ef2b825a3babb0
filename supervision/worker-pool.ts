/**
 * A pool of worker processes forked with `node:cluster`, as the policy server and the
 * proxy run one per core: what both supervisors share.
 *
 * Worker 1 is forked first and the others once it listens, so that a configuration that
 * does not load is reported once, not once per worker. A worker that exits unexpectedly is
 * restarted after a delay that doubles with each consecutive failure of that worker (and
 * starts over once a worker ran `stableAfterMs`). On stop, each worker is asked to drain
 * and exit by an IPC message, not a signal: when a terminal signals the whole process
 * group, a worker would get the signal twice, and the second copy can land while the
 * worker exits, when nothing catches it any more. Workers still running after
 * `stopTimeoutMs` are killed.
 *
 * The messages are the user's: `listening` recognises a worker's "I listen" message,
 * `stopMessage` makes the request to stop, `onMessage` gets every other message.
 */
import cluster, { type Worker } from 'node:cluster';

export interface WorkerPoolOptions<Listening> {
  /** How many workers, ≥ 1. */
  readonly workers: number;
  /** The script a worker runs (the CLI) and its arguments. */
  readonly exec: string;
  readonly args: readonly string[];
  /** Where the pool says what an operator should see (restarts), a line per call. */
  readonly log: (line: string) => void;
  /** Begins each line the pool logs: `switchboard`, `switchboard proxy`. */
  readonly logPrefix: string;
  /** First restart delay, in ms; doubles per consecutive failure. Default 100. */
  readonly restartDelayMs?: number;
  /** Longest restart delay, in ms. Default 10000. */
  readonly maxRestartDelayMs?: number;
  /** A worker that ran this long before exiting restarts after the first delay again, in ms. Default 10000. */
  readonly stableAfterMs?: number;
  /** How long stop() waits for workers to drain before killing them, in ms. */
  readonly stopTimeoutMs: number;
  /** The environment a slot's worker is forked with (each time it is forked). */
  env(slot: PoolSlot): Record<string, string>;
  /** The worker's "I listen" message, or undefined when `message` is not one. */
  listening(message: unknown): Listening | undefined;
  /** Called once worker 1 listens, before the others are forked. */
  firstListening?(listening: Listening): void;
  /** Every other message a current worker sends. */
  onMessage?(slot: PoolSlot, message: unknown): void;
  /** A slot's worker exited (expected or not). */
  onExit?(slot: PoolSlot): void;
  /** The message that asks a worker to drain and exit as on `signal`. */
  stopMessage(signal: NodeJS.Signals): object;
  /**
   * What the supervisor serves beside its workers (their admin endpoint): started before the
   * first worker is forked — its failure fails start() — and closed once every worker stopped.
   */
  readonly companion?: {
    start(): Promise<{ readonly address: string; readonly port: number }>;
    close(): Promise<void>;
  };
}

/** One place in the pool and the worker in it now. */
export interface PoolSlot {
  /** 1 to N. */
  readonly index: number;
  readonly worker: Worker | undefined;
  /** Its worker said it listens, and has not exited since. */
  readonly serving: boolean;
}

export interface WorkerPool<Listening> {
  readonly slots: readonly PoolSlot[];
  /** Forks the workers; resolves with worker 1's listening message once all listen. Rejects when one exits first (stopping the others). */
  start(): Promise<Listening>;
  /** Asks every worker to stop; resolves true when all exited with code 0. Idempotent. */
  stop(signal: NodeJS.Signals): Promise<boolean>;
  /** Kills every worker at once (a second signal). */
  kill(): void;
  /** Whether start() has resolved. */
  started(): boolean;
  /** Whether stop() was called (or a start failed). */
  stopping(): boolean;
  /** Where the companion listens, once start() started it. */
  companionAddress(): { readonly address: string; readonly port: number } | undefined;
}

interface Slot extends PoolSlot {
  worker: Worker | undefined;
  serving: boolean;
  forkedAt: number;
  /** Consecutive unexpected exits, for the back-off. */
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
  /** Settle the wait of start() on this worker. */
  onListening: ((listening: unknown) => void) | undefined;
  onEarlyExit: ((reason: string) => void) | undefined;
  /** Resolves stop()'s wait on this worker. */
  exited: Promise<number | null>;
  markExited: (code: number | null) => void;
}

/**
 * Creates a pool; nothing is forked until `start()`.
 * @throws TypeError when `workers` is not a whole number ≥ 1, Error outside the primary process
 */
export function createWorkerPool<Listening>(options: WorkerPoolOptions<Listening>): WorkerPool<Listening> {
  if (!Number.isInteger(options.workers) || options.workers < 1) {
    throw new TypeError(`workers must be a whole number ≥ 1, got ${options.workers}`);
  }
  if (!cluster.isPrimary) throw new Error('a worker supervisor must run in the primary process');
  const restartDelayMs = options.restartDelayMs ?? 100;
  const maxRestartDelayMs = options.maxRestartDelayMs ?? 10_000;
  const stableAfterMs = options.stableAfterMs ?? 10_000;
  const prefix = options.logPrefix;
  const slots: Slot[] = [];
  let isStarted = false;
  let companionAddress: { readonly address: string; readonly port: number } | undefined;
  let stopping: Promise<boolean> | undefined;
  let starting: Promise<Listening> | undefined;

  const fork = (slot: Slot): void => {
    cluster.setupPrimary({ exec: options.exec, args: [...options.args] });
    const worker = cluster.fork(options.env(slot));
    slot.worker = worker;
    slot.forkedAt = Date.now();
    slot.exited = new Promise((resolve) => (slot.markExited = resolve));
    worker.on('message', (message: unknown) => onMessage(slot, worker, message));
    worker.on('exit', (code, signal) => onExit(slot, worker, code, signal));
    // A send to a worker that is exiting fails (EPIPE); each send handles its own failure,
    // and the exit is seen through 'exit'. Without a listener the error would end the supervisor.
    worker.on('error', () => undefined);
  };

  const onMessage = (slot: Slot, worker: Worker, message: unknown): void => {
    if (slot.worker !== worker) return;
    const listening = options.listening(message);
    if (listening === undefined) {
      options.onMessage?.(slot, message);
      return;
    }
    slot.serving = true;
    if (slot.onListening !== undefined) slot.onListening(listening);
    else options.log(`${prefix}: worker ${slot.index} restarted (pid ${worker.process.pid}) and serves`);
  };

  const onExit = (slot: Slot, worker: Worker, code: number | null, signal: string | null): void => {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.serving = false;
    slot.markExited(code);
    options.onExit?.(slot);
    const how = signal === null ? `code ${code}` : `signal ${signal}`;
    if (slot.onEarlyExit !== undefined) {
      slot.onEarlyExit(
        `worker ${slot.index} (pid ${worker.process.pid}) exited with ${how} before listening`,
      );
      return;
    }
    if (stopping !== undefined) {
      if (code !== 0)
        options.log(`${prefix}: worker ${slot.index} (pid ${worker.process.pid}) stopped with ${how}`);
      return;
    }
    if (Date.now() - slot.forkedAt >= stableAfterMs) slot.failures = 0;
    const delay = Math.min(restartDelayMs * 2 ** slot.failures, maxRestartDelayMs);
    slot.failures++;
    options.log(
      `${prefix}: worker ${slot.index} (pid ${worker.process.pid}) exited unexpectedly with ${how}; ` +
        `restarting it in ${delay} ms`,
    );
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (stopping === undefined) fork(slot);
    }, delay);
  };

  /** Forks a slot's worker and waits until it listens; rejects when it exits first. */
  const startSlot = (slot: Slot): Promise<Listening> =>
    new Promise((resolve, reject) => {
      slot.onListening = (listening) => {
        slot.onListening = undefined;
        slot.onEarlyExit = undefined;
        resolve(listening as Listening);
      };
      slot.onEarlyExit = (reason) => {
        slot.onListening = undefined;
        slot.onEarlyExit = undefined;
        reject(new Error(reason));
      };
      fork(slot);
    });

  const startAll = async (): Promise<Listening> => {
    for (let index = 1; index <= options.workers; index++) {
      slots.push({
        index,
        worker: undefined,
        serving: false,
        forkedAt: 0,
        failures: 0,
        restartTimer: undefined,
        onListening: undefined,
        onEarlyExit: undefined,
        exited: Promise.resolve(null),
        markExited: () => undefined,
      });
    }
    companionAddress = await options.companion?.start();
    const [first, ...others] = slots as [Slot, ...Slot[]];
    const firstListening = await startSlot(first);
    if (stopping !== undefined) throw new Error('stopped while the workers were starting');
    options.firstListening?.(firstListening);
    await Promise.all(others.map(startSlot));
    isStarted = true;
    return firstListening;
  };

  const stopAll = async (signal: NodeJS.Signals): Promise<boolean> => {
    const clean = await stopWorkers(signal);
    await options.companion?.close();
    return clean;
  };

  // Does not wait for start(): workers still starting get the request too, and start() rejects.
  const stopWorkers = async (signal: NodeJS.Signals): Promise<boolean> => {
    const stop = options.stopMessage(signal);
    for (const slot of slots) {
      clearTimeout(slot.restartTimer);
      const worker = slot.worker;
      if (worker === undefined) continue;
      // A worker that cannot hear it is exiting already; stopTimeoutMs bounds the wait anyway.
      if (worker.isConnected()) worker.send(stop, undefined, {}, () => undefined);
      else worker.process.kill(signal);
    }
    const codes = slots.map((slot) => (slot.worker === undefined ? Promise.resolve(0) : slot.exited));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), options.stopTimeoutMs);
    });
    const outcome = await Promise.race([Promise.all(codes), timedOut]);
    clearTimeout(timer);
    if (outcome !== 'timeout') return outcome.every((code) => code === 0);
    for (const slot of slots) {
      if (slot.worker === undefined) continue;
      options.log(
        `${prefix}: worker ${slot.index} (pid ${slot.worker.process.pid}) did not stop within ` +
          `${options.stopTimeoutMs} ms; killing it`,
      );
      slot.worker.process.kill('SIGKILL');
    }
    await Promise.all(slots.map((slot) => slot.exited));
    return false;
  };

  return {
    slots,
    start() {
      if (stopping !== undefined) return Promise.reject(new Error('the worker supervisor is stopped'));
      starting ??= startAll().catch(async (error: unknown) => {
        // A worker failed to start: stop the others, which may still be starting.
        stopping ??= stopAll('SIGTERM');
        await stopping;
        throw error;
      });
      return starting;
    },
    stop(signal) {
      stopping ??= stopAll(signal);
      return stopping;
    },
    kill() {
      for (const slot of slots) {
        clearTimeout(slot.restartTimer);
        slot.worker?.process.kill('SIGKILL');
      }
    },
    started: () => isStarted,
    companionAddress: () => companionAddress,
    stopping: () => stopping !== undefined,
  };
}

/** Whether `message` is an object whose `type` is `type`. */
export function isMessageOf<M extends { type: string }>(message: unknown, type: M['type']): message is M {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}
