/**
 * `npm run bench:check`: Check throughput and latency of the policy server over gRPC, on a
 * realistic configuration (bench/check/rules.ts: ten Check rules — listchecker whitelists
 * and a blacklist, a memquota quota, deniers whose match is false — and no report rules),
 * against an EMPTY gRPC unary handler on the same transport (our gRPC transport,
 * policy-server/grpc-transport.ts, answering an empty CheckResponse, in a child process like
 * ours) in the same run, same load generator, same concurrency; and, for scale, an empty
 * handler on @grpc/grpc-js, the usual Node gRPC server.
 *
 * Load generator: h2load (Debian's nghttp2-client; scripts/install-h2load.sh installs it),
 * one pre-framed CheckRequest body sent on every call: bench-kit's typical inbound Check
 * (30 attributes, 10 request headers; `request.path` is the same on every call, as h2load
 * sends one body) with one quota `requestcount` of amount 1 and no deduplication id. The
 * deduplication key is then the quota name alone (Mixer's rule), the same on every call:
 * memquota's window is set to 1 ms so that it charges its counter on nearly every call, as
 * for real proxies' unique ids. Nothing in the server caches decisions: every call runs
 * every rule. h2load checks HTTP statuses only: before the runs, a real gRPC client checks
 * a sample of answers of every server (and that a denied variant is denied), and again
 * after each of our runs; a run whose answers are wrong is flagged and not counted.
 *
 * When Istio's Mixer is built (~/.cache/switchboard/reference-mixer/bin/mixs-lite and
 * mixload; see ../shared/reference-mixer/README.md), it runs with the same rules (plus
 * Istio's attributes.yaml) beside ours and the empty handler under Mixer's own generator,
 * mixload (its Checks vary request.path and carry no quota). It is never built here.
 *
 * Prints per run and in summary: requests/s, p50/p99 latency, the server's CPU per call
 * (all threads, and its main thread alone: on Node the JavaScript thread, which bounds
 * throughput; it is steadier than requests/s when other work shares the cores); the ratio
 * ours / empty handler and whether it meets the target (>= 0.70); ours / Mixer.
 * Not a test: nothing asserts a speed. The exit code is 1 only when answers were wrong or
 * a tool failed.
 *
 * Options (environment variables):
 *   BENCH_SECONDS=10        measured seconds per run
 *   BENCH_WARMUP_SECONDS=2  warm-up before each run (h2load --warm-up-time, mixload --warmup)
 *   BENCH_ROUNDS=2          rounds; each round runs every server once, in alternation
 *   BENCH_CLIENTS=32        h2load -c (connections)
 *   BENCH_STREAMS=8         h2load -m (concurrent streams per connection)
 *   BENCH_THREADS=1         h2load -t
 *   BENCH_GRPCJS=1          also measure an empty handler on @grpc/grpc-js (0: skip)
 *   BENCH_MIXER=auto        run the Mixer comparison when its binaries exist (0/off: skip)
 *   SWITCHBOARD_REFERENCE_MIXER=~/.cache/switchboard/reference-mixer  where Mixer was built
 *   BENCH_MIXLOAD_CONNS=4   mixload --conns; its --concurrency is 32
 *   BENCH_VERIFY_CALLS=200  sample checked with a gRPC client before the runs
 *   BENCH_KEEP=0            1: keep the temporary folder (configs, logs, h2load logs)
 *   BENCH_CANDIDATE=        paths (comma-separated) of other builds' dist/cli/switchboard.js
 *                           (e.g. patched copies): run them too, same rules, in every round,
 *                           to A/B a change
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { AttributeBag, encodeCheckRequest, type AttributeValue } from '../attributes';
import { typicalCheckBag } from './bench-kit';
import { frameGrpcMessage, mergeLatencies, percentile, runH2load } from './h2load';
import { sampleChecks } from './check/grpc-verify';
import { killAllStarted, runToEnd, startServer, type Started } from './check/processes';
import { CHECK_RULES_YAML } from './check/rules';
import { envNumber } from './bench-env';

const env = process.env;
const num = (name: string, fallback: number): number => envNumber(name, fallback);
const SECONDS = num('BENCH_SECONDS', 10);
const WARMUP = num('BENCH_WARMUP_SECONDS', 2);
const ROUNDS = Math.max(1, Math.round(num('BENCH_ROUNDS', 2)));
const CLIENTS = Math.round(num('BENCH_CLIENTS', 32));
const STREAMS = Math.round(num('BENCH_STREAMS', 8));
const THREADS = Math.round(num('BENCH_THREADS', 1));
const WITH_GRPCJS = !['0', 'off', 'false', 'no'].includes(env.BENCH_GRPCJS ?? '1');
const MIXER_MODE = env.BENCH_MIXER ?? 'auto';
const MIXER_DIR =
  env.SWITCHBOARD_REFERENCE_MIXER ?? join(homedir(), '.cache', 'switchboard', 'reference-mixer');
const MIXLOAD_CONNS = Math.round(num('BENCH_MIXLOAD_CONNS', 4));
const MIXLOAD_CONCURRENCY = 32;
const VERIFY_CALLS = Math.round(num('BENCH_VERIFY_CALLS', 200));
const KEEP = env.BENCH_KEEP === '1';
const CANDIDATES = (env.BENCH_CANDIDATE ?? '')
  .split(',')
  .filter((p) => p.trim() !== '')
  .map((p) => resolve(p.trim()));
const TARGET_RATIO = 0.7;

const ROOT = resolve(__dirname, '..', '..');
const CHECK_PATH = '/istio.mixer.v1.Mixer/Check';
const OK_ANSWER = 'grpc OK, precondition 0, granted requestcount=1';
const EMPTY_ANSWER = 'grpc OK, precondition none, granted nothing';

interface RunResult {
  readonly side: string;
  readonly round: number;
  readonly rps: number;
  readonly latenciesUs: Float64Array; // sorted; for h2load runs
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuUsPerCall: number;
  /** CPU of the server's main thread per call: for Node, the JavaScript thread that bounds throughput. */
  readonly mainUsPerCall: number;
  readonly failed: number;
  /** Empty when the answers were right; otherwise why the run does not count. */
  readonly invalid: string;
  readonly note: string;
}

function log(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function withAttribute(bag: AttributeBag, name: string, value: AttributeValue): AttributeBag {
  const entries: [string, AttributeValue][] = [...bag.names()].map((n) => [n, bag.get(n)!]);
  const at = entries.findIndex(([n]) => n === name);
  if (at >= 0) entries[at] = [name, value];
  else entries.push([name, value]);
  return new AttributeBag(entries);
}

function formatTally(tally: Map<string, number>): string {
  return [...tally].map(([k, n]) => `${n}× ${k}`).join('; ');
}

/** h2load against one server: one run of WARMUP + SECONDS. */
async function runH2loadOn(
  server: Started,
  side: string,
  round: number,
  body: string,
  dir: string,
): Promise<RunResult> {
  const logFile = join(dir, `h2load-${side.replace(/\W+/g, '_')}-${round}.log`);
  const cpuBefore = server.cpuSeconds();
  const mainBefore = server.mainThreadCpuSeconds();
  const run = await runH2load(server.address, CHECK_PATH, body, logFile, {
    clients: CLIENTS,
    streams: STREAMS,
    threads: THREADS,
    seconds: SECONDS,
    warmupSeconds: WARMUP,
  });
  const cpu = server.cpuSeconds() - cpuBefore;
  const main = server.mainThreadCpuSeconds() - mainBefore;
  return {
    side,
    round,
    rps: run.rps,
    latenciesUs: run.latenciesUs,
    p50Ms: run.p50Ms,
    p99Ms: run.p99Ms,
    cpuUsPerCall: run.answered > 0 ? (cpu * 1e6) / run.answered : NaN,
    mainUsPerCall: run.answered > 0 ? (main * 1e6) / run.answered : NaN,
    failed: run.failed,
    invalid: run.failed > 0 ? `${run.failed} requests failed/errored/timed out` : '',
    note: '',
  };
}

function goDurationMs(text: string): number {
  const m = /^([\d.]+)(ns|µs|us|ms|s|m)$/.exec(text);
  if (m === null) return NaN;
  const scale: Record<string, number> = { ns: 1e-6, µs: 1e-3, us: 1e-3, ms: 1, s: 1000, m: 60000 };
  return Number(m[1]) * scale[m[2]!]!;
}

/** mixload against one server: one run of WARMUP + SECONDS. */
async function runMixload(mixload: string, server: Started, side: string, round: number): Promise<RunResult> {
  const cpuBefore = server.cpuSeconds();
  const mainBefore = server.mainThreadCpuSeconds();
  const args = [
    '--address', server.address, '--conns', String(MIXLOAD_CONNS),
    '--concurrency', String(MIXLOAD_CONCURRENCY),
    '--duration', `${SECONDS}s`, '--warmup', `${WARMUP}s`,
  ]; // prettier-ignore
  const out = await runToEnd(mixload, args, (SECONDS + WARMUP + 60) * 1000);
  const cpu = server.cpuSeconds() - cpuBefore;
  const main = server.mainThreadCpuSeconds() - mainBefore;
  const counts = /requests=(\d+) rpc_errors=(\d+) rps=([\d.]+) status_codes=map\[([^\]]*)\]/.exec(out.stdout);
  const latency = /p50=(\S+) p90=\S+ p99=(\S+)/.exec(out.stdout);
  if (counts === null || latency === null) {
    throw new Error(`mixload failed (exit ${out.code}):\n${out.stdout}\n${out.stderr}`);
  }
  const requests = Number(counts[1]);
  const errors = Number(counts[2]);
  const codes = counts[4]!.trim();
  const notOk = codes
    .split(/\s+/)
    .filter((c) => c !== '' && !c.startsWith('0:'))
    .join(' ');
  const invalid = [errors > 0 ? `${errors} rpc errors` : '', notOk ? `precondition codes ${notOk}` : '']
    .filter(Boolean)
    .join(', ');
  // CPU per call: mixload counts only the measured calls; scale by the whole run's length.
  const answered = requests * ((SECONDS + WARMUP) / SECONDS);
  return {
    side,
    round,
    rps: Number(counts[3]),
    latenciesUs: new Float64Array(0),
    p50Ms: goDurationMs(latency[1]!),
    p99Ms: goDurationMs(latency[2]!),
    cpuUsPerCall: answered > 0 ? (cpu * 1e6) / answered : NaN,
    mainUsPerCall: answered > 0 ? (main * 1e6) / answered : NaN,
    failed: errors,
    invalid,
    note: `codes {${codes}}`,
  };
}

const usCell = (us: number): string => (Number.isNaN(us) ? '-' : us.toFixed(0)).padStart(14);

const COLUMNS = `${'server'.padEnd(34)}${'round'.padStart(5)}${'req/s'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'CPU µs/call'.padStart(13)}${'main µs/call'.padStart(14)}  answers`;

function row(r: RunResult): string {
  return (
    `${r.side.padEnd(34)}${String(r.round).padStart(5)}${r.rps.toFixed(0).padStart(9)}` +
    `${r.p50Ms.toFixed(2).padStart(9)}${r.p99Ms.toFixed(2).padStart(9)}${r.cpuUsPerCall.toFixed(0).padStart(13)}${usCell(r.mainUsPerCall)}` +
    `  ${r.invalid ? `WRONG: ${r.invalid}` : 'ok'}${r.note ? ` ${r.note}` : ''}`
  );
}

interface Summary {
  readonly side: string;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuUsPerCall: number;
  readonly mainUsPerCall: number;
  readonly valid: boolean;
}

/** Mean throughput over the rounds; p50/p99 of all calls of all rounds (h2load) or the mean of the rounds' (mixload). */
function summarize(results: readonly RunResult[], side: string): Summary {
  const runs = results.filter((r) => r.side === side);
  const valid = runs.every((r) => !r.invalid);
  const mean = (f: (r: RunResult) => number) => runs.reduce((s, r) => s + f(r), 0) / runs.length;
  const total = runs.reduce((s, r) => s + r.latenciesUs.length, 0);
  let p50 = mean((r) => r.p50Ms);
  let p99 = mean((r) => r.p99Ms);
  if (total > 0) {
    const all = mergeLatencies(runs.map((r) => r.latenciesUs));
    p50 = percentile(all, 0.5) / 1000;
    p99 = percentile(all, 0.99) / 1000;
  }
  return {
    side,
    rps: mean((r) => r.rps),
    p50Ms: p50,
    p99Ms: p99,
    cpuUsPerCall: mean((r) => r.cpuUsPerCall),
    mainUsPerCall: mean((r) => r.mainUsPerCall),
    valid,
  };
}

function summaryRow(s: Summary): string {
  return (
    `${s.side.padEnd(34)}${'mean'.padStart(5)}${s.rps.toFixed(0).padStart(9)}${s.p50Ms.toFixed(2).padStart(9)}` +
    `${s.p99Ms.toFixed(2).padStart(9)}${s.cpuUsPerCall.toFixed(0).padStart(13)}${usCell(s.mainUsPerCall)}  ${s.valid ? 'ok' : 'WRONG ANSWERS: not counted'}`
  );
}

async function main(): Promise<void> {
  const install = spawnSync('bash', [join(ROOT, 'scripts', 'install-h2load.sh')], { stdio: 'inherit' });
  if (install.status !== 0)
    throw new Error('h2load is missing and could not be installed (scripts/install-h2load.sh)');

  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-check-'));
  const ourConfig = join(dir, 'config');
  mkdirSync(ourConfig);
  writeFileSync(join(ourConfig, 'rules.yaml'), CHECK_RULES_YAML);

  const bag = typicalCheckBag();
  const quotas = new Map([['requestcount', { amount: 1n, bestEffort: false }]]);
  const request = encodeCheckRequest({ attributes: bag, quotas });
  const bodyFile = join(dir, 'check-request.bin');
  writeFileSync(bodyFile, frameGrpcMessage(request));
  const deniedVariant = encodeCheckRequest({
    attributes: withAttribute(bag, 'source.labels', new Map([['app', 'productpage'], ['version', 'v3']])), // prettier-ignore
    quotas,
  });

  const mixsLite = join(MIXER_DIR, 'bin', 'mixs-lite');
  const mixload = join(MIXER_DIR, 'bin', 'mixload');
  const attributesYaml = join(MIXER_DIR, 'src', 'mixer', 'testdata', 'config', 'attributes.yaml');
  const mixerWanted = !['0', 'off', 'false', 'no'].includes(MIXER_MODE);
  const mixerMissing = [mixsLite, mixload, attributesYaml].filter((f) => !existsSync(f));
  const withMixer = mixerWanted && mixerMissing.length === 0;

  const started: Started[] = [];
  const cleanup = async (): Promise<void> => {
    await Promise.all(started.map((s) => s.stop()));
    if (!KEEP) rmSync(dir, { recursive: true, force: true });
  };
  let exitCode = 0;
  try {
    const node = process.execPath;
    const ours = await startServer(
      'switchboard',
      node,
      [
        join(ROOT, 'dist', 'cli', 'switchboard.js'),
        'server',
        '--config',
        ourConfig,
        '--address',
        '127.0.0.1:0',
      ],
      /listening on (\S+:\d+)/,
      join(dir, 'switchboard.log'),
    );
    started.push(ours);
    const empty = await startServer(
      'empty, same transport',
      node,
      [join(ROOT, 'dist', 'bench', 'check', 'empty-http2-server.js'), '127.0.0.1:0'],
      /listening on (\S+:\d+)/,
      join(dir, 'empty-transport.log'),
    );
    started.push(empty);
    let grpcJs: Started | undefined;
    if (WITH_GRPCJS) {
      grpcJs = await startServer(
        'empty grpc-js',
        node,
        [join(ROOT, 'dist', 'bench', 'check', 'empty-grpc-server.js'), '127.0.0.1:0'],
        /listening on (\S+:\d+)/,
        join(dir, 'empty-grpc-js.log'),
      );
      started.push(grpcJs);
    }
    const candidates: { name: string; server: Started; path: string }[] = [];
    for (const [index, path] of CANDIDATES.entries()) {
      const server = await startServer(
        `candidate ${index + 1}`,
        node,
        [path, 'server', '--config', ourConfig, '--address', '127.0.0.1:0'],
        /listening on (\S+:\d+)/,
        join(dir, `candidate-${index + 1}.log`),
      );
      started.push(server);
      candidates.push({ name: `candidate ${index + 1} (10 rules)`, server, path });
    }

    const OURS = 'switchboard (10 rules)';
    const EMPTY = 'empty handler, same transport';
    const GRPCJS = 'empty handler, grpc-js';
    const sides: { name: string; server: Started; expect: string }[] = [
      { name: OURS, server: ours, expect: OK_ANSWER },
      ...candidates.map((c) => ({ name: c.name, server: c.server, expect: OK_ANSWER })),
      { name: EMPTY, server: empty, expect: EMPTY_ANSWER },
      ...(grpcJs ? [{ name: GRPCJS, server: grpcJs, expect: EMPTY_ANSWER }] : []),
    ];
    const policySides = sides.filter((side) => side.expect === OK_ANSWER);

    log(
      `Check benchmark: node ${process.version}, ${spawnSync('nproc').stdout.toString().trim()} cores, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
    );
    log(
      `request: bench-kit's typical Check, ${bag.size} attributes (10 headers) + quota requestcount=1, ${request.length} bytes;`,
    );
    log(
      `  h2load sends this one body on every call (request.path never varies; no deduplication id, memquota's dedup window 1 ms)`,
    );
    log(
      `rules: bench/check/rules.ts (4 listchecker, 1 memquota, 5 deniers whose match is false; no report rules)`,
    );
    for (const c of candidates) log(`${c.name}: ${c.path}`);

    // Answers first: a wrong answer must not count as speed.
    const wrong = new Set<string>();
    for (const side of sides) {
      const tally = await sampleChecks(side.server.address, request, VERIFY_CALLS);
      const right = tally.size === 1 && tally.has(side.expect);
      log(`verify ${side.name}: ${formatTally(tally)}${right ? '' : `  <-- WRONG, expected ${side.expect}`}`);
      if (!right) wrong.add(side.name);
    }
    for (const side of policySides) {
      const denied = await sampleChecks(side.server.address, deniedVariant, 4, 2);
      const deniedRight = [...denied.keys()].every((k) => k.startsWith('grpc OK, precondition 7'));
      log(
        `verify ${side.name}, caller version v3: ${formatTally(denied)}${deniedRight ? '' : '  <-- WRONG, expected precondition 7 (PERMISSION_DENIED)'}`,
      );
      if (!deniedRight) wrong.add(side.name);
    }

    log();
    log(
      `h2load -c ${CLIENTS} -m ${STREAMS} -t ${THREADS}, ${SECONDS}s per run after ${WARMUP}s warm-up, ${ROUNDS} rounds alternating`,
    );
    log(COLUMNS);
    const results: RunResult[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const side of sides) {
        let result = await runH2loadOn(side.server, side.name, round, bodyFile, dir);
        if (side.expect === OK_ANSWER) {
          const after = await sampleChecks(side.server.address, request, 20, 4);
          if (!(after.size === 1 && after.has(OK_ANSWER))) {
            result = { ...result, invalid: `after the run: ${formatTally(after)}` };
          }
        }
        if (wrong.has(side.name)) result = { ...result, invalid: result.invalid || 'sample answers wrong' };
        results.push(result);
        log(row(result));
      }
    }
    const sOurs = summarize(results, OURS);
    const sEmpty = summarize(results, EMPTY);
    log('summary (req/s: mean of rounds; p50/p99: all calls of all rounds)');
    log(summaryRow(sOurs));
    log(summaryRow(sEmpty));
    const sCands = candidates.map((c) => summarize(results, c.name));
    for (const sCand of sCands) log(summaryRow(sCand));
    let sGrpcJs: Summary | undefined;
    if (grpcJs) {
      sGrpcJs = summarize(results, GRPCJS);
      log(summaryRow(sGrpcJs));
    }
    const ratio = sOurs.rps / sEmpty.rps;
    log();
    if (sOurs.valid && sEmpty.valid) {
      log(
        `ours / empty handler on the same transport: ${ratio.toFixed(2)} of its throughput; target >= ${TARGET_RATIO.toFixed(2)}: ` +
          `${ratio >= TARGET_RATIO ? 'MET' : 'NOT MET'}  (p50 ${sOurs.p50Ms.toFixed(2)} vs ${sEmpty.p50Ms.toFixed(2)} ms, ` +
          `p99 ${sOurs.p99Ms.toFixed(2)} vs ${sEmpty.p99Ms.toFixed(2)} ms)`,
      );
      log(
        `policy work per Check, ours minus empty: ${(sOurs.mainUsPerCall - sEmpty.mainUsPerCall).toFixed(0)} µs of the main thread ` +
          `(${sOurs.mainUsPerCall.toFixed(0)} vs ${sEmpty.mainUsPerCall.toFixed(0)}), ` +
          `${(sOurs.cpuUsPerCall - sEmpty.cpuUsPerCall).toFixed(0)} µs of CPU in all threads`,
      );
    } else {
      log('ours / empty handler: not computed, answers were wrong');
      exitCode = 1;
    }
    for (const sCand of sCands.filter((c) => c.valid && sOurs.valid && sEmpty.valid)) {
      log(
        `${sCand.side} / empty handler: ${(sCand.rps / sEmpty.rps).toFixed(2)}; / ours: ` +
          `${(sCand.rps / sOurs.rps).toFixed(2)}× the throughput, ${(sCand.mainUsPerCall / sOurs.mainUsPerCall).toFixed(2)}× the main thread's CPU per call`,
      );
    }
    if (sGrpcJs && sGrpcJs.valid && sEmpty.valid) {
      log(
        `for scale: ours / empty grpc-js handler: ${(sOurs.rps / sGrpcJs.rps).toFixed(2)}; empty handler on our transport / on grpc-js: ` +
          `${(sEmpty.rps / sGrpcJs.rps).toFixed(2)}× the throughput, ${(sEmpty.mainUsPerCall / sGrpcJs.mainUsPerCall).toFixed(2)}× the main thread's CPU per call`,
      );
    }

    log();
    if (!withMixer) {
      log(
        mixerWanted
          ? `Istio Mixer: not run, not built here (missing ${mixerMissing.join(', ')}); see ../shared/reference-mixer/README.md`
          : 'Istio Mixer: not run (BENCH_MIXER=off)',
      );
    } else {
      const mixerConfig = join(dir, 'mixer-config');
      mkdirSync(mixerConfig);
      writeFileSync(join(mixerConfig, 'rules.yaml'), CHECK_RULES_YAML);
      writeFileSync(join(mixerConfig, 'attributes.yaml'), readFileSync(attributesYaml));
      const mixer = await startServer(
        'mixs-lite',
        mixsLite,
        ['server', '--config', mixerConfig, '--address', '127.0.0.1:0'],
        /serving Mixer gRPC API on (\S+:\d+)/,
        join(dir, 'mixs-lite.log'),
        120_000,
      );
      started.push(mixer);
      const MIXER = 'Istio Mixer (mixs-lite, 10 rules)';
      const mixSides = [
        { name: OURS, server: ours },
        ...candidates.map((c) => ({ name: c.name, server: c.server })),
        { name: MIXER, server: mixer },
        { name: EMPTY, server: empty },
      ];
      log(
        `mixload --conns ${MIXLOAD_CONNS} --concurrency ${MIXLOAD_CONCURRENCY}, ${SECONDS}s per run after ${WARMUP}s warm-up, ` +
          `${ROUNDS} rounds alternating (Mixer's own generator: ~20 attributes, request.path varies per call, no quota)`,
      );
      log(COLUMNS);
      const mixResults: RunResult[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        for (const side of mixSides) {
          let result = await runMixload(mixload, side.server, side.name, round);
          // Go spreads a call over many threads: its main thread says nothing.
          if (side.server === mixer) result = { ...result, mainUsPerCall: NaN };
          // The empty handler has no precondition: mixload reads it as code 0, nothing to check.
          if (wrong.has(side.name)) result = { ...result, invalid: result.invalid || 'sample answers wrong' };
          mixResults.push(result);
          log(row(result));
        }
      }
      const mOurs = summarize(mixResults, OURS);
      const mMixer = summarize(mixResults, MIXER);
      const mEmpty = summarize(mixResults, EMPTY);
      const mCands = candidates.map((c) => summarize(mixResults, c.name));
      log('summary (mean of rounds)');
      for (const s of [mOurs, ...mCands, mMixer, mEmpty]) log(summaryRow(s));
      log();
      if (mOurs.valid && mMixer.valid) {
        const vsMixer = mOurs.rps / mMixer.rps;
        log(
          `ours / Istio Mixer under mixload: ${vsMixer.toFixed(2)} of its throughput; bar >= 1.00: ${vsMixer >= 1 ? 'MET' : 'NOT MET'}` +
            `  (p99 ${mOurs.p99Ms.toFixed(2)} vs ${mMixer.p99Ms.toFixed(2)} ms)`,
        );
        log(
          `Istio Mixer / empty handler under mixload: ${(mMixer.rps / mEmpty.rps).toFixed(2)}; ours / empty: ${(mOurs.rps / mEmpty.rps).toFixed(2)}`,
        );
        for (const mCand of mCands.filter((c) => c.valid))
          log(`${mCand.side} / Istio Mixer under mixload: ${(mCand.rps / mMixer.rps).toFixed(2)}`);
      } else {
        log('ours / Istio Mixer: not computed, answers were wrong');
        exitCode = 1;
      }
    }
    if (KEEP) log(`\nkept ${dir}`);
  } finally {
    await cleanup();
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
  process.stderr.write(`bench:check: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
