import { strict as assert } from 'node:assert';
import { appendFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { AdapterEnv } from '../../../../adapters';
import { HandlerFullError } from '../../../../adapters';
import {
  Spool,
  SpoolError,
  SpoolFullError,
  checkSpoolSettings,
  spoolSettings,
} from '../../../../adapters/logging/spool';
import { LABEL, RecordingLogger, drain, openSpool, records, tempDirectory, testEnv } from './support';

function segmentFiles(directory: string): string[] {
  return readdirSync(directory)
    .filter((name) => name.startsWith('segment-'))
    .sort();
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('adapters/logging/spool: spool', () => {
  let env: AdapterEnv;
  let logger: RecordingLogger;
  let dispose: () => void;
  let directory: string;
  let remove: () => void;
  const open: Spool[] = [];

  beforeEach(() => {
    ({ env, logger, dispose } = testEnv());
    ({ directory, remove } = tempDirectory());
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    dispose();
    remove();
  });

  async function spool(settings: Parameters<typeof spoolSettings>[0] | object = {}): Promise<Spool> {
    const s = await openSpool(env, { directory, ...settings });
    open.push(s);
    return s;
  }

  it('checks its settings, naming each bad one', () => {
    assert.deepEqual(
      checkSpoolSettings({
        ...spoolSettings({ directory }),
        fsync: 'SOMETIMES' as 'NEVER',
        maxSegmentBytes: 0,
        maxSpoolBytes: 100,
      }),
      [
        'fsync must be one of ALWAYS, INTERVAL, NEVER, got SOMETIMES',
        'maxSegmentBytes must be a positive integer, got 0',
      ],
    );
    assert.deepEqual(
      checkSpoolSettings(spoolSettings({ directory, maxSpoolBytes: 100, maxSegmentBytes: 30 })),
      ['maxSpoolBytes (100) must be at least 4 × maxSegmentBytes (30)'],
    );
  });

  it('gives back what was appended, in order, and counts it', async () => {
    const s = await spool();
    await s.append(records(0, 3));
    await Promise.all([s.append(records(3, 2)), s.append(records(5, 1))]);
    assert.deepEqual(await drain(s, 4), [
      'record-0',
      'record-1',
      'record-2',
      'record-3',
      'record-4',
      'record-5',
    ]);
    assert.equal(s.stats().acceptedRecords, 6);
    assert.equal(s.stats().acknowledgedRecords, 6);
    assert.equal(await s.read(10, 1000), undefined);
  });

  it('seals segments at maxSegmentBytes and deletes them once acknowledged', async () => {
    const s = await spool({ maxSegmentBytes: 100, maxSpoolBytes: 10_000 });
    for (let i = 0; i < 10; i++) await s.append(records(i * 4, 4, 10));
    assert.ok(segmentFiles(directory).length >= 5, segmentFiles(directory).join());
    const all = await drain(s, 7);
    assert.deepEqual(
      all,
      records(0, 40, 10).map((r) => r.toString()),
    );
    assert.deepEqual(segmentFiles(directory).length, 1, 'only the segment being written remains');
  });

  it('on reopening, resends what was not acknowledged, and only that', async () => {
    const first = await spool({ maxSegmentBytes: 100, maxSpoolBytes: 10_000 });
    for (let i = 0; i < 5; i++) await first.append(records(i * 3, 3, 10));
    const batch = await first.read(4, 1 << 20);
    assert.equal(batch?.records.length, 4);
    await first.acknowledge(batch!);
    const unacknowledged = await first.read(2, 1 << 20);
    assert.equal(unacknowledged?.records.length, 2);
    await first.close();

    const second = await spool({ maxSegmentBytes: 100, maxSpoolBytes: 10_000 });
    assert.equal(second.stats().recoveredRecords, 11);
    assert.deepEqual(
      await drain(second),
      records(4, 11, 10).map((r) => r.toString()),
    );
    await second.append(records(15, 1));
    assert.deepEqual(await drain(second), ['record-15']);
  });

  it('truncates a segment cut short by a crash at its last whole record, and says so', async () => {
    const first = await spool();
    await first.append(records(0, 3));
    await first.close();
    const [segment] = segmentFiles(directory);
    const file = path.join(directory, segment!);
    const whole = statSync(file).size;
    appendFileSync(file, Buffer.from([0, 0, 0, 50, 1, 2, 3, 4, 5]));

    const second = await spool();
    assert.equal(statSync(file).size, whole);
    assert.ok(
      logger.lines.some((l) => l.includes('its last frame is incomplete') && l.includes('9 bytes discarded')),
      logger.lines.join('\n'),
    );
    assert.deepEqual(await drain(second), ['record-0', 'record-1', 'record-2']);
  });

  it('when full under REFUSE, refuses with SpoolFullError, counts, and takes records again once there is room', async () => {
    const s = await spool({ maxSegmentBytes: 100, maxSpoolBytes: 400, overflow: 'REFUSE', fsync: 'NEVER' });
    let accepted = 0;
    let refusal: unknown;
    for (let i = 0; i < 100 && refusal === undefined; i++) {
      await s.append(records(i, 1, 20)).then(
        () => accepted++,
        (error: unknown) => (refusal = error),
      );
    }
    assert.ok(refusal instanceof SpoolFullError);
    assert.ok(refusal instanceof HandlerFullError, 'answered RESOURCE_EXHAUSTED by the server');
    assert.equal(refusal.code, 'FULL');
    assert.match(
      refusal.message,
      /^spool-test\/audit\.handler\.istio-system: the spool in .* is full \(400 bytes/,
    );
    assert.equal(s.stats().refusedRecords, 1);
    assert.ok(s.stats().spoolBytes <= 400);
    assert.equal((await drain(s)).length, accepted);
    await s.append(records(1000, 1, 20));
    assert.deepEqual(await drain(s), [records(1000, 1, 20)[0]!.toString()]);
    assert.equal(
      logger.lines.filter((l) => l.includes('refusing records')).length,
      1,
      'one line per episode',
    );
  });

  it('when full under DROP_OLDEST, drops the oldest records, counts and logs every one', async () => {
    const s = await spool({
      maxSegmentBytes: 100,
      maxSpoolBytes: 400,
      overflow: 'DROP_OLDEST',
      fsync: 'NEVER',
    });
    const total = 60;
    for (let i = 0; i < total; i++) await s.append(records(i, 1, 20));
    const stats = s.stats();
    assert.ok(stats.droppedRecords > 0);
    assert.ok(stats.spoolBytes <= 400);
    const delivered = await drain(s);
    assert.equal(
      delivered.length + stats.droppedRecords,
      total,
      'every record delivered or counted as dropped',
    );
    assert.equal(delivered.at(-1), records(total - 1, 1, 20)[0]!.toString(), 'the newest survive');
    const logged = logger.lines
      .map((l) => /dropped the (\d+) oldest/.exec(l))
      .filter((m) => m !== null)
      .reduce((sum, m) => sum + Number(m[1]), 0);
    assert.equal(logged, stats.droppedRecords);
  });

  it('syncs before an append resolves under ALWAYS', async () => {
    const s = await spool({ fsync: 'ALWAYS' });
    await s.append(records(0, 1));
    assert.ok(s.stats().fsyncs >= 1);
  });

  it('syncs on its timer under INTERVAL, not per append', async () => {
    const s = await spool({ fsync: 'INTERVAL', fsyncIntervalMs: 10 });
    await s.append(records(0, 1));
    await until(() => s.stats().fsyncs >= 1);
    const synced = s.stats().fsyncs;
    // With nothing written since, the timer does not sync again.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(s.stats().fsyncs, synced);
  });

  it('never syncs under NEVER, not even on close', async () => {
    const s = await spool({ fsync: 'NEVER' });
    await s.append(records(0, 5));
    await s.close();
    assert.equal(s.stats().fsyncs, 0);
    const again = await spool({ fsync: 'NEVER' });
    assert.equal((await drain(again)).length, 5);
  });

  it('refuses appends after close with CLOSED, and close is idempotent', async () => {
    const s = await spool();
    const closing = s.close();
    assert.equal(s.close(), closing);
    await closing;
    await assert.rejects(
      s.append(records(0, 1)),
      (e: unknown) => e instanceof SpoolError && e.code === 'CLOSED',
    );
  });

  it('refuses settings it cannot use when opened', async () => {
    await assert.rejects(
      Spool.open(spoolSettings({ directory, fsyncIntervalMs: -1 }), env, LABEL),
      new Error(`${LABEL}: spool fsyncIntervalMs must be a positive integer, got -1`),
    );
  });
});
