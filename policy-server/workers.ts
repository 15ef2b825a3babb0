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
 * an IPC message, see stopAll), each drains gracefully, and it waits for them.
 *
 * The admin endpoint, when asked for, runs in the supervisor: it stays up while a worker
 * restarts, and it answers from every worker by asking them over the cluster IPC channel
 * (`/stats` sums their counters and lists each; `/config` is the first serving worker's,
 * with each worker's generation). Nothing on the Check/Report path uses IPC.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import {
  createAdminEndpoint,
  describeConfig,
  describeStats,
  type AdminEndpoint,
  type AdminStatsView,
} from './admin-endpoint';
import type { PolicyServer } from './policy-server';

/** Environment of a worker: its slot number, 1 to N. */
export const WORKER_SLOT_ENV = 'SWITCHBOARD_WORKER_SLOT';
/** Environment of a worker: the address it binds (the supervisor's port once known). */
export const WORKER_ADDRESS_ENV = 'SWITCHBOARD_WORKER_ADDRESS';

/** Worker to supervisor. */
type WorkerMessage =
  | {
      readonly type: 'switchboard:listening';
      readonly address: string;
      readonly port: number;
      readonly generation: number;
      readonly resources: number;
    }
  | {
      readonly type: 'switchboard:answer';
      readonly id: number;
      readonly body?: unknown;
      readonly error?: string;
    };

/** Supervisor to worker: a question for the admin endpoint. */
interface AskMessage {
  readonly type: 'switchboard:ask';
  readonly id: number;
  readonly what: 'config' | 'stats';
}

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
    if (isStop(message)) {
      requestStop(message.signal);
      return;
    }
    if (!isAsk(message)) return;
    let answer: WorkerMessage;
    try {
      const runtime = server.runtime;
      const body =
        message.what === 'stats'
          ? describeStats(runtime)
          : runtime === undefined
            ? undefined
            : describeConfig(runtime, configDir);
      answer = { type: 'switchboard:answer', id: message.id, body };
    } catch (error) {
      answer = { type: 'switchboard:answer', id: message.id, error: (error as Error).message };
    }
    // The supervisor may be gone (the worker then exits): nothing to tell.
    if (worker.isConnected()) worker.send(answer, undefined, {}, () => undefined);
  };
  worker.on('message', onMessage);
  return {
    stopRequested,
    reportListening(listening) {
      const message: WorkerMessage = {
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

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  serving: boolean;
  forkedAt: number;
  /** Consecutive unexpected exits, for the back-off. */
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
  /** Settles the wait of start() on this worker. */
  onListening: ((message: Extract<WorkerMessage, { type: 'switchboard:listening' }>) => void) | undefined;
  onEarlyExit: ((reason: string) => void) | undefined;
  /** Resolves stop()'s wait on this worker. */
  exited: Promise<number | null>;
  markExited: (code: number | null) => void;
}

interface PendingAsk {
  readonly resolve: (body: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly slot: Slot;
}

/**
 * Creates a supervisor; nothing is forked until `start()`.
 * @throws TypeError when `workers` is not a whole number ≥ 1
 */
export function createWorkerSupervisor(options: WorkerSupervisorOptions): WorkerSupervisor {
  if (!Number.isInteger(options.workers) || options.workers < 1) {
    throw new TypeError(`workers must be a whole number ≥ 1, got ${options.workers}`);
  }
  if (!cluster.isPrimary) throw new Error('a worker supervisor must run in the primary process');
  const restartDelayMs = options.restartDelayMs ?? 100;
  const maxRestartDelayMs = options.maxRestartDelayMs ?? 10_000;
  const stableAfterMs = options.stableAfterMs ?? 10_000;
  const askTimeoutMs = options.askTimeoutMs ?? 1_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const slots: Slot[] = [];
  const pending = new Map<number, PendingAsk>();
  let nextAskId = 1;
  /** The address with the port the first worker bound; the address as asked until then. */
  let boundAddress = options.address;
  let started = false;
  let stopping: Promise<boolean> | undefined;
  let starting: Promise<SupervisedListening> | undefined;

  const admin: AdminEndpoint | undefined =
    options.adminAddress === undefined
      ? undefined
      : createAdminEndpoint({
          address: options.adminAddress,
          source: {
            draining: () => stopping !== undefined,
            readiness: () => {
              const serving = slots.filter((s) => s.serving).length;
              if (stopping !== undefined) return { ready: false, reason: 'draining' };
              if (!started)
                return { ready: false, reason: 'workers are starting', serving, workers: slots.length };
              if (serving === 0)
                return { ready: false, reason: 'no worker is serving', serving, workers: slots.length };
              return { ready: true, serving, workers: slots.length };
            },
            config: () => configView(),
            stats: () => statsView(),
          },
        });

  const fork = (slot: Slot): void => {
    cluster.setupPrimary({ exec: options.exec, args: [...options.args] });
    // Cluster shares one listening socket per address *as asked* (port 0 included): while a
    // worker holds it, a new worker must ask for the same address to join it. Once none
    // does, the socket is gone, and asking for port 0 again would pick a new port: ask for
    // the port the first worker got instead.
    const address = slots.some((s) => s.serving) ? options.address : boundAddress;
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot.index), [WORKER_ADDRESS_ENV]: address });
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
    if (!isWorkerMessage(message) || slot.worker !== worker) return;
    if (message.type === 'switchboard:listening') {
      slot.serving = true;
      if (slot.onListening !== undefined) slot.onListening(message);
      else options.log(`switchboard: worker ${slot.index} restarted (pid ${worker.process.pid}) and serves`);
      return;
    }
    const ask = pending.get(message.id);
    if (ask === undefined) return;
    pending.delete(message.id);
    clearTimeout(ask.timer);
    if (message.error !== undefined) ask.reject(new Error(`worker ${slot.index}: ${message.error}`));
    else ask.resolve(message.body);
  };

  const onExit = (slot: Slot, worker: Worker, code: number | null, signal: string | null): void => {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.serving = false;
    slot.markExited(code);
    for (const [id, ask] of pending) {
      if (ask.slot !== slot) continue;
      pending.delete(id);
      clearTimeout(ask.timer);
      ask.reject(new Error(`worker ${slot.index} exited`));
    }
    const how = signal === null ? `code ${code}` : `signal ${signal}`;
    if (slot.onEarlyExit !== undefined) {
      slot.onEarlyExit(
        `worker ${slot.index} (pid ${worker.process.pid}) exited with ${how} before listening`,
      );
      return;
    }
    if (stopping !== undefined) {
      if (code !== 0)
        options.log(`switchboard: worker ${slot.index} (pid ${worker.process.pid}) stopped with ${how}`);
      return;
    }
    if (Date.now() - slot.forkedAt >= stableAfterMs) slot.failures = 0;
    const delay = Math.min(restartDelayMs * 2 ** slot.failures, maxRestartDelayMs);
    slot.failures++;
    options.log(
      `switchboard: worker ${slot.index} (pid ${worker.process.pid}) exited unexpectedly with ${how}; ` +
        `restarting it in ${delay} ms`,
    );
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (stopping === undefined) fork(slot);
    }, delay);
  };

  /** Forks a slot's worker and waits until it listens; rejects when it exits first. */
  const startSlot = (slot: Slot): Promise<Extract<WorkerMessage, { type: 'switchboard:listening' }>> =>
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

  const startAll = async (): Promise<SupervisedListening> => {
    const adminListening = await admin?.start();
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
    const [first, ...others] = slots as [Slot, ...Slot[]];
    const firstListening = await startSlot(first);
    if (stopping !== undefined) throw new Error('stopped while the workers were starting');
    boundAddress = firstListening.address;
    await Promise.all(others.map(startSlot));
    started = true;
    return {
      address: firstListening.address,
      port: firstListening.port,
      generation: firstListening.generation,
      resources: firstListening.resources,
      ...(adminListening === undefined ? {} : { admin: adminListening }),
    };
  };

  // Does not wait for start(): workers still starting get the signal too, and start() rejects.
  const stopAll = async (signal: NodeJS.Signals): Promise<boolean> => {
    // The request travels as a message, not as the signal itself: when a terminal signals
    // the whole process group, a worker would get the signal twice, and the second copy can
    // land while the worker exits, when nothing catches it any more (an exit by signal).
    const stop: StopMessage = { type: 'switchboard:stop', signal };
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
      timer = setTimeout(() => resolve('timeout'), stopTimeoutMs);
    });
    const outcome = await Promise.race([Promise.all(codes), timedOut]);
    clearTimeout(timer);
    let clean = true;
    if (outcome === 'timeout') {
      clean = false;
      for (const slot of slots) {
        if (slot.worker === undefined) continue;
        options.log(
          `switchboard: worker ${slot.index} (pid ${slot.worker.process.pid}) did not stop within ` +
            `${stopTimeoutMs} ms; killing it`,
        );
        slot.worker.process.kill('SIGKILL');
      }
      await Promise.all(slots.map((slot) => slot.exited));
    } else {
      clean = outcome.every((code) => code === 0);
    }
    await admin?.close();
    return clean;
  };

  /** Asks one worker; rejects after askTimeoutMs. */
  const ask = (slot: Slot, what: AskMessage['what']): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const worker = slot.worker;
      if (worker === undefined || !worker.isConnected()) {
        reject(new Error(`worker ${slot.index} is not running`));
        return;
      }
      const id = nextAskId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`worker ${slot.index} did not answer within ${askTimeoutMs} ms`));
      }, askTimeoutMs);
      pending.set(id, { resolve, reject, timer, slot });
      const message: AskMessage = { type: 'switchboard:ask', id, what };
      worker.send(message, undefined, {}, (error: Error | null) => {
        if (error === null || !pending.has(id)) return;
        pending.delete(id);
        clearTimeout(timer);
        reject(new Error(`worker ${slot.index} cannot be asked: ${error.message}`));
      });
    });

  const configView = async (): Promise<object | undefined> => {
    const serving = slots.filter((s) => s.serving);
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
    const live = slots.filter((s) => s.worker !== undefined);
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
  };
}

function isStop(message: unknown): message is StopMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'switchboard:stop'
  );
}

function isAsk(message: unknown): message is AskMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'switchboard:ask'
  );
}

function isWorkerMessage(message: unknown): message is WorkerMessage {
  if (typeof message !== 'object' || message === null) return false;
  const type = (message as { type?: unknown }).type;
  return type === 'switchboard:listening' || type === 'switchboard:answer';
}
