import { strict as assert } from 'node:assert';
import type { AdapterEnv } from '../../../../adapters';
import { SpoolSender, type Spool } from '../../../../adapters/logging/spool';
import { LABEL, MemorySink, RecordingLogger, openSpool, records, tempDirectory, testEnv } from './support';

const SETTINGS = { maxBatchRecords: 7, maxBatchBytes: 1 << 20, minRetryDelayMs: 5, maxRetryDelayMs: 20 };

describe('adapters/logging/spool: sender', () => {
  let env: AdapterEnv;
  let logger: RecordingLogger;
  let dispose: () => void;
  let directory: string;
  let remove: () => void;
  const cleanups: (() => Promise<void>)[] = [];

  beforeEach(() => {
    ({ env, logger, dispose } = testEnv());
    ({ directory, remove } = tempDirectory());
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    dispose();
    remove();
  });

  async function started(
    sink: MemorySink,
    settings: typeof SETTINGS & { lingerMs?: number } = SETTINGS,
  ): Promise<{ spool: Spool; sender: SpoolSender }> {
    const spool = await openSpool(env, {
      directory,
      maxSegmentBytes: 200,
      maxSpoolBytes: 1 << 20,
      fsync: 'NEVER',
    });
    const sender = new SpoolSender(spool, sink, settings, env, LABEL);
    cleanups.push(
      () => spool.close(),
      () => sender.close(),
    );
    sender.start();
    return { spool, sender };
  }

  it('delivers every record in order, in batches no larger than maxBatchRecords', async () => {
    const sink = new MemorySink();
    const { spool, sender } = await started(sink);
    for (let i = 0; i < 10; i++) await spool.append(records(i * 5, 5));
    await sender.idle();
    assert.deepEqual(
      sink.received,
      records(0, 50).map((r) => r.toString()),
    );
    assert.ok(sender.stats().deliveredBatches >= 50 / 7);
    assert.equal(spool.stats().acknowledgedRecords, 50);
  });

  /** The sizes of the batches a sink is handed, with the sender's settings given. */
  async function batchesOfATrickle(lingerMs: number): Promise<number[]> {
    const batches: number[] = [];
    const sink = new MemorySink();
    const deliver = sink.deliver.bind(sink);
    sink.deliver = (batch) => {
      batches.push(batch.length);
      return deliver(batch);
    };
    const { spool, sender } = await started(sink, { ...SETTINGS, maxBatchRecords: 100, lingerMs });
    // Five records 20 ms apart.
    for (let i = 0; i < 5; i++) {
      await spool.append(records(i, 1));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await sender.idle();
    return batches;
  }

  it('lingers after a quiet spell, so records trickling in leave as one batch', async () => {
    assert.deepEqual(await batchesOfATrickle(300), [5]);
  });

  it('without a linger, sends what is there at once', async () => {
    const batches = await batchesOfATrickle(0);
    assert.ok(batches.length > 1, `batches: ${batches.join(', ')}`);
    assert.equal(
      batches.reduce((a, b) => a + b, 0),
      5,
    );
  });

  it('aborts the delivery in flight when it closes, so a sink waiting inside it stops at once', async () => {
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    let aborted = false;
    const waiting: MemorySink = Object.assign(new MemorySink(), {
      deliver: (_batch: readonly Buffer[], signal: AbortSignal): Promise<void> =>
        new Promise<void>((_resolve, reject) => {
          entered();
          // A sink retrying inside a delivery: it waits for an hour unless aborted.
          const timer = setTimeout(() => reject(new Error('never')), 3_600_000);
          signal.addEventListener('abort', () => {
            aborted = true;
            clearTimeout(timer);
            reject(new Error('stopped'));
          });
        }),
    });
    const { spool, sender } = await started(waiting);
    await spool.append(records(0, 1));
    await inside;
    await sender.close();
    assert.ok(aborted, 'the delivery saw the abort');
    assert.equal(
      spool.stats().acknowledgedRecords,
      0,
      'nothing acknowledged: the record stays for the next sender',
    );
  });

  it('offers a failed batch again until the sink takes it, logging the outage and the recovery once', async () => {
    const sink = new MemorySink(4);
    const { spool, sender } = await started(sink);
    await spool.append(records(0, 3));
    await sender.idle();
    assert.deepEqual(sink.received, ['record-0', 'record-1', 'record-2']);
    assert.equal(sender.stats().failedAttempts, 4);
    assert.equal(sink.attempts, 5);
    assert.deepEqual(
      logger.lines.filter((l) => l.includes('the test sink')),
      [
        `warn: ${LABEL}: delivering to the test sink failed (the sink is down); the records stay in the spool and are sent again`,
        `info: ${LABEL}: delivering to the test sink again after 4 failures`,
      ],
    );
  });

  it('leaves what it could not deliver in the spool for the next start', async () => {
    const down = new MemorySink(Number.MAX_SAFE_INTEGER);
    const first = await started(down);
    await first.spool.append(records(0, 4));
    await first.sender.close();
    await first.spool.close();
    assert.deepEqual(down.received, []);

    const up = new MemorySink();
    const second = await started(up);
    await second.sender.idle();
    assert.deepEqual(up.received, ['record-0', 'record-1', 'record-2', 'record-3']);
  });
});

describe('adapters/logging/spool: sender and a spool dropping its oldest records', () => {
  it('delivers in order, never twice, and counts exactly the records it did not deliver', async () => {
    const { env, dispose } = testEnv();
    const { directory, remove } = tempDirectory();
    const spool = await openSpool(env, {
      directory,
      maxSegmentBytes: 200,
      maxSpoolBytes: 800,
      overflow: 'DROP_OLDEST',
      fsync: 'NEVER',
    });
    // A slow sink: the spool fills while batches are in flight.
    const received: number[] = [];
    const sink = {
      description: 'a slow sink',
      deliver: async (batch: readonly Buffer[]): Promise<void> => {
        await new Promise((resolve) => setTimeout(resolve, 2));
        for (const r of batch) received.push(Number(/^record-(\d+)/.exec(r.toString())![1]));
      },
    };
    const sender = new SpoolSender(spool, sink, { ...SETTINGS, maxBatchRecords: 3 }, env, LABEL);
    sender.start();
    try {
      const total = 400;
      for (let i = 0; i < total; i++) await spool.append(records(i, 1, 10));
      await sender.idle();
      const { droppedRecords } = spool.stats();
      assert.ok(droppedRecords > 0, 'the spool overflowed');
      for (let i = 1; i < received.length; i++) assert.ok(received[i]! > received[i - 1]!, `order at ${i}`);
      assert.equal(
        received.length + droppedRecords,
        total,
        'each record delivered once or counted as dropped',
      );
      assert.equal(received.at(-1), total - 1);
    } finally {
      await sender.close();
      await spool.close();
      dispose();
      remove();
    }
  });
});
