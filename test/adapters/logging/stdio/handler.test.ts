import { strict as assert } from 'node:assert';
import { Writable } from 'node:stream';
import { STDIO, StdioError, createStdioHandler, type StdioHandler } from '../../../../adapters/logging/stdio';
import type { CallContext } from '../../../../templates';
import { LABEL, MemoryStream, logEntry, settle, stdioConfig, testEnv } from './support';

function context(): CallContext {
  return { signal: new AbortController().signal };
}

/** A log entry whose line is `{"level":"info","time":…,"instance":"audit","seq":<n>,"pad":"<pad>"}`. */
function numbered(n: number, pad = ''): ReturnType<typeof logEntry> {
  return logEntry('audit', pad === '' ? { seq: BigInt(n) } : { seq: BigInt(n), pad });
}

function sequenceOf(line: string): number {
  return (JSON.parse(line) as { seq: number }).seq;
}

async function assertRejectsWith(promise: unknown, code: string, message: string): Promise<void> {
  await assert.rejects(Promise.resolve(promise), (error: unknown) => {
    assert.ok(error instanceof StdioError);
    assert.equal(error.code, code);
    assert.equal(error.message, message);
    return true;
  });
}

describe('adapters/logging/stdio: handler lifecycle', () => {
  it('builds through the adapter info, writing to stdout by default', async () => {
    const handler = (await STDIO.build(stdioConfig(), testEnv().env)) as StdioHandler;
    handler.handleLogEntry([], context());
    handler.handleMetric([], context());
    await handler.close();
    assert.equal(handler.stats().acceptedRecords, 0);
  });

  it('close() is idempotent, flushes first, and later calls fail fast with a clear error', async () => {
    const stream = new MemoryStream({ delayMs: 2 });
    const handler = await createStdioHandler(stdioConfig(), testEnv().env, { stream });
    handler.handleLogEntry([numbered(1), numbered(2)], context());
    const first = handler.close();
    const second = handler.close();
    assert.equal(first, second);
    await first;
    await handler.close();
    assert.deepEqual(stream.lines().map(sequenceOf), [1, 2]);
    assert.equal(stream.writableEnded, false, 'a stream the handler does not own is left open');
    const closed = `${LABEL}: the handler is closed and accepts no more records`;
    assert.throws(() => handler.handleLogEntry([numbered(3)], context()), {
      name: 'StdioError',
      code: 'CLOSED',
      message: closed,
    });
    assert.throws(() => handler.handleMetric([], context()), { code: 'CLOSED', message: closed });
  });

  it('lets many handlers share one stream without a listener-leak warning, and restores its limit', async () => {
    const stream = new MemoryStream();
    const limit = stream.getMaxListeners();
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const handlers = await Promise.all(
        Array.from({ length: 15 }, () => createStdioHandler(stdioConfig(), testEnv().env, { stream })),
      );
      await Promise.all(handlers.map((h) => h.close()));
      await settle();
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(
      warnings.map((w) => w.name),
      [],
    );
    assert.equal(stream.getMaxListeners(), limit);
    assert.equal(stream.listenerCount('error'), 0);
  });

  it('writes many records in call order, and all of them before close() resolves', async () => {
    const stream = new MemoryStream({ delayMs: 0 });
    const handler = await createStdioHandler(stdioConfig(), testEnv().env, { stream, maxWriteBytes: 4096 });
    const pending: Promise<void>[] = [];
    for (let n = 0; n < 5000; n += 5) {
      const result = handler.handleLogEntry(
        [0, 1, 2, 3, 4].map((i) => numbered(n + i)),
        context(),
      );
      if (result !== undefined) pending.push(result);
    }
    await Promise.all(pending);
    await handler.close();
    const sequence = stream.lines().map(sequenceOf);
    assert.equal(sequence.length, 5000);
    sequence.forEach((seq, i) => assert.equal(seq, i));
    assert.ok(stream.chunks.length > 1, 'written in several chunks');
    assert.equal(handler.stats().writtenRecords, 5000);
  });
});

describe('adapters/logging/stdio: backpressure', () => {
  it('makes a caller that waits wait for room: memory stays bounded and nothing is lost', async () => {
    const stream = new MemoryStream({ delayMs: 1, highWaterMark: 64 });
    const handler = await createStdioHandler(stdioConfig(), testEnv().env, {
      stream,
      maxBufferedBytes: 2048,
      maxPendingBytes: 4096,
      maxWriteBytes: 512,
    });
    let waited = 0;
    for (let n = 0; n < 600; n++) {
      const result = handler.handleLogEntry([numbered(n, 'x'.repeat(40))], context());
      if (result !== undefined) {
        waited++;
        await result;
      }
    }
    await handler.close();
    const stats = handler.stats();
    assert.ok(waited > 0, 'the buffer filled and calls waited');
    assert.ok(stats.peakBufferedBytes <= 2048, `peak buffered ${stats.peakBufferedBytes}`);
    assert.ok(stats.peakPendingBytes <= 2048 + 200, `peak held ${stats.peakPendingBytes}`);
    assert.equal(stats.refusedRecords, 0);
    assert.deepEqual(
      stream.lines().map(sequenceOf),
      Array.from({ length: 600 }, (_, i) => i),
    );
  });

  it('refuses a caller that does not wait beyond the hard limit, says so, and loses none it accepted', async () => {
    const stream = new MemoryStream({ gated: true });
    const { env, logger } = testEnv();
    const handler = await createStdioHandler(stdioConfig(), env, {
      stream,
      maxBufferedBytes: 1000,
      maxPendingBytes: 3000,
    });
    // Two-digit sequence numbers, so every line has this length.
    const line = '{"level":"info","time":"2024-05-01T10:20:30.123000Z","instance":"audit","seq":10}\n';
    const accepted: number[] = [];
    const waiting: Promise<void>[] = [];
    const refused: StdioError[] = [];
    for (let n = 10; n < 70; n++) {
      try {
        const result = handler.handleLogEntry([numbered(n)], context());
        if (result !== undefined) waiting.push(result);
        accepted.push(n);
      } catch (error) {
        assert.ok(error instanceof StdioError);
        refused.push(error);
      }
    }
    const held = Math.floor(3000 / line.length) * line.length;
    assert.equal(accepted.length, Math.floor(3000 / line.length));
    assert.equal(refused.length, 60 - accepted.length);
    assert.equal(refused[0]!.code, 'OVERLOADED');
    assert.equal(
      refused[0]!.message,
      `${LABEL}: the given stream is not keeping up: ${held} bytes are held and this call's 1 records ` +
        `(${line.length} bytes) would pass the limit of 3000; they were not accepted. ` +
        'Wait for each call before making the next.',
    );
    assert.deepEqual(
      logger.lines,
      [`warn: ${refused[0]!.message}`],
      'the first refusal of an episode is logged',
    );
    assert.equal(handler.stats().refusedRecords, refused.length);
    assert.ok(handler.stats().peakPendingBytes <= 3000);

    stream.open();
    await Promise.all(waiting);
    handler.handleLogEntry([numbered(1000)], context());
    assert.equal(
      logger.lines[1],
      `warn: ${LABEL}: accepting records again; ${refused.length} records were refused while the given stream was not keeping up`,
    );
    await handler.close();
    assert.deepEqual(stream.lines().map(sequenceOf), [...accepted, 1000]);
  });

  it('refuses a waiting call whose deadline passes, and writes the calls behind it', async () => {
    const stream = new MemoryStream({ gated: true });
    const handler = await createStdioHandler(stdioConfig(), testEnv().env, {
      stream,
      maxBufferedBytes: 100,
    });
    assert.equal(handler.handleLogEntry([numbered(1)], context()), undefined);
    const deadline = new AbortController();
    const late = handler.handleLogEntry([numbered(2)], { signal: deadline.signal });
    const behind = handler.handleLogEntry([numbered(3)], context());
    assert.ok(late instanceof Promise && behind instanceof Promise);
    deadline.abort();
    await assertRejectsWith(
      late,
      'DEADLINE',
      `${LABEL}: the call's deadline passed while it waited for room to write to the given stream; its 1 records were not accepted`,
    );
    const aborted = new AbortController();
    aborted.abort();
    assert.throws(() => handler.handleLogEntry([numbered(4)], { signal: aborted.signal }), {
      code: 'DEADLINE',
    });
    stream.open();
    await behind;
    await handler.close();
    assert.deepEqual(stream.lines().map(sequenceOf), [1, 3]);
    assert.equal(handler.stats().refusedRecords, 2);
  });

  it('close() writes the calls still waiting for room', async () => {
    const stream = new MemoryStream({ gated: true });
    const handler = await createStdioHandler(stdioConfig(), testEnv().env, { stream, maxBufferedBytes: 100 });
    handler.handleLogEntry([numbered(1)], context());
    const waiting = handler.handleLogEntry([numbered(2), numbered(3)], context());
    assert.ok(waiting instanceof Promise);
    const closing = handler.close();
    await waiting;
    await settle();
    assert.equal(stream.heldWrites, 1);
    stream.open();
    await closing;
    assert.deepEqual(stream.lines().map(sequenceOf), [1, 2, 3]);
  });
});

describe('adapters/logging/stdio: output failures', () => {
  it('counts and logs, in one line, the records a broken stream lost, and refuses calls from then on', async () => {
    const stream = new Writable({
      write(_chunk, _encoding, callback) {
        callback(new Error('EPIPE: broken pipe'));
      },
    });
    const { env, logger } = testEnv();
    const handler = await createStdioHandler(stdioConfig(), env, { stream });
    handler.handleLogEntry([numbered(1), numbered(2)], context());
    await settle();
    assert.deepEqual(logger.lines, [
      `error: ${LABEL}: cannot write to the given stream (EPIPE: broken pipe); 2 accepted records were lost`,
    ]);
    assert.equal(handler.stats().failedRecords, 2);
    assert.throws(() => handler.handleLogEntry([numbered(3)], context()), {
      code: 'OUTPUT_BROKEN',
      message:
        `${LABEL}: cannot write to the given stream any more (EPIPE: broken pipe); no records were accepted. ` +
        'Fix the output and reload the configuration to build a new handler.',
    });
    await handler.close();
    assert.equal(
      logger.lines.at(-1),
      `error: ${LABEL}: closed; 2 accepted records could not be written to the given stream`,
    );
  });

  it('does not hang when the stream is destroyed in the middle of a write', async () => {
    const stream = new MemoryStream({ gated: true });
    const { env, logger } = testEnv();
    const handler = await createStdioHandler(stdioConfig(), env, { stream });
    handler.handleLogEntry([numbered(1)], context());
    await settle();
    assert.equal(stream.heldWrites, 1);
    stream.destroy(new Error('gone'));
    await handler.close();
    assert.equal(handler.stats().failedRecords, 1);
    assert.equal(
      logger.lines[0],
      `error: ${LABEL}: cannot write to the given stream (gone); 1 accepted records were lost`,
    );
  });

  it('refuses invalid configuration and options at build', async () => {
    await assert.rejects(createStdioHandler(stdioConfig({ logStream: 'FILE' }), testEnv().env), {
      message:
        `${LABEL}: outputPath is required when logStream is FILE: give the file to append to, ` +
        'such as /var/log/switchboard/access.log',
    });
    await assert.rejects(
      createStdioHandler(stdioConfig(), testEnv().env, { maxBufferedBytes: 10, maxPendingBytes: 5 }),
      { message: `${LABEL}: option maxPendingBytes (5) must be >= maxBufferedBytes (10)` },
    );
    await assert.rejects(createStdioHandler(stdioConfig(), testEnv().env, { maxWriteBytes: 0 }), {
      message: `${LABEL}: option maxWriteBytes must be a positive integer, got 0`,
    });
  });
});
