/**
 * The raw cost of redisquota's decision: the very script the adapter runs
 * (adapters/quota/redis/quota-script.ts), loaded with SCRIPT LOAD and called with EVALSHA
 * by `redis-benchmark` with the arguments the handler builds (one counter key, no
 * deduplication key: KEYS[1]; ARGV algorithm, maxAmount, windowMs, bucket or burst, amount
 * 1, bestEffort 0, deduplication window). redis-benchmark sends every argument as given
 * (it substitutes only `__rand_int__`, which these never contain), one command per
 * round trip (-P 1) from 32 connections: Redis's own ceiling for these decisions.
 */
import { QUOTA_SCRIPT, ALGORITHM_CODE } from '../../adapters/quota/redis/quota-script';
import { runToEnd } from '../check/processes';
import { redisCli } from './redis-server';
import { BUCKET_MS, WINDOW_MS, type QuotaSide } from './sides';

/** Loads the quota script into Redis; returns its SHA1 for EVALSHA. */
export function loadQuotaScript(port: number): string {
  const sha = redisCli(port, ['SCRIPT', 'LOAD', QUOTA_SCRIPT]).trim();
  if (!/^[0-9a-f]{40}$/.test(sha)) throw new Error(`SCRIPT LOAD answered ${sha}`);
  return sha;
}

/** The command redis-benchmark repeats for a side: the handler's arguments, a key of its own. */
export function evalshaCommand(sha: string, side: QuotaSide, keyPrefix: string): string[] {
  const extra =
    side.algorithm === 'ROLLING_WINDOW' ? BUCKET_MS : side.algorithm === 'TOKEN_BUCKET' ? side.maxAmount : 0;
  const key = `${keyPrefix}{${side.instance}}:${ALGORITHM_CODE[side.algorithm]}:${WINDOW_MS}:destination=reviews`;
  return [
    'EVALSHA', sha, '1', key,
    ALGORITHM_CODE[side.algorithm], String(side.maxAmount), String(WINDOW_MS), String(extra),
    '1', '0', '1000',
  ]; // prettier-ignore
}

export interface RawRun {
  readonly calls: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * `redis-benchmark -n CALLS -c CLIENTS -P 1 --csv COMMAND…`; the first result line holds
 * requests/s and latency percentiles.
 * @throws Error with its output when it did not report a result
 */
export async function runRedisBenchmark(
  port: number,
  command: readonly string[],
  calls: number,
  clients: number,
): Promise<RawRun> {
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-n',
    String(calls),
    '-c',
    String(clients),
    '-P',
    '1',
    '--csv',
  ];
  const out = await runToEnd('redis-benchmark', [...args, ...command], 600_000);
  // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  const line = out.stdout.split('\n').find((l) => l.startsWith('"EVALSHA'));
  const cells = line?.match(/"([^"]*)"/g)?.map((c) => c.slice(1, -1));
  if (out.code !== 0 || cells === undefined || cells.length < 8) {
    throw new Error(`redis-benchmark failed (exit ${out.code}):\n${out.stdout}\n${out.stderr}`);
  }
  return { calls, rps: Number(cells[1]), p50Ms: Number(cells[4]), p99Ms: Number(cells[6]) };
}
