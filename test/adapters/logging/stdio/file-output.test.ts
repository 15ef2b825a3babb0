import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createStdioHandler } from '../../../../adapters/logging/stdio';
import type { CallContext } from '../../../../templates';
import { LABEL, logEntry, stdioConfig, temporaryFolder, testEnv } from './support';

function context(): CallContext {
  return { signal: new AbortController().signal };
}

function linesOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return text === '' ? [] : text.slice(0, -1).split('\n');
}

function sequenceOf(line: string): number {
  return (JSON.parse(line) as { seq: number }).seq;
}

describe('adapters/logging/stdio: files', () => {
  let folder: string;
  let remove: () => void;

  beforeEach(() => {
    ({ folder, remove } = temporaryFolder());
  });

  afterEach(() => {
    remove();
  });

  it('appends to a FILE, keeping what it held, and has every record on disk when close() resolves', async () => {
    const file = path.join(folder, 'audit.log');
    writeFileSync(file, 'earlier line\n');
    const handler = await createStdioHandler(
      stdioConfig({ logStream: 'FILE', outputPath: file }),
      testEnv().env,
    );
    const pending: Promise<void>[] = [];
    for (let n = 0; n < 20_000; n += 10) {
      const batch = Array.from({ length: 10 }, (_, i) => logEntry('audit', { seq: BigInt(n + i) }));
      const result = handler.handleLogEntry(batch, context());
      if (result !== undefined) pending.push(result);
    }
    await Promise.all(pending);
    await handler.close();
    const lines = linesOf(file);
    assert.equal(lines[0], 'earlier line');
    assert.equal(lines.length, 20_001);
    lines.slice(1).forEach((line, i) => assert.equal(sequenceOf(line), i));
    assert.equal(
      lines[1],
      '{"level":"info","time":"2024-05-01T10:20:30.123000Z","instance":"audit","seq":0}',
    );
  });

  it('says what is wrong when the folder does not exist, and does not create it', async () => {
    const file = path.join(folder, 'missing', 'audit.log');
    await assert.rejects(
      createStdioHandler(stdioConfig({ logStream: 'FILE', outputPath: file }), testEnv().env),
      {
        message:
          `${LABEL}: outputPath ${file}: the folder ${path.join(folder, 'missing')} does not exist; ` +
          'create it, or set outputPath to a file in an existing folder',
      },
    );
    assert.deepEqual(readdirSync(folder), []);
  });

  it('says what is wrong when outputPath is a folder', async () => {
    const sub = path.join(folder, 'logs');
    mkdirSync(sub);
    await assert.rejects(
      createStdioHandler(stdioConfig({ logStream: 'FILE', outputPath: sub }), testEnv().env),
      {
        message: `${LABEL}: outputPath ${sub} is a folder; set outputPath to a file in it, such as ${path.join(sub, 'access.log')}`,
      },
    );
  });

  it('rotates a ROTATED_FILE by size, whole lines per file, nothing lost', async () => {
    const file = path.join(folder, 'access.log');
    const handler = await createStdioHandler(
      stdioConfig({ logStream: 'ROTATED_FILE', outputPath: file, maxMegabytesBeforeRotation: 1 }),
      testEnv().env,
    );
    const pad = 'p'.repeat(900);
    const total = 2600; // about 2.5 MiB of ~990-byte lines
    for (let n = 0; n < total; n += 20) {
      const batch = Array.from({ length: 20 }, (_, i) => logEntry('access', { seq: BigInt(n + i), pad }));
      await handler.handleLogEntry(batch, context());
    }
    await handler.close();
    // The clock stands still, so the second backup of the same millisecond gets a sequence number.
    assert.deepEqual(readdirSync(folder).sort(), [
      'access-2024-05-01T10-20-30.123-1.log',
      'access-2024-05-01T10-20-30.123.log',
      'access.log',
    ]);
    const inOrder = [
      'access-2024-05-01T10-20-30.123.log',
      'access-2024-05-01T10-20-30.123-1.log',
      'access.log',
    ];
    for (const name of inOrder) {
      assert.ok(statSync(path.join(folder, name)).size <= 1024 * 1024, `${name} is at most 1 MiB`);
    }
    const sequence = inOrder.flatMap((name) => linesOf(path.join(folder, name))).map(sequenceOf);
    assert.deepEqual(
      sequence,
      Array.from({ length: total }, (_, i) => i),
    );
    assert.equal(handler.stats().rotations, 2);
  });

  it('keeps at most maxRotatedFiles backups, the newest', async () => {
    const file = path.join(folder, 'access.log');
    const { env, clock } = testEnv();
    const handler = await createStdioHandler(
      stdioConfig({
        logStream: 'ROTATED_FILE',
        outputPath: file,
        maxMegabytesBeforeRotation: 1,
        maxRotatedFiles: 1,
      }),
      env,
    );
    const pad = 'p'.repeat(900);
    for (let n = 0; n < 2600; n += 20) {
      clock.ms += 1000;
      const batch = Array.from({ length: 20 }, (_, i) => logEntry('access', { seq: BigInt(n + i), pad }));
      await handler.handleLogEntry(batch, context());
    }
    await handler.close();
    const names = readdirSync(folder).sort();
    assert.equal(names.length, 2);
    assert.equal(names[1], 'access.log');
    assert.match(names[0]!, /^access-2024-05-01T10-\d\d-\d\d\.123\.log$/);
    // The backup kept is the second one: it continues where nothing kept before it ends.
    const backup = linesOf(path.join(folder, names[0]!)).map(sequenceOf);
    const current = linesOf(file).map(sequenceOf);
    assert.ok(backup[0]! > 0);
    assert.equal(backup.at(-1)! + 1, current[0]);
    assert.equal(current.at(-1), 2599);
  });

  it('removes backups older than maxDaysBeforeRotation when it opens the file, and nothing else', async () => {
    const file = path.join(folder, 'access.log');
    const old = 'access-2024-03-01T00-00-00.000.log'; // 61 days before the clock
    const recent = 'access-2024-04-30T00-00-00.000-2.log';
    for (const name of [old, recent, 'other.log', 'access-notadate.log']) {
      writeFileSync(path.join(folder, name), 'x\n');
    }
    const handler = await createStdioHandler(
      stdioConfig({ logStream: 'ROTATED_FILE', outputPath: file, maxDaysBeforeRotation: 30 }),
      testEnv().env,
    );
    await handler.close();
    assert.deepEqual(readdirSync(folder).sort(), [
      'access-2024-04-30T00-00-00.000-2.log',
      'access-notadate.log',
      'access.log',
      'other.log',
    ]);
  });
});
