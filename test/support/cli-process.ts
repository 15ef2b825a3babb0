/**
 * The compiled `switchboard` CLI in a child process, as an operator runs it: its output so
 * far, waits on its lines (bounded), and a stop by its PID. Tests call `stopAllCli()` after
 * each test so that nothing they started outlives it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';

// Compiled to dist/test/support/; the CLI under test is dist/cli/switchboard.js.
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const CLI = path.join(REPO_ROOT, 'dist', 'cli', 'switchboard.js');
/** Starting node processes is slow on a busy machine: generous, but bounded. */
export const WAIT_MS = 20_000;

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A running CLI: its output so far, and waits on it. */
export interface Running {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly finished: Promise<Finished>;
  stdout(): string;
  stderr(): string;
  /** The first match of `pattern` in a line of `stream`, waiting for it (bounded). */
  line(stream: 'stdout' | 'stderr', pattern: RegExp): Promise<RegExpExecArray>;
}

/** Every CLI a test started; any still running after the test is killed by its pid. */
const started = new Set<Running>();

export function startCli(
  args: readonly string[],
  options: { detached?: boolean; env?: Readonly<Record<string, string>> } = {},
): Running {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
    env: { ...process.env, ...options.env },
  });
  if (child.pid === undefined) throw new Error('the CLI did not start');
  const output = { stdout: '', stderr: '' };
  const waiters = new Set<() => void>();
  for (const stream of ['stdout', 'stderr'] as const) {
    child[stream]?.setEncoding('utf8').on('data', (chunk: string) => {
      output[stream] += chunk;
      for (const wake of waiters) wake();
    });
  }
  const finished = new Promise<Finished>((resolve) => {
    child.on('close', (code, signal) => {
      for (const wake of waiters) wake();
      resolve({ code, signal });
    });
  });
  const running: Running = {
    child,
    pid: child.pid,
    finished,
    stdout: () => output.stdout,
    stderr: () => output.stderr,
    line(stream, pattern) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          for (const line of output[stream].split('\n')) {
            const match = pattern.exec(line);
            if (match !== null) {
              done();
              resolve(match);
              return;
            }
          }
          if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(
              new Error(
                `the CLI exited before a ${stream} line matched ${pattern}; stderr: ${output.stderr}`,
              ),
            );
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new Error(`no ${stream} line matched ${pattern} within ${WAIT_MS} ms; stderr: ${output.stderr}`),
          );
        }, WAIT_MS);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
  started.add(running);
  return running;
}

export async function stopCli(running: Running, signal: NodeJS.Signals = 'SIGTERM'): Promise<Finished> {
  process.kill(running.pid, signal);
  return within(running.finished, WAIT_MS, 'the CLI to exit');
}

export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`waited ${ms} ms for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Kills (SIGKILL, by PID) every CLI still running, and forgets them all. */
export function stopAllCli(): void {
  for (const running of started) {
    if (running.child.exitCode === null && running.child.signalCode === null)
      process.kill(running.pid, 'SIGKILL');
  }
  started.clear();
}
