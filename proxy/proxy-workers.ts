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
 * Starting, restarting and stopping the workers is the shared worker pool's
 * (supervision/worker-pool.ts): worker 1 first, restarts with back-off, stop by an IPC
 * message, a kill after `stopTimeoutMs`.
 */
import cluster from 'node:cluster';
import { createWorkerPool, isMessageOf } from '../supervision/worker-pool';
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
    if (isMessageOf<StopMessage>(message, 'switchboard-proxy:stop')) requestStop(message.signal);
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

/** @throws TypeError when `workers` is not a whole number ≥ 1, Error outside the primary process */
export function createProxySupervisor(options: ProxySupervisorOptions): ProxySupervisor {
  const pool = createWorkerPool<ListeningMessage>({
    ...options,
    logPrefix: 'switchboard proxy',
    stopTimeoutMs: options.stopTimeoutMs ?? 35_000,
    env: (slot) => ({ [PROXY_WORKER_SLOT_ENV]: String(slot.index) }),
    listening: (message) =>
      isMessageOf<ListeningMessage>(message, 'switchboard-proxy:listening') ? message : undefined,
    stopMessage: (signal): StopMessage => ({ type: 'switchboard-proxy:stop', signal }),
  });
  return {
    async start() {
      const first = await pool.start();
      return { listeners: first.listeners, generation: first.generation };
    },
    stop: (signal) => pool.stop(signal),
    kill: () => pool.kill(),
    pids() {
      return pool.slots.flatMap((slot) =>
        slot.worker?.process.pid === undefined ? [] : [slot.worker.process.pid],
      );
    },
  };
}
