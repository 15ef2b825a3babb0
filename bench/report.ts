/**
 * `npm run bench:report`: what the policy server spends on Report ingestion, per record.
 *
 * Sends the Report batches a proxy sends (records written from request facts by the policy
 * client's RequestReportWriter, delta-encoded, up to 100 per batch,
 * `x-switchboard-report-id` on each) at a fixed rate to each side in turn, round by round,
 * and prints the server process's CPU (user + system, all threads) per record:
 *
 *   empty handler     an empty Report handler on the same transport (bench/check/empty-http2-server.ts)
 *   no report rules   `switchboard server` with bench:mesh's policy (a listchecker, a denier: Check only)
 *   report rule       the same plus one rule sending an access-log instance of every request to noop
 *
 * The machine is shared: only figures of the same run compare. Not a test: nothing asserts a speed.
 *
 * Options (environment variables):
 *   BENCH_SECONDS=5              measured seconds per run
 *   BENCH_ROUNDS=3               rounds; each runs every side once, order rotating
 *   BENCH_BATCHES_PER_SECOND=240 offered rate (bench:mesh's proxy sent about 240 at 24k req/s)
 *   BENCH_RECORDS_PER_BATCH=100  the proxy's reportBatchEntries
 *   BENCH_CANDIDATE=path         another build's dist/cli/switchboard.js: its two sides run
 *                                beside ours in the same rounds (A/B)
 *   BENCH_SERVER_NODE_ARGS=''    node options for every server, e.g. `--cpu-prof --cpu-prof-dir=DIR`
 */
import * as http2 from 'node:http2';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { envNumber } from './bench-env';
import { killAllStarted, startProcess, startServer, type Started } from './check/processes';
import { freePort, getOnce } from './proxy/sides';
import { CHECK_POLICY, REPORT_RULE, makeBatches } from './report/workload';

const SECONDS = envNumber('BENCH_SECONDS', 5);
const ROUNDS = Math.max(1, Math.round(envNumber('BENCH_ROUNDS', 3)));
const RATE = envNumber('BENCH_BATCHES_PER_SECOND', 240, 1);
const RECORDS_PER_BATCH = Math.max(1, Math.round(envNumber('BENCH_RECORDS_PER_BATCH', 100)));
const CANDIDATE = process.env.BENCH_CANDIDATE;
const ROOT = resolve(__dirname, '..', '..');
const REPORT_PATH = '/istio.mixer.v1.Mixer/Report';
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');

function frame(message: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(5 + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, 5);
  return framed;
}

interface Side {
  readonly name: string;
  readonly server: Started;
  readonly address: string;
}

/** Sends batches at RATE for SECONDS; resolves with the records the server answered OK and the failures. */
async function load(
  address: string,
  batches: readonly { frame: Buffer; records: number }[],
  seconds: number,
): Promise<{ records: number; failures: number; firstFailure: string }> {
  const session = http2.connect(`http://${address}`);
  session.on('error', () => undefined);
  let records = 0;
  let failures = 0;
  let firstFailure = '';
  let inFlight = 0;
  let sent = 0;
  let id = 0;
  const send = (): void => {
    const batch = batches[sent++ % batches.length]!;
    inFlight++;
    const stream = session.request({
      ':method': 'POST',
      ':path': REPORT_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      'x-switchboard-report-id': `bench-${++id}`,
    });
    let status: string | undefined;
    stream.on('response', (headers) => (status ??= headers['grpc-status'] as string | undefined));
    stream.on('trailers', (trailers) => {
      status = trailers['grpc-status'] as string | undefined;
      if (status !== '0' && firstFailure === '') firstFailure = String(trailers['grpc-message']);
    });
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    stream.on('close', () => {
      inFlight--;
      if (status === '0') records += batch.records;
      else failures++;
    });
    stream.end(batch.frame);
  };
  const started = Date.now();
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      const due = Math.floor(((Date.now() - started) / 1000) * RATE);
      // Never more than 64 in flight: a side that cannot keep up is measured at its own pace.
      while (sent < due && inFlight < 64) send();
      if (Date.now() - started >= seconds * 1000) {
        clearInterval(timer);
        done();
      }
    }, 5);
  });
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 5));
  session.close();
  return { records, failures, firstFailure };
}

async function startPolicyServer(dir: string, name: string, cli: string, policy: string): Promise<Side> {
  const configDir = join(dir, name.replace(/\W+/g, '-'));
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, 'rules.yaml'), policy);
  const grpc = `127.0.0.1:${await freePort()}`;
  const admin = `127.0.0.1:${await freePort()}`;
  const server = await startProcess(
    name,
    process.execPath,
    [
      ...SERVER_NODE_ARGS,
      cli,
      'server',
      '--config',
      configDir,
      '--address',
      grpc,
      '--admin-address',
      admin,
      '--data-dir',
      join(configDir, 'data'),
    ],
    {
      logFile: join(dir, `${name.replace(/\W+/g, '-')}.log`),
      address: grpc,
      probe: async () => (await getOnce(`http://${admin}/readyz`))?.status === 200,
    },
  );
  return { name, server, address: grpc };
}

function log(line = ''): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-report-'));
  const sides: Side[] = [];
  try {
    const batches = makeBatches(64, RECORDS_PER_BATCH).map((b) => ({
      frame: frame(b.bytes),
      records: b.records,
    }));
    const recordsPerBatch = batches.reduce((s, b) => s + b.records, 0) / batches.length;
    const bytesPerBatch = batches.reduce((s, b) => s + b.frame.length, 0) / batches.length;
    const ours = join(ROOT, 'dist', 'cli', 'switchboard.js');
    const empty = await startServer(
      'empty handler',
      process.execPath,
      [...SERVER_NODE_ARGS, join(ROOT, 'dist', 'bench', 'check', 'empty-http2-server.js')],
      /listening on (\S+)/,
      join(dir, 'empty.log'),
    );
    sides.push({ name: 'empty handler', server: empty, address: empty.address });
    sides.push(await startPolicyServer(dir, 'no report rules', ours, CHECK_POLICY));
    sides.push(await startPolicyServer(dir, 'report rule', ours, CHECK_POLICY + REPORT_RULE));
    if (CANDIDATE !== undefined) {
      sides.push(await startPolicyServer(dir, 'candidate, no report rules', CANDIDATE, CHECK_POLICY));
      sides.push(
        await startPolicyServer(dir, 'candidate, report rule', CANDIDATE, CHECK_POLICY + REPORT_RULE),
      );
    }
    log(
      `report benchmark: node ${process.version}, ${cpus().length} cores, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(
          ' ',
        )}; ${RATE} batches/s of ${recordsPerBatch.toFixed(1)} records (${bytesPerBatch.toFixed(0)} bytes), ` +
        `${SECONDS}s runs, ${ROUNDS} rounds`,
    );
    // Warm-up: every side's code paths optimised before anything is measured.
    for (const side of sides) await load(side.address, batches, 1);
    log(
      `${'side'.padEnd(30)}${'round'.padStart(6)}${'records/s'.padStart(11)}${'CPU µs/record'.padStart(15)}`,
    );
    const perRecord = new Map<Side, number[]>();
    let failed = false;
    for (let round = 1; round <= ROUNDS; round++) {
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(k + round - 1) % sides.length]!;
        const before = side.server.cpuTimes();
        const mainBefore = side.server.mainThreadCpuSeconds();
        const started = process.hrtime.bigint();
        const result = await load(side.address, batches, SECONDS);
        const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
        const after = side.server.cpuTimes();
        const mainUs = ((side.server.mainThreadCpuSeconds() - mainBefore) * 1e6) / result.records;
        const cpu = after.user + after.system - before.user - before.system;
        const us = result.records > 0 ? (cpu * 1e6) / result.records : NaN;
        const kernelUs = result.records > 0 ? ((after.system - before.system) * 1e6) / result.records : NaN;
        (perRecord.get(side) ?? perRecord.set(side, []).get(side)!).push(us);
        const problem =
          result.failures > 0 ? `${result.failures} batches failed: ${result.firstFailure}` : 'ok';
        if (result.failures > 0) failed = true;
        log(
          `${side.name.padEnd(30)}${String(round).padStart(6)}${(result.records / elapsed).toFixed(0).padStart(11)}${us
            .toFixed(2)
            .padStart(15)}${kernelUs.toFixed(2).padStart(14)}${mainUs.toFixed(2).padStart(13)}  ${problem}`,
        );
      }
    }
    log();
    log('Summary (median of the rounds, CPU µs per record; minus the empty handler: the policy work)');
    const median = (values: number[]): number => {
      const sorted = [...values].sort((a, b) => a - b);
      return sorted[Math.floor(sorted.length / 2)]!;
    };
    const baseline = median(perRecord.get(sides[0]!)!);
    for (const side of sides) {
      const m = median(perRecord.get(side)!);
      log(
        `${side.name.padEnd(30)}${m.toFixed(2).padStart(8)}${side === sides[0] ? '' : `  (+${(m - baseline).toFixed(2)})`}`,
      );
    }
    process.exitCode = failed ? 1 : 0;
  } finally {
    for (const side of sides) await side.server.stop().catch(() => undefined);
    killAllStarted();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  killAllStarted();
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
