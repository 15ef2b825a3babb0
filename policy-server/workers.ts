/**
 * Several policy server processes on one address, so that a server uses every core.
 *
 * A supervisor (the process the operator started) forks workers with `node:cluster`; each
 * worker runs a whole policy server — its own configuration runtime, watcher and reloads —
 * and binds the same `HOST:PORT`. Under cluster, a worker's `listen` is handed to the
 * supervisor, which owns the one listening socket and passes accepted connections to the
 * workers in turn (cluster's default round-robin scheduling). grpc-js listens through a
 * plain `http2` server, so this needs nothing from grpc-js; test/cli/workers.test.ts checks
 * that connections reach different worker processes.
 *
 * The supervisor starts worker 1 first and the others once it listens, so that a
 * configuration that does not load is reported once, not once per worker. Workers join the
 * socket by asking for the same address (port 0 included: they all land on the port the
 * first one got); a worker restarted while none listens asks for that port explicitly.
 *
 * It restarts a worker that exits unexpectedly, after a delay that doubles with each
 * consecutive failure of that worker. On stop it passes the signal on to every worker (as
 * an IPC message), each drains gracefully, and it waits for them. Forking, restarting and
 * stopping are the shared worker pool's (supervision/worker-pool.ts), as for the proxy.
 *
 * The admin endpoint, when asked for, runs in the supervisor: it stays up while a worker
 * restarts, and it answers from every worker by asking them over the cluster IPC channel
 * (`/stats` sums their counters and lists each; `/config` is the first serving worker's,
 * with each worker's generation). Nothing on the Check/Report path uses IPC.
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import {
  createAdminEndpoint,
  describeConfig,
  describeStats,
  type AdminEndpoint,
  type AdminStatsView,
} from './admin-endpoint';
import type { PolicyServer } from './policy-server';
import { createWorkerPool, isMessageOf, type WorkerPool } from '../supervision/worker-pool';
import { answerQuestion, createWorkerQuestions } from '../supervision/worker-questions';

/** Environment of a worker: its slot number, 1 to N. */
export const WORKER_SLOT_ENV = 'SWITCHBOARD_WORKER_SLOT';
/** Environment of a worker: the address it binds (the supervisor's port once known). */
export const WORKER_ADDRESS_ENV = 'SWITCHBOARD_WORKER_ADDRESS';

/** Worker to supervisor: it serves. */
interface ListeningMessage {
  readonly type: 'switchboard:listening';
  readonly address: string;
  readonly port: number;
  readonly generation: number;
  readonly resources: number;
}

/** The admin endpoint's questions to a worker (supervision/worker-questions.ts). */
type Question = 'config' | 'stats';
const QUESTIONS = 'switchboard';

/** Supervisor to worker: drain and exit, as on `signal`. */
interface StopMessage {
  readonly type: 'switchboard:stop';
  readonly signal: NodeJS.Signals;
}

/**
 * The number of workers a `--workers` value asks for: a whole number ≥ 1, or `0` / `auto`
 * for one per CPU (`os.availableParallelism()`). Undefined when the value is neither.
 */
export function parseWorkerCount(value: string): number | undefined {
  if (value === 'auto' || value === '0') return availableParallelism();
  if (!/^[1-9]\d{0,3}$/.test(value)) return undefined;
  return Number(value);
}

/** This process's slot when a supervisor forked it as a worker; undefined otherwise. */
export function supervisedWorkerSlot(): number | undefined {
  const slot = process.env[WORKER_SLOT_ENV];
  if (!cluster.isWorker || slot === undefined) return undefined;
  return Number(slot);
}

/** A worker's side of the IPC channel. */
export interface SupervisorLink {
  /** Tells the supervisor the server listens. */
  reportListening(listening: { readonly address: string; readonly port: number }): void;
  /** Resolves with the signal the supervisor received when it asks this worker to stop. */
  readonly stopRequested: Promise<NodeJS.Signals>;
  /** Stops answering and lets the channel go, so that the worker can exit. */
  close(): void;
}

/**
 * Connects a worker's policy server to its supervisor: answers the admin endpoint's
 * questions from the server's runtime.
 * @throws Error when this process is not a cluster worker
 */
export function connectToSupervisor(server: PolicyServer, configDir: string | undefined): SupervisorLink {
  const worker = cluster.worker;
  if (worker === undefined) throw new Error('connectToSupervisor: this process is not a cluster worker');
  let requestStop: (signal: NodeJS.Signals) => void = () => undefined;
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => (requestStop = resolve));
  const onMessage = (message: unknown): void => {
    if (isMessageOf<StopMessage>(message, 'switchboard:stop')) {
      requestStop(message.signal);
      return;
    }
    answerQuestion(worker, QUESTIONS, message, (what) => {
      const runtime = server.runtime;
      if (what === 'stats') return describeStats(runtime);
      return runtime === undefined ? undefined : describeConfig(runtime, configDir);
    });
  };
  worker.on('message', onMessage);
  return {
    stopRequested,
    reportListening(listening) {
      const message: ListeningMessage = {
        type: 'switchboard:listening',
        address: listening.address,
        port: listening.port,
        generation: server.generation,
        resources: server.snapshot?.resources.length ?? 0,
      };
      if (worker.isConnected()) worker.send(message, undefined, {}, () => undefined);
    },
    close() {
      worker.off('message', onMessage);
      // Marks the disconnect as intended (cluster would exit the process at once otherwise)
      // and lets the process exit with the code it set.
      if (worker.isConnected()) worker.disconnect();
    },
  };
}

/** Options of {@link createWorkerSupervisor}. */
export interface WorkerSupervisorOptions {
  /** How many workers to run, ≥ 1. */
  readonly workers: number;
  /** The script a worker runs (the CLI), and its arguments: it must call {@link connectToSupervisor}. */
  readonly exec: string;
  readonly args: readonly string[];
  /** `HOST:PORT` the workers share; port 0 picks one free port for all of them. */
  readonly address: string;
  /** `HOST:PORT` of the admin endpoint, run by the supervisor. Default: none. */
  readonly adminAddress?: string;
  /** Where the supervisor writes what an operator should see (restarts), one line per call. */
  readonly log: (line: string) => void;
  /** Delay before the first restart of a worker, in milliseconds; doubles per consecutive failure. Default 100. */
  readonly restartDelayMs?: number;
  /** Longest delay between restarts, in milliseconds. Default 10000. */
  readonly maxRestartDelayMs?: number;
  /** A worker that ran this long before exiting restarts after the first delay again. Default 10000 ms. */
  readonly stableAfterMs?: number;
  /** How long the admin endpoint waits for a worker's answer, in milliseconds. Default 1000. */
  readonly askTimeoutMs?: number;
  /** How long `stop()` waits for workers to drain before killing them, in milliseconds. Default 10000. */
  readonly stopTimeoutMs?: number;
}

/** Where the workers listen, once all do. */
export interface SupervisedListening {
  readonly address: string;
  readonly port: number;
  readonly admin?: { readonly address: string; readonly port: number };
  /** Generation and resource count worker 1 loaded. */
  readonly generation: number;
  readonly resources: number;
}

/** The supervisor; create it with {@link createWorkerSupervisor}. */
export interface WorkerSupervisor {
  /**
   * Starts the admin endpoint (when asked) and the workers; resolves once every worker
   * listens. Rejects when a worker exits before it listens (the worker has written why
   * on stderr) or the admin address cannot be bound; every worker is stopped then.
   */
  start(): Promise<SupervisedListening>;
  /**
   * Asks every worker to stop as on `signal`, waits for them to exit (killing those still running
   * after `stopTimeoutMs`), and closes the admin endpoint. Resolves true when every
   * worker exited with code 0. Idempotent: every call returns the same promise.
   */
  stop(signal: NodeJS.Signals): Promise<boolean>;
  /** Kills every worker at once (SIGKILL), for a second signal. */
  kill(): void;
}

/**
 * Creates a supervisor; nothing is forked until `start()`.
 * @throws TypeError when `workers` is not a whole number ≥ 1
 */
export function createWorkerSupervisor(options: WorkerSupervisorOptions): WorkerSupervisor {
  const questions = createWorkerQuestions<Question>(QUESTIONS, options.askTimeoutMs ?? 1_000);
  /** The address with the port the first worker bound; the address as asked until then. */
  let boundAddress = options.address;

  const admin: AdminEndpoint | undefined =
    options.adminAddress === undefined
      ? undefined
      : createAdminEndpoint({
          address: options.adminAddress,
          source: {
            draining: () => pool.stopping(),
            readiness: () => {
              const serving = pool.slots.filter((s) => s.serving).length;
              const workers = pool.slots.length;
              if (pool.stopping()) return { ready: false, reason: 'draining' };
              if (!pool.started()) return { ready: false, reason: 'workers are starting', serving, workers };
              if (serving === 0) return { ready: false, reason: 'no worker is serving', serving, workers };
              return { ready: true, serving, workers };
            },
            config: () => configView(),
            stats: () => statsView(),
          },
        });

  const pool: WorkerPool<ListeningMessage> = createWorkerPool<ListeningMessage>({
    ...options,
    logPrefix: 'switchboard',
    stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
    // Cluster shares one listening socket per address *as asked* (port 0 included): while a
    // worker holds it, a new worker must ask for the same address to join it. Once none
    // does, the socket is gone, and asking for port 0 again would pick a new port: ask for
    // the port the first worker got instead.
    env: (slot) => ({
      [WORKER_SLOT_ENV]: String(slot.index),
      [WORKER_ADDRESS_ENV]: pool.slots.some((s) => s.serving) ? options.address : boundAddress,
    }),
    listening: (message) =>
      isMessageOf<ListeningMessage>(message, 'switchboard:listening') ? message : undefined,
    firstListening: (listening) => {
      boundAddress = listening.address;
    },
    onMessage: (_slot, message) => questions.onMessage(message),
    onExit: (slot) => questions.onExit(slot),
    stopMessage: (signal): StopMessage => ({ type: 'switchboard:stop', signal }),
    ...(admin === undefined ? {} : { companion: admin }),
  });

  const ask = questions.ask;

  const configView = async (): Promise<object | undefined> => {
    const serving = pool.slots.filter((s) => s.serving);
    const answers = await Promise.allSettled(serving.map((slot) => ask(slot, 'config')));
    let view: Record<string, unknown> | undefined;
    const workers = serving.map((slot, i) => {
      const answer = answers[i] as PromiseSettledResult<unknown>;
      if (answer.status === 'rejected')
        return { worker: slot.index, error: (answer.reason as Error).message };
      const body = answer.value as Record<string, unknown> | undefined;
      view ??= body;
      return { worker: slot.index, pid: slot.worker?.process.pid, generation: body?.['generation'] };
    });
    return view === undefined ? undefined : { ...view, workers };
  };

  const statsView = async (): Promise<object> => {
    const live = pool.slots.filter((s) => s.worker !== undefined);
    const answers = await Promise.allSettled(live.map((slot) => ask(slot, 'stats')));
    // Summed by name, so that a counter the dispatcher gains is summed too.
    const total: Record<string, number> = {};
    const workers = live.map((slot, i) => {
      const answer = answers[i] as PromiseSettledResult<unknown>;
      if (answer.status === 'rejected')
        return { worker: slot.index, error: (answer.reason as Error).message };
      const view = answer.value as AdminStatsView;
      for (const [name, value] of Object.entries(view.dispatcher ?? {})) {
        if (typeof value === 'number') total[name] = (total[name] ?? 0) + value;
      }
      return { worker: slot.index, ...view };
    });
    return {
      pid: process.pid,
      uptimeSeconds: Math.round(process.uptime() * 1000) / 1000,
      dispatcher: total,
      workers,
    };
  };

  return {
    async start() {
      const first = await pool.start();
      return {
        address: first.address,
        port: first.port,
        generation: first.generation,
        resources: first.resources,
        ...(pool.companionAddress() === undefined ? {} : { admin: pool.companionAddress() }),
      };
    },
    stop: (signal) => pool.stop(signal),
    kill: () => pool.kill(),
  };
}
