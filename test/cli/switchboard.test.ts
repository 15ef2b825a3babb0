import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { FrameFlag, FrameType, Setting } from '../../http2';
import { health } from '../../proto';
import { checkHealth, createRawClient } from '../support/raw-grpc-client';
import { RawClient } from '../support/raw-http2-client';

// Compiled to dist/test/cli/; the CLI under test is dist/cli/switchboard.js.
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(REPO_ROOT, 'dist', 'cli', 'switchboard.js');
const RUN_TIMEOUT_MS = 8_000;

interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Every process a test spawned; any still running after a test is killed by its pid. */
const spawned = new Set<ChildProcess>();

function start(args: readonly string[]): { child: ChildProcess; finished: Promise<Finished> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const finished = new Promise<Finished>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `switchboard ${args.join(' ')} did not exit within ${RUN_TIMEOUT_MS} ms; stderr: ${stderr}`,
        ),
      );
    }, RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      spawned.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, finished };
}

const run = (args: readonly string[]): Promise<Finished> => start(args).finished;

/** Resolves with the first line of stdout matching `pattern`, or rejects on exit or timeout. */
function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(
      () => reject(new Error(`no line matching ${pattern} within ${RUN_TIMEOUT_MS} ms`)),
      RUN_TIMEOUT_MS,
    );
    const onData = (chunk: Buffer | string): void => {
      buffered += chunk.toString();
      for (const line of buffered.split('\n')) {
        const match = pattern.exec(line);
        if (match !== null) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          resolve(match);
          return;
        }
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`switchboard exited with ${code} before printing a line matching ${pattern}`));
    });
  });
}

describe('switchboard CLI', () => {
  afterEach(() => {
    for (const child of spawned) {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }
    spawned.clear();
  });

  it('--help prints the usage and exits 0', async () => {
    const result = await run(['--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: switchboard <command> \[options\]/);
    assert.match(result.stdout, /server --config DIR \[--address HOST:PORT\]/);
    assert.equal(result.stderr, '');
  });

  it('help server prints the server usage and exits 0', async () => {
    const result = await run(['help', 'server']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: switchboard server --config DIR/);
  });

  it('--version prints the version of package.json', async () => {
    const result = await run(['--version']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, 'switchboard 0.1.0\n');
  });

  it('an unknown command exits 2 with a one-line message and the usage', async () => {
    const result = await run(['serve']);
    assert.equal(result.code, 2);
    const [first, blank, usage] = result.stderr.split('\n');
    assert.equal(first, "switchboard: unknown command 'serve'");
    assert.equal(blank, '');
    assert.equal(usage, 'Usage: switchboard <command> [options]');
    assert.equal(result.stdout, '');
  });

  it('no command exits 2', async () => {
    const result = await run([]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^switchboard: no command given\n/);
  });

  it('an unknown flag exits 2 with a one-line message and the command usage', async () => {
    const result = await run(['server', '--config', 'examples/config', '--port', '9091']);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /^switchboard: server: Unknown option '--port'.*\n\nUsage: switchboard server/,
    );
  });

  it('server without --config exits 2', async () => {
    const result = await run(['server']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^switchboard: server: --config DIR is required\n/);
  });

  it('server with a malformed --address exits 2', async () => {
    const result = await run(['server', '--config', 'examples/config', '--address', '9091']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^switchboard: server: --address must be HOST:PORT .*got "9091"\n/);
  });

  it('server with a bad configuration exits 1, listing every error one per line', async () => {
    const dir = 'test/fixtures/config/errors-in-several-files';
    const result = await run(['server', '--config', dir, '--address', '127.0.0.1:0']);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.deepEqual(result.stderr.trimEnd().split('\n'), [
      `switchboard: configuration in ${dir} does not load (5 errors):`,
      `${dir}/handlers.yaml:6: apiVersion must be a string, got number; write it as a string, e.g. apiVersion: config.istio.io/v1alpha2`,
      `${dir}/handlers.yaml:6: resource has no kind; set kind, e.g. kind: rule`,
      `${dir}/handlers.yaml:7: resource has no metadata.name; give every resource a name`,
      `${dir}/instances.yaml:1: resource is a sequence, not a mapping; write each resource as a mapping with apiVersion, kind, metadata and spec`,
      `${dir}/nested/rules.yml:5: spec must be a mapping, got string; write spec as key: value pairs`,
    ]);
  });

  it('server runs the example configuration, answers a health check and exits 0 on SIGTERM', async () => {
    const { child, finished } = start(['server', '--config', 'examples/config', '--address', '127.0.0.1:0']);
    const [line, address] = await waitForLine(
      child,
      /^switchboard policy server listening on (127\.0\.0\.1:\d+) \(config generation 1, (\d+) resources from examples\/config\)$/,
    );
    assert.ok(address !== undefined && !address.endsWith(':0'), line);

    const client = createRawClient(address);
    try {
      const result = await checkHealth(client);
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      assert.equal(result.response.status, health.HealthCheckResponse_ServingStatus.SERVING);
    } finally {
      client.close();
    }

    assert.ok(child.pid !== undefined);
    process.kill(child.pid, 'SIGTERM');
    const exit = await finished;
    assert.equal(exit.code, 0, exit.stderr);
    assert.equal(exit.stdout, `${line}\n`);
  });

  it('server refuses a malformed --idle-timeout or --max-header-list-bytes with exit 2, naming the range', async () => {
    const idle = await run(['server', '--config', 'examples/config', '--idle-timeout=-1']);
    assert.equal(idle.code, 2);
    assert.match(
      idle.stderr,
      /^switchboard: server: --idle-timeout must be a number of seconds from 0 \(never\) to 2147483, e\.g\. 300, got "-1"\n/,
    );
    const headers = await run(['server', '--config', 'examples/config', '--max-header-list-bytes', '64KiB']);
    assert.equal(headers.code, 2);
    assert.match(
      headers.stderr,
      /^switchboard: server: --max-header-list-bytes must be a whole number of bytes from 1024 to 1048576, e\.g\. 65536, got "64KiB"\n/,
    );
  });

  it('server --idle-timeout and --max-header-list-bytes: a client is told the limit, and sent GOAWAY once idle', async () => {
    const { child, finished } = start([
      'server',
      '--config',
      'examples/config',
      '--address',
      '127.0.0.1:0',
      '--idle-timeout',
      '0.5',
      '--max-header-list-bytes',
      '2048',
    ]);
    const [, address] = await waitForLine(
      child,
      /^switchboard policy server listening on (127\.0\.0\.1:\d+) /,
    );
    const client = new RawClient(Number(address!.split(':')[1]));
    try {
      client.start();
      const connectedAt = performance.now();
      const settings = await client.waitFor(
        (f) => f.type === FrameType.Settings && (f.flags & FrameFlag.Ack) === 0,
        'SETTINGS',
      );
      let announced: number | undefined;
      for (let at = 0; at < settings.payload.length; at += 6) {
        if (settings.payload.readUInt16BE(at) === Setting.MaxHeaderListSize)
          announced = settings.payload.readUInt32BE(at + 2);
      }
      assert.equal(announced, 2048);
      await client.waitFor((f) => f.type === FrameType.GoAway, 'GOAWAY');
      const idleMs = performance.now() - connectedAt;
      // Not before the half second; well before the default five minutes.
      assert.ok(idleMs >= 450 && idleMs < 5_000, `GOAWAY after ${idleMs.toFixed(0)} ms`);
    } finally {
      client.destroy();
    }
    process.kill(child.pid!, 'SIGTERM');
    assert.equal((await finished).code, 0);
  });

  it('server exits 0 on SIGINT too', async () => {
    const { child, finished } = start(['server', '--config', 'examples/config', '--address', '127.0.0.1:0']);
    await waitForLine(child, /^switchboard policy server listening on /);
    assert.ok(child.pid !== undefined);
    process.kill(child.pid, 'SIGINT');
    assert.equal((await finished).code, 0);
  });

  it('server exits 1 when the address is taken', async () => {
    const first = start(['server', '--config', 'examples/config', '--address', '127.0.0.1:0']);
    const [, address] = await waitForLine(first.child, /listening on (127\.0\.0\.1:\d+) /);
    const second = await run(['server', '--config', 'examples/config', '--address', address ?? '']);
    assert.equal(second.code, 1);
    // grpc-js logs the failed bind itself too; our own line names the cause.
    assert.match(
      second.stderr,
      new RegExp(
        `^switchboard: cannot listen on ${address}: the address is already in use; stop what listens there or choose another port$`,
        'm',
      ),
    );
    assert.ok(first.child.pid !== undefined);
    process.kill(first.child.pid, 'SIGTERM');
    assert.equal((await first.finished).code, 0);
  });
});
