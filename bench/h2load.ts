/**
 * h2load as a gRPC load generator, shared by `npm run bench:check` and `npm run bench:quota`:
 * one pre-framed request body sent on every call, latencies read from its per-request log.
 * h2load checks HTTP statuses only (a gRPC error is HTTP 200 too): callers check answers
 * with a real gRPC client before and after a run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { runToEnd } from './check/processes';

/** Load shape of one run. */
export interface H2loadOptions {
  /** h2load -c: connections. */
  readonly clients: number;
  /** h2load -m: concurrent streams per connection. */
  readonly streams: number;
  /** h2load -t: its threads. */
  readonly threads: number;
  /** Measured seconds (-D). */
  readonly seconds: number;
  /** Seconds of warm-up before them (--warm-up-time), not counted. */
  readonly warmupSeconds: number;
}

/** What one run measured. */
export interface H2loadRun {
  readonly rps: number;
  /** Every measured call's latency in µs, sorted. */
  readonly latenciesUs: Float64Array;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Calls answered with any HTTP status, warm-up included (for per-call CPU figures). */
  readonly answered: number;
  /** Calls that failed, errored or timed out. */
  readonly failed: number;
}

/** The value at fraction `p` (0–1) of sorted values; NaN when there are none. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1)))]!;
}

/** Sorted latencies of several runs together. */
export function mergeLatencies(runs: readonly Float64Array[]): Float64Array {
  const all = new Float64Array(runs.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of runs) {
    all.set(r, at);
    at += r.length;
  }
  return all.sort();
}

/** A protobuf message as one gRPC length-prefixed message: flag 0 (not compressed), length, bytes. */
export function frameGrpcMessage(message: Uint8Array): Buffer {
  const framed = Buffer.alloc(5 + message.length);
  framed.writeUInt8(0, 0);
  framed.writeUInt32BE(message.length, 1);
  Buffer.from(message).copy(framed, 5);
  return framed;
}

/**
 * Runs h2load against `http://ADDRESS/PATH`, POSTing the framed body in `bodyFile` on every
 * call, and reads its summary and per-request log (`logFile`, kept).
 * @throws Error with h2load's output when it did not finish
 */
export async function runH2load(
  address: string,
  path: string,
  bodyFile: string,
  logFile: string,
  options: H2loadOptions,
): Promise<H2loadRun> {
  const args = [
    '-c', String(options.clients), '-m', String(options.streams), '-t', String(options.threads),
    '-D', String(options.seconds), '--warm-up-time', String(options.warmupSeconds),
    '-d', bodyFile, '-H', 'content-type: application/grpc', '-H', 'te: trailers',
    '--log-file', logFile,
    `http://${address}${path}`,
  ]; // prettier-ignore
  const out = await runToEnd('h2load', args, (options.seconds + options.warmupSeconds + 60) * 1000);
  const finished = /finished in [\d.]+s, ([\d.]+) req\/s/.exec(out.stdout);
  const requests =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out.stdout,
    );
  const statuses = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out.stdout);
  if (finished === null || requests === null || statuses === null) {
    throw new Error(`h2load failed (exit ${out.code}):\n${out.stdout}\n${out.stderr}`);
  }
  const lines = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n') : [];
  const latencies = new Float64Array(lines.length);
  let n = 0;
  for (const line of lines) {
    const tab = line.lastIndexOf('\t');
    if (tab > 0) latencies[n++] = Number(line.slice(tab + 1));
  }
  const sorted = latencies.subarray(0, n).sort();
  return {
    rps: Number(finished[1]),
    latenciesUs: sorted,
    p50Ms: percentile(sorted, 0.5) / 1000,
    p99Ms: percentile(sorted, 0.99) / 1000,
    answered: Number(statuses[1]) + Number(statuses[2]) + Number(statuses[3]) + Number(statuses[4]),
    failed: Number(requests[5]) + Number(requests[6]) + Number(requests[7]),
  };
}
