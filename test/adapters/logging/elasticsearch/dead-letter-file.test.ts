import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeadLetterFile } from '../../../../adapters/logging/elasticsearch';

describe('elasticsearch: the dead-letter file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchboard-dead-letters-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const letter = (n: number) => ({
    index: 'audit-2026.11.27',
    id: `id-${n}`,
    status: 400,
    reason: { type: 'document_parsing_exception', reason: `field ${n}` },
    json: Buffer.from(JSON.stringify({ event: { id: `id-${n}` }, padding: 'x'.repeat(100) })),
  });

  it('rotates beyond its size by renaming the file with the time, never splitting a batch or deleting one', async () => {
    const file = join(dir, 'dead-letter.jsonl');
    writeFileSync(file, '{"id":"from-before"}\n'); // a file from an earlier run is kept going
    const letters = new DeadLetterFile(file, 1024);
    const start = Date.parse('2026-11-27T05:20:11Z');
    let n = 0;
    for (let batch = 0; batch < 12; batch++) {
      const size = 1 + (batch % 3);
      await letters.append(
        Array.from({ length: size }, () => letter(n++)),
        start + batch * 1000,
      );
    }
    // One batch larger than the bound alone: written whole into a file of its own.
    await letters.append(
      Array.from({ length: 8 }, () => letter(n++)),
      start + 12_000,
    );
    const rotated = readdirSync(dir)
      .filter((name) => name !== 'dead-letter.jsonl')
      .sort();
    assert.ok(rotated.length >= 4, `rotated: ${rotated.join(', ')}`);
    for (const name of rotated) assert.match(name, /^dead-letter\.2026-11-27T05-20-\d\dZ\.jsonl$/);
    const files = [...rotated, 'dead-letter.jsonl'].map((name) => join(dir, name));
    const ids = files.flatMap((f) =>
      readFileSync(f, 'utf8')
        .trimEnd()
        .split('\n')
        .map((line) => (JSON.parse(line) as { id: string }).id),
    );
    assert.deepEqual(ids, ['from-before', ...Array.from({ length: n }, (_, i) => `id-${i}`)]);
    // Within the bound, except the file that holds the oversized batch alone.
    for (const f of files.slice(0, -1)) assert.ok(statSync(f).size <= 1024, `${f}: ${statSync(f).size}`);
    assert.ok(statSync(file).size > 1024);
    assert.equal(readFileSync(file, 'utf8').trimEnd().split('\n').length, 8);
  });

  it('adds a counter when two rotations fall in the same second', async () => {
    const file = join(dir, 'letters');
    const letters = new DeadLetterFile(file, 1024);
    const now = Date.parse('2026-11-27T05:20:11Z');
    for (let i = 0; i < 6; i++)
      await letters.append([letter(i), letter(i + 100), letter(i + 200), letter(i + 300)], now);
    assert.deepEqual(readdirSync(dir).sort(), [
      'letters',
      'letters.2026-11-27T05-20-11Z.2.jsonl',
      'letters.2026-11-27T05-20-11Z.3.jsonl',
      'letters.2026-11-27T05-20-11Z.4.jsonl',
      'letters.2026-11-27T05-20-11Z.5.jsonl',
      'letters.2026-11-27T05-20-11Z.jsonl',
    ]);
  });
});
