/**
 * Questions a supervisor asks its workers over the cluster IPC channel, for an admin
 * endpoint it serves on their behalf (the policy server's and the proxy's): `/stats` and the
 * like, answered by each worker from its own runtime. Nothing on a request path uses this.
 *
 * Messages are `<prefix>:ask` `{id, what}` and `<prefix>:answer` `{id, body | error}`; each
 * supervisor kind has its own prefix.
 */
import type { Worker } from 'node:cluster';
import { isMessageOf, type PoolSlot } from './worker-pool';

interface AskMessage {
  readonly type: string;
  readonly id: number;
  readonly what: string;
}

interface AnswerMessage {
  readonly type: string;
  readonly id: number;
  readonly body?: unknown;
  readonly error?: string;
}

interface PendingAsk {
  readonly resolve: (body: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly slot: PoolSlot;
}

/** The supervisor's side: asks, and settles them from the workers' messages. */
export interface WorkerQuestions<What extends string> {
  /** Asks one worker; rejects when it is not running, exits, or does not answer in time. */
  ask(slot: PoolSlot, what: What): Promise<unknown>;
  /** For the pool's `onMessage`: settles the question `message` answers, if it is an answer. */
  onMessage(message: unknown): void;
  /** For the pool's `onExit`: fails the questions a worker that exited left unanswered. */
  onExit(slot: PoolSlot): void;
}

export function createWorkerQuestions<What extends string>(
  prefix: string,
  timeoutMs: number,
): WorkerQuestions<What> {
  const pending = new Map<number, PendingAsk>();
  let nextId = 1;
  const settle = (id: number): PendingAsk | undefined => {
    const ask = pending.get(id);
    if (ask === undefined) return undefined;
    pending.delete(id);
    clearTimeout(ask.timer);
    return ask;
  };
  return {
    ask: (slot, what) =>
      new Promise((resolve, reject) => {
        const worker = slot.worker;
        if (worker === undefined || !worker.isConnected()) {
          reject(new Error(`worker ${slot.index} is not running`));
          return;
        }
        const id = nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`worker ${slot.index} did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve, reject, timer, slot });
        const message: AskMessage = { type: `${prefix}:ask`, id, what };
        worker.send(message, undefined, {}, (error: Error | null) => {
          if (error !== null)
            settle(id)?.reject(new Error(`worker ${slot.index} cannot be asked: ${error.message}`));
        });
      }),
    onMessage(message) {
      if (!isMessageOf<AnswerMessage>(message, `${prefix}:answer`)) return;
      const ask = settle(message.id);
      if (ask === undefined) return;
      if (message.error !== undefined) ask.reject(new Error(`worker ${ask.slot.index}: ${message.error}`));
      else ask.resolve(message.body);
    },
    onExit(slot) {
      for (const [id, ask] of pending) {
        if (ask.slot === slot) settle(id)?.reject(new Error(`worker ${slot.index} exited`));
      }
    },
  };
}

/**
 * The worker's side: when `message` is a question, answers it with `answer(what)` (or the
 * error it throws) and returns true; false for any other message.
 */
export function answerQuestion(
  worker: Worker,
  prefix: string,
  message: unknown,
  answer: (what: string) => unknown,
): boolean {
  if (!isMessageOf<AskMessage>(message, `${prefix}:ask`)) return false;
  let reply: AnswerMessage;
  try {
    reply = { type: `${prefix}:answer`, id: message.id, body: answer(message.what) };
  } catch (error) {
    reply = { type: `${prefix}:answer`, id: message.id, error: (error as Error).message };
  }
  // The supervisor may be gone (the worker then exits): nothing to tell.
  if (worker.isConnected()) worker.send(reply, undefined, {}, () => undefined);
  return true;
}
