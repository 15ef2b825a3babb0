/**
 * The load generators of `npm run bench:proxy` and what is read from their output:
 * wrk (HTTP/1.1, closed loop: each connection sends its next request when the previous
 * answer arrived) and h2load (h2c or, with --h1, HTTP/1.1; closed loop, or a fixed rate per
 * client with --rps). Both are C programs on one thread, so they take the same share of the
 * 2 cores whichever side they load.
 */
import { existsSync, readFileSync } from 'node:fs';
import { runToEnd } from '../check/processes';

export interface LoadResult {
  readonly rps: number;
  readonly requests: number;
  /** Per-request latencies in µs, sorted; empty for wrk (it reports percentiles only). */
  readonly latenciesUs: Float64Array;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  /** Empty when every request got a 2xx; otherwise what went wrong. */
  readonly problem: string;
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1)))]!;
}

/** The middle of sorted values, the mean of the two middle ones for an even count; NaN when empty. */
export function median(sorted: ArrayLike<number>): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const middle = n >> 1;
  return n % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function wrkDurationMs(value: string, unit: string): number {
  const scale: Record<string, number> = { us: 1e-3, ms: 1, s: 1000, m: 60_000 };
  return Number(value) * (scale[unit] ?? NaN);
}

/**
 * `wrk -t THREADS -c CONNECTIONS -d SECONDS --latency [-s SCRIPT] URL`; `script` is a wrk Lua
 * script (headers, a request per call).
 * @throws Error when wrk fails or prints nothing we can read
 */
export async function runWrk(
  url: string,
  connections: number,
  threads: number,
  seconds: number,
  script?: string,
): Promise<LoadResult> {
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--latency'];
  if (script !== undefined) args.push('-s', script);
  args.push(url);
  const out = await runToEnd('wrk', args, (seconds + 60) * 1000);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out.stdout);
  const total = /(\d+) requests in/.exec(out.stdout);
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out.stdout);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out.stdout);
  if (rps === null || total === null || p50 === null || p99 === null) {
    throw new Error(`wrk ${args.join(' ')} failed (exit ${out.code}):\n${out.stdout}\n${out.stderr}`);
  }
  const problems: string[] = [];
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out.stdout);
  if (errors !== null && errors.slice(1).some((n) => n !== '0')) problems.push(errors[0]);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out.stdout);
  if (non2xx !== null) problems.push(`${non2xx[1]} non-2xx/3xx responses`);
  return {
    rps: Number(rps[1]),
    requests: Number(total[1]),
    latenciesUs: new Float64Array(0),
    p50Ms: wrkDurationMs(p50[1]!, p50[2]!),
    p99Ms: wrkDurationMs(p99[1]!, p99[2]!),
    p999Ms: NaN,
    problem: problems.join('; '),
  };
}

export interface H2loadOptions {
  /** HTTP/1.1 instead of h2c. */
  readonly h1: boolean;
  readonly clients: number;
  /** Concurrent streams per connection (h2c); 1 for HTTP/1.1. */
  readonly streams: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** Requests per second of each client; undefined: as fast as answers come (closed loop). */
  readonly rpsPerClient?: number;
  /**
   * With `rpsPerClient`: start the clients one after the other, evenly over one client's
   * period (`h2load -r1 --rate-period`), so that the requests leave evenly paced rather than
   * all clients' together. h2load then runs a request count, not a duration: the requests
   * that left during the first `warmupSeconds` are left out of the latencies.
   */
  readonly paced?: boolean;
  /** Where h2load writes one line per request (the latencies are read from it). */
  readonly logFile: string;
  /** Request header lines added to every request (`name: value`). */
  readonly headers?: readonly string[];
}

/**
 * One h2load run; latencies from its per-request log, over the measured period only.
 * @throws Error when h2load fails or prints nothing we can read
 */
export async function runH2load(url: string, options: H2loadOptions): Promise<LoadResult> {
  const rps = options.rpsPerClient;
  const paced = options.paced === true && rps !== undefined;
  // h2load's --rate-period takes whole milliseconds.
  const staggerMs = paced ? Math.max(1, Math.round(1000 / (rps * options.clients))) : 0;
  const duration = paced
    ? ['-r', '1', '--rate-period', `${staggerMs}ms`,
       '-n', String(Math.round(rps * options.clients * (options.seconds + options.warmupSeconds)))]
    : ['-D', String(options.seconds), '--warm-up-time', String(options.warmupSeconds)]; // prettier-ignore
  const args = [
    ...(options.h1 ? ['--h1'] : []),
    '-c', String(options.clients), '-m', String(options.streams), '-t', '1',
    ...duration,
    ...(rps !== undefined ? ['--rps', String(rps)] : []),
    '--log-file', options.logFile,
    ...(options.headers ?? []).flatMap((header) => ['-H', header]),
    url,
  ]; // prettier-ignore
  const out = await runToEnd('h2load', args, (options.seconds + options.warmupSeconds + 60) * 1000);
  const finished = /finished in [\d.]+s, ([\d.]+) req\/s/.exec(out.stdout);
  const requests =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out.stdout,
    );
  const statuses = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out.stdout);
  if (finished === null || requests === null || statuses === null) {
    throw new Error(`h2load ${args.join(' ')} failed (exit ${out.code}):\n${out.stdout}\n${out.stderr}`);
  }
  const lines = existsSync(options.logFile) ? readFileSync(options.logFile, 'utf8').split('\n') : [];
  // Each line: the request's start (µs since the epoch), its status, its duration (µs).
  let measuredFromUs = -Infinity;
  if (paced) {
    let firstUs = Infinity;
    for (const line of lines) {
      const start = Number(line.slice(0, line.indexOf('\t')));
      if (line.length > 0 && start < firstUs) firstUs = start;
    }
    measuredFromUs = firstUs + options.warmupSeconds * 1e6;
  }
  const latencies = new Float64Array(lines.length);
  let n = 0;
  for (const line of lines) {
    const tab = line.lastIndexOf('\t');
    if (tab <= 0) continue;
    if (paced && Number(line.slice(0, line.indexOf('\t'))) < measuredFromUs) continue;
    latencies[n++] = Number(line.slice(tab + 1));
  }
  const sorted = latencies.subarray(0, n).sort();
  const problems: string[] = [];
  const failed = Number(requests[5]) + Number(requests[6]) + Number(requests[7]);
  if (failed > 0) problems.push(`${failed} requests failed/errored/timed out`);
  const not2xx = Number(statuses[2]) + Number(statuses[3]) + Number(statuses[4]);
  if (not2xx > 0) problems.push(`${not2xx} answers not 2xx`);
  return {
    rps: Number(finished[1]),
    // Paced runs count the warm-up's requests too: only the measured ones here.
    requests: paced ? n : Number(requests[4]),
    latenciesUs: sorted,
    p50Ms: percentile(sorted, 0.5) / 1000,
    p99Ms: percentile(sorted, 0.99) / 1000,
    p999Ms: percentile(sorted, 0.999) / 1000,
    problem: problems.join('; '),
  };
}

/** A fixed-rate run of the benchmarks' latency phases: `clients` single-stream clients at `totalRps` in all. */
export interface FixedRateOptions {
  readonly h1: boolean;
  readonly clients: number;
  readonly totalRps: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** Clients started evenly over one period (the target's measure), or all together (bursts). */
  readonly paced: boolean;
  readonly logFile: string;
  readonly headers?: readonly string[];
}

/** `h2load` at a fixed rate (see runH2load); latencies over the measured seconds. */
export function runFixedRate(url: string, options: FixedRateOptions): Promise<LoadResult> {
  return runH2load(url, {
    h1: options.h1,
    clients: options.clients,
    streams: 1,
    seconds: options.seconds,
    warmupSeconds: options.warmupSeconds,
    rpsPerClient: options.totalRps / options.clients,
    paced: options.paced,
    logFile: options.logFile,
    ...(options.headers === undefined ? {} : { headers: options.headers }),
  });
}
