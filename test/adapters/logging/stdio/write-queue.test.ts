import { strict as assert } from 'node:assert';
import { StdioError } from '../../../../adapters/logging/stdio';
import type { LineOutput } from '../../../../adapters/logging/stdio/stream-output';
import { WriteQueue, type WriteQueueSettings } from '../../../../adapters/logging/stdio/write-queue';
import { LABEL, settle, testEnv } from './support';

/** An output whose writes fail while `failing` is set, and which breaks for good when told. */
class ScriptedOutput implements LineOutput {
  readonly description = '/var/log/audit.log';
  readonly written: string[] = [];
  failing: string | undefined;
  broken: string | undefined;
  attempts = 0;

  async write(chunk: Buffer): Promise<void> {
    this.attempts++;
    await new Promise((resolve) => setImmediate(resolve));
    if (this.broken !== undefined) throw new Error(this.broken);
    if (this.failing !== undefined) throw new Error(this.failing);
    this.written.push(chunk.toString('utf8'));
  }

  brokenReason(): string | undefined {
    return this.broken;
  }

  async close(): Promise<void> {}
}

const SETTINGS: WriteQueueSettings = {
  maxBufferedBytes: 100,
  maxPendingBytes: 1000,
  maxWriteBytes: 64,
  minRetryDelayMs: 1,
  maxRetryDelayMs: 4,
};

function lines(...names: string[]): string[] {
  return names.map((name) => `${name}\n`);
}

/** Waits until `condition` holds, checking after each turn of the event loop. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
  assert.ok(condition(), 'the condition came true');
}

describe('adapters/logging/stdio: write queue', () => {
  it('keeps a chunk whose write failed and writes it when the output recovers: nothing lost', async () => {
    const output = new ScriptedOutput();
    const { env, logger } = testEnv();
    const queue = new WriteQueue(output, SETTINGS, env, LABEL);
    output.failing = 'ENOSPC: no space left on device, write';
    queue.enqueue(lines('a', 'b'), 4);
    await until(() => output.attempts >= 3);
    // Meanwhile the buffer fills and callers wait.
    const waiting = queue.enqueue(lines('c'.repeat(98)), 99);
    assert.ok(waiting instanceof Promise);
    output.failing = undefined;
    await waiting;
    await queue.drain();
    assert.deepEqual(output.written, ['a\nb\n', `${'c'.repeat(98)}\n`]);
    assert.deepEqual(queue.stats().failedRecords, 0);
    assert.equal(queue.stats().writtenRecords, 3);
    assert.equal(logger.lines.length, 2);
    assert.equal(
      logger.lines[0],
      `warn: ${LABEL}: writing to /var/log/audit.log failed (ENOSPC: no space left on device, write); ` +
        'retrying, keeping the records: calls wait for room meanwhile, and are refused past the limit',
    );
    assert.match(
      logger.lines[1]!,
      new RegExp(
        `^warn: ${LABEL}: writing to /var/log/audit.log again after \\d+ failed attempts; no records were lost$`,
      ),
    );
  });

  it('gives up at close after one more attempt, and says how many records were lost', async () => {
    const output = new ScriptedOutput();
    const { env, logger } = testEnv();
    const queue = new WriteQueue(
      output,
      { ...SETTINGS, minRetryDelayMs: 60_000, maxRetryDelayMs: 60_000 },
      env,
      LABEL,
    );
    output.failing = 'EIO: i/o error, write';
    queue.enqueue(lines('a', 'b', 'c'), 6);
    await until(() => output.attempts === 1);
    await settle();
    const started = Date.now();
    await queue.drain();
    assert.ok(Date.now() - started < 10_000, 'close did not wait out the minute-long retry delay');
    assert.equal(output.attempts, 2);
    assert.equal(queue.stats().failedRecords, 3);
    assert.equal(
      logger.lines.at(-1),
      `error: ${LABEL}: cannot write to /var/log/audit.log (EIO: i/o error, write); 3 accepted records were lost`,
    );
  });

  it('gives up on an output broken for good: the buffer is lost in one line, waiting calls are refused', async () => {
    const output = new ScriptedOutput();
    const { env, logger } = testEnv();
    const queue = new WriteQueue(output, { ...SETTINGS, maxWriteBytes: 4 }, env, LABEL);
    queue.enqueue(lines('1', '2', '3', '4', '5', '6'), 12);
    const waiting = queue.enqueue(lines('x'.repeat(99)), 100);
    assert.ok(waiting instanceof Promise);
    output.broken = 'EPIPE: broken pipe';
    await assert.rejects(waiting, (error: unknown) => {
      assert.ok(error instanceof StdioError);
      assert.equal(error.code, 'OUTPUT_BROKEN');
      assert.equal(
        error.message,
        `${LABEL}: cannot write to /var/log/audit.log (EPIPE: broken pipe); the call's 1 records were not accepted`,
      );
      return true;
    });
    await queue.drain();
    assert.deepEqual(logger.lines, [
      `error: ${LABEL}: cannot write to /var/log/audit.log (EPIPE: broken pipe); 6 accepted records were lost`,
    ]);
    assert.deepEqual(queue.stats(), {
      acceptedRecords: 6,
      writtenRecords: 0,
      failedRecords: 6,
      refusedRecords: 1,
      bufferedBytes: 0,
      waitingBytes: 0,
      peakBufferedBytes: 12,
      peakPendingBytes: 112,
    });
  });

  it('does not retry once the environment refuses timers', async () => {
    const output = new ScriptedOutput();
    const { logger } = testEnv();
    const environment = {
      logger,
      schedule(): never {
        throw new Error('handler is closed: it cannot start timers');
      },
    };
    const queue = new WriteQueue(output, SETTINGS, environment, LABEL);
    output.failing = 'EIO';
    queue.enqueue(lines('a'), 2);
    await until(() => queue.stats().failedRecords === 1);
    await queue.drain();
    assert.equal(output.attempts, 2);
    assert.equal(queue.stats().failedRecords, 1);
  });
});
