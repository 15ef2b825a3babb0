import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { AdapterEnv } from '../../../../adapters';
import { drain, openSpool, tempDirectory, testEnv } from './support';

describe('adapters/logging/spool: a process killed with SIGKILL', () => {
  let env: AdapterEnv;
  let dispose: () => void;
  let directory: string;
  let remove: () => void;

  beforeEach(() => {
    ({ env, dispose } = testEnv());
    ({ directory, remove } = tempDirectory());
  });

  afterEach(() => {
    dispose();
    remove();
  });

  it('loses none of the records whose appends had resolved', async function () {
    this.timeout(30_000);
    const child = spawn(process.execPath, [path.join(__dirname, 'append-child.js'), directory], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.on('exit', (code, signal) => resolve(signal ?? code)),
    );
    let acknowledged = 0;
    let pending = '';
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('exit', () => reject(new Error(`the appending process exited early: ${stderr}`)));
        child.stdout.on('data', (chunk: Buffer) => {
          pending += chunk.toString();
          const lines = pending.split('\n');
          pending = lines.pop()!;
          for (const line of lines) acknowledged = Number(/^appended (\d+)$/.exec(line)![1]);
          // Mid-traffic: several segments written, appends still coming.
          if (acknowledged >= 3000) {
            process.kill(child.pid!, 'SIGKILL');
            resolve();
          }
        });
      });
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    }
    assert.equal(await exited, 'SIGKILL');

    const spool = await openSpool(env, { directory });
    try {
      const found = await drain(spool, 1000);
      assert.ok(
        found.length >= acknowledged,
        `${found.length} records found, ${acknowledged} were acknowledged`,
      );
      assert.deepEqual(
        found,
        Array.from({ length: found.length }, (_, i) => `record-${i}`),
        'every record once, in order',
      );
    } finally {
      await spool.close();
    }
  });
});
