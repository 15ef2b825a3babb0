/**
 * `switchboard server --workers N` and `--admin-address`, run as an operator runs them: the
 * compiled CLI in a child process, on loopback port 0. These check that the workers really
 * share one port (connections land in different worker processes, as the admin endpoint's
 * per-worker counters show), that a killed worker is replaced, that each worker reloads the
 * configuration, and that a signal drains them all.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Client, credentials } from '@grpc/grpc-js';
import { AttributeBag, encodeCheckRequest } from '../../attributes';
import { mixer } from '../../proto';
import { callUnary } from '../support/raw-grpc-client';
import { adminGet } from '../policy-server/admin-client';
import { startCli, stopAllCli, stopCli, WAIT_MS, within } from '../support/cli-process';

const CHECK = '/istio.mixer.v1.Mixer/Check';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, condition: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A client on its own connection: grpc-js would otherwise share one connection between clients. */
function ownConnection(address: string): Client {
  return new Client(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
}

const LISTENING_WITH_WORKERS =
  /^switchboard policy server listening on (127\.0\.0\.1:\d+) \((\d+) workers, config generation 1, (\d+) resources? from (.+)\), admin on (127\.0\.0\.1:\d+)$/;

interface WorkerStats {
  worker: number;
  pid: number;
  generation: number;
  dispatcher: { checks: number };
}

/** `switchboard server` with two workers on free loopback ports, admin endpoint included. */
function twoWorkers(configDir: string): string[] {
  return [
    'server',
    '--config',
    configDir,
    '--address',
    '127.0.0.1:0',
    '--admin-address',
    '127.0.0.1:0',
    '--workers',
    '2',
  ];
}

describe('switchboard server --workers and --admin-address', function () {
  this.timeout(60_000);
  const clients: Client[] = [];
  const dirs: string[] = [];

  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
    stopAllCli();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('runs one process with the admin endpoint and names it in the listening line', async () => {
    const cli = startCli([
      'server',
      '--config',
      'examples/config',
      '--address',
      '127.0.0.1:0',
      '--admin-address',
      '127.0.0.1:0',
    ]);
    const [, , admin] = await cli.line(
      'stdout',
      /^switchboard policy server listening on (127\.0\.0\.1:\d+) \(config generation 1, \d+ resources from examples\/config\), admin on (127\.0\.0\.1:\d+)$/,
    );
    const health = await adminGet(admin ?? '', '/healthz');
    assert.deepEqual(health.body, { status: 'SERVING' });
    const stats = (await adminGet(admin ?? '', '/stats')).body as { pid: number };
    assert.equal(stats.pid, cli.pid, 'one process: the CLI itself serves');
    const exit = await stopCli(cli);
    assert.equal(exit.code, 0, cli.stderr());
  });

  it('shares one port between the workers: connections reach every worker', async () => {
    const cli = startCli(twoWorkers('examples/config'));
    const [line, address = '', workers, , configDir, admin = ''] = await cli.line(
      'stdout',
      LISTENING_WITH_WORKERS,
    );
    assert.equal(workers, '2', line);
    assert.equal(configDir, 'examples/config');

    // Eight connections, four Checks on each: cluster hands connections to workers in turn.
    const request = encodeCheckRequest({ attributes: new AttributeBag([['request.path', '/']]) });
    for (let i = 0; i < 8; i++) clients.push(ownConnection(address));
    const results = await Promise.all(
      clients.flatMap((client) =>
        [1, 2, 3, 4].map(() => callUnary(client, CHECK, request, (b) => mixer.CheckResponse.decode(b))),
      ),
    );
    for (const result of results) assert.ok(result.ok, result.ok ? '' : result.error.message);

    const stats = (await adminGet(admin, '/stats')).body as {
      pid: number;
      dispatcher: { checks: number };
      workers: WorkerStats[];
    };
    assert.equal(stats.pid, cli.pid, 'the supervisor answers /stats');
    assert.deepEqual(
      stats.workers.map((w) => w.worker),
      [1, 2],
    );
    const pids = stats.workers.map((w) => w.pid);
    assert.equal(new Set([...pids, cli.pid]).size, 3, 'two worker processes besides the supervisor');
    for (const worker of stats.workers) {
      assert.ok(
        worker.dispatcher.checks > 0,
        `worker ${worker.worker} served no Check: ${JSON.stringify(stats)}`,
      );
    }
    assert.equal(stats.dispatcher.checks, 32, 'the supervisor sums the workers’ counters');

    assert.deepEqual((await adminGet(admin, '/readyz')).body, { ready: true, serving: 2, workers: 2 });
    const config = (await adminGet(admin, '/config')).body as { generation: number; workers: unknown[] };
    assert.equal(config.generation, 1);
    assert.deepEqual(config.workers, [
      { worker: 1, pid: pids[0], generation: 1 },
      { worker: 2, pid: pids[1], generation: 1 },
    ]);

    const exit = await stopCli(cli);
    assert.equal(exit.code, 0, cli.stderr());
    assert.match(cli.stderr(), /^switchboard: SIGTERM received, stopping 2 workers$/m);
    await waitFor('the workers have exited', () => pids.every((pid) => !isAlive(pid)));
    assert.equal(cli.stdout(), `${line}\n`);
  });

  it('restarts a worker that dies, on the same port, and stops every worker on SIGTERM', async () => {
    const cli = startCli(twoWorkers('examples/config'));
    const [, address = '', , , , admin = ''] = await cli.line('stdout', LISTENING_WITH_WORKERS);
    const before = (await adminGet(admin, '/stats')).body as { workers: WorkerStats[] };
    const [first, second] = before.workers.map((w) => w.pid) as [number, number];

    process.kill(first, 'SIGKILL');
    await cli.line(
      'stderr',
      new RegExp(
        `^switchboard: worker 1 \\(pid ${first}\\) exited unexpectedly with signal SIGKILL; restarting it in 100 ms$`,
      ),
    );
    // Worker 2 kept the shared socket; the new worker 1 joins it.
    const [, replacement] = await cli.line(
      'stderr',
      /^switchboard: worker 1 restarted \(pid (\d+)\) and serves$/,
    );
    const after = (await adminGet(admin, '/stats')).body as { workers: WorkerStats[] };
    assert.deepEqual(
      after.workers.map((w) => w.pid),
      [Number(replacement), second],
    );

    // Then both die: the next worker asks for the port the first one got, not for a new one.
    process.kill(Number(replacement), 'SIGKILL');
    process.kill(second, 'SIGKILL');
    // Worker 1 fails a second time in a row: its delay doubles; worker 2's is the first.
    await cli.line(
      'stderr',
      new RegExp(
        `^switchboard: worker 1 \\(pid ${replacement}\\) exited unexpectedly with signal SIGKILL; restarting it in 200 ms$`,
      ),
    );
    await cli.line(
      'stderr',
      new RegExp(
        `^switchboard: worker 2 \\(pid ${second}\\) exited unexpectedly with signal SIGKILL; restarting it in 100 ms$`,
      ),
    );
    await waitFor(
      'both workers are restarted',
      () =>
        cli
          .stderr()
          .split('\n')
          .filter((l) => / restarted \(pid \d+\) and serves$/.test(l)).length === 3,
    );
    assert.deepEqual((await adminGet(admin, '/readyz')).body, { ready: true, serving: 2, workers: 2 });
    const request = encodeCheckRequest({ attributes: new AttributeBag([['request.path', '/']]) });
    const client = ownConnection(address);
    clients.push(client);
    const result = await callUnary(client, CHECK, request, (b) => mixer.CheckResponse.decode(b));
    assert.ok(result.ok, result.ok ? '' : result.error.message);

    const pids = ((await adminGet(admin, '/stats')).body as { workers: WorkerStats[] }).workers.map(
      (w) => w.pid,
    );
    const exit = await stopCli(cli);
    assert.equal(exit.code, 0, cli.stderr());
    await waitFor('the workers have exited', () => pids.every((pid) => !isAlive(pid)));
  });

  it('drains on a SIGINT sent to the whole process group, as a terminal sends Ctrl-C', async () => {
    const cli = startCli(twoWorkers('examples/config'), { detached: true });
    const [, , , , , admin = ''] = await cli.line('stdout', LISTENING_WITH_WORKERS);
    const pids = ((await adminGet(admin, '/stats')).body as { workers: WorkerStats[] }).workers.map(
      (w) => w.pid,
    );

    // Every process of the group gets SIGINT, and the supervisor forwards it too: workers
    // must take the second SIGINT as the same request, not as "stop at once" (exit 1).
    process.kill(-cli.pid, 'SIGINT');
    const exit = await within(cli.finished, WAIT_MS, 'the CLI to exit');
    assert.equal(exit.code, 0, cli.stderr());
    assert.match(cli.stderr(), /^switchboard: SIGINT received, stopping 2 workers$/m);
    await waitFor('the workers have exited', () => pids.every((pid) => !isAlive(pid)));
  });

  it('each worker reloads a changed configuration itself', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-workers-'));
    dirs.push(dir);
    const file = path.join(dir, 'policy.yaml');
    const denier = (message: string): string => `apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: refuse, namespace: istio-system }
spec:
  compiledAdapter: denier
  params:
    status: { code: 7, message: ${message} }
`;
    writeFileSync(file, denier('first'));
    const cli = startCli(twoWorkers(dir));
    const [, , , resources, , admin = ''] = await cli.line('stdout', LISTENING_WITH_WORKERS);
    assert.equal(resources, '1');
    writeFileSync(file, `${denier('second')}---\n${denier('third').replace('name: refuse', 'name: other')}`);
    await waitFor('every worker serves generation 2', async () => {
      const config = (await adminGet(admin, '/config')).body as { workers: Array<{ generation: number }> };
      return config.workers.length === 2 && config.workers.every((w) => w.generation === 2);
    });
    const config = (await adminGet(admin, '/config')).body as { resources: number; handlers: string[] };
    assert.equal(config.resources, 2);
    assert.deepEqual(config.handlers, ['other.handler.istio-system', 'refuse.handler.istio-system']);
    assert.equal((await stopCli(cli)).code, 0, cli.stderr());
  });

  it('exits 1 with the configuration errors, listed once, when the configuration does not load', async () => {
    const dir = 'test/fixtures/config/errors-in-several-files';
    const cli = startCli(['server', '--config', dir, '--address', '127.0.0.1:0', '--workers', '2']);
    const exit = await within(cli.finished, WAIT_MS, 'the CLI to exit');
    assert.equal(exit.code, 1);
    assert.equal(cli.stdout(), '');
    const lines = cli.stderr().trimEnd().split('\n');
    assert.equal(lines[0], `switchboard: configuration in ${dir} does not load (5 errors):`);
    assert.equal(lines.filter((l) => l.includes('does not load')).length, 1, cli.stderr());
    assert.match(
      lines.at(-1) ?? '',
      /^switchboard: worker 1 \(pid \d+\) exited with code 1 before listening$/,
    );
  });

  it('refuses a --workers value that is not a count, and a malformed --admin-address', async () => {
    const workers = startCli(['server', '--config', 'examples/config', '--workers', 'many']);
    assert.equal((await within(workers.finished, WAIT_MS, 'exit')).code, 2);
    assert.match(
      workers.stderr(),
      /^switchboard: server: --workers must be a whole number from 1 to 9999, or 0 or auto for one per CPU, got "many"\n/,
    );
    const admin = startCli(['server', '--config', 'examples/config', '--admin-address', 'localhost']);
    assert.equal((await within(admin.finished, WAIT_MS, 'exit')).code, 2);
    assert.match(
      admin.stderr(),
      /^switchboard: server: --admin-address must be HOST:PORT .*got "localhost"\n/,
    );
  });

  it('refuses an empty --data-dir', async () => {
    const empty = startCli(['server', '--config', 'examples/config', '--data-dir', '']);
    assert.equal((await within(empty.finished, WAIT_MS, 'exit')).code, 2);
    assert.match(empty.stderr(), /^switchboard: server: --data-dir must name a directory, got ""\n/);
  });
});
