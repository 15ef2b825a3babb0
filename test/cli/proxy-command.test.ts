/**
 * `switchboard proxy`, run as an operator runs it: the compiled CLI in a child process on
 * loopback. It starts and serves, stops cleanly on a signal, reports a bad configuration
 * with every error, reloads its file, and with --workers runs several processes that share
 * the listeners (a killed worker is replaced).
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { request, waitFor } from '../proxy/support/proxy-harness';
import { startHttpUpstream, type HttpUpstream } from '../proxy/support/upstreams';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(REPO_ROOT, 'dist', 'cli', 'switchboard.js');
const WAIT_MS = 20_000;

interface Running {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

const running = new Set<Running>();

function startCli(args: readonly string[]): Running {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error('the CLI did not start');
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out.stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (out.stderr += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  const cli: Running = { child, pid: child.pid, exited, stdout: () => out.stdout, stderr: () => out.stderr };
  running.add(cli);
  void exited.then(() => running.delete(cli));
  return cli;
}

async function lineOf(cli: Running, pattern: RegExp): Promise<RegExpExecArray> {
  let match: RegExpExecArray | null = null;
  await waitFor(
    `a stdout line matching ${pattern} (stderr: ${cli.stderr()})`,
    () => {
      match = pattern.exec(cli.stdout());
      return match !== null || cli.child.exitCode !== null;
    },
    WAIT_MS,
  );
  if (match === null) throw new Error(`the CLI exited before printing ${pattern}; stderr: ${cli.stderr()}`);
  return match;
}

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Process ids of the live children of `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may contain spaces, in parentheses): state, ppid, …
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') children.push(Number(entry));
    } catch {
      // the process went away while we looked
    }
  }
  return children;
}

describe('switchboard proxy', function () {
  this.timeout(60_000);
  let upstream: HttpUpstream;
  let dir: string;

  beforeEach(async () => {
    upstream = await startHttpUpstream('app');
    dir = mkdtempSync(path.join(tmpdir(), 'switchboard-proxy-cli-'));
  });

  afterEach(async () => {
    for (const cli of running) {
      if (cli.child.exitCode === null && cli.child.signalCode === null) process.kill(cli.pid, 'SIGKILL');
      await cli.exited;
    }
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function writeConfig(port: number, route = `cluster: app`): string {
    const file = path.join(dir, 'proxy.yaml');
    const next = path.join(dir, '.proxy.yaml.next');
    writeFileSync(
      next,
      `listeners: [{name: out, role: outbound, address: 127.0.0.1, port: ${port}}]
routes: [{${route}}]
clusters: [{name: app, endpoints: [{host: 127.0.0.1, port: ${upstream.port}}]}]
drainTimeout: 2s
`,
    );
    renameSync(next, file);
    return file;
  }

  it('prints its usage', async () => {
    const cli = startCli(['proxy', '--help']);
    assert.equal((await cli.exited).code, 0);
    assert.match(cli.stdout(), /^Usage: switchboard proxy --config FILE \[--workers N\]/);
  });

  it('refuses a command line without --config (exit 2)', async () => {
    const cli = startCli(['proxy']);
    assert.equal((await cli.exited).code, 2);
    assert.match(cli.stderr(), /^switchboard: proxy: --config FILE is required\n/);
  });

  it('reports every error of a bad configuration and exits 1', async () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'listeners: [{name: out, role: out, address: 127.0.0.1, port: 0}]\nroutes: [{cluster: nope}]\nclusters: []\n',
    );
    const cli = startCli(['proxy', '--config', file, '--workers', '1']);
    assert.equal((await cli.exited).code, 1);
    assert.equal(
      cli.stderr(),
      `switchboard proxy: configuration ${file} does not load (2 errors):\n` +
        `${file}:1: listeners[0].role: must be inbound (traffic to this workload) or outbound (traffic from it), got "out"\n` +
        `${file}:2: routes[0].cluster: no cluster named nope; define it under clusters\n`,
    );
  });

  it('starts, serves, reloads its file, and stops cleanly on SIGTERM', async () => {
    const file = writeConfig(0);
    const cli = startCli(['proxy', '--config', file, '--workers', '1']);
    const [, port] = await lineOf(
      cli,
      /^switchboard proxy listening: out \(http, outbound\) on 127\.0\.0\.1:(\d+) \(config generation 1, .+proxy\.yaml\)$/m,
    );
    const answer = await request(Number(port), { path: '/hello' });
    assert.equal(answer.status, 200);
    assert.equal(JSON.parse(answer.body).url, '/hello');
    writeConfig(0, 'directResponse: {status: 200, body: reloaded}');
    await waitFor(
      'the reloaded configuration',
      async () => (await request(Number(port))).body === 'reloaded',
      WAIT_MS,
    );
    assert.match(cli.stderr(), /configuration generation 2 applied/);
    process.kill(cli.pid, 'SIGTERM');
    assert.deepEqual(await cli.exited, { code: 0, signal: null });
    assert.match(cli.stderr(), /SIGTERM received, draining/);
  });

  it('refuses port 0 with several workers', async () => {
    const file = writeConfig(0);
    const cli = startCli(['proxy', '--config', file, '--workers', '2']);
    assert.equal((await cli.exited).code, 1);
    assert.match(
      cli.stderr(),
      /listener out has port 0, which each worker would resolve on its own; give fixed ports, or run with --workers 1/,
    );
  });

  it('runs several workers on one port, and replaces one that dies', async () => {
    const port = await freePort();
    const file = writeConfig(port);
    const cli = startCli(['proxy', '--config', file, '--workers', '2']);
    await lineOf(
      cli,
      new RegExp(
        `^switchboard proxy listening: out \\(http, outbound\\) on 127\\.0\\.0\\.1:${port} \\(2 workers, config generation 1, `,
        'm',
      ),
    );
    const workers = childrenOf(cli.pid);
    assert.equal(workers.length, 2, `two worker processes: ${workers.join(', ')}`);
    // One request per new connection, one after the other: were a single process serving,
    // its one pooled upstream connection would carry them all.
    for (let i = 0; i < 8; i++) assert.equal((await request(port, { path: `/r${i}` })).status, 200);
    assert.ok(
      upstream.connections >= 2,
      `the upstream saw ${upstream.connections} connection(s): both workers served`,
    );

    process.kill(workers[0]!, 'SIGKILL');
    await waitFor(
      'the worker to be replaced',
      () => /worker \d restarted \(pid \d+\) and serves/.test(cli.stderr()),
      WAIT_MS,
    );
    const replaced = childrenOf(cli.pid);
    assert.equal(replaced.length, 2);
    assert.ok(!replaced.includes(workers[0]!));
    for (let i = 0; i < 4; i++) assert.equal((await request(port)).status, 200);

    process.kill(cli.pid, 'SIGTERM');
    assert.deepEqual(await cli.exited, { code: 0, signal: null });
  });
});
