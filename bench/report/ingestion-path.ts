/**
 * The policy server's Report path in process, without the transport: `methods.report` of
 * createMixerMethods called with the same batches bench/report.ts sends, in a hot loop, and
 * the CPU it took per record — with bench:mesh's Check-only policy and with one report rule.
 * `node dist/bench/report/ingestion-path.js [OTHER_DIST ...]` also measures other builds
 * (their dist folders) in the same rounds, for A/B. BENCH_SECONDS (default 2) per
 * measurement, BENCH_ROUNDS (default 3).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CHECK_POLICY, REPORT_RULE, makeBatches } from './workload';

const SECONDS = Number(process.env.BENCH_SECONDS ?? '2');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? '3');

interface Case {
  readonly label: string;
  readonly report: (bytes: Buffer, metadata: Record<string, string>) => unknown;
}

/* eslint-disable @typescript-eslint/no-require-imports */
async function casesOf(root: string, label: string, dirs: Record<string, string>): Promise<Case[]> {
  const ps = require(join(root, 'policy-server'));
  const adapters = require(join(root, 'adapters'));
  const mixerService = require(join(root, 'policy-server', 'mixer-service'));
  const logger = { info() {}, warn() {}, error: (m: string) => process.stderr.write(`${m}\n`) };
  const out: Case[] = [];
  for (const [name, configDir] of Object.entries(dirs)) {
    const runtime = new ps.PolicyRuntime({
      configDir,
      registry: adapters.createBuiltinRegistry(),
      logger,
      watch: false,
    });
    await runtime.start();
    const methods = mixerService.createMixerMethods(runtime, logger);
    out.push({ label: `${label}, ${name}`, report: methods.report });
  }
  return out;
}
/* eslint-enable @typescript-eslint/no-require-imports */

async function measure(c: Case, batches: readonly { bytes: Buffer; records: number }[]): Promise<number> {
  let records = 0;
  const start = process.cpuUsage();
  const until = Date.now() + SECONDS * 1000;
  let i = 0;
  while (Date.now() < until) {
    for (let k = 0; k < 16; k++) {
      const batch = batches[i++ % batches.length]!;
      const answer = c.report(batch.bytes, { 'x-switchboard-report-id': `r${i}` });
      if (answer instanceof Promise) await answer;
      const failed = answer as { code?: number; message?: string };
      if (typeof failed.code === 'number') throw new Error(`${c.label}: ${failed.message}`);
      records += batch.records;
    }
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / records;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-ingestion-'));
  try {
    const dirs = { 'no report rules': join(dir, 'check'), 'report rule': join(dir, 'report') };
    for (const [name, policy] of [
      [dirs['no report rules'], CHECK_POLICY],
      [dirs['report rule'], CHECK_POLICY + REPORT_RULE],
    ] as const) {
      mkdirSync(name);
      writeFileSync(join(name, 'rules.yaml'), policy);
    }
    const batches = makeBatches(64, 100).map((b) => ({ bytes: Buffer.from(b.bytes), records: b.records }));
    const cases = await casesOf(resolve(__dirname, '..', '..'), 'this build', dirs);
    for (const other of process.argv.slice(2)) cases.push(...(await casesOf(resolve(other), other, dirs)));
    const results = new Map<Case, number[]>();
    for (const c of cases) await measure(c, batches); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of cases) {
        const us = await measure(c, batches);
        (results.get(c) ?? results.set(c, []).get(c)!).push(us);
      }
    }
    for (const c of cases) {
      const sorted = [...results.get(c)!].sort((a, b) => a - b);
      process.stdout.write(
        `${c.label.padEnd(60)} ${sorted[Math.floor(sorted.length / 2)]!.toFixed(3)} µs/record (rounds ${results
          .get(c)!
          .map((v) => v.toFixed(3))
          .join(', ')})\n`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
