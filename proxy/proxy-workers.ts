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
 *
 * The admin endpoint (`--admin`), when asked for, runs in the supervisor: it stays up while
 * a worker restarts, and answers by asking every worker over the IPC channel
 * (supervision/worker-questions.ts) — `/stats` lists each worker's view and sums their
 * request and policy counters; `/ready` says how many workers serve.
 */
import cluster from 'node:cluster';
import { createWorkerPool, isMessageOf, type WorkerPool } from '../supervision/worker-pool';
import { answerQuestion, createWorkerQuestions } from '../supervision/worker-questions';
import {
  createProxyAdminEndpoint,
  type ProxyAdminEndpoint,
  type ProxyAdminSource,
  type ProxyAdminStats,
  type ReadyView,
} from './admin-endpoint';
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

/** The admin endpoint's questions to a worker. */
type Question = 'stats' | 'ready';
const QUESTIONS = 'switchboard-proxy';

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

/**
 * Connects a worker to its supervisor; `admin` answers the supervisor's admin endpoint.
 * @throws Error when this process is not a cluster worker
 */
export function connectProxyWorker(admin?: ProxyAdminSource): ProxyWorkerLink {
  const worker = cluster.worker;
  if (worker === undefined) throw new Error('connectProxyWorker: this process is not a cluster worker');
  let requestStop: (signal: NodeJS.Signals) => void = () => undefined;
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => (requestStop = resolve));
  const onMessage = (message: unknown): void => {
    if (isMessageOf<StopMessage>(message, 'switchboard-proxy:stop')) {
      requestStop(message.signal);
      return;
    }
    answerQuestion(worker, QUESTIONS, message, (what) => {
      if (admin === undefined) throw new Error('this worker has no admin view');
      return what === 'ready' ? admin.ready() : admin.stats();
    });
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
  /** `HOST:PORT` of the admin endpoint, served by the supervisor. Default: none. */
  readonly adminAddress?: string;
  /** How long the admin endpoint waits for a worker's answer, in ms. Default 1000. */
  readonly askTimeoutMs?: number;
}

export interface SupervisedProxy {
  readonly listeners: readonly ListeningAddress[];
  readonly generation: number;
  /** Where the admin endpoint listens, when there is one. */
  readonly admin?: { readonly address: string; readonly port: number };
}

/** A worker's entry in the supervisor's `/stats`: its own view, or why it gave none. */
type WorkerStats =
  ({ readonly worker: number } & ProxyAdminStats) | { readonly worker: number; readonly error: string };

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
  const questions = createWorkerQuestions<Question>(QUESTIONS, options.askTimeoutMs ?? 1_000);
  const admin: ProxyAdminEndpoint | undefined =
    options.adminAddress === undefined
      ? undefined
      : createProxyAdminEndpoint({
          address: options.adminAddress,
          source: {
            async ready() {
              const serving = pool.slots.filter((s) => s.serving);
              const counts = { serving: serving.length, workers: pool.slots.length };
              if (pool.stopping()) return { ready: false, reason: 'the proxy is stopping', ...counts };
              if (!pool.started()) return { ready: false, reason: 'workers are starting', ...counts };
              if (serving.length === 0) return { ready: false, reason: 'no worker is serving', ...counts };
              // The generation the first serving worker runs (each reloads on its own).
              const first = (await questions.ask(serving[0]!, 'ready')) as ReadyView;
              return { ...first, ...counts };
            },
            stats: () => stats(),
          },
        });

  const pool: WorkerPool<ListeningMessage> = createWorkerPool<ListeningMessage>({
    ...options,
    logPrefix: 'switchboard proxy',
    stopTimeoutMs: options.stopTimeoutMs ?? 35_000,
    env: (slot) => ({ [PROXY_WORKER_SLOT_ENV]: String(slot.index) }),
    listening: (message) =>
      isMessageOf<ListeningMessage>(message, 'switchboard-proxy:listening') ? message : undefined,
    onMessage: (_slot, message) => questions.onMessage(message),
    onExit: (slot) => questions.onExit(slot),
    stopMessage: (signal): StopMessage => ({ type: 'switchboard-proxy:stop', signal }),
    ...(admin === undefined ? {} : { companion: admin }),
  });

  const stats = async (): Promise<object> => {
    const live = pool.slots.filter((s) => s.worker !== undefined);
    const answers = await Promise.allSettled(live.map((slot) => questions.ask(slot, 'stats')));
    // Summed by name, so that a counter the proxy or the policy client gains is summed too.
    const counters: Record<string, number> = {};
    const policy: Record<string, number> = {};
    const workers: WorkerStats[] = live.map((slot, i) => {
      const answer = answers[i] as PromiseSettledResult<unknown>;
      if (answer.status === 'rejected')
        return { worker: slot.index, error: (answer.reason as Error).message };
      const view = answer.value as ProxyAdminStats;
      sumInto(counters, view.proxy.counters);
      if (view.policy !== null) sumInto(policy, view.policy);
      return { worker: slot.index, ...view };
    });
    return {
      pid: process.pid,
      uptimeSeconds: Math.round(process.uptime()),
      total: { counters, policy },
      workers,
    };
  };

  return {
    async start() {
      const first = await pool.start();
      return {
        listeners: first.listeners,
        generation: first.generation,
        ...(pool.companionAddress() === undefined ? {} : { admin: pool.companionAddress() }),
      };
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

/** Adds each number of `from` to the same name in `into`. */
function sumInto(into: Record<string, number>, from: object): void {
  for (const [name, value] of Object.entries(from)) {
    if (typeof value === 'number') into[name] = (into[name] ?? 0) + value;
  }
}
