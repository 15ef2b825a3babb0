/**
 * Evaluating a compiled policy: a pool of WebAssembly instances, each with its own memory
 * and built-ins, so that no two evaluations ever share one.
 *
 * - On the event loop (the default): an evaluation takes an idle instance (making one
 *   when none is idle), runs synchronously — a few microseconds for typical policies, less
 *   than a hop to another thread costs — and gives it back. An instance whose evaluation
 *   threw is dropped (its heap may be inconsistent), and so is one whose memory grew past
 *   {@link MAX_RETAINED_MEMORY_BYTES} (a large input grows an instance for good). Such an
 *   evaluation cannot be interrupted, so there is no timeout.
 * - On worker threads (`evaluationThreads` ≥ 1): each thread holds one instance and
 *   evaluates one input at a time; inputs wait in a bounded queue for a free thread. An
 *   evaluation that exceeds its timeout is answered as timed out, and its thread is
 *   terminated and replaced — the only way to stop WebAssembly that is running.
 *
 * Base data (`setData`) reaches every instance, present and future, before the next
 * evaluation: on the event loop at once; on threads as a message each thread handles
 * before any later input.
 */
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { LoadedPolicy } from '@open-policy-agent/opa-wasm';
import type { BuiltinClock } from './builtins';
import type { WasmPolicy } from './wasm-policy';

/** An instance whose memory grew beyond this is not reused. */
export const MAX_RETAINED_MEMORY_BYTES = 32 * 1024 * 1024;

/** What one evaluation produced: the module's result set, or why there is none. */
export type EvaluationResult =
  | { readonly ok: true; readonly resultSet: unknown; readonly micros: number }
  | { readonly ok: false; readonly error: string; readonly timedOut: boolean; readonly micros: number };

/** Counters of a pool, for the handler's stats. */
export interface EvaluatorStats {
  /** `event-loop` or `threads`. */
  readonly mode: string;
  /** Instances made since the pool started (threads: threads started). */
  readonly instancesCreated: number;
  /** Instances dropped after an error, a timeout or memory growth. */
  readonly instancesDiscarded: number;
  /** Instances holding memory now. */
  readonly instances: number;
  /** Evaluations waiting for a thread (threads only). */
  readonly queued: number;
}

/** A pool that evaluates one policy version. */
export interface PolicyEvaluator {
  readonly policy: WasmPolicy;
  /**
   * Evaluates `input` at `entrypoint`. `nowMs` is the evaluation's time (time.now_ns).
   * Never throws: failures are results.
   */
  evaluate(input: unknown, entrypoint: string, nowMs: number): EvaluationResult | Promise<EvaluationResult>;
  /** Replaces the base document (`data`) for every later evaluation. */
  setData(data: unknown): void;
  stats(): EvaluatorStats;
  /** Lets evaluations in flight finish, then releases every instance. Idempotent. */
  close(): Promise<void>;
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { message?: unknown }).message === 'string'
  )
    return (error as { message: string }).message; // the SDK throws plain objects for missing built-ins
  return String(error);
}

interface PooledInstance {
  readonly policy: LoadedPolicy;
  readonly clock: BuiltinClock;
}

/** Evaluation on the event loop; see the file comment. */
export class EventLoopEvaluator implements PolicyEvaluator {
  private readonly idle: PooledInstance[] = [];
  private data: unknown = {};
  private created = 0;
  private discarded = 0;
  private closed = false;

  constructor(readonly policy: WasmPolicy) {
    // One instance ready before the first request.
    this.idle.push(this.create());
  }

  evaluate(input: unknown, entrypoint: string, nowMs: number): EvaluationResult {
    const started = performance.now();
    if (this.closed) return { ok: false, error: 'the evaluator is closed', timedOut: false, micros: 0 };
    const id = this.policy.entrypoints[entrypoint];
    if (id === undefined) {
      return { ok: false, error: `the policy has no entrypoint ${entrypoint}`, timedOut: false, micros: 0 };
    }
    const instance = this.idle.pop() ?? this.create();
    instance.clock.nowMs = nowMs;
    let resultSet: unknown;
    try {
      resultSet = instance.policy.evaluate(input, id);
    } catch (error) {
      this.discarded++;
      return { ok: false, error: errorText(error), timedOut: false, micros: micros(started) };
    }
    if (instance.policy.mem.buffer.byteLength > MAX_RETAINED_MEMORY_BYTES) this.discarded++;
    else this.idle.push(instance);
    return { ok: true, resultSet, micros: micros(started) };
  }

  setData(data: unknown): void {
    this.data = data;
    for (const instance of this.idle) instance.policy.setData(data as object);
  }

  stats(): EvaluatorStats {
    return {
      mode: 'event-loop',
      instancesCreated: this.created,
      instancesDiscarded: this.discarded,
      instances: this.idle.length,
      queued: 0,
    };
  }

  close(): Promise<void> {
    this.closed = true;
    this.idle.length = 0;
    return Promise.resolve();
  }

  private create(): PooledInstance {
    const clock: BuiltinClock = { nowMs: 0 };
    const policy = this.policy.instantiate(clock);
    policy.setData(this.data as object);
    this.created++;
    return { policy, clock };
  }
}

function micros(startedMs: number): number {
  return Math.round((performance.now() - startedMs) * 1000);
}

/** Main thread to evaluation thread. */
export type ThreadRequest =
  | { readonly type: 'data'; readonly data: unknown }
  | {
      readonly type: 'evaluate';
      readonly id: number;
      readonly input: unknown;
      readonly entrypoint: number;
      readonly nowMs: number;
    };

/** Evaluation thread to main thread. */
export type ThreadReply =
  | { readonly type: 'ready' }
  | { readonly type: 'failed'; readonly error: string }
  | {
      readonly type: 'result';
      readonly id: number;
      readonly ok: true;
      readonly resultSet: unknown;
      readonly micros: number;
    }
  | {
      readonly type: 'result';
      readonly id: number;
      readonly ok: false;
      readonly error: string;
      readonly micros: number;
    };

interface PendingEvaluation {
  readonly id: number;
  readonly message: ThreadRequest;
  readonly resolve: (result: EvaluationResult) => void;
  readonly queuedAt: number;
}

interface EvaluationThread {
  readonly worker: Worker;
  current: PendingEvaluation | undefined;
  timer: NodeJS.Timeout | undefined;
  startedAt: number;
  /** Resolves once the thread has loaded the policy; rejects if it cannot. */
  readonly ready: Promise<void>;
  loaded: boolean;
}

export interface ThreadEvaluatorOptions {
  /** How many threads. At least 1. */
  readonly threads: number;
  /** How long one evaluation may run before its thread is replaced, in ms; undefined: no limit. */
  readonly timeoutMs: number | undefined;
  /** Evaluations that may wait for a thread; more are answered at once as failed. Default 1024 per thread. */
  readonly maxQueued?: number;
  /** Where thread failures are reported. */
  readonly onThreadError: (message: string) => void;
}

/**
 * Evaluation on worker threads; see the file comment. Make one with {@link ThreadEvaluator.create},
 * which waits until every thread has loaded the policy.
 */
export class ThreadEvaluator implements PolicyEvaluator {
  private readonly threads: EvaluationThread[] = [];
  private readonly queue: PendingEvaluation[] = [];
  private data: unknown = {};
  private nextId = 1;
  private created = 0;
  private discarded = 0;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private readonly maxQueued: number;
  /** Why threads cannot start, once a replacement failed to: evaluations then fail at once. */
  private broken: string | undefined;

  private constructor(
    readonly policy: WasmPolicy,
    private readonly options: ThreadEvaluatorOptions,
  ) {
    this.maxQueued = options.maxQueued ?? 1024 * options.threads;
    for (let i = 0; i < options.threads; i++) this.threads.push(this.start());
  }

  /**
   * Starts the threads and waits until each has loaded the policy.
   * @throws Error when a thread cannot load it (the others are stopped)
   */
  static async create(policy: WasmPolicy, options: ThreadEvaluatorOptions): Promise<ThreadEvaluator> {
    const evaluator = new ThreadEvaluator(policy, options);
    try {
      await Promise.all(evaluator.threads.map((t) => t.ready));
    } catch (error) {
      await Promise.all(evaluator.threads.map((t) => t.worker.terminate()));
      throw error;
    }
    return evaluator;
  }

  evaluate(input: unknown, entrypoint: string, nowMs: number): EvaluationResult | Promise<EvaluationResult> {
    if (this.closed) return { ok: false, error: 'the evaluator is closed', timedOut: false, micros: 0 };
    if (this.broken !== undefined) return { ok: false, error: this.broken, timedOut: false, micros: 0 };
    const id = this.policy.entrypoints[entrypoint];
    if (id === undefined) {
      return { ok: false, error: `the policy has no entrypoint ${entrypoint}`, timedOut: false, micros: 0 };
    }
    if (this.queue.length >= this.maxQueued) {
      return {
        ok: false,
        error: `${this.queue.length} evaluations are already waiting for a thread`,
        timedOut: false,
        micros: 0,
      };
    }
    return new Promise((resolve) => {
      const requestId = this.nextId++;
      const pending: PendingEvaluation = {
        id: requestId,
        message: { type: 'evaluate', id: requestId, input, entrypoint: id, nowMs },
        resolve,
        queuedAt: performance.now(),
      };
      // A thread still starting (a replacement) is used only when no loaded one is free.
      const free =
        this.threads.find((t) => t.current === undefined && t.loaded) ??
        this.threads.find((t) => t.current === undefined);
      if (free !== undefined) this.dispatch(free, pending);
      else this.queue.push(pending);
    });
  }

  setData(data: unknown): void {
    this.data = data;
    for (const thread of this.threads)
      thread.worker.postMessage({ type: 'data', data } satisfies ThreadRequest);
  }

  stats(): EvaluatorStats {
    return {
      mode: 'threads',
      instancesCreated: this.created,
      instancesDiscarded: this.discarded,
      instances: this.threads.length,
      queued: this.queue.length,
    };
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      // Evaluations in flight or queued finish on the threads they have.
      while (this.queue.length > 0 || this.threads.some((t) => t.current !== undefined)) {
        await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      }
    }
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  private start(): EvaluationThread {
    const worker = new Worker(path.join(__dirname, 'evaluation-thread.js'), {
      workerData: { module: this.policy.module, data: this.data },
    });
    worker.unref();
    this.created++;
    let loaded: () => void = () => undefined;
    let failed: (error: Error) => void = () => undefined;
    const ready = new Promise<void>((resolve, reject) => {
      loaded = resolve;
      failed = reject;
    });
    ready.catch(() => undefined); // observed by create(), or handled as a failed start
    const thread: EvaluationThread = {
      worker,
      current: undefined,
      timer: undefined,
      startedAt: 0,
      ready,
      loaded: false,
    };
    const startFailed = (message: string): void => {
      failed(new Error(message));
      this.options.onThreadError(message);
      this.retire(thread, message);
    };
    worker.on('message', (reply: ThreadReply) => {
      if (reply.type === 'ready') {
        thread.loaded = true;
        loaded();
        if (thread.current !== undefined) this.startTimer(thread);
      } else if (reply.type === 'failed') {
        startFailed(`an evaluation thread could not load the policy: ${reply.error}`);
      } else {
        this.onReply(thread, reply);
      }
    });
    worker.on('error', (error) => {
      if (!thread.loaded) {
        startFailed(`an evaluation thread could not start: ${error.message}`);
        return;
      }
      this.options.onThreadError(`an evaluation thread failed: ${error.message}`);
      this.replace(thread, `the evaluation thread failed: ${error.message}`, false);
    });
    return thread;
  }

  /**
   * A thread that could not start leaves the pool without a replacement (which would fail
   * the same way); when none is left, every waiting and later evaluation fails at once.
   */
  private retire(thread: EvaluationThread, message: string): void {
    const index = this.threads.indexOf(thread);
    if (index < 0) return;
    clearTimeout(thread.timer);
    void thread.worker.terminate();
    this.threads.splice(index, 1);
    const pending = thread.current;
    thread.current = undefined;
    pending?.resolve({ ok: false, error: message, timedOut: false, micros: 0 });
    if (this.threads.length === 0) {
      this.broken = `no evaluation thread is running: ${message}`;
      for (const waiting of this.queue.splice(0)) {
        waiting.resolve({ ok: false, error: this.broken, timedOut: false, micros: 0 });
      }
      this.wakeIdleWaiters();
    }
  }

  private dispatch(thread: EvaluationThread, pending: PendingEvaluation): void {
    thread.current = pending;
    thread.startedAt = performance.now();
    thread.worker.postMessage(pending.message);
    // The limit is on evaluating, not on a replacement thread's start-up.
    if (thread.loaded) this.startTimer(thread);
  }

  private startTimer(thread: EvaluationThread): void {
    if (this.options.timeoutMs === undefined) return;
    const limit = this.options.timeoutMs;
    thread.startedAt = performance.now();
    thread.timer = setTimeout(
      () => this.replace(thread, `the evaluation did not finish within ${limit} ms`, true),
      limit,
    );
  }

  private onReply(thread: EvaluationThread, reply: ThreadReply): void {
    if (reply.type !== 'result' || thread.current?.id !== reply.id) return;
    const pending = thread.current;
    clearTimeout(thread.timer);
    thread.current = undefined;
    pending.resolve(
      reply.ok
        ? { ok: true, resultSet: reply.resultSet, micros: reply.micros }
        : { ok: false, error: reply.error, timedOut: false, micros: reply.micros },
    );
    this.next(thread);
  }

  /** Answers the thread's evaluation as failed, and puts a fresh thread in its place. */
  private replace(thread: EvaluationThread, error: string, timedOut: boolean): void {
    const index = this.threads.indexOf(thread);
    if (index < 0) return;
    clearTimeout(thread.timer);
    this.discarded++;
    void thread.worker.terminate();
    const pending = thread.current;
    thread.current = undefined;
    pending?.resolve({
      ok: false,
      error,
      timedOut,
      micros: Math.round((performance.now() - thread.startedAt) * 1000),
    });
    const fresh = this.start();
    this.threads[index] = fresh;
    this.next(fresh);
  }

  private next(thread: EvaluationThread): void {
    const pending = this.queue.shift();
    if (pending !== undefined) {
      this.dispatch(thread, pending);
      return;
    }
    if (this.threads.every((t) => t.current === undefined)) this.wakeIdleWaiters();
  }

  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
