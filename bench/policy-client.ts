/**
 * `node dist/bench/policy-client.js`: what the proxy's unary gRPC client costs per call, our
 * own HTTP/2 (proxy/policy/grpc-unary-client.ts) against the node:http2 client it replaced
 * (bench/policy-client/node-http2-unary-client.ts), in the same run, alternating.
 *
 * Both call an empty Check/Report server in another process (bench/check/empty-http2-server.ts),
 * so this process's CPU (user + system, from process.cpuUsage) is the client's alone, plus
 * the benchmark's own loop, the same for both. Two messages: a Report batch (~15 KB, with a
 * unique `x-switchboard-report-id` per call, as the proxy sends every 100 requests) and a
 * Check (~600 B); two loads: a fixed rate (timer-driven, as a proxy sends) and closed-loop
 * (BENCH_CONCURRENCY calls outstanding, as fast as the server answers).
 *
 * Prints, per message and load, the median CPU µs per call of each client and new / old.
 * The machine is shared: only figures of the same run compare. Not a test: nothing asserts a speed.
 *
 * Options (environment variables):
 *   BENCH_SECONDS=2          measured seconds per run
 *   BENCH_ROUNDS=5           rounds; each runs every client on every workload once
 *   BENCH_RATE=2000          calls per second of the fixed-rate load
 *   BENCH_CONCURRENCY=8      calls outstanding in the closed loop
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GrpcUnaryClient } from '../proxy/policy/grpc-unary-client';
import { envNumber } from './bench-env';
import { killAllStarted, startServer } from './check/processes';
import { NodeHttp2UnaryClient } from './policy-client/node-http2-unary-client';

const SECONDS = envNumber('BENCH_SECONDS', 2);
const ROUNDS = Math.max(1, Math.round(envNumber('BENCH_ROUNDS', 5)));
const RATE = envNumber('BENCH_RATE', 2000, 1);
const CONCURRENCY = Math.max(1, Math.round(envNumber('BENCH_CONCURRENCY', 8)));
const DEADLINE_MS = 5000;

interface UnaryClient {
  call(
    path: string,
    message: Uint8Array,
    deadlineMs: number,
    metadata?: Readonly<Record<string, string>>,
  ): Promise<{ code: number; message: string }>;
  close(): void;
}

interface Workload {
  readonly name: string;
  readonly path: string;
  readonly message: Uint8Array;
  /** Metadata of call `i`. */
  readonly metadata: (i: number) => Readonly<Record<string, string>> | undefined;
}

/** Bytes that look like a protobuf message: varied, not all zeros. */
function messageOf(bytes: number): Uint8Array {
  const message = new Uint8Array(bytes);
  let state = 12345;
  for (let i = 0; i < bytes; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    message[i] = state >>> 24;
  }
  return message;
}

const WORKLOADS: readonly Workload[] = [
  {
    name: 'Report 15 KB',
    path: '/istio.mixer.v1.Mixer/Report',
    message: messageOf(15_000),
    metadata: (i) => ({
      'x-switchboard-report-id': `6c0ffb4c7c2e9a0ea1f42d4d${i.toString(16).padStart(8, '0')}`,
    }),
  },
  {
    name: 'Check 600 B',
    path: '/istio.mixer.v1.Mixer/Check',
    message: messageOf(600),
    metadata: () => undefined,
  },
];

interface Run {
  readonly calls: number;
  readonly failures: number;
  readonly firstFailure: string;
  /** CPU microseconds of this process per call. */
  readonly cpuMicrosPerCall: number;
}

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** Sends `workload` at RATE calls per second for SECONDS. */
async function fixedRate(client: UnaryClient, workload: Workload): Promise<Run> {
  let calls = 0;
  let failures = 0;
  let firstFailure = '';
  let sent = 0;
  let inFlight = 0;
  const onResult = (result: { code: number; message: string }): void => {
    inFlight--;
    if (result.code === 0) calls++;
    else if (failures++ === 0) firstFailure = result.message;
  };
  const startCpu = cpuMicros();
  const start = performance.now();
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      const elapsed = (performance.now() - start) / 1000;
      if (elapsed >= SECONDS) {
        clearInterval(timer);
        done();
        return;
      }
      const due = Math.floor(elapsed * RATE);
      while (sent < due) {
        inFlight++;
        void client
          .call(workload.path, workload.message, DEADLINE_MS, workload.metadata(sent++))
          .then(onResult);
      }
    }, 1);
  });
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 1));
  return { calls, failures, firstFailure, cpuMicrosPerCall: (cpuMicros() - startCpu) / Math.max(1, sent) };
}

/** Keeps CONCURRENCY calls of `workload` outstanding for SECONDS. */
async function closedLoop(client: UnaryClient, workload: Workload): Promise<Run> {
  let calls = 0;
  let failures = 0;
  let firstFailure = '';
  let sent = 0;
  const startCpu = cpuMicros();
  const end = performance.now() + SECONDS * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const result = await client.call(
        workload.path,
        workload.message,
        DEADLINE_MS,
        workload.metadata(sent++),
      );
      if (result.code === 0) calls++;
      else if (failures++ === 0) firstFailure = result.message;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { calls, failures, firstFailure, cpuMicrosPerCall: (cpuMicros() - startCpu) / Math.max(1, sent) };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-policy-client-'));
  const script = resolve(__dirname, 'check', 'empty-http2-server.js');
  const server = await startServer(
    'empty-http2-server',
    process.execPath,
    [script, '127.0.0.1:0'],
    /listening on (\S+)/,
    join(dir, 'empty-http2-server.log'),
  );
  const clients: readonly { name: string; make: () => UnaryClient }[] = [
    { name: 'node:http2 (old)', make: () => new NodeHttp2UnaryClient(server.address) },
    { name: 'own HTTP/2 (new)', make: () => new GrpcUnaryClient(server.address) },
  ];
  const loads = [
    { name: `${RATE}/s`, run: fixedRate },
    { name: `closed x${CONCURRENCY}`, run: closedLoop },
  ];
  // The fixed-rate loop's own cost (timer wakeups), with calls that do nothing: part of both
  // clients' figures at that load.
  const loopOnly: UnaryClient = {
    call: () => Promise.resolve({ code: 0, message: '' }),
    close: () => undefined,
  };
  const loopCosts: number[] = [];
  const failures: string[] = [];
  const results = new Map<string, number[]>();
  const rates = new Map<string, number[]>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const workload of WORKLOADS) {
        for (const load of loads) {
          // Alternate which client goes first.
          const order = round % 2 === 0 ? clients : [...clients].reverse();
          for (const side of order) {
            const client = side.make();
            // Warm: the connection, the tables, the JIT.
            for (let i = 0; i < 200; i++)
              await client.call(workload.path, workload.message, DEADLINE_MS, workload.metadata(i));
            const run = await load.run(client, workload);
            client.close();
            // A failed call is counted and shown, not fatal: the empty server's node:http2 may
            // refuse a burst (ENHANCE_YOUR_CALM), which says nothing of the client's cost.
            if (run.failures > 0) {
              failures.push(
                `${side.name}, ${workload.name}, ${load.name}: ${run.failures} failed (${run.firstFailure})`,
              );
            }
            const key = `${workload.name}|${load.name}|${side.name}`;
            (results.get(key) ?? results.set(key, []).get(key)!).push(run.cpuMicrosPerCall);
            (rates.get(key) ?? rates.set(key, []).get(key)!).push(run.calls / SECONDS);
          }
        }
      }
      loopCosts.push((await fixedRate(loopOnly, WORKLOADS[1]!)).cpuMicrosPerCall);
      process.stdout.write(`round ${round + 1}/${ROUNDS} done\n`);
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(
    `\nclient CPU µs per call (median of ${ROUNDS} rounds of ${SECONDS}s; this process only, the server elsewhere)\n`,
  );
  process.stdout.write(
    `  (the ${RATE}/s loop alone, calls doing nothing: ${median(loopCosts).toFixed(1)} µs per call)\n`,
  );
  for (const failure of failures) process.stdout.write(`  failed calls: ${failure}\n`);
  for (const workload of WORKLOADS) {
    for (const load of loads) {
      const [old, own] = clients.map((side) =>
        median(results.get(`${workload.name}|${load.name}|${side.name}`)!),
      );
      const [oldRate, ownRate] = clients.map((side) =>
        median(rates.get(`${workload.name}|${load.name}|${side.name}`)!),
      );
      process.stdout.write(
        `  ${workload.name.padEnd(13)} ${load.name.padEnd(11)} old ${old!.toFixed(1).padStart(6)} µs  new ${own!.toFixed(1).padStart(6)} µs  new/old ${(own! / old!).toFixed(2)}   calls/s old ${oldRate!.toFixed(0)} new ${ownRate!.toFixed(0)}\n`,
      );
    }
  }
}

process.on('SIGINT', () => {
  killAllStarted();
  process.exit(130);
});
main().catch((error: unknown) => {
  killAllStarted();
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
