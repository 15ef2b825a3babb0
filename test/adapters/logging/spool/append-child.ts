/**
 * A process that appends to a spool until it is killed: the crash test's victim.
 * Usage: node append-child.js <directory>. After each append resolves it prints
 * `appended <n>`, n being how many records (record-0 … record-(n-1)) the spool has accepted.
 */
import { createAdapterEnv } from '../../../../adapters';
import { Spool, spoolSettings } from '../../../../adapters/logging/spool';

async function main(directory: string): Promise<void> {
  const env = createAdapterEnv('victim.handler.default', {
    info: () => undefined,
    warn: (m) => process.stderr.write(`${m}\n`),
    error: (m) => process.stderr.write(`${m}\n`),
  }).env;
  const spool = await Spool.open(
    spoolSettings({ directory, maxSegmentBytes: 4096, maxSpoolBytes: 1 << 30 }),
    env,
    'victim',
  );
  for (let next = 0; ; next += 10) {
    const batch = Array.from({ length: 10 }, (_, i) => Buffer.from(`record-${next + i}`));
    await spool.append(batch);
    process.stdout.write(`appended ${next + 10}\n`);
  }
}

main(process.argv[2]!).catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
