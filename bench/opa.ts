/**
 * `npm run bench:opa`: the opa adapter's decisions, three ways, for the same RBAC policy
 * (examples/opa/rbac: rbac.rego with its roles in data.json) and the same input, in one run:
 *
 * (a) through the policy server: `switchboard server` in a child process (one process, and
 *     one worker per core with --workers), Checks over gRPC. Load generator: h2load with a
 *     pre-framed CheckRequest — bench-kit's typical inbound Check (30 attributes) as bob,
 *     GET /api/reviews/1 — which the `authorization` instance of examples/opa/rbac's decision
 *     cases turns into the policy's input.
 * (b) the raw WebAssembly evaluation of that input, in a loop in this process: p50 and p99
 *     of single evaluations (µs), and evaluations per second.
 * (c) OPA's own server, `opa run --server` on the same policy and data, POST
 *     /v1/data/rbac/decision with that input as `{"input": …}`.
 *
 * Why h2load for OPA too: the comparison must use one load generator at one concurrency.
 * h2load speaks HTTP/1.1 as well (`--h1`) and POSTs a body file, and OPA's server speaks h2c
 * (`--h2c`), so OPA is measured both on the same transport as ours (h2c, same -c and -m)
 * and on HTTP/1.1 (its usual deployment; -c connections, one request in flight on each, as
 * HTTP/1.1 has no multiplexing — pipelining is not used). wrk would be a second generator
 * with its own costs. OPA logs requests at debug level, below its log level: it does not
 * log every request (nor does ours).
 *
 * Every server is started here and stopped by PID; each is checked with real clients
 * before the runs (a gRPC client for ours: the answer must be OK; an HTTP request for OPA:
 * the decision must allow). Rounds alternate the order of the sides, since other work shares
 * these cores and figures drift. Not a test: nothing asserts a speed.
 *
 * Targets (printed): raw evaluation p99 under 50 µs; through the server, more decisions per
 * second than OPA's server.
 *
 * Options (environment variables):
 *   BENCH_SECONDS=10         measured seconds per server run (and per raw loop, divided by 3)
 *   BENCH_WARMUP_SECONDS=2   h2load --warm-up-time
 *   BENCH_ROUNDS=2           rounds; each runs every side once, the order alternating
 *   BENCH_CLIENTS=32         h2load -c (connections)
 *   BENCH_STREAMS=1          h2load -m (requests in flight per connection; h2c only)
 *   BENCH_WORKERS=auto       worker processes for the second run of ours (0: skip it)
 *   BENCH_KEEP=0             1: keep the temporary folder (configs, logs)
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { authorizationInput, compileRego, requireOpa, WasmPolicy } from '../adapters/acl/opa';
import { AttributeBag, encodeCheckRequest, type AttributeValue } from '../attributes';
import type { AuthorizationInstance } from '../templates';
import { typicalCheckBag } from './bench-kit';
import { sampleChecks } from './check/grpc-verify';
import { killAllStarted, runToEnd, startServer, type Started } from './check/processes';
import { envNumber } from './bench-env';

const env = process.env;
const num = (name: string, fallback: number): number => envNumber(name, fallback);
const SECONDS = num('BENCH_SECONDS', 10);
const WARMUP = num('BENCH_WARMUP_SECONDS', 2);
const ROUNDS = Math.max(1, Math.round(num('BENCH_ROUNDS', 2)));
const CLIENTS = Math.round(num('BENCH_CLIENTS', 32));
const STREAMS = Math.max(1, Math.round(num('BENCH_STREAMS', 1)));
const WORKERS = env.BENCH_WORKERS ?? 'auto';
const KEEP = env.BENCH_KEEP === '1';

const ROOT = resolve(__dirname, '..', '..');
const RBAC_DIR = join(ROOT, 'examples', 'opa', 'rbac');
const CHECK_PATH = '/istio.mixer.v1.Mixer/Check';
const OPA_PATH = '/v1/data/rbac/decision';
const RAW_P99_TARGET_US = 50;

/** The instance the RBAC example's decision cases use (rbac.decisions.yaml). */
const INSTANCE_PARAMS = {
  subject: { user: 'request.headers["x-user"] | ""', groups: 'request.headers["x-group"] | ""' },
  action: {
    namespace: 'destination.namespace | "default"',
    service: 'destination.service.host | ""',
    method: 'request.method | ""',
    path: 'request.path | ""',
  },
};

interface RunResult {
  readonly side: string;
  readonly round: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuUsPerCall: number;
  readonly failed: number;
}

interface RawResult {
  readonly round: number;
  readonly perSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

function log(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1)))]!;
}

function frame(message: Uint8Array): Buffer {
  const framed = Buffer.alloc(5 + message.length);
  framed.writeUInt32BE(message.length, 1);
  Buffer.from(message).copy(framed, 5);
  return framed;
}

function withAttributes(bag: AttributeBag, changes: Record<string, AttributeValue>): AttributeBag {
  const entries = new Map<string, AttributeValue>([...bag.names()].map((n) => [n, bag.get(n)!]));
  for (const [name, value] of Object.entries(changes)) entries.set(name, value);
  return new AttributeBag(entries);
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** One POST to OPA's REST API; the parsed body. */
function postJson(port: number, path: string, body: string): Promise<unknown> {
  return new Promise((resolveBody, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          try {
            resolveBody(JSON.parse(text));
          } catch (error) {
            reject(new Error(`OPA answered ${res.statusCode}: ${text.slice(0, 200)} (${String(error)})`));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function waitForOpa(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const healthy = await new Promise<boolean>((done) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/health' }, (res) => {
        res.resume();
        done(res.statusCode === 200);
      });
      req.on('error', () => done(false));
      req.end();
    });
    if (healthy) return;
    if (Date.now() > deadline) throw new Error(`OPA on port ${port} not healthy after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** h2load against one endpoint: one run of WARMUP + SECONDS. */
async function runH2load(
  server: Started,
  side: string,
  round: number,
  url: string,
  body: string,
  headers: readonly string[],
  h1: boolean,
  dir: string,
): Promise<RunResult> {
  const logFile = join(dir, `h2load-${side.replace(/\W+/g, '_')}-${round}.log`);
  const cpuBefore = server.treeCpuSeconds();
  const args = [
    ...(h1 ? ['--h1'] : []),
    '-c', String(CLIENTS), '-m', String(h1 ? 1 : STREAMS), '-t', '1',
    '-D', String(SECONDS), '--warm-up-time', String(WARMUP),
    '-d', body, ...headers.flatMap((h) => ['-H', h]),
    '--log-file', logFile, url,
  ]; // prettier-ignore
  const out = await runToEnd('h2load', args, (SECONDS + WARMUP + 60) * 1000);
  const cpu = server.treeCpuSeconds() - cpuBefore;
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
  const answered = Number(statuses[1]);
  return {
    side,
    round,
    rps: Number(finished[1]),
    p50Ms: percentile(sorted, 0.5) / 1000,
    p99Ms: percentile(sorted, 0.99) / 1000,
    cpuUsPerCall: answered > 0 ? (cpu * 1e6) / answered : NaN,
    failed:
      Number(requests[5]) +
      Number(requests[6]) +
      Number(requests[7]) +
      Number(statuses[3]) +
      Number(statuses[4]),
  };
}

/** Evaluates `input` in a loop for `seconds`, timing each evaluation. */
function rawLoop(
  policy: WasmPolicy,
  data: unknown,
  input: unknown,
  seconds: number,
  round: number,
): RawResult {
  const instance = policy.instantiate({ nowMs: Date.now() });
  instance.setData(data as object);
  const entrypoint = policy.entrypoints['rbac/decision']!;
  for (let i = 0; i < 20_000; i++) instance.evaluate(input, entrypoint); // warm up
  const samples: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let now = started;
  while (now < deadline) {
    const t0 = performance.now();
    instance.evaluate(input, entrypoint);
    now = performance.now();
    samples.push((now - t0) * 1000);
  }
  const sorted = Float64Array.from(samples).sort();
  return {
    round,
    perSecond: samples.length / ((now - started) / 1000),
    p50Us: percentile(sorted, 0.5),
    p99Us: percentile(sorted, 0.99),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function main(): Promise<void> {
  const h2load = await runToEnd('sh', ['-c', 'command -v h2load'], 5000);
  if (h2load.code !== 0) throw new Error('h2load is missing: install it with bash scripts/install-h2load.sh');
  const opa = requireOpa(undefined, 'the OPA benchmark (compiling the policy, and as the peer server)');
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-opa-'));
  const started: Started[] = [];
  const cleanup = (): void => killAllStarted();
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    // The input, exactly as the adapter builds it from the benchmark's Check.
    const typical = typicalCheckBag();
    const headers = typical.get('request.headers') as Map<string, string>;
    const bag = withAttributes(typical, {
      'request.headers': new Map([...headers].map(([k, v]) => [k, k === 'x-user' ? 'bob' : v])),
      'request.method': 'GET',
      'request.path': '/api/reviews/1',
    });
    const instance: AuthorizationInstance = {
      name: 'request.instance.istio-system',
      subject: { user: 'bob', groups: '', properties: new Map() },
      action: {
        namespace: bag.get('destination.namespace') as string,
        service: bag.get('destination.service.host') as string,
        method: 'GET',
        path: '/api/reviews/1',
        properties: new Map(),
      },
    };
    const input = authorizationInput(instance);
    const data = JSON.parse(readFileSync(join(RBAC_DIR, 'data.json'), 'utf8')) as Record<string, unknown>;
    const regoText = readFileSync(join(RBAC_DIR, 'rbac.rego'), 'utf8');

    // (b) raw evaluation: the same compiler, the same module the server compiles.
    const compiled = await compileRego({
      opa,
      modules: [{ label: 'rbac.rego', text: regoText }],
      entrypoints: ['rbac/decision'],
      regoVersion: 'auto',
    });
    const policy = await WasmPolicy.load(compiled.wasm);
    const probe = policy.instantiate({ nowMs: Date.now() });
    probe.setData(data);
    const expected = (probe.evaluate(input, 'rbac/decision') as Array<{ result: unknown }>)[0]?.result;
    if (
      JSON.stringify(expected) !==
      JSON.stringify({ allow: true, headers: { request: { 'x-rbac-roles': 'reader,reviewer' } } })
    ) {
      throw new Error(`the raw decision is not bob's grant: ${JSON.stringify(expected)}`);
    }

    // (a) ours: configuration beside the example policy.
    const configDir = join(dir, 'config');
    mkdirSync(configDir);
    writeFileSync(
      join(configDir, 'opa.yaml'),
      [
        `apiVersion: config.istio.io/v1alpha2\nkind: handler\nmetadata: { name: rbac, namespace: istio-system }\nspec:\n  compiledAdapter: opa\n  params: ${JSON.stringify({ policyDir: RBAC_DIR, checkMethod: 'data.rbac.decision', watch: false })}\n`,
        `apiVersion: config.istio.io/v1alpha2\nkind: instance\nmetadata: { name: request, namespace: istio-system }\nspec:\n  compiledTemplate: authorization\n  params: ${JSON.stringify(INSTANCE_PARAMS)}\n`,
        `apiVersion: config.istio.io/v1alpha2\nkind: rule\nmetadata: { name: rbac, namespace: istio-system }\nspec:\n  actions: [{ handler: rbac, instances: [request] }]\n`,
      ].join('---\n'),
    );
    const checkRequest = encodeCheckRequest({ attributes: bag });
    const grpcBody = join(dir, 'check.bin');
    writeFileSync(grpcBody, frame(checkRequest));
    const opaBody = join(dir, 'input.json');
    writeFileSync(opaBody, JSON.stringify({ input }));

    const node = process.execPath;
    const cli = join(ROOT, 'dist', 'cli', 'switchboard.js');
    const ours = await startServer(
      'switchboard',
      node,
      [cli, 'server', '--config', configDir, '--address', '127.0.0.1:0'],
      /listening on (\S+:\d+)/,
      join(dir, 'switchboard.log'),
    );
    started.push(ours);
    let oursWorkers: Started | undefined;
    if (WORKERS !== '0') {
      oursWorkers = await startServer(
        'switchboard --workers',
        node,
        [cli, 'server', '--config', configDir, '--address', '127.0.0.1:0', '--workers', WORKERS],
        /listening on (\S+:\d+)/,
        join(dir, 'switchboard-workers.log'),
      );
      started.push(oursWorkers);
    }
    const opaPort = await freePort();
    const opaServer = await startServer(
      'opa',
      opa,
      // Requests are logged at debug level, below the info level set: OPA does not log each one.
      [
        'run',
        '--server',
        '--addr',
        `127.0.0.1:${opaPort}`,
        '--h2c',
        '--log-level',
        'info',
        '--log-level-request',
        'debug',
        join(RBAC_DIR, 'rbac.rego'),
        join(RBAC_DIR, 'data.json'),
      ],
      /"addrs":\["([^"]+)"\]/,
      join(dir, 'opa.log'),
    );
    started.push(opaServer);
    await waitForOpa(opaPort);

    // Answers first: h2load counts HTTP statuses only.
    for (const server of [ours, ...(oursWorkers === undefined ? [] : [oursWorkers])]) {
      const tally = await sampleChecks(server.address, checkRequest, 100);
      if (tally.size !== 1 || !tally.has('grpc OK, precondition 0, granted nothing')) {
        throw new Error(`${server.name} answers ${JSON.stringify([...tally])}, not OK`);
      }
    }
    const opaAnswer = await postJson(opaPort, OPA_PATH, JSON.stringify({ input }));
    if (JSON.stringify((opaAnswer as { result?: unknown }).result) !== JSON.stringify(expected)) {
      throw new Error(`OPA decides ${JSON.stringify(opaAnswer)}, the module ${JSON.stringify(expected)}`);
    }

    log(
      `bench:opa — RBAC policy (examples/opa/rbac), bob GET /api/reviews/1 (allowed); h2load -c ${CLIENTS}, ${SECONDS}s runs after ${WARMUP}s warm-up, ${ROUNDS} rounds`,
    );
    log(`input: ${JSON.stringify(input)}`);
    log();
    const grpcHeaders = ['content-type: application/grpc', 'te: trailers'];
    const jsonHeaders = ['content-type: application/json'];
    type Side = { name: string; run: (round: number) => Promise<RunResult> };
    const sides: Side[] = [
      {
        name: `switchboard (1 process, h2c -m ${STREAMS})`,
        run: (r) =>
          runH2load(
            ours,
            `switchboard (1 process, h2c -m ${STREAMS})`,
            r,
            `http://${ours.address}${CHECK_PATH}`,
            grpcBody,
            grpcHeaders,
            false,
            dir,
          ),
      },
      ...(oursWorkers === undefined
        ? []
        : [
            {
              name: `switchboard (--workers ${WORKERS}, h2c -m ${STREAMS})`,
              run: (r: number) =>
                runH2load(
                  oursWorkers!,
                  `switchboard (--workers ${WORKERS}, h2c -m ${STREAMS})`,
                  r,
                  `http://${oursWorkers!.address}${CHECK_PATH}`,
                  grpcBody,
                  grpcHeaders,
                  false,
                  dir,
                ),
            },
          ]),
      {
        name: `opa run --server (h2c -m ${STREAMS})`,
        run: (r) =>
          runH2load(
            opaServer,
            `opa run --server (h2c -m ${STREAMS})`,
            r,
            `http://127.0.0.1:${opaPort}${OPA_PATH}`,
            opaBody,
            jsonHeaders,
            false,
            dir,
          ),
      },
      {
        name: 'opa run --server (HTTP/1.1)',
        run: (r) =>
          runH2load(
            opaServer,
            'opa run --server (HTTP/1.1)',
            r,
            `http://127.0.0.1:${opaPort}${OPA_PATH}`,
            opaBody,
            jsonHeaders,
            true,
            dir,
          ),
      },
    ];
    const results: RunResult[] = [];
    const raws: RawResult[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 === 1 ? sides : [...sides].reverse();
      for (const side of order) {
        const r = await side.run(round);
        results.push(r);
        log(
          `round ${round}  ${r.side.padEnd(42)} ${r.rps.toFixed(0).padStart(7)} decisions/s  p50 ${r.p50Ms.toFixed(2).padStart(6)} ms  p99 ${r.p99Ms.toFixed(2).padStart(6)} ms  server CPU ${r.cpuUsPerCall.toFixed(0).padStart(4)} µs/decision${r.failed > 0 ? `  ${r.failed} FAILED` : ''}`,
        );
      }
      const raw = rawLoop(policy, data, input, Math.max(1, SECONDS / 3), round);
      raws.push(raw);
      log(
        `round ${round}  ${'raw wasm evaluation (this process)'.padEnd(42)} ${raw.perSecond.toFixed(0).padStart(7)} evaluations/s  p50 ${raw.p50Us.toFixed(1)} µs  p99 ${raw.p99Us.toFixed(1)} µs`,
      );
    }

    log();
    log('summary (median of rounds)');
    const bySide = new Map<string, RunResult[]>();
    for (const r of results) bySide.set(r.side, [...(bySide.get(r.side) ?? []), r]);
    const rps = (side: string) => median((bySide.get(side) ?? []).map((r) => r.rps));
    for (const [side, rs] of bySide) {
      log(
        `  ${side.padEnd(42)} ${median(rs.map((r) => r.rps))
          .toFixed(0)
          .padStart(
            7,
          )} decisions/s  p50 ${median(rs.map((r) => r.p50Ms)).toFixed(2)} ms  p99 ${median(rs.map((r) => r.p99Ms)).toFixed(2)} ms  CPU ${median(rs.map((r) => r.cpuUsPerCall)).toFixed(0)} µs/decision`,
      );
    }
    const rawP99 = median(raws.map((r) => r.p99Us));
    log(
      `  ${'raw wasm evaluation'.padEnd(42)} ${median(raws.map((r) => r.perSecond))
        .toFixed(0)
        .padStart(
          7,
        )} evaluations/s  p50 ${median(raws.map((r) => r.p50Us)).toFixed(1)} µs  p99 ${rawP99.toFixed(1)} µs`,
    );
    log();
    const oursBest = Math.max(
      ...sides.filter((s) => s.name.startsWith('switchboard')).map((s) => rps(s.name)),
    );
    const opaBest = Math.max(...sides.filter((s) => s.name.startsWith('opa')).map((s) => rps(s.name)));
    for (const s of sides.filter((x) => x.name.startsWith('switchboard'))) {
      for (const o of sides.filter((x) => x.name.startsWith('opa'))) {
        log(`  ratio ${s.name} / ${o.name}: ${(rps(s.name) / rps(o.name)).toFixed(2)}`);
      }
    }
    log(
      `  target: through the server, more decisions/s than OPA's server: ${oursBest.toFixed(0)} vs ${opaBest.toFixed(0)} — ${oursBest > opaBest ? 'met' : 'NOT met'}`,
    );
    log(
      `  target: raw evaluation p99 under ${RAW_P99_TARGET_US} µs: ${rawP99.toFixed(1)} µs — ${rawP99 < RAW_P99_TARGET_US ? 'met' : 'NOT met'}`,
    );
    if (results.some((r) => r.failed > 0)) process.exitCode = 1;
  } finally {
    await Promise.all(started.map((s) => s.stop()));
    cleanup();
    if (KEEP) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  killAllStarted();
  process.stderr.write(`bench:opa: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
