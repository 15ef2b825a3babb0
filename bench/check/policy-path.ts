/**
 * The policy server's Check path without the transport, in process: what `npm run
 * bench:check` measures over gRPC, minus @grpc/grpc-js. A helper for finding and A/B-ing
 * hot-path changes on a noisy machine, where throughput over loopback varies ±30%.
 *
 *   node dist/bench/check/policy-path.js [DIST_ROOT ...]
 *
 * Each DIST_ROOT is a build's `dist` folder (default: this one); give a patched copy beside
 * it to compare. Every root runs in its own child process, in alternation, ROUNDS times;
 * each reports nanoseconds per Check (median of rounds) for:
 *   - handler: the Mixer service's Check handler, bytes in to response bytes out (decode,
 *     dispatch through the ten rules of bench/check/rules.ts, build and encode the
 *     response), 256 calls in flight as under h2load -c 32 -m 8;
 *   - its stages one at a time: decode, dispatcher.check (IN_FLIGHT at once when it answers with
 *     a promise, else one after another), encoding the response (encodeCheckResponse, or
 *     toCheckResponse + the generated CheckResponse.encode in a build without it).
 * Options: BENCH_SECONDS (default 2 per stage and round), BENCH_ROUNDS (default 3).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CHECK_RULES_YAML } from './rules';

const SECONDS = Number(process.env.BENCH_SECONDS ?? '2');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? '3');
const IN_FLIGHT = 256;

type Stage = 'handler' | 'decode' | 'dispatch' | 'encode';
const STAGES: readonly Stage[] = ['handler', 'decode', 'dispatch', 'encode'];

/* eslint-disable @typescript-eslint/no-require-imports, @typescript-eslint/no-explicit-any */
async function measureRoot(root: string, configDir: string): Promise<Record<Stage, number>> {
  const ps = require(join(root, 'policy-server'));
  const adapters = require(join(root, 'adapters'));
  const attributes = require(join(root, 'attributes'));
  const proto = require(join(root, 'proto'));
  const mixerService = require(join(root, 'policy-server', 'mixer-service'));
  const kit = require(join(root, 'bench', 'bench-kit'));

  const logger = { info() {}, warn() {}, error: (m: string) => process.stderr.write(`${m}\n`) };
  const runtime = new ps.PolicyRuntime({
    configDir,
    registry: adapters.createBuiltinRegistry(),
    logger,
    watch: false,
  });
  await runtime.start();
  const methods = mixerService.createMixerMethods(runtime, logger);
  const request = Buffer.from(
    attributes.encodeCheckRequest({
      attributes: kit.typicalCheckBag(),
      quotas: new Map([['requestcount', { amount: 1n, bestEffort: false }]]),
    }),
  );
  const dispatcher = runtime.current().dispatcher;
  const decoded = attributes.decodeCheckRequest(request, dispatcher.config.manifest);
  const outcome = await dispatcher.check(decoded.attributes, decoded.quotas, decoded.deduplicationId);
  if (outcome.status.code !== 0) throw new Error(`${root}: the Check is not OK: ${outcome.status.message}`);

  let sink = 0;
  /** Closed loop of IN_FLIGHT concurrent async operations for SECONDS; ns per operation. */
  const closedLoop = (op: () => unknown): Promise<number> =>
    new Promise((done) => {
      const start = process.hrtime.bigint();
      const deadline = start + BigInt(Math.round(SECONDS * 1e9));
      let count = 0;
      let active = IN_FLIGHT;
      const next = (): void => {
        count++;
        if ((count & 63) === 0 && process.hrtime.bigint() >= deadline) {
          if (--active === 0) done(Number(process.hrtime.bigint() - start) / count);
          return;
        }
        void Promise.resolve(op()).then(next);
      };
      for (let i = 0; i < IN_FLIGHT; i++) void Promise.resolve(op()).then(next);
    });
  const syncLoop = (op: () => unknown): number => {
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(SECONDS * 1e9));
    let count = 0;
    let now = start;
    while (now < deadline) {
      for (let i = 0; i < 256; i++) op();
      count += 256;
      now = process.hrtime.bigint();
    }
    return Number(now - start) / count;
  };

  // Two shapes of the Check handler: bytes in, bytes (or a promise of them) out; and the
  // grpc-js shape of builds before the bare-http2 transport, so older dist roots still compare.
  const handler = (): Promise<void> | void => {
    if (typeof methods.check === 'function') {
      const answer = methods.check(request);
      if (!(answer instanceof Promise)) {
        sink += answer.length;
        return;
      }
      return answer.then((bytes: Uint8Array) => {
        sink += bytes.length;
      });
    }
    return new Promise((done) =>
      methods.check.handler({ request } as any, (error: unknown, response: any) => {
        if (error) throw error;
        sink += methods.check.responseSerialize(response).length;
        done();
      }),
    );
  };
  const ops: Record<Stage, () => Promise<number>> = {
    handler: () => closedLoop(handler),
    decode: () =>
      Promise.resolve(
        syncLoop(
          () => (sink += attributes.decodeCheckRequest(request, dispatcher.config.manifest).globalWordCount),
        ),
      ),
    // A build whose dispatcher answers synchronous handlers without a promise is timed call
    // after call; one that always answers with a promise, with IN_FLIGHT calls in flight.
    dispatch: () =>
      dispatcher.check(decoded.attributes, decoded.quotas, decoded.deduplicationId) instanceof Promise
        ? closedLoop(() => dispatcher.check(decoded.attributes, decoded.quotas, decoded.deduplicationId))
        : Promise.resolve(
            syncLoop(() => dispatcher.check(decoded.attributes, decoded.quotas, decoded.deduplicationId)),
          ),
    // The hand-written encoder where the build has one, else the generated code.
    encode: () =>
      Promise.resolve(
        syncLoop(
          typeof ps.encodeCheckResponse === 'function'
            ? () => (sink += ps.encodeCheckResponse(outcome, decoded.globalWordCount).length)
            : () =>
                (sink += proto.mixer.CheckResponse.encode(
                  mixerService.toCheckResponse(outcome, decoded.globalWordCount),
                ).finish().length),
        ),
      ),
  };
  const result = {} as Record<Stage, number>;
  for (const stage of STAGES) {
    await ops[stage](); // warm up
    result[stage] = await ops[stage]();
  }
  await runtime.close();
  if (sink === -1) console.log(sink);
  return result;
}
/* eslint-enable @typescript-eslint/no-require-imports, @typescript-eslint/no-explicit-any */

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') {
    const result = await measureRoot(process.argv[3]!, process.argv[4]!);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const roots =
    process.argv.length > 2 ? process.argv.slice(2).map((r) => resolve(r)) : [resolve(__dirname, '..', '..')];
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-policy-path-'));
  try {
    writeFileSync(join(dir, 'rules.yaml'), CHECK_RULES_YAML);
    const samples = roots.map(() => STAGES.map(() => [] as number[]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [r, root] of roots.entries()) {
        const child = spawnSync(process.execPath, [__filename, '--child', root, dir], {
          encoding: 'utf8',
          timeout: (SECONDS * 8 + 60) * 1000,
        });
        if (child.status !== 0) throw new Error(`${root}: ${child.stderr || child.stdout}`);
        const result = JSON.parse(child.stdout.trim().split('\n').pop()!) as Record<Stage, number>;
        STAGES.forEach((stage, s) => samples[r]![s]!.push(result[stage]));
      }
    }
    console.log(
      `Check path in process, ten rules (bench/check/rules.ts), typical Check + quota; ns per Check, ` +
        `median of ${ROUNDS} rounds of ${SECONDS}s; node ${process.version}; load ` +
        spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.split(' ').slice(0, 3).join(' '),
    );
    console.log(
      `${'build'.padEnd(40)}${'handler'.padStart(10)}${'decode'.padStart(10)}${'dispatch'.padStart(10)}${'encode'.padStart(10)}`,
    );
    roots.forEach((root, r) => {
      const cells = STAGES.map((_, s) => median(samples[r]![s]!).toFixed(0).padStart(10)).join('');
      console.log(`${root.slice(-40).padEnd(40)}${cells}`);
    });
    console.log(
      `handler: bytes in to response bytes out, ${IN_FLIGHT} in flight; dispatch: dispatcher.check, ${IN_FLIGHT} in flight ` +
        `when it answers with a promise; ` +
        `encode: encodeCheckResponse (before it: toCheckResponse + CheckResponse.encode)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
