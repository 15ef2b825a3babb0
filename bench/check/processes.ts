/**
 * Child processes of the benchmarks (`npm run bench:check`, `npm run bench:proxy`): started
 * here, known by PID, stopped by PID. Nothing else is ever signalled: the only other processes
 * touched are the descendants of these (nginx's workers, node:cluster workers), found by PID
 * in /proc, so that a forced stop leaves no orphan behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';

export interface Started {
  readonly name: string;
  readonly pid: number;
  /** `HOST:PORT` the process said it listens on. */
  readonly address: string;
  /**
   * CPU seconds (user + system) the process has used so far, all threads (and, when started by
   * {@link startProcess}, its live descendants'); NaN when /proc is not readable.
   */
  cpuSeconds(): number;
  /** CPU seconds of its main thread alone (Node's JavaScript thread); NaN when /proc is not readable. */
  mainThreadCpuSeconds(): number;
  /** Like {@link cpuSeconds}, split into user and system (kernel) time. */
  cpuTimes(): { user: number; system: number };
  /** CPU seconds of the process and every descendant alive now (cluster workers); NaN when /proc is not readable. */
  treeCpuSeconds(): number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
  /** Whether it is still running (it has not exited, whether stopped or on its own). */
  isRunning(): boolean;
}

const running = new Set<ChildProcess>();

/**
 * Stops, by PID, every process this module started and has not stopped yet, and their
 * descendants (on exit or Ctrl-C).
 */
export function killAllStarted(): void {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      // Descendants first found, then signalled after their parent: a SIGKILLed nginx master
      // leaves its workers running, a SIGKILLed cluster primary leaves its workers for a moment.
      const descendants = descendantsOf(child.pid);
      for (const pid of [child.pid, ...descendants]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }
  running.clear();
}

/** PIDs of the live descendants of `pid` (children, grandchildren…), from /proc; empty when unreadable. */
export function descendantsOf(pid: number): number[] {
  const childrenOf = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // Field 4 (ppid) follows ") STATE ".
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = childrenOf.get(ppid);
    if (list === undefined) childrenOf.set(ppid, [Number(entry)]);
    else list.push(Number(entry));
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of childrenOf.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** CPU seconds used so far by `pid` and its live descendants, split; NaN when /proc is not readable. */
export function treeCpuTimes(pid: number): { user: number; system: number } {
  const total = cpuTimesOf(`/proc/${pid}/stat`);
  for (const child of descendantsOf(pid)) {
    const times = cpuTimesOf(`/proc/${child}/stat`);
    if (Number.isNaN(times.user)) continue; // exited meanwhile: not counted
    total.user += times.user;
    total.system += times.system;
  }
  return total;
}

/** CPU seconds (user + system) used so far by `pid` and its live descendants; NaN when /proc is not readable. */
export function treeCpuSeconds(pid: number): number {
  const { user, system } = treeCpuTimes(pid);
  return user + system;
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clockTicks = Number(out.stdout.trim()) || 100;
  }
  return clockTicks;
}

function cpuTimesOf(statPath: string): { user: number; system: number } {
  try {
    const stat = readFileSync(statPath, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return { user: Number(fields[11]) / ticksPerSecond(), system: Number(fields[12]) / ticksPerSecond() };
  } catch {
    return { user: NaN, system: NaN };
  }
}

function cpuSecondsOf(statPath: string): number {
  const { user, system } = cpuTimesOf(statPath);
  return user + system;
}

/**
 * Starts `command args…` and waits until a line of its output matches `ready` (whose first
 * group is the `HOST:PORT` it listens on). Output goes to `logFile`. `env` replaces the
 * environment when given (default: this process's).
 * @throws Error when the process exits or stays silent for `timeoutMs`
 */
export function startServer(
  name: string,
  command: string,
  args: readonly string[],
  ready: RegExp,
  logFile: string,
  timeoutMs = 60_000,
  env?: NodeJS.ProcessEnv,
): Promise<Started> {
  const log = createWriteStream(logFile);
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(env === undefined ? {} : { env }),
  });
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
        cpuTimes: () => cpuTimesOf(`/proc/${pid}/stat`),
        mainThreadCpuSeconds: () => cpuSecondsOf(`/proc/${pid}/task/${pid}/stat`),
        treeCpuSeconds: () => treeCpuSeconds(pid),
        stop: (graceMs = 10_000) => stopChild(child, graceMs),
        isRunning: () => child.exitCode === null && child.signalCode === null,
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

/** `pid`'s start time (field 22 of /proc/PID/stat), to tell it from a later process given the same PID. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  // Its descendants, remembered with their start times: should one outlive the parent (an
  // orphaned worker), it is signalled after the parent has exited, and only if it is the same process.
  const descendants = child.pid === undefined ? [] : descendantsOf(child.pid);
  const identities = descendants.map((pid) => ({ pid, started: startTimeOf(pid) }));
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      running.delete(child);
      for (const { pid, started } of identities) {
        if (started !== undefined && startTimeOf(pid) === started) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
      }
      resolve();
    });
    child.kill('SIGTERM'); // by PID: ChildProcess.kill signals exactly this process
  });
}

/** How {@link startProcess} knows a process is ready, and where its output goes. */
export interface StartOptions {
  /** Where stdout and stderr go. */
  readonly logFile: string;
  /** `HOST:PORT` the process was told to listen on (reported as {@link Started.address}). */
  readonly address: string;
  /** Resolves true once the process serves; polled every 50 ms. Must not throw. */
  readonly probe: () => Promise<boolean>;
  /** Default 60 s. */
  readonly timeoutMs?: number;
  /** Environment; default this process's. */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Starts `command args…` and waits until `options.probe()` says it serves: for programs that
 * print nothing when ready (nginx, Envoy) or whose port was chosen by the caller.
 * @throws Error when the process exits or is not ready within `timeoutMs`; it is then stopped
 *   with its descendants
 */
export function startProcess(
  name: string,
  command: string,
  args: readonly string[],
  options: StartOptions,
): Promise<Started> {
  const { logFile, probe, timeoutMs = 60_000 } = options;
  const log = createWriteStream(logFile);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  running.add(child);
  let tail = '';
  const onData = (chunk: Buffer): void => {
    log.write(chunk);
    tail = (tail + chunk.toString('utf8')).slice(-2000);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return new Promise<Started>((resolve, reject) => {
    let settled = false;
    let exited = '';
    const deadline = Date.now() + timeoutMs;
    child.on('error', (error) => (exited ||= error.message));
    child.on('exit', (code, signal) => {
      running.delete(child);
      log.end();
      exited ||= `exited (${signal ?? `code ${code}`})`;
    });
    const fail = (message: string): void => {
      settled = true;
      void stopChild(child, 1000).then(() =>
        reject(new Error(`${name}: ${message} (log: ${logFile})\n${tail}`)),
      );
    };
    const poll = async (): Promise<void> => {
      while (!settled) {
        if (exited) return fail(`${exited} before it was ready`);
        if (Date.now() > deadline) return fail(`not ready after ${timeoutMs / 1000}s`);
        if (await probe()) {
          if (exited) return fail(`${exited} right after answering`);
          settled = true;
          const pid = child.pid!;
          resolve({
            name,
            pid,
            address: options.address,
            cpuSeconds: () => treeCpuSeconds(pid),
            treeCpuSeconds: () => treeCpuSeconds(pid),
            cpuTimes: () => treeCpuTimes(pid),
            mainThreadCpuSeconds: () => cpuSecondsOf(`/proc/${pid}/task/${pid}/stat`),
            stop: (graceMs = 10_000) => stopChild(child, graceMs),
            isRunning: () => child.exitCode === null && child.signalCode === null,
          });
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    void poll();
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
