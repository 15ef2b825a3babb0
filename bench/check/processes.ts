/**
 * Child processes of `npm run bench:check`: started here, known by PID, stopped by PID.
 * Nothing else is ever signalled.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';

export interface Started {
  readonly name: string;
  readonly pid: number;
  /** `HOST:PORT` the process said it listens on. */
  readonly address: string;
  /** CPU seconds (user + system) the process has used so far, all threads; NaN when /proc is not readable. */
  cpuSeconds(): number;
  /** CPU seconds of its main thread alone (Node's JavaScript thread); NaN when /proc is not readable. */
  mainThreadCpuSeconds(): number;
  /** CPU seconds of the process and every descendant alive now (cluster workers); NaN when /proc is not readable. */
  treeCpuSeconds(): number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Stops, by PID, every process this module started and has not stopped yet (on exit or Ctrl-C). */
export function killAllStarted(): void {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  running.clear();
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clockTicks = Number(out.stdout.trim()) || 100;
  }
  return clockTicks;
}

function cpuSecondsOf(statPath: string): number {
  try {
    const stat = readFileSync(statPath, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return NaN;
  }
}

/** The PIDs of a process's children, from every one of its threads' children lists. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text !== '') out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // gone, or /proc not readable
  }
  return out;
}

/** CPU seconds of `pid` and its descendants (a worker that exited is no longer counted). */
function treeCpuSecondsOf(pid: number, depth = 0): number {
  let total = cpuSecondsOf(`/proc/${pid}/stat`);
  if (depth < 4) for (const child of childrenOf(pid)) total += treeCpuSecondsOf(child, depth + 1);
  return total;
}

/**
 * Starts `command args…` and waits until a line of its output matches `ready` (whose first
 * group is the `HOST:PORT` it listens on). Output goes to `logFile`.
 * @throws Error when the process exits or stays silent for `timeoutMs`
 */
export function startServer(
  name: string,
  command: string,
  args: readonly string[],
  ready: RegExp,
  logFile: string,
  timeoutMs = 60_000,
): Promise<Started> {
  const log = createWriteStream(logFile);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  return new Promise<Started>((resolve, reject) => {
    let seen = '';
    let settled = false;
    const fail = (message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.pid !== undefined && child.exitCode === null) child.kill('SIGKILL');
      reject(new Error(`${name}: ${message} (log: ${logFile})\n${seen.slice(-2000)}`));
    };
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs / 1000}s`), timeoutMs);
    const onData = (chunk: Buffer): void => {
      log.write(chunk);
      if (settled) return;
      seen += chunk.toString('utf8');
      const match = ready.exec(seen);
      if (match === null) return;
      settled = true;
      clearTimeout(timer);
      const pid = child.pid!;
      resolve({
        name,
        pid,
        address: match[1]!,
        cpuSeconds: () => cpuSecondsOf(`/proc/${pid}/stat`),
        mainThreadCpuSeconds: () => cpuSecondsOf(`/proc/${pid}/task/${pid}/stat`),
        treeCpuSeconds: () => treeCpuSecondsOf(pid),
        stop: (graceMs = 10_000) => stopChild(child, graceMs),
      });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('error', (error) => fail(error.message));
    child.on('exit', (code, signal) => {
      running.delete(child);
      log.end();
      fail(`exited (${signal ?? `code ${code}`}) before it was ready`);
    });
  });
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      running.delete(child);
      resolve();
    });
    child.kill('SIGTERM'); // by PID: ChildProcess.kill signals exactly this process
  });
}

/** Runs a command to completion, collecting its output; never throws on a non-zero exit. */
export function runToEnd(
  command: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      running.delete(child);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}
