/**
 * `npm run bench:mesh`: what policy costs the proxy. In one run, same load generator, same
 * upstream, sides alternating round by round (the machine is shared: only figures from the
 * same run compare):
 *
 *   policy off    `switchboard proxy` with no policy section
 *   policy warm   `switchboard proxy` asking a `switchboard server` (listchecker on a header, a
 *                 denier on a path), every request the same: answered from the decision cache
 *   policy miss   the same, every request a new `x-user` value (a wrk script), which the
 *                 listchecker's decision references: every request is a Check to the server
 *   nginx         nginx as a plain reverse proxy
 *
 * First every side is loaded at full rate for a few seconds (the miss side too, so the policy
 * server's Check and Report paths are compiled as in service). Then each is loaded by
 * `wrk -t1 -cN` (a warm-up run, then the measured run); printed: requests/s,
 * p50, p99 (wrk's), CPU µs per request of the proxy's process tree (the policy server's CPU is
 * printed apart), and the ratios warm/nginx (target >= 0.6), warm/off (target >= 0.9),
 * miss/off, off/nginx. After the runs each policy side's /stats shows its checks and cache
 * hits, which says whether the side did what its name says. Not a test: nothing asserts a speed.
 *
 * Then latency at a fixed 1,000 requests/s (DESIGN.md: policy on, under 1 ms of added p99):
 * `h2load --h1 -c10 --rps 100`, clients started 1 ms apart, through the upstream directly, the
 * proxy with policy off, with policy on and a warm cache, and nginx; printed: p50, p99 and p99.9,
 * and each side's p99 less the direct one's, round by round (median and range).
 *
 * Reuses bench:proxy's sides (the nginx upstream with a fixed body, the nginx proxy, the
 * proxy's command line) and load generators. Tools: wrk, h2load and nginx, installed by
 * scripts/install-*.sh when missing.
 *
 * Options (environment variables):
 *   BENCH_SECONDS=6          measured seconds per run
 *   BENCH_WARMUP_SECONDS=1   warm-up run before each
 *   BENCH_ROUNDS=3           rounds; each runs every side once, order rotating
 *   BENCH_CONNECTIONS=32     wrk -c
 *   BENCH_BODY_BYTES=128     the upstream's body
 *   BENCH_KEEP=0             1: keep the temporary folder (configs, logs)
 *   BENCH_FULL_RATE_WARMUP_SECONDS=5  full-rate load of every side before the first round
 *   BENCH_FIXED_SECONDS=10   measured seconds per fixed-rate run (0: no fixed-rate phase)
 *   BENCH_FIXED_RPS=1000     total rate of the fixed-rate runs (10 clients)
 *   BENCH_BASELINE_ROOT=dir  another build's checkout (with dist/): its two policy sides run
 *                            beside ours in the same rounds, against the same policy server (A/B)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { killAllStarted, startProcess, type Started } from './check/processes';
import { switchboardProxyConfig } from './proxy/configs';
import { median, runFixedRate, runWrk, type LoadResult } from './proxy/load';
import {
  directSide,
  freePort,
  getOnce,
  startNginxProxy,
  startUpstream,
  switchboardCommand,
  verifySide,
  type Side,
  type SideContext,
} from './proxy/sides';
import { envNumber } from './bench-env';
import { CHECK_POLICY } from './report/workload';

const env = process.env;
const num = (name: string, fallback: number): number => envNumber(name, fallback);
const SECONDS = num('BENCH_SECONDS', 6);
const WARMUP = num('BENCH_WARMUP_SECONDS', 1);
const ROUNDS = Math.max(1, Math.round(num('BENCH_ROUNDS', 3)));
const CONNECTIONS = Math.max(1, Math.round(num('BENCH_CONNECTIONS', 32)));
const BODY_BYTES = Math.max(1, Math.round(num('BENCH_BODY_BYTES', 128)));
const KEEP = env.BENCH_KEEP === '1';
const BASELINE_ROOT = env.BENCH_BASELINE_ROOT;
const FULL_RATE_WARMUP = Math.max(0, num('BENCH_FULL_RATE_WARMUP_SECONDS', 5));
const FIXED_SECONDS = Math.max(0, num('BENCH_FIXED_SECONDS', 10));
const FIXED_RPS = Math.max(10, num('BENCH_FIXED_RPS', 1000));
const FIXED_CLIENTS = 10;
/** DESIGN.md's latency target for the proxy with policy on, at 1,000 requests/s. */
const TARGET_ADDED_P99_MS = 1;
const ROOT = resolve(__dirname, '..', '..');

/** A side, and the wrk script that loads it (headers, per-request values). */
interface MeshSide {
  readonly side: Side;
  /** Makes the run's script (a new one per run, so that "unique" stays unique across runs). */
  readonly script: (run: number) => string | undefined;
  /** The proxy's admin endpoint, for policy sides. */
  readonly admin?: string;
}

interface Run {
  readonly side: MeshSide;
  readonly round: number;
  readonly result: LoadResult;
  readonly cpuUsPerRequest: number;
  readonly serverCpuUsPerRequest: number;
}

function log(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function install(script: string): void {
  const out = spawnSync('bash', [join(ROOT, 'scripts', script)], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (out.status !== 0)
    throw new Error(`scripts/${script} failed (exit ${out.status}); run it by hand to see why`);
}

function fixedBody(bytes: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let body = '';
  for (let i = 0; i < bytes; i++) body += alphabet[i % alphabet.length];
  return body;
}

const fmt = (value: number, digits: number, width: number): string =>
  (Number.isNaN(value) ? '-' : value.toFixed(digits)).padStart(width);

async function startPolicyServer(dir: string): Promise<Started & { readonly grpc: string }> {
  const configDir = join(dir, 'policy');
  mkdirSync(configDir, { recursive: true });
  // A listchecker on the caller (a header), a denier on a path: decisions reference both.
  writeFileSync(join(configDir, 'rules.yaml'), CHECK_POLICY);
  const grpc = `127.0.0.1:${await freePort()}`;
  const admin = `127.0.0.1:${await freePort()}`;
  const started = await startProcess(
    'switchboard server',
    process.execPath,
    [
      join(ROOT, 'dist', 'cli', 'switchboard.js'),
      'server',
      '--config',
      configDir,
      '--address',
      grpc,
      '--admin-address',
      admin,
      '--data-dir',
      join(dir, 'data'),
    ],
    {
      logFile: join(dir, 'policy-server.log'),
      address: grpc,
      probe: async () => (await getOnce(`http://${admin}/readyz`))?.status === 200,
    },
  );
  return Object.assign(started, { grpc });
}

/** `switchboard proxy --workers 1` in front of the upstream; with `policyServer`, asking it. */
async function startProxySide(
  ctx: SideContext,
  name: string,
  policyServer: string | undefined,
): Promise<Side & { admin: string }> {
  const port = await freePort();
  const admin = `127.0.0.1:${await freePort()}`;
  const config = join(ctx.dir, `${name.replace(/\W+/g, '-')}.yaml`);
  const policy = policyServer === undefined ? '' : `policy:\n  server: ${policyServer}\n`;
  writeFileSync(config, `${switchboardProxyConfig(port, ctx.upstreamPort)}${policy}`);
  const [command, ...args] = [
    ...switchboardCommand(undefined, {
      root: ctx.root,
      config,
      port,
      upstreamPort: ctx.upstreamPort,
      workers: 1,
    }),
    '--admin',
    admin,
  ];
  const started = await startProcess(name, command!, args, {
    logFile: join(ctx.dir, `${name.replace(/\W+/g, '-')}.log`),
    address: `127.0.0.1:${port}`,
    probe: async () => (await getOnce(`http://${admin}/ready`))?.status === 200,
  });
  return {
    name,
    kind: 'switchboard',
    description: `${[command, ...args].join(' ')}${policyServer === undefined ? '' : ` (policy server ${policyServer})`}`,
    h1Url: `http://127.0.0.1:${port}/`,
    h2cUrl: undefined,
    process: started,
    admin,
  };
}

async function policyStats(admin: string): Promise<string> {
  const answer = await getOnce(`http://${admin}/stats`);
  if (answer?.status !== 200) return 'no /stats';
  const policy = (JSON.parse(answer.body) as { policy: Record<string, number> | null }).policy;
  if (policy === null) return 'no policy client';
  return `checks sent ${policy['checks']}, cache hits ${policy['cacheHits']}, check errors ${policy['checkErrors']}, reports sent ${policy['reportsSent']}, dropped ${policy['reportsDropped']}`;
}

async function main(): Promise<void> {
  install('install-wrk.sh');
  install('install-nginx.sh');
  if (FIXED_SECONDS > 0) install('install-h2load.sh');
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-mesh-'));
  const stops: (() => Promise<void>)[] = [];
  let exitCode = 0;
  try {
    const body = fixedBody(BODY_BYTES);
    const upstream = await startUpstream(dir, body);
    stops.push(() => upstream.process.stop());
    const ctx: SideContext = {
      root: ROOT,
      dir,
      workers: 1,
      upstreamPort: upstream.port,
      upstreamH2cPort: upstream.h2cPort,
      body,
    };
    const server = await startPolicyServer(dir);
    stops.push(() => server.stop());

    const scriptFile = (name: string, text: string): string => {
      const file = join(dir, name);
      writeFileSync(file, text);
      return file;
    };
    const warmScript = scriptFile('warm.lua', 'wrk.headers["x-user"] = "alice"\n');
    const missScript = (run: number): string =>
      scriptFile(
        `miss-${run}.lua`,
        // A new x-user per request, and a prefix per run: no value repeats across runs.
        `local n = 0\nrequest = function()\n  n = n + 1\n  wrk.headers["x-user"] = "u${run}-" .. n\n  return wrk.format()\nend\n`,
      );
    let runNumber = 0;
    const sides: MeshSide[] = [];
    const track = <S extends Side>(side: S): S => {
      stops.push(() => side.process.stop());
      return side;
    };
    const off = track(await startProxySide(ctx, 'policy off', undefined));
    sides.push({ side: off, script: () => undefined, admin: off.admin });
    const warm = track(await startProxySide(ctx, 'policy on, warm cache', server.grpc));
    sides.push({ side: warm, script: () => warmScript, admin: warm.admin });
    const miss = track(await startProxySide(ctx, 'policy on, every miss', server.grpc));
    sides.push({ side: miss, script: missScript, admin: miss.admin });
    const nginx = track(await startNginxProxy(ctx));
    sides.push({ side: nginx, script: () => undefined });
    if (BASELINE_ROOT !== undefined) {
      const baseline = { ...ctx, root: resolve(BASELINE_ROOT) };
      const baseWarm = track(await startProxySide(baseline, 'baseline: warm cache', server.grpc));
      sides.push({ side: baseWarm, script: () => warmScript, admin: baseWarm.admin });
      const baseMiss = track(await startProxySide(baseline, 'baseline: every miss', server.grpc));
      sides.push({ side: baseMiss, script: missScript, admin: baseMiss.admin });
    }

    log(
      `mesh benchmark: node ${process.version}, ${cpus().length} cores, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(
          ' ',
        )}, upstream body ${BODY_BYTES} bytes, wrk -t1 -c${CONNECTIONS}, ${SECONDS}s runs after ${WARMUP}s warm-up, ${ROUNDS} rounds`,
    );
    for (const { side } of sides) log(`  ${side.name.padEnd(24)} ${side.description}`);
    for (const { side } of sides) {
      const problem = await verifySide(side, body);
      if (problem) {
        exitCode = 1;
        log(`verify ${side.name}: WRONG: ${problem}`);
      }
    }
    if (FULL_RATE_WARMUP > 0) {
      // A JIT-compiled proxy and server need tens of thousands of requests (the server's Report
      // path, at a call per 100 requests, far more) before their code settles.
      log();
      log(`warm-up at full rate: ${FULL_RATE_WARMUP}s per side`);
      for (const mesh of sides)
        await runWrk(mesh.side.h1Url, CONNECTIONS, 1, FULL_RATE_WARMUP, mesh.script(++runNumber));
    }

    log();
    log(
      `${'side'.padEnd(24)}${'round'.padStart(6)}${'req/s'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'CPU µs/req'.padStart(12)}${'server µs/req'.padStart(15)}`,
    );
    const runs: Run[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (let k = 0; k < sides.length; k++) {
        const mesh = sides[(k + round - 1) % sides.length]!;
        if (WARMUP > 0) await runWrk(mesh.side.h1Url, CONNECTIONS, 1, WARMUP, mesh.script(++runNumber));
        const before = mesh.side.process.cpuTimes();
        const serverBefore = server.cpuTimes();
        const result = await runWrk(mesh.side.h1Url, CONNECTIONS, 1, SECONDS, mesh.script(++runNumber));
        const after = mesh.side.process.cpuTimes();
        const serverAfter = server.cpuTimes();
        const perRequest = (
          a: { user: number; system: number },
          b: { user: number; system: number },
        ): number =>
          result.requests > 0 ? ((a.user + a.system - b.user - b.system) * 1e6) / result.requests : NaN;
        const run: Run = {
          side: mesh,
          round,
          result,
          cpuUsPerRequest: perRequest(after, before),
          serverCpuUsPerRequest: perRequest(serverAfter, serverBefore),
        };
        runs.push(run);
        if (result.problem) exitCode = 1;
        log(
          `${mesh.side.name.padEnd(24)}${String(round).padStart(6)}${fmt(result.rps, 0, 9)}${fmt(result.p50Ms, 2, 9)}${fmt(result.p99Ms, 2, 9)}` +
            `${fmt(run.cpuUsPerRequest, 1, 12)}${fmt(run.serverCpuUsPerRequest, 1, 15)}  ${result.problem || 'ok'}`,
        );
      }
    }

    const mean = (side: MeshSide, f: (r: Run) => number): number => {
      const mine = runs.filter((r) => r.side === side && !r.result.problem);
      return mine.length === 0 ? NaN : mine.reduce((s, r) => s + f(r), 0) / mine.length;
    };
    log();
    log('Summary (mean of the rounds)');
    for (const side of sides) {
      log(
        `${side.side.name.padEnd(24)}${fmt(
          mean(side, (r) => r.result.rps),
          0,
          9,
        )} req/s  p99 ${fmt(
          mean(side, (r) => r.result.p99Ms),
          2,
          6,
        )} ms` +
          `  CPU ${fmt(
            mean(side, (r) => r.cpuUsPerRequest),
            1,
            6,
          )} µs/req  server ${fmt(
            mean(side, (r) => r.serverCpuUsPerRequest),
            1,
            6,
          )} µs/req`,
      );
    }
    const rps = (side: MeshSide): number => mean(side, (r) => r.result.rps);
    const [offSide, warmSide, missSide, nginxSide] = sides as [MeshSide, MeshSide, MeshSide, MeshSide];
    const ratio = (a: MeshSide, b: MeshSide): string => (rps(a) / rps(b)).toFixed(2);
    log();
    log(`policy on, warm / nginx       ${ratio(warmSide, nginxSide)}  (target >= 0.60)`);
    log(`policy on, warm / policy off  ${ratio(warmSide, offSide)}  (target >= 0.90: within 10%)`);
    log(`policy on, miss / policy off  ${ratio(missSide, offSide)}`);
    log(`policy off / nginx            ${ratio(offSide, nginxSide)}`);
    if (sides.length === 6) {
      const [baseWarm, baseMiss] = sides.slice(4) as [MeshSide, MeshSide];
      log(`baseline: warm / nginx        ${ratio(baseWarm, nginxSide)}`);
      log(`baseline: warm / policy off   ${ratio(baseWarm, offSide)}`);
      log(`baseline: miss / policy off   ${ratio(baseMiss, offSide)}`);
      log(`warm: ours / baseline         ${ratio(warmSide, baseWarm)}`);
      log(`miss: ours / baseline         ${ratio(missSide, baseMiss)}`);
    }
    log();
    for (const side of sides)
      if (side.admin !== undefined) log(`${side.side.name.padEnd(24)} ${await policyStats(side.admin)}`);
    if (FIXED_SECONDS > 0) {
      const paced = [directSide(upstream), off, warm, nginx];
      await fixedRate(paced, (side) => (side === warm ? ['x-user: alice'] : []), dir);
      log();
      for (const side of sides)
        if (side.admin !== undefined) log(`${side.side.name.padEnd(24)} ${await policyStats(side.admin)}`);
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    killAllStarted();
    if (KEEP) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  process.exitCode = exitCode;
}

/**
 * Latency at a fixed rate, sides alternating round by round; each side's p99 less the direct
 * one's of the same round, whose median is held to DESIGN.md's target for the warm side.
 */
async function fixedRate(
  sides: readonly Side[],
  headers: (side: Side) => string[],
  dir: string,
): Promise<void> {
  const perClient = FIXED_RPS / FIXED_CLIENTS;
  const staggerMs = Math.max(1, Math.round(1000 / FIXED_RPS));
  log();
  log(
    `HTTP/1.1 at a fixed ${FIXED_RPS} requests/s: h2load --h1 -c${FIXED_CLIENTS} --rps ${perClient} -r1 ` +
      `--rate-period ${staggerMs}ms (clients started ${staggerMs} ms apart), ${FIXED_SECONDS}s per run after ` +
      `${WARMUP}s, ${ROUNDS} rounds`,
  );
  log(
    `${'side'.padEnd(24)}${'round'.padStart(6)}${'req/s'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'p99.9 ms'.padStart(10)}`,
  );
  const results = new Map<Side, LoadResult[]>(sides.map((side) => [side, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (let k = 0; k < sides.length; k++) {
      const side = sides[(k + round - 1) % sides.length]!;
      const result = await runFixedRate(side.h1Url, {
        h1: true,
        clients: FIXED_CLIENTS,
        totalRps: FIXED_RPS,
        seconds: FIXED_SECONDS,
        warmupSeconds: WARMUP,
        paced: true,
        headers: headers(side),
        logFile: join(dir, `h2load-${side.name.replace(/\W+/g, '_')}-${round}.log`),
      });
      results.get(side)!.push(result);
      log(
        `${side.name.padEnd(24)}${String(round).padStart(6)}${fmt(result.rps, 0, 9)}${fmt(result.p50Ms, 2, 9)}` +
          `${fmt(result.p99Ms, 2, 9)}${fmt(result.p999Ms, 2, 10)}  ${result.problem || 'ok'}`,
      );
    }
  }
  const direct = results.get(sides[0]!)!;
  log();
  log(`${'side'.padEnd(24)}  added p99 vs direct, round by round: median (range)`);
  for (const side of sides.slice(1)) {
    const added = Float64Array.from(results.get(side)!, (r, i) => r.p99Ms - direct[i]!.p99Ms).sort();
    const middle = median(added);
    const target =
      side.kind === 'switchboard' && side.name.includes('warm')
        ? `  target < ${TARGET_ADDED_P99_MS} ms: ${middle < TARGET_ADDED_P99_MS ? 'met' : 'NOT met'}`
        : '';
    log(
      `${side.name.padEnd(24)}  ${fmt(middle, 2, 6)} ms (${added[0]!.toFixed(2)}–${added[added.length - 1]!.toFixed(2)})${target}`,
    );
  }
}

main().catch((error: unknown) => {
  killAllStarted();
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
