/**
 * Several proxy processes sharing the listeners, so that the proxy uses every core.
 *
 * A supervisor (the process the operator started) forks workers with `node:cluster`; each
 * runs a whole proxy — its own configuration, watcher and reloads — and binds the
 * configured addresses. Under cluster, a worker's `listen` is handed to the supervisor,
 * which owns each listening socket and passes accepted connections to the workers in turn
 * (cluster's round-robin scheduling). Because cluster shares a socket by the address a
 * worker asks for, port 0 would give every port-0 listener of a worker the same socket:
 * with more than one worker, listeners need fixed ports (the CLI refuses port 0 then).
 *
 * Worker 1 starts first, so that a configuration that does not load is reported once; the
 * others start once it listens. A worker that exits unexpectedly is restarted after a delay
 * that doubles with each consecutive failure. On stop, each worker is asked (by an IPC
 * message, not a signal: a terminal's Ctrl-C reaches the whole process group) to drain and
 * exit; those still running after `stopTimeoutMs` are killed.
 */
import cluster, { type Worker } from 'node:cluster';
import type { ListeningAddress } from './proxy';

/** Environment of a worker: its slot number, 1 to N. */
export const PROXY_WORKER_SLOT_ENV = 'SWITCHBOARD_PROXY_WORKER_SLOT';

interface ListeningMessage {
  readonly type: 'switchboard-proxy:listening';
  readonly listeners: readonly ListeningAddress[];
  readonly generation: number;
}

interface StopMessage {
  readonly type: 'switchboard-proxy:stop';
  readonly signal: NodeJS.Signals;
}

/** This process's slot when a proxy supervisor forked it; undefined otherwise. */
export function proxyWorkerSlot(): number | undefined {
  const slot = process.env[PROXY_WORKER_SLOT_ENV];
  if (!cluster.isWorker || slot === undefined) return undefined;
  return Number(slot);
}

/** A worker's side of the IPC channel. */
export interface ProxyWorkerLink {
  reportListening(listeners: readonly ListeningAddress[], generation: number): void;
  /** Resolves with the signal the supervisor received, when it asks this worker to stop. */
  readonly stopRequested: Promise<NodeJS.Signals>;
  /** Lets the channel go, so that the worker can exit. */
  close(): void;
}

/** @throws Error when this process is not a cluster worker */
export function connectProxyWorker(): ProxyWorkerLink {
  const worker = cluster.worker;
  if (worker === undefined) throw new Error('connectProxyWorker: this process is not a cluster worker');
  let requestStop: (signal: NodeJS.Signals) => void = () => undefined;
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => (requestStop = resolve));
  const onMessage = (message: unknown): void => {
    if (isMessage<StopMessage>(message, 'switchboard-proxy:stop')) requestStop(message.signal);
  };
  worker.on('message', onMessage);
  return {
    stopRequested,
    reportListening(listeners, generation) {
      const message: ListeningMessage = { type: 'switchboard-proxy:listening', listeners, generation };
      if (worker.isConnected()) worker.send(message, undefined, {}, () => undefined);
    },
    close() {
      worker.off('message', onMessage);
      if (worker.isConnected()) worker.disconnect();
    },
  };
}

export interface ProxySupervisorOptions {
  /** How many workers, ≥ 1. */
  readonly workers: number;
  /** The script a worker runs (the CLI) and its arguments. */
  readonly exec: string;
  readonly args: readonly string[];
  /** Where the supervisor says what an operator should see (restarts), a line per call. */
  readonly log: (line: string) => void;
  /** First restart delay, in ms; doubles per consecutive failure. Default 100. */
  readonly restartDelayMs?: number;
  /** Longest restart delay, in ms. Default 10000. */
  readonly maxRestartDelayMs?: number;
  /** A worker that ran this long before exiting restarts after the first delay again, in ms. Default 10000. */
  readonly stableAfterMs?: number;
  /** How long stop() waits for workers to drain before killing them, in ms. Default 35000. */
  readonly stopTimeoutMs?: number;
}

export interface SupervisedProxy {
  readonly listeners: readonly ListeningAddress[];
  readonly generation: number;
}

export interface ProxySupervisor {
  /** Forks the workers; resolves once all listen. Rejects when a worker exits before it listens. */
  start(): Promise<SupervisedProxy>;
  /** Asks every worker to stop; resolves true when all exited with code 0. Idempotent. */
  stop(signal: NodeJS.Signals): Promise<boolean>;
  /** Kills every worker at once (a second signal). */
  kill(): void;
  /** Worker process ids, for tests and operators. */
  pids(): number[];
}

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  forkedAt: number;
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
  onListening: ((message: ListeningMessage) => void) | undefined;
  onEarlyExit: ((reason: string) => void) | undefined;
  exited: Promise<number | null>;
  markExited: (code: number | null) => void;
}

/** @throws TypeError when `workers` is not a whole number ≥ 1, Error outside the primary process */
export function createProxySupervisor(options: ProxySupervisorOptions): ProxySupervisor {
  if (!Number.isInteger(options.workers) || options.workers < 1) {
    throw new TypeError(`workers must be a whole number ≥ 1, got ${options.workers}`);
  }
  if (!cluster.isPrimary) throw new Error('a proxy supervisor must run in the primary process');
  const restartDelayMs = options.restartDelayMs ?? 100;
  const maxRestartDelayMs = options.maxRestartDelayMs ?? 10_000;
  const stableAfterMs = options.stableAfterMs ?? 10_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 35_000;
  const slots: Slot[] = [];
  let stopping: Promise<boolean> | undefined;
  let starting: Promise<SupervisedProxy> | undefined;

  const fork = (slot: Slot): void => {
    cluster.setupPrimary({ exec: options.exec, args: [...options.args] });
    const worker = cluster.fork({ [PROXY_WORKER_SLOT_ENV]: String(slot.index) });
    slot.worker = worker;
    slot.forkedAt = Date.now();
    slot.exited = new Promise((resolve) => (slot.markExited = resolve));
    worker.on('message', (message: unknown) => {
      if (slot.worker !== worker || !isMessage<ListeningMessage>(message, 'switchboard-proxy:listening'))
        return;
      if (slot.onListening !== undefined) slot.onListening(message);
      else
        options.log(
          `switchboard proxy: worker ${slot.index} restarted (pid ${worker.process.pid}) and serves`,
        );
    });
    worker.on('exit', (code, signal) => onExit(slot, worker, code, signal));
    worker.on('error', () => undefined); // a send to an exiting worker; 'exit' tells the rest
  };

  const onExit = (slot: Slot, worker: Worker, code: number | null, signal: string | null): void => {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.markExited(code);
    const how = signal === null ? `code ${code}` : `signal ${signal}`;
    if (slot.onEarlyExit !== undefined) {
      slot.onEarlyExit(
        `worker ${slot.index} (pid ${worker.process.pid}) exited with ${how} before listening`,
      );
      return;
    }
    if (stopping !== undefined) {
      if (code !== 0)
        options.log(
          `switchboard proxy: worker ${slot.index} (pid ${worker.process.pid}) stopped with ${how}`,
        );
      return;
    }
    if (Date.now() - slot.forkedAt >= stableAfterMs) slot.failures = 0;
    const delay = Math.min(restartDelayMs * 2 ** slot.failures, maxRestartDelayMs);
    slot.failures++;
    options.log(
      `switchboard proxy: worker ${slot.index} (pid ${worker.process.pid}) exited unexpectedly with ${how}; restarting it in ${delay} ms`,
    );
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (stopping === undefined) fork(slot);
    }, delay);
  };

  const startSlot = (slot: Slot): Promise<ListeningMessage> =>
    new Promise((resolve, reject) => {
      slot.onListening = (message) => {
        slot.onListening = undefined;
        slot.onEarlyExit = undefined;
        resolve(message);
      };
      slot.onEarlyExit = (reason) => {
        slot.onListening = undefined;
        slot.onEarlyExit = undefined;
        reject(new Error(reason));
      };
      fork(slot);
    });

  const startAll = async (): Promise<SupervisedProxy> => {
    for (let index = 1; index <= options.workers; index++) {
      slots.push({
        index,
        worker: undefined,
        forkedAt: 0,
        failures: 0,
        restartTimer: undefined,
        onListening: undefined,
        onEarlyExit: undefined,
        exited: Promise.resolve(null),
        markExited: () => undefined,
      });
    }
    const [first, ...others] = slots as [Slot, ...Slot[]];
    const firstListening = await startSlot(first);
    if (stopping !== undefined) throw new Error('stopped while the workers were starting');
    await Promise.all(others.map(startSlot));
    return { listeners: firstListening.listeners, generation: firstListening.generation };
  };

  const stopAll = async (signal: NodeJS.Signals): Promise<boolean> => {
    const stop: StopMessage = { type: 'switchboard-proxy:stop', signal };
    for (const slot of slots) {
      clearTimeout(slot.restartTimer);
      const worker = slot.worker;
      if (worker === undefined) continue;
      if (worker.isConnected()) worker.send(stop, undefined, {}, () => undefined);
      else worker.process.kill(signal);
    }
    const codes = slots.map((slot) => (slot.worker === undefined ? Promise.resolve(0) : slot.exited));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), stopTimeoutMs);
    });
    const outcome = await Promise.race([Promise.all(codes), timedOut]);
    clearTimeout(timer);
    if (outcome !== 'timeout') return outcome.every((code) => code === 0);
    for (const slot of slots) {
      if (slot.worker === undefined) continue;
      options.log(
        `switchboard proxy: worker ${slot.index} (pid ${slot.worker.process.pid}) did not stop within ${stopTimeoutMs} ms; killing it`,
      );
      slot.worker.process.kill('SIGKILL');
    }
    await Promise.all(slots.map((slot) => slot.exited));
    return false;
  };

  return {
    start() {
      if (stopping !== undefined) return Promise.reject(new Error('the proxy supervisor is stopped'));
      starting ??= startAll().catch(async (error: unknown) => {
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
    pids() {
      return slots.flatMap((slot) =>
        slot.worker?.process.pid === undefined ? [] : [slot.worker.process.pid],
      );
    },
  };
}

function isMessage<M extends { type: string }>(message: unknown, type: M['type']): message is M {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}
