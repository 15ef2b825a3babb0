/**
 * An evaluation thread (see evaluator.ts, ThreadEvaluator): holds one instance of the
 * compiled module it was started with and evaluates one input at a time, in the order the
 * main thread sends them. Base data arrives as a message and applies to later inputs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { loadPolicySync } from '@open-policy-agent/opa-wasm';
import { createBuiltins, type BuiltinClock } from './builtins';
import type { ThreadReply, ThreadRequest } from './evaluator';

const port = parentPort;
if (port === null) throw new Error('evaluation-thread.js runs as a worker thread only');

const { module: compiled, data: initialData } = workerData as { module: WebAssembly.Module; data: unknown };
const clock: BuiltinClock = { nowMs: 0 };
let data = initialData;

function post(reply: ThreadReply): void {
  port!.postMessage(reply);
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { message?: unknown }).message === 'string'
  )
    return (error as { message: string }).message;
  return String(error);
}

let policy: ReturnType<typeof loadPolicySync> | undefined;
try {
  policy = loadPolicySync(compiled, undefined, createBuiltins(clock));
  policy.setData(data as object);
  post({ type: 'ready' });
} catch (error) {
  post({ type: 'failed', error: errorText(error) });
}

port.on('message', (message: ThreadRequest) => {
  if (message.type === 'data') {
    data = message.data;
    policy?.setData(data as object);
    return;
  }
  const started = performance.now();
  if (policy === undefined) {
    post({
      type: 'result',
      id: message.id,
      ok: false,
      error: 'the policy did not load in this thread',
      micros: 0,
    });
    return;
  }
  clock.nowMs = message.nowMs;
  try {
    const resultSet: unknown = policy.evaluate(message.input, message.entrypoint);
    post({
      type: 'result',
      id: message.id,
      ok: true,
      resultSet,
      micros: Math.round((performance.now() - started) * 1000),
    });
  } catch (error) {
    // The instance may be inconsistent after a throw: make a fresh one for the next input.
    policy = loadPolicySync(compiled, undefined, createBuiltins(clock));
    policy.setData(data as object);
    post({
      type: 'result',
      id: message.id,
      ok: false,
      error: errorText(error),
      micros: Math.round((performance.now() - started) * 1000),
    });
  }
});
