/**
 * The proxy's admin endpoint: in process (createProxyAdminEndpoint), and through
 * `switchboard proxy --admin` as an operator runs it.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createProxyAdminEndpoint, PolicyClient } from '../../proxy';
import { startCli, stopAllCli, stopCli } from '../support/cli-process';
import { freePort } from '../support/redis-servers';
import { closeAllHarnesses, clusterYaml, request, startProxy } from './support/proxy-harness';
import { startHttpUpstream, type HttpUpstream } from './support/upstreams';

function get(url: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .request(url, { method, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject)
      .end();
  });
}

describe('proxy: the admin endpoint', function () {
  this.timeout(30_000);
  let upstream: HttpUpstream;
  let dir: string;
  before(async () => {
    upstream = await startHttpUpstream('app');
    dir = mkdtempSync(path.join(tmpdir(), 'switchboard-proxy-admin-'));
  });
  afterEach(async () => {
    stopAllCli();
    await closeAllHarnesses();
  });
  after(async () => {
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers /ready, and /stats with the data path and the policy client counters', async () => {
    const policyPort = await freePort(); // nothing listens there: checks fail open
    const hook = new PolicyClient();
    const harness = await startProxy(
      `
listeners: [{name: in, role: inbound, address: 127.0.0.1, port: 0}]
routes: [{cluster: app}]
clusters:
${clusterYaml('app', [upstream.port])}
policy: { server: 127.0.0.1:${policyPort}, failPolicy: FAIL_OPEN, checkTimeoutMs: 200, checkRetries: 0 }
`,
      { hook },
    );
    const admin = createProxyAdminEndpoint({ address: '127.0.0.1:0', proxy: harness.proxy, policy: hook });
    const { port } = await admin.start();
    try {
      assert.equal((await request(harness.port(), { path: '/x' })).status, 200);
      const ready = await get(`http://127.0.0.1:${port}/ready`);
      assert.equal(ready.status, 200);
      assert.deepEqual(JSON.parse(ready.body), { ready: true, generation: 1 });
      const stats = JSON.parse((await get(`http://127.0.0.1:${port}/stats`)).body) as {
        proxy: { counters: { httpRequests: number } };
        policy: Record<string, unknown>;
      };
      assert.equal(stats.proxy.counters.httpRequests, 1);
      assert.equal(stats.policy['server'], `127.0.0.1:${policyPort}`);
      assert.equal(stats.policy['checks'], 1);
      assert.equal(stats.policy['failedOpen'], 1);
      assert.equal(typeof stats.policy['reportsDropped'], 'number');
      assert.equal((await get(`http://127.0.0.1:${port}/nope`)).status, 404);
      assert.equal((await get(`http://127.0.0.1:${port}/stats`, 'POST')).status, 405);
    } finally {
      await admin.close();
    }
  });

  it('runs with switchboard proxy --admin, named in the listening line', async () => {
    const file = path.join(dir, 'proxy.yaml');
    writeFileSync(
      file,
      `listeners: [{name: in, role: inbound, address: 127.0.0.1, port: 0}]\nroutes: [{cluster: app}]\nclusters:\n${clusterYaml('app', [upstream.port])}\n`,
    );
    const cli = startCli(['proxy', '--config', file, '--workers', '1', '--admin', '127.0.0.1:0']);
    const [, url] = await cli.line('stdout', /admin (http:\/\/\S+\/stats)/);
    const stats = JSON.parse((await get(url!)).body) as {
      policy: { server: unknown };
      proxy: { generation: number };
    };
    assert.equal(stats.policy.server, null, 'no policy section: policy off');
    assert.equal(stats.proxy.generation, 1);
    assert.equal((await stopCli(cli, 'SIGTERM')).code, 0);
  });

  it('with several workers, is served by the supervisor: each worker listed, their counters summed', async () => {
    const port = await freePort();
    const file = path.join(dir, 'workers.yaml');
    writeFileSync(
      file,
      `listeners: [{name: in, role: inbound, address: 127.0.0.1, port: ${port}}]\nroutes: [{cluster: app}]\nclusters:\n${clusterYaml('app', [upstream.port])}\n`,
    );
    const cli = startCli(['proxy', '--config', file, '--workers', '2', '--admin', '127.0.0.1:0']);
    const [, url] = await cli.line('stdout', /\(2 workers, admin (http:\/\/\S+\/stats), config generation 1/);
    const admin = url!.replace(/\/stats$/, '');
    // One request per new connection: cluster hands connections to the workers in turn.
    for (let i = 0; i < 10; i++) assert.equal((await request(port, { path: `/r${i}` })).status, 200);
    const stats = JSON.parse((await get(`${admin}/stats`)).body) as {
      pid: number;
      total: { counters: { httpRequests: number }; policy: Record<string, number> };
      workers: { worker: number; pid: number; proxy: { counters: { httpRequests: number } } }[];
    };
    assert.equal(stats.pid, cli.pid, 'the supervisor answers');
    assert.deepEqual(
      stats.workers.map((w) => w.worker),
      [1, 2],
    );
    assert.equal(new Set([cli.pid, ...stats.workers.map((w) => w.pid)]).size, 3);
    for (const w of stats.workers)
      assert.ok(w.proxy.counters.httpRequests > 0, `worker ${w.worker} served none`);
    assert.equal(stats.total.counters.httpRequests, 10);
    assert.equal(stats.total.policy['checks'], 0, 'no policy section: no Checks');
    assert.equal(stats.total.policy['reportsSent'], 0);
    const ready = await get(`${admin}/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), { ready: true, generation: 1, serving: 2, workers: 2 });
    assert.equal((await stopCli(cli, 'SIGTERM')).code, 0);
  });
});
