/**
 * `npm run bench:audit`: audit-log export throughput. For each sink case (bench/audit/*.ts,
 * listed in CASES below): reports per second through the policy server — Report gRPC calls
 * from h2load, each a batch of attribute sets as a proxy sends them, every set a logentry
 * instance, an audit record appended to the spool, delivered to the sink — with the spool
 * at each fsync policy, against a baseline of the same records written by the sink's client
 * library directly, in one run. Prints each run, the ratios to the baseline, and the records
 * lost (what the server accepted minus what arrived in the sink, counted there): must be 0.
 *
 * "Per core": records accepted per CPU-second the server process used (all its threads: the
 * JavaScript thread, libuv's, the garbage collector's) in the measured window — the server's
 * cost per record, steadier than records/s when the sink (a JVM broker on the same two
 * cores) and the load generator compete for the machine. "Per JS": the same per CPU-second
 * of the main thread alone, which bounds one server process (the JavaScript thread is the
 * one that saturates; `--workers N` runs N of them).
 *
 * Options (environment variables):
 *   BENCH_SECONDS=10          measured seconds per run
 *   BENCH_WARMUP_SECONDS=3    load before each measured run, not counted
 *   BENCH_CLIENTS=4           h2load -c
 *   BENCH_STREAMS=8           h2load -m
 *   BENCH_REPORTS_PER_CALL=20 attribute sets in one Report call
 *   BENCH_FSYNC=ALWAYS,INTERVAL,NEVER  the server runs
 *   BENCH_CASES=kafka,elasticsearch  the cases to run (comma-separated names)
 *   BENCH_SERVER_NODE_ARGS=   node options of the server process (e.g. --cpu-prof --cpu-prof-dir=DIR)
 *   BENCH_KEEP=0              1: keep the temporary folder (configs, spools, logs)
 * Not a test: nothing asserts a speed. Exit code 1 when a record was lost or a run failed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FSYNC_POLICIES, type FsyncPolicy } from '../adapters/logging/spool';
import type { AuditBenchCase, AuditBenchOptions, AuditBenchRow } from './audit/audit-case';
import { ELASTICSEARCH_CASE } from './audit/elasticsearch';
import { KAFKA_CASE } from './audit/kafka';
import { killAllStarted } from './check/processes';
import { envNumber } from './bench-env';

/** The sink cases, in the order they run. Another sink adds its case here. */
const CASES: readonly AuditBenchCase[] = [KAFKA_CASE, ELASTICSEARCH_CASE];

const env = process.env;
/** A positive number from the environment (every audit setting is a count or a duration). */
function num(name: string, fallback: number): number {
  const value = envNumber(name, fallback);
  if (value === 0) throw new Error(`${name} must be a number > 0, got 0`);
  return value;
}

function fsyncPolicies(): FsyncPolicy[] {
  const names = (env['BENCH_FSYNC'] ?? FSYNC_POLICIES.join(',')).split(',').map((s) => s.trim());
  for (const name of names) {
    if (!(FSYNC_POLICIES as readonly string[]).includes(name))
      throw new Error(`BENCH_FSYNC: ${name} is not one of ${FSYNC_POLICIES.join(', ')}`);
  }
  return names as FsyncPolicy[];
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

function print(rows: readonly AuditBenchRow[]): void {
  const header = [
    'sink',
    'run',
    'records/s',
    'cores',
    'per core',
    'per JS',
    'accepted',
    'arrived',
    'lost',
    'dup',
    'p99 ms',
  ];
  const widths = [14, 26, 10, 6, 9, 9, 10, 10, 6, 6, 8];
  console.log(header.map((h, i) => pad(h, widths[i]!)).join(' '));
  for (const r of rows) {
    const cells = [
      r.sink,
      r.variant,
      r.recordsPerSecond.toFixed(0),
      r.coresUsed.toFixed(2),
      (r.recordsPerSecond / r.coresUsed).toFixed(0),
      r.mainThreadCoresUsed === undefined ? '-' : (r.recordsPerSecond / r.mainThreadCoresUsed).toFixed(0),
      String(r.accepted),
      String(r.arrived),
      String(r.lost),
      String(r.duplicated),
      r.p99Ms === undefined ? '-' : r.p99Ms.toFixed(1),
    ];
    console.log(
      cells.map((c, i) => pad(c, widths[i]!)).join(' ') + (r.note === undefined ? '' : `  ${r.note}`),
    );
  }
}

async function main(): Promise<number> {
  const only = env['BENCH_CASES']?.split(',').map((s) => s.trim());
  const cases = CASES.filter((c) => only === undefined || only.includes(c.name));
  if (cases.length === 0)
    throw new Error(
      `BENCH_CASES=${env['BENCH_CASES']}: no such case; cases: ${CASES.map((c) => c.name).join(', ')}`,
    );
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-audit-'));
  const options: AuditBenchOptions = {
    seconds: num('BENCH_SECONDS', 10),
    warmupSeconds: num('BENCH_WARMUP_SECONDS', 3),
    clients: Math.round(num('BENCH_CLIENTS', 4)),
    streams: Math.round(num('BENCH_STREAMS', 8)),
    reportsPerCall: Math.round(num('BENCH_REPORTS_PER_CALL', 20)),
    fsyncPolicies: fsyncPolicies(),
    dir,
    cli: resolve(__dirname, '..', 'cli', 'switchboard.js'),
  };
  console.log(
    `bench:audit — ${options.seconds} s runs after ${options.warmupSeconds} s of warm-up; h2load -c ${options.clients} -m ${options.streams}; ${options.reportsPerCall} reports per Report call; fsync ${options.fsyncPolicies.join(', ')}`,
  );
  let failed = false;
  const all: AuditBenchRow[] = [];
  try {
    for (const c of cases) {
      try {
        const rows = await c.run({ ...options, dir: join(dir, c.name) });
        all.push(...rows);
      } catch (error) {
        failed = true;
        console.error(`${c.name}: the case failed: ${(error as Error).stack ?? String(error)}`);
      }
    }
  } finally {
    killAllStarted();
    if (env['BENCH_KEEP'] === '1') console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  console.log('');
  print(all);
  console.log('');
  for (const sink of new Set(all.map((r) => r.sink))) {
    const rows = all.filter((r) => r.sink === sink);
    const baseline = rows.find((r) => r.baseline);
    for (const r of rows.filter((row) => !row.baseline)) {
      const ratio = baseline === undefined ? NaN : r.recordsPerSecond / baseline.recordsPerSecond;
      const perCore = r.recordsPerSecond / r.coresUsed;
      const target =
        sink === 'kafka' && r.fsync === 'INTERVAL'
          ? ` (target >= 20000/core: ${perCore >= 20_000 ? 'met' : 'NOT met'})`
          : '';
      console.log(
        `${sink} ${r.variant}: ${ratio.toFixed(2)}× the baseline's records/s; ${perCore.toFixed(0)} records/s per server core${target}; lost ${r.lost}`,
      );
    }
  }
  const lost = all.reduce((sum, r) => sum + r.lost, 0);
  console.log(`records lost in all runs: ${lost}`);
  return failed || lost > 0 ? 1 : 0;
}

process.on('SIGINT', () => {
  killAllStarted();
  process.exit(130);
});
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    killAllStarted();
    console.error(error);
    process.exit(1);
  },
);
