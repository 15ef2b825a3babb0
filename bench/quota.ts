/**
 * `npm run bench:quota`: what a quota decision costs through the policy server with
 * redisquota (FIXED_WINDOW, ROLLING_WINDOW 1 s / 100 ms buckets, TOKEN_BUCKET) against
 * memquota with the same limits, the raw cost of redisquota's script called directly,
 * Envoy's rate limit service beside them, and exactness across replicas — all in one run
 * on this machine, with a redis-server of its own on a free loopback port.
 *
 * 1. Through `switchboard server` (bench/quota/sides.ts: one server holding every quota,
 *    one quota per adapter, algorithm and load): h2load sends one pre-framed CheckRequest
 *    per side (bench-kit's typical Check asking for that one quota, amount 1, no
 *    deduplication id: h2load repeats one body, and a repeated id would be answered from
 *    the first call). "granted" quotas allow 1e9 per second, so every call is charged and
 *    granted; "exhausted" ones 100 per second, so nearly every call is refused. Printed per
 *    run and in summary: decisions/s, p50, p99, the server's main-thread CPU per call (the
 *    JavaScript thread, which bounds throughput), the server's CPU per call (all threads),
 *    redis-server's CPU per call and, of it, the time inside the script (Redis's own
 *    `INFO commandstats`); redisquota's own counters (admin /stats) show what Redis decided
 *    and that no answer came from the failure policy; ratios redisquota / memquota.
 * 2. The raw script: redisquota's Lua script (SCRIPT LOAD, then EVALSHA with the handler's
 *    arguments) driven by `redis-benchmark -c 32 -P 1` for each algorithm and load;
 *    calls/s, Redis's CPU and script time per call, and the ratio server decisions/s ÷ raw
 *    script calls/s.
 * 3. The peer, envoyproxy/ratelimit, on the same Redis with per-second limits equivalent to
 *    the FIXED_WINDOW quotas, under the same h2load with a pre-framed RateLimitRequest;
 *    decisions/s and p99 beside redisquota FIXED_WINDOW's.
 * 4. Accuracy: BENCH_ACCURACY_SERVERS `switchboard server` processes share the Redis;
 *    BENCH_ACCURACY_CHECKS Checks with unique deduplication ids, hundreds at once, through all of them
 *    against a limit of BENCH_ACCURACY_LIMIT, for each algorithm (windows long enough to hold
 *    the whole test); prints `granted - limit`, which must be 0.
 *
 * Sides alternate within each round (reversed every other round) so that the machine's
 * other load falls on all of them alike. h2load checks HTTP statuses only: a real gRPC
 * client checks answers before and after each run; a run with wrong answers, failed calls,
 * handler faults or more than 0.1% failure-policy answers is flagged and not counted. Not a test: nothing asserts a
 * speed. Exit code 1 when answers were wrong, accuracy was off, or a tool failed.
 *
 * Needs h2load (installed from Debian when missing, scripts/install-h2load.sh) and
 * redis-server, redis-cli, redis-benchmark (`bash scripts/install-redis.sh`; the benchmark
 * fails naming that command when they are missing).
 *
 * Options (environment variables):
 *   BENCH_SECONDS=5          measured seconds per h2load run; raw runs are sized to last about as long
 *   BENCH_WARMUP_SECONDS=1   h2load warm-up before each run
 *   BENCH_ROUNDS=2           rounds; each runs every side once, in alternation
 *   BENCH_CLIENTS=32         h2load -c (connections)
 *   BENCH_STREAMS=2          h2load -m (concurrent streams per connection): 64 calls in flight saturate
 *                            every side here, yet keep latency more than queue length and calls
 *                            within redisquota's 200 ms timeout (at 256, a busy machine's queue is not)
 *   BENCH_THREADS=1          h2load -t
 *   BENCH_EXHAUSTED=1        also measure exhausted quotas (0: granted only)
 *   BENCH_RAW=1              measure the raw script with redis-benchmark (0: skip)
 *   BENCH_RAW_CLIENTS=32     redis-benchmark -c
 *   BENCH_RATELIMIT=auto     the envoyproxy/ratelimit peer: auto runs it when built (else prints how
 *                            to build it), 1 builds it first when missing (~3 min), 0 skips it
 *   SWITCHBOARD_RATELIMIT_DIR=~/.cache/switchboard/ratelimit  where it is built
 *   BENCH_ACCURACY=1         run the accuracy test (0: skip)
 *   BENCH_ACCURACY_SERVERS=3 policy servers sharing the Redis
 *   BENCH_ACCURACY_CHECKS=2000  Checks per algorithm, each with its own deduplication id
 *   BENCH_ACCURACY_IN_FLIGHT=150  of them in flight at once (many more, on busy shared cores,
 *                            outlast the server's 1 s handler deadline: refused as DEADLINE_EXCEEDED,
 *                            and reported, since Redis may have counted them)
 *   BENCH_ACCURACY_LIMIT=500 the limit
 *   BENCH_ACCURACY_CONNECTIONS=4  gRPC connections per server
 *   BENCH_VERIFY_CALLS=50    answers checked with a gRPC client per side before the runs
 *   BENCH_KEEP=0             1: keep the temporary folder (configs, logs, h2load logs)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Client } from '@grpc/grpc-js';
import { encodeCheckRequest } from '../attributes';
import { typicalCheckBag } from './bench-kit';
import { sampleChecks } from './check/grpc-verify';
import { killAllStarted, startServer, type Started } from './check/processes';
import { frameGrpcMessage, mergeLatencies, percentile, runH2load } from './h2load';
import { connectClients, measureAccuracy, type AccuracyResult } from './quota/accuracy';
import { countsBetween, serverCounts } from './quota/admin-stats';
import {
  descriptorValue,
  encodeRateLimitRequest,
  RATELIMIT_BUILD_COMMAND,
  RATELIMIT_DOMAIN,
  ratelimitBinary,
  sampleRateLimits,
  SHOULD_RATE_LIMIT_PATH,
  startRatelimit,
} from './quota/ratelimit-peer';
import { evalshaCommand, loadQuotaScript, runRedisBenchmark } from './quota/raw-script';
import {
  freePort,
  redisCli,
  requireRedisTools,
  scriptCommandStats,
  startRedis,
  type CommandStats,
  type RedisServer,
} from './quota/redis-server';
import {
  ACCURACY_QUOTAS,
  accuracyConfigYaml,
  EXHAUSTED_MAX_AMOUNT,
  memquotaPeerOf,
  quotaSides,
  REDISQUOTA_HANDLER,
  throughputConfigYaml,
  type Algorithm,
  type Load,
  type QuotaSide,
} from './quota/sides';
import { envNumber } from './bench-env';

const env = process.env;
const num = (name: string, fallback: number): number => envNumber(name, fallback);
const off = (name: string, fallback: string): boolean =>
  ['0', 'off', 'false', 'no'].includes((env[name] ?? fallback).toLowerCase());
const SECONDS = num('BENCH_SECONDS', 5);
const WARMUP = num('BENCH_WARMUP_SECONDS', 1);
const ROUNDS = Math.max(1, Math.round(num('BENCH_ROUNDS', 2)));
const CLIENTS = Math.round(num('BENCH_CLIENTS', 32));
const STREAMS = Math.round(num('BENCH_STREAMS', 2));
const THREADS = Math.round(num('BENCH_THREADS', 1));
const WITH_EXHAUSTED = !off('BENCH_EXHAUSTED', '1');
const WITH_RAW = !off('BENCH_RAW', '1');
const RAW_CLIENTS = Math.round(num('BENCH_RAW_CLIENTS', 32));
const RATELIMIT_MODE = (env.BENCH_RATELIMIT ?? 'auto').toLowerCase();
const WITH_ACCURACY = !off('BENCH_ACCURACY', '1');
const ACCURACY_SERVERS = Math.max(1, Math.round(num('BENCH_ACCURACY_SERVERS', 3)));
const ACCURACY_CHECKS = Math.round(num('BENCH_ACCURACY_CHECKS', 2000));
const ACCURACY_LIMIT = Math.round(num('BENCH_ACCURACY_LIMIT', 500));
const ACCURACY_CONNECTIONS = Math.max(1, Math.round(num('BENCH_ACCURACY_CONNECTIONS', 4)));
const ACCURACY_IN_FLIGHT = Math.max(1, Math.round(num('BENCH_ACCURACY_IN_FLIGHT', 150)));
const VERIFY_CALLS = Math.round(num('BENCH_VERIFY_CALLS', 50));
const KEEP = env.BENCH_KEEP === '1';

/**
 * The share of a redisquota run's calls that may be answered by the failure policy (Redis
 * later than the 200 ms timeout) before the run stops counting: 0.1%.
 */
const MAX_FALLBACK_SHARE = 0.001;
/** The first raw run of each kind only measures how long a run must be to last BENCH_SECONDS. */
const RAW_PROBE_CALLS = 20_000;
const ROOT = resolve(__dirname, '..', '..');
const CHECK_PATH = '/istio.mixer.v1.Mixer/Check';
const RATELIMIT = 'envoyproxy/ratelimit';
/** Label of the peer's rows. */
const peerLabel = (load: Load): string => `envoy ratelimit${load === 'exhausted' ? ' (exhausted)' : ''}`;

function log(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function formatTally(tally: Map<string, number>): string {
  return [...tally].map(([k, n]) => `${n}× ${k}`).join('; ');
}

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const perCallUs = (cpuSeconds: number, calls: number): number =>
  calls > 0 ? (cpuSeconds * 1e6) / calls : NaN;

/** One measured run of a side through a server (ours or the peer). */
interface ServedRun {
  readonly side: string;
  readonly load: Load;
  readonly round: number;
  readonly rps: number;
  readonly latenciesUs: Float64Array;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Server main thread per call (NaN for the Go peer, whose main thread says nothing). */
  readonly mainUs: number;
  /** Server, all threads, per call. */
  readonly cpuUs: number;
  readonly redisUs: number;
  /** Time inside the script per call, by Redis's INFO commandstats (NaN when no script ran). */
  readonly scriptUs: number;
  readonly note: string;
  /** Empty when the run counts; otherwise why it does not. */
  readonly invalid: string;
}

interface RawResult {
  readonly side: string;
  readonly algorithm: Algorithm;
  readonly load: Load;
  readonly round: number;
  readonly calls: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly redisUs: number;
  readonly scriptUs: number;
}

const SERVED_COLUMNS =
  `${'side'.padEnd(38)}${'round'.padStart(5)}${'dec/s'.padStart(8)}${'p50 ms'.padStart(8)}${'p99 ms'.padStart(8)}` +
  `${'main µs'.padStart(9)}${'CPU µs'.padStart(8)}${'redis µs'.padStart(10)}${'script µs'.padStart(11)}  answers`;

function servedRow(r: ServedRun, round: string = String(r.round)): string {
  return (
    `${r.side.padEnd(38)}${round.padStart(5)}${fmt(r.rps).padStart(8)}${fmt(r.p50Ms, 2).padStart(8)}` +
    `${fmt(r.p99Ms, 2).padStart(8)}${fmt(r.mainUs).padStart(9)}${fmt(r.cpuUs).padStart(8)}${fmt(r.redisUs, 1).padStart(10)}` +
    `${fmt(r.scriptUs, 1).padStart(11)}  ${r.invalid ? `WRONG: ${r.invalid}` : 'ok'}${r.note ? ` ${r.note}` : ''}`
  );
}

const RAW_COLUMNS = `${'script (redis-benchmark EVALSHA)'.padEnd(38)}${'round'.padStart(5)}${'calls/s'.padStart(8)}${'p50 ms'.padStart(8)}${'p99 ms'.padStart(8)}${'redis µs'.padStart(27)}${'script µs'.padStart(11)}`;

function rawRow(r: RawResult, round: string = String(r.round)): string {
  return (
    `${r.side.padEnd(38)}${round.padStart(5)}${fmt(r.rps).padStart(8)}${fmt(r.p50Ms, 2).padStart(8)}` +
    `${fmt(r.p99Ms, 2).padStart(8)}${fmt(r.redisUs, 1).padStart(27)}${fmt(r.scriptUs, 1).padStart(11)}  ${r.calls} calls`
  );
}

/** Mean decisions/s and CPU over the valid rounds; p50/p99 over all their calls. */
function summarizeServed(runs: readonly ServedRun[]): ServedRun | undefined {
  const valid = runs.filter((r) => r.invalid === '');
  if (valid.length === 0) return undefined;
  const mean = (f: (r: ServedRun) => number): number => valid.reduce((s, r) => s + f(r), 0) / valid.length;
  const all = mergeLatencies(valid.map((r) => r.latenciesUs));
  return {
    ...valid[0]!,
    rps: mean((r) => r.rps),
    latenciesUs: all,
    p50Ms: percentile(all, 0.5) / 1000,
    p99Ms: percentile(all, 0.99) / 1000,
    mainUs: mean((r) => r.mainUs),
    cpuUs: mean((r) => r.cpuUs),
    redisUs: mean((r) => r.redisUs),
    scriptUs: mean((r) => r.scriptUs),
    note:
      valid.length < runs.length ? `(${runs.length - valid.length} of ${runs.length} runs not counted)` : '',
  };
}

function summarizeRaw(runs: readonly RawResult[]): RawResult | undefined {
  if (runs.length === 0) return undefined;
  const mean = (f: (r: RawResult) => number): number => runs.reduce((s, r) => s + f(r), 0) / runs.length;
  return {
    ...runs[0]!,
    calls: runs.reduce((s, r) => s + r.calls, 0),
    rps: mean((r) => r.rps),
    p50Ms: mean((r) => r.p50Ms),
    p99Ms: mean((r) => r.p99Ms),
    redisUs: mean((r) => r.redisUs),
    scriptUs: mean((r) => r.scriptUs),
  };
}

/** Only `…=1` answers for a granted side; both `=0` and `=1` (at least one 0) for an exhausted one. */
function checkAnswersRight(side: QuotaSide, tally: Map<string, number>): boolean {
  const granted = `grpc OK, precondition 0, granted ${side.instance}=1`;
  const refused = `grpc OK, precondition 0, granted ${side.instance}=0`;
  if (side.load === 'granted') return tally.size === 1 && tally.has(granted);
  return tally.has(refused) && [...tally.keys()].every((k) => k === granted || k === refused);
}

function ratelimitAnswersRight(load: Load, tally: Map<string, number>): boolean {
  if (load === 'granted') return tally.size === 1 && tally.has('grpc OK, OK');
  return (
    tally.has('grpc OK, OVER_LIMIT') &&
    [...tally.keys()].every((k) => k === 'grpc OK, OK' || k === 'grpc OK, OVER_LIMIT')
  );
}

/**
 * Calls and concurrency of the check after a run. An exhausted side gets more calls than
 * its limit so that some are refused even when the sample starts a fresh window.
 */
function afterSample(load: Load): [number, number] {
  return load === 'granted' ? [20, 4] : [2 * EXHAUSTED_MAX_AMOUNT + 20, 16];
}

/** `219× refused, 1× granted` from a tally of Check or RateLimit answers. */
function describeAfter(tally: Map<string, number>): string {
  return [...tally]
    .map(([k, n]) => `${n}× ${k.endsWith('=0') || k.endsWith('OVER_LIMIT') ? 'refused' : 'granted'}`)
    .join(', ');
}

function scriptUsPerCall(before: CommandStats, after: CommandStats): number {
  const calls = after.calls - before.calls;
  return calls > 0 ? (after.usec - before.usec) / calls : NaN;
}

async function main(): Promise<void> {
  const h2loadInstall = spawnSync('bash', [join(ROOT, 'scripts', 'install-h2load.sh')], { stdio: 'inherit' });
  if (h2loadInstall.status !== 0)
    throw new Error('h2load is missing and could not be installed (scripts/install-h2load.sh)');
  requireRedisTools();

  let ratelimitPath: string | undefined;
  let ratelimitSkipped = '';
  if (off('BENCH_RATELIMIT', 'auto')) ratelimitSkipped = 'not run (BENCH_RATELIMIT=0)';
  else {
    ratelimitPath = ratelimitBinary(ROOT, RATELIMIT_MODE === '1' || RATELIMIT_MODE === 'on');
    if (ratelimitPath === undefined) {
      ratelimitSkipped = `not run: not built; build it once with ${RATELIMIT_BUILD_COMMAND} (about 3 min), or run with BENCH_RATELIMIT=1`;
    }
  }

  const loads: Load[] = WITH_EXHAUSTED ? ['granted', 'exhausted'] : ['granted'];
  const sidesOf = new Map(loads.map((load) => [load, quotaSides(load)] as const));
  const allSides = loads.flatMap((load) => sidesOf.get(load)!);

  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-quota-'));
  const started: Started[] = [];
  const clients: Client[] = [];
  let redis: RedisServer | undefined;
  let exitCode = 0;
  try {
    redis = await startRedis(dir);
    const redisVersion = /redis_version:(\S+)/.exec(redisCli(redis.port, ['INFO', 'server']))?.[1] ?? '?';
    const configDir = join(dir, 'config');
    mkdirSync(configDir);
    writeFileSync(
      join(configDir, 'quotas.yaml'),
      throughputConfigYaml(allSides, redis.address, 'bench:served:'),
    );
    const adminPort = await freePort();
    const adminAddress = `127.0.0.1:${adminPort}`;
    const server = await startServer(
      'switchboard',
      process.execPath,
      [
        join(ROOT, 'dist', 'cli', 'switchboard.js'),
        'server', '--config', configDir, '--address', '127.0.0.1:0', '--admin-address', adminAddress,
      ], // prettier-ignore
      /listening on (\S+:\d+)/,
      join(dir, 'switchboard.log'),
    );
    started.push(server);

    let ratelimit: Started | undefined;
    if (ratelimitPath !== undefined) {
      try {
        ratelimit = await startRatelimit(ratelimitPath, redis.address, dir);
        started.push(ratelimit);
      } catch (error) {
        ratelimitSkipped = `not run: it did not start: ${error instanceof Error ? error.message : String(error)}`;
      }
    }

    log(
      `Quota benchmark: node ${process.version}, ${spawnSync('nproc').stdout.toString().trim()} cores, load average ` +
        `${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}; redis-server ${redisVersion} on ${redis.address}`,
    );
    log(
      `quotas: 1 s windows (ROLLING_WINDOW 100 ms buckets; TOKEN_BUCKET burst = limit); granted: limit 1e9/s; ` +
        `exhausted: limit 100/s; redisquota defaults (10 connections, timeout 200ms, FAIL_CLOSE)`,
    );

    // Bodies: one CheckRequest per side, one RateLimitRequest per load.
    const bag = typicalCheckBag();
    const checkBodies = new Map<QuotaSide, { request: Uint8Array; file: string }>();
    for (const side of allSides) {
      const request = encodeCheckRequest({
        attributes: bag,
        quotas: new Map([[side.instance, { amount: 1n, bestEffort: false }]]),
      });
      const file = join(dir, `check-${side.instance}.bin`);
      writeFileSync(file, frameGrpcMessage(request));
      checkBodies.set(side, { request, file });
    }
    const rlBodies = new Map<Load, { request: Uint8Array; file: string }>();
    for (const load of loads) {
      const request = encodeRateLimitRequest(RATELIMIT_DOMAIN, 'generic_key', descriptorValue(load), 1);
      const file = join(dir, `ratelimit-${load}.bin`);
      writeFileSync(file, frameGrpcMessage(request));
      rlBodies.set(load, { request, file });
    }
    log(
      `request: bench-kit's typical Check (${bag.size} attributes) + one quota, amount 1, no deduplication id, ` +
        `${checkBodies.get(allSides[0]!)!.request.length} bytes; ratelimit: domain ${RATELIMIT_DOMAIN}, ` +
        `descriptor generic_key=granted|exhausted, hits_addend 1, ${rlBodies.get('granted')!.request.length} bytes`,
    );

    // Answers first: a wrong answer must not count as speed.
    const wrong = new Set<string>();
    for (const side of allSides.filter((s) => s.load === 'granted')) {
      const tally = await sampleChecks(server.address, checkBodies.get(side)!.request, VERIFY_CALLS);
      const right = checkAnswersRight(side, tally);
      log(`verify ${side.label}: ${formatTally(tally)}${right ? '' : '  <-- WRONG'}`);
      if (!right) wrong.add(side.label);
    }
    if (ratelimit !== undefined) {
      const tally = await sampleRateLimits(ratelimit.address, rlBodies.get('granted')!.request, VERIFY_CALLS);
      const right = ratelimitAnswersRight('granted', tally);
      log(`verify ${RATELIMIT} (granted): ${formatTally(tally)}${right ? '' : '  <-- WRONG'}`);
      if (!right) wrong.add(`${RATELIMIT} granted`);
    }
    if (WITH_EXHAUSTED) log('exhausted sides: answers checked after each run (refusals expected)');

    let sha = '';
    if (WITH_RAW) {
      sha = loadQuotaScript(redis.port);
      for (const side of allSides.filter((s) => s.adapter === 'redisquota' && s.load === 'granted')) {
        const reply = redisCli(redis.port, evalshaCommand(sha, side, 'bench:raw-check:'));
        if (reply.split('\n')[0] !== '1')
          throw new Error(`the raw script did not grant (${side.label}): ${reply}`);
      }
      log(
        `raw script: SCRIPT LOAD → ${sha}; redis-benchmark -c ${RAW_CLIENTS} -P 1 EVALSHA ${sha} 1 KEY ALGORITHM MAX 1000 BUCKET|BURST 1 0 1000`,
      );
    }

    const served: ServedRun[] = [];
    const raws: RawResult[] = [];
    const rawRates = new Map<string, number>();
    log();
    log(
      `h2load -c ${CLIENTS} -m ${STREAMS} -t ${THREADS}, ${SECONDS}s per run after ${WARMUP}s warm-up, ${ROUNDS} rounds alternating; ` +
        `main µs: switchboard's main thread per call; CPU µs: the server, all threads; redis µs: redis-server per call`,
    );
    const h2loadOptions = {
      clients: CLIENTS,
      streams: STREAMS,
      threads: THREADS,
      seconds: SECONDS,
      warmupSeconds: WARMUP,
    };
    const redisProcess = redis.process;
    const redisPort = redis.port;

    const runServedSide = async (side: QuotaSide, round: number): Promise<ServedRun> => {
      const body = checkBodies.get(side)!;
      const quotaName = side.adapter === 'redisquota' ? `${side.instance}.instance.istio-system` : undefined;
      const countsBefore = await serverCounts(adminAddress, REDISQUOTA_HANDLER, quotaName);
      const script0 = scriptCommandStats(redisPort);
      const [cpu0, main0, redis0] = [
        server.cpuSeconds(),
        server.mainThreadCpuSeconds(),
        redisProcess.cpuSeconds(),
      ];
      const run = await runH2load(
        server.address,
        CHECK_PATH,
        body.file,
        join(dir, `h2load-${side.instance}-${round}.log`),
        h2loadOptions,
      );
      const [cpu1, main1, redis1] = [
        server.cpuSeconds(),
        server.mainThreadCpuSeconds(),
        redisProcess.cpuSeconds(),
      ];
      const script1 = scriptCommandStats(redisPort);
      const reasons: string[] = [];
      if (run.failed > 0) reasons.push(`${run.failed} calls failed`);
      if (wrong.has(side.label)) reasons.push('sample answers wrong');
      let note = '';
      const countsAfter = await serverCounts(adminAddress, REDISQUOTA_HANDLER, quotaName);
      const faults = countsAfter.handlerFaults - countsBefore.handlerFaults;
      if (faults > 0) reasons.push(`${faults} handler faults (timeouts?)`);
      if (countsBefore.quota !== undefined && countsAfter.quota !== undefined) {
        const counts = countsBetween(countsBefore.quota, countsAfter.quota);
        note = `redis granted ${counts.granted}, denied ${counts.denied}`;
        // A few answers without Redis (a stall of the shared cores past the 200 ms timeout)
        // cannot move the figures; more mean the run measured the failure policy.
        const fallbackShare = counts.fallback / Math.max(1, counts.granted + counts.denied + counts.fallback);
        if (fallbackShare > MAX_FALLBACK_SHARE) {
          reasons.push(`${counts.fallback} answered by the failure policy (Redis too slow)`);
        } else if (counts.fallback > 0) {
          note += `, ${counts.fallback} by the failure policy`;
        }
        if (side.load === 'granted' && counts.denied > 0) reasons.push(`${counts.denied} denied`);
      }
      const after = await sampleChecks(server.address, body.request, ...afterSample(side.load));
      if (!checkAnswersRight(side, after)) reasons.push(`after the run: ${formatTally(after)}`);
      if (side.adapter === 'memquota' && side.load === 'exhausted') note = `after: ${describeAfter(after)}`;
      return {
        side: side.label,
        load: side.load,
        round,
        rps: run.rps,
        latenciesUs: run.latenciesUs,
        p50Ms: run.p50Ms,
        p99Ms: run.p99Ms,
        mainUs: perCallUs(main1 - main0, run.answered),
        cpuUs: perCallUs(cpu1 - cpu0, run.answered),
        redisUs: side.adapter === 'redisquota' ? perCallUs(redis1 - redis0, run.answered) : NaN,
        scriptUs: scriptUsPerCall(script0, script1),
        note,
        invalid: reasons.join('; '),
      };
    };

    const runPeer = async (peer: Started, load: Load, round: number): Promise<ServedRun> => {
      const body = rlBodies.get(load)!;
      const [cpu0, redis0] = [peer.cpuSeconds(), redisProcess.cpuSeconds()];
      const run = await runH2load(
        peer.address,
        SHOULD_RATE_LIMIT_PATH,
        body.file,
        join(dir, `h2load-ratelimit-${load}-${round}.log`),
        h2loadOptions,
      );
      const [cpu1, redis1] = [peer.cpuSeconds(), redisProcess.cpuSeconds()];
      const reasons: string[] = [];
      if (run.failed > 0) reasons.push(`${run.failed} calls failed`);
      if (wrong.has(`${RATELIMIT} ${load}`)) reasons.push('sample answers wrong');
      const after = await sampleRateLimits(peer.address, body.request, ...afterSample(load));
      if (!ratelimitAnswersRight(load, after)) reasons.push(`after the run: ${formatTally(after)}`);
      return {
        side: peerLabel(load),
        load,
        round,
        rps: run.rps,
        latenciesUs: run.latenciesUs,
        p50Ms: run.p50Ms,
        p99Ms: run.p99Ms,
        mainUs: NaN,
        cpuUs: perCallUs(cpu1 - cpu0, run.answered),
        redisUs: perCallUs(redis1 - redis0, run.answered),
        scriptUs: NaN,
        note: load === 'exhausted' ? `after: ${describeAfter(after)}` : '',
        invalid: reasons.join('; '),
      };
    };

    const runRaw = async (side: QuotaSide, round: number): Promise<RawResult> => {
      const command = evalshaCommand(sha, side, 'bench:raw:');
      const key = `${side.algorithm} ${side.load}`;
      if (!rawRates.has(key)) {
        const probe = await runRedisBenchmark(redisPort, command, RAW_PROBE_CALLS, RAW_CLIENTS);
        rawRates.set(key, probe.rps);
      }
      const calls = Math.min(5_000_000, Math.max(RAW_PROBE_CALLS, Math.round(rawRates.get(key)! * SECONDS)));
      const [redis0, script0] = [redisProcess.cpuSeconds(), scriptCommandStats(redisPort)];
      const run = await runRedisBenchmark(redisPort, command, calls, RAW_CLIENTS);
      const [redis1, script1] = [redisProcess.cpuSeconds(), scriptCommandStats(redisPort)];
      rawRates.set(key, run.rps);
      return {
        side: `script ${side.algorithm}${side.load === 'exhausted' ? ' (exhausted)' : ''}`,
        algorithm: side.algorithm,
        load: side.load,
        round,
        calls,
        rps: run.rps,
        p50Ms: run.p50Ms,
        p99Ms: run.p99Ms,
        redisUs: perCallUs(redis1 - redis0, calls),
        scriptUs: scriptUsPerCall(script0, script1),
      };
    };

    for (let round = 1; round <= ROUNDS; round++) {
      log(`round ${round}`);
      const orderedLoads = round % 2 === 0 ? [...loads].reverse() : loads;
      for (const load of orderedLoads) {
        const sides = sidesOf.get(load)!;
        const ordered = round % 2 === 0 ? [...sides].reverse() : sides;
        log(SERVED_COLUMNS);
        for (const side of ordered) {
          const result = await runServedSide(side, round);
          served.push(result);
          log(servedRow(result));
        }
        if (ratelimit !== undefined) {
          const result = await runPeer(ratelimit, load, round);
          served.push(result);
          log(servedRow(result));
        }
        if (WITH_RAW) {
          log(RAW_COLUMNS);
          for (const side of ordered.filter((s) => s.adapter === 'redisquota')) {
            const result = await runRaw(side, round);
            raws.push(result);
            log(rawRow(result));
          }
        }
      }
    }

    // The throughput part is over: free the cores for the accuracy test.
    await Promise.all(started.splice(0).map((s) => s.stop()));

    log();
    log(`summary (dec/s: mean of counted rounds; p50/p99: all calls of counted rounds)`);
    const summaries = new Map<string, ServedRun | undefined>();
    for (const load of loads) {
      log(SERVED_COLUMNS);
      const names = [
        ...sidesOf.get(load)!.map((s) => s.label),
        ...(ratelimit !== undefined ? [peerLabel(load)] : []),
      ];
      for (const name of names) {
        const runs = served.filter((r) => r.side === name);
        const summary = summarizeServed(runs);
        summaries.set(name, summary);
        if (summary === undefined) {
          log(`${name.padEnd(38)}  mean  NOT COUNTED: no valid run`);
          exitCode = 1;
        } else {
          log(servedRow({ ...summary, note: summary.note }, 'mean'));
          if (runs.some((r) => r.invalid !== '')) exitCode = 1;
        }
      }
      if (WITH_RAW) {
        log(RAW_COLUMNS);
        for (const side of sidesOf.get(load)!.filter((s) => s.adapter === 'redisquota')) {
          const summary = summarizeRaw(raws.filter((r) => r.algorithm === side.algorithm && r.load === load));
          if (summary !== undefined) log(rawRow(summary, 'mean'));
        }
      }
    }

    log();
    log('redisquota / memquota through the same server (throughput; main-thread CPU per call):');
    for (const load of loads) {
      for (const side of sidesOf.get(load)!.filter((s) => s.adapter === 'redisquota')) {
        const ours = summaries.get(side.label);
        const mem = summaries.get(memquotaPeerOf(side).label);
        if (ours === undefined || mem === undefined) {
          log(`  ${side.label}: not computed (runs not counted)`);
          continue;
        }
        log(
          `  ${side.label.padEnd(36)} / ${memquotaPeerOf(side).label.padEnd(34)} ${fmt(ours.rps / mem.rps, 2)}` +
            `  (${fmt(ours.rps)} vs ${fmt(mem.rps)}/s; p99 ${fmt(ours.p99Ms, 2)} vs ${fmt(mem.p99Ms, 2)} ms; ` +
            `main thread ${fmt(ours.mainUs)} vs ${fmt(mem.mainUs)} µs/call)`,
        );
      }
    }
    if (WITH_RAW) {
      log('server decisions/s ÷ raw script calls/s (redis-benchmark EVALSHA, same script, same arguments):');
      for (const load of loads) {
        for (const side of sidesOf.get(load)!.filter((s) => s.adapter === 'redisquota')) {
          const ours = summaries.get(side.label);
          const raw = summarizeRaw(raws.filter((r) => r.algorithm === side.algorithm && r.load === load));
          if (ours === undefined || raw === undefined) continue;
          log(
            `  ${side.label.padEnd(36)} ${fmt(ours.rps).padStart(6)} ÷ ${fmt(raw.rps).padStart(6)} = ${fmt(ours.rps / raw.rps, 2)}` +
              `  (Redis CPU per decision: ${fmt(ours.redisUs, 1)} µs through the server, ${fmt(raw.redisUs, 1)} µs raw)`,
          );
        }
      }
    }
    if (ratelimit === undefined) log(`peer ${RATELIMIT}: ${ratelimitSkipped}`);
    else {
      log(
        `peer ${RATELIMIT} (fixed window per second, same Redis, same h2load) beside redisquota FIXED_WINDOW:`,
      );
      for (const load of loads) {
        const peer = summaries.get(peerLabel(load));
        const ours = summaries.get(sidesOf.get(load)!.find((s) => s.adapter === 'redisquota')!.label);
        if (peer === undefined || ours === undefined) {
          log(`  ${load}: not computed (runs not counted)`);
          continue;
        }
        log(
          `  ${load.padEnd(9)} ${RATELIMIT} ${fmt(peer.rps)}/s p99 ${fmt(peer.p99Ms, 2)} ms; redisquota ${fmt(ours.rps)}/s ` +
            `p99 ${fmt(ours.p99Ms, 2)} ms; redisquota / ratelimit ${fmt(ours.rps / peer.rps, 2)}` +
            ` (CPU per call, all threads: ${fmt(ours.cpuUs)} vs ${fmt(peer.cpuUs)} µs)`,
        );
      }
    }

    if (WITH_ACCURACY) {
      log();
      const accuracyDir = join(dir, 'accuracy-config');
      mkdirSync(accuracyDir);
      writeFileSync(
        join(accuracyDir, 'quotas.yaml'),
        accuracyConfigYaml(ACCURACY_LIMIT, redis.address, `bench:exact:${Date.now()}:`),
      );
      const replicas: Started[] = [];
      for (let i = 0; i < ACCURACY_SERVERS; i++) {
        const replica = await startServer(
          `switchboard replica ${i + 1}`,
          process.execPath,
          [
            join(ROOT, 'dist', 'cli', 'switchboard.js'),
            'server',
            '--config',
            accuracyDir,
            '--address',
            '127.0.0.1:0',
          ],
          /listening on (\S+:\d+)/,
          join(dir, `replica-${i + 1}.log`),
        );
        started.push(replica);
        replicas.push(replica);
      }
      clients.push(
        ...connectClients(
          replicas.map((r) => r.address),
          ACCURACY_CONNECTIONS,
        ),
      );
      log(
        `accuracy: ${ACCURACY_SERVERS} switchboard servers sharing ${redis.address}, ${ACCURACY_CONNECTIONS} gRPC connections each; ` +
          `${ACCURACY_CHECKS} Checks per algorithm (${ACCURACY_IN_FLIGHT} in flight), unique deduplication ids, limit ${ACCURACY_LIMIT}`,
      );
      const results: AccuracyResult[] = [];
      for (const quota of ACCURACY_QUOTAS) {
        const result = await measureAccuracy(
          clients,
          quota,
          ACCURACY_CHECKS,
          ACCURACY_IN_FLIGHT,
          ACCURACY_LIMIT,
          redis.port,
          `${quota.instance}-${Date.now()}`,
        );
        results.push(result);
        const refused =
          [...result.refused].map(([code, n]) => `${n} refused (status ${code})`).join(', ') ||
          'none refused';
        const window =
          quota.algorithm === 'TOKEN_BUCKET'
            ? `${ACCURACY_LIMIT} per day, burst ${ACCURACY_LIMIT}`
            : `${ACCURACY_LIMIT} per ${quota.validDurationMs / 60_000} min`;
        const exact = result.granted === result.limit && !result.crossedWindow;
        log(
          `  ${quota.algorithm.padEnd(15)} (${window}): granted ${result.granted} of ${result.checks}, ${refused}, ` +
            `${result.failed} failed, in ${fmt(result.elapsedMs)} ms → granted - limit = ${result.granted - result.limit}` +
            `${exact ? '' : '  NOT EXACT'}${result.caveats ? ` (${result.caveats})` : ''}`,
        );
        if (!exact) exitCode = 1;
      }
      const allExact = results.every((r) => r.granted === r.limit && !r.crossedWindow);
      log(`accuracy: ${allExact ? 'EXACT for every algorithm' : 'NOT EXACT (see above)'}`);
    }
    if (KEEP) log(`\nkept ${dir}`);
  } finally {
    for (const client of clients) client.close();
    await Promise.all(started.map((s) => s.stop()));
    await redis?.process.stop();
    if (!KEEP) rmSync(dir, { recursive: true, force: true });
  }
  process.exitCode = exitCode;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAllStarted();
    process.exit(130);
  });
}
main().catch((error: unknown) => {
  killAllStarted();
  process.stderr.write(`bench:quota: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
