/**
 * The proxy asks and tells, end to end: a real policy server (denier, stdio access log to a
 * file), a real upstream, a real proxy with its policy client. What is counted is counted
 * at the server (its dispatcher) or in the file the server writes.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createPolicyServer, type PolicyServer } from '../../../policy-server';
import { PolicyClient } from '../../../proxy';
import { closeAllHarnesses, clusterYaml, request, startProxy, waitFor } from '../support/proxy-harness';
import { startHttpUpstream, type HttpUpstream } from '../support/upstreams';

function policy(deniedPath: string, logFile: string): string {
  return `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: refuse, namespace: istio-system }
spec: { compiledAdapter: denier, params: { status: { code: 7, message: "closed" } } }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: nothing, namespace: istio-system }
spec: { compiledTemplate: checknothing }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: deny, namespace: istio-system }
spec:
  match: request.path == "${deniedPath}"
  actions: [ { handler: refuse, instances: [ nothing ] } ]
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: log, namespace: istio-system }
spec:
  compiledAdapter: stdio
  params: { logStream: FILE, outputPath: ${JSON.stringify(logFile)}, outputAsJson: true }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: access, namespace: istio-system }
spec:
  compiledTemplate: logentry
  params:
    severity: '"info"'
    timestamp: request.time
    variables:
      path: request.path | ""
      method: request.method | ""
      user: request.headers["x-user"] | ""
      code: response.code | 0
      cacheHit: check.cache_hit | false
      reporter: context.reporter.kind | ""
      app: destination.labels["app"] | ""
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: log, namespace: istio-system }
spec:
  match: context.protocol == "http"
  actions: [ { handler: log, instances: [ access ] } ]
`;
}

describe('proxy: the mesh end to end (real proxy, real policy server)', function () {
  this.timeout(60_000);
  let dir: string;
  let logFile: string;
  let server: PolicyServer | undefined;
  let upstream: HttpUpstream;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'switchboard-mesh-e2e-'));
    logFile = path.join(dir, 'access.log');
    writeFileSync(path.join(dir, 'policy.yaml'), policy('/closed', logFile));
    upstream = await startHttpUpstream('app');
  });
  afterEach(async () => {
    await closeAllHarnesses();
    await upstream?.close();
    await server?.close();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function startServer(address = '127.0.0.1:0'): Promise<string> {
    server = createPolicyServer({ address, configDir: dir, watch: false });
    return (await server.start()).address;
  }

  const proxyYaml = (policyAddress: string, extra = ''): string => `
node: { name: app-1, namespace: default, labels: { app: app } }
listeners: [{name: in, role: inbound, address: 127.0.0.1, port: 0}]
routes: [{match: {path: {prefix: /}}, cluster: app}]
clusters:
${clusterYaml('app', [upstream.port])}
policy:
  server: ${policyAddress}
  reportBatchDelayMs: 20
  reportBatchEntries: 7
${extra}`;

  const serverChecks = (): number => server?.runtime?.current().dispatcher.stats.checks ?? -1;

  it('answers repeated requests from the decision cache: the server sees one Check per distinct decision', async () => {
    const hook = new PolicyClient();
    const harness = await startProxy(proxyYaml(await startServer()), { hook });
    for (let i = 0; i < 20; i++) assert.equal((await request(harness.port(), { path: '/open' })).status, 200);
    for (let i = 0; i < 5; i++)
      assert.equal((await request(harness.port(), { path: '/closed' })).status, 403);
    assert.equal(serverChecks(), 2);
    assert.equal(hook.stats.cacheHits, 23);
  });

  it('drops cached decisions as soon as an answer from a newer configuration arrives', async () => {
    const hook = new PolicyClient();
    const harness = await startProxy(proxyYaml(await startServer()), { hook });
    assert.equal((await request(harness.port(), { path: '/soon-closed' })).status, 200);
    assert.equal((await request(harness.port(), { path: '/soon-closed' })).status, 200);
    writeFileSync(path.join(dir, 'policy.yaml'), policy('/soon-closed', logFile));
    await server!.runtime!.reload();
    // The next request the server answers (any request not in the cache) carries the new
    // generation; from then on the old decision is gone.
    assert.equal((await request(harness.port(), { path: '/something-else' })).status, 200);
    const after = await request(harness.port(), { path: '/soon-closed' });
    assert.equal(after.status, 403);
    assert.match(after.body, /closed/);
  });

  it('fails closed (503) or open by policy when the server is stopped, after retrying with back-off', async () => {
    const address = await startServer();
    const closedHook = new PolicyClient();
    const closed = await startProxy(proxyYaml(address, '  failPolicy: FAIL_CLOSE\n  checkTimeoutMs: 500\n'), {
      hook: closedHook,
    });
    const openHook = new PolicyClient();
    const open = await startProxy(proxyYaml(address, '  failPolicy: FAIL_OPEN\n  checkTimeoutMs: 500\n'), {
      hook: openHook,
    });
    assert.equal((await request(closed.port(), { path: '/a' })).status, 200);
    await server!.close();
    const seen = upstream.requests.length;
    const refused = await request(closed.port(), { path: '/b' });
    assert.equal(refused.status, 503);
    assert.match(refused.body, /^policy check failed: /);
    assert.equal(upstream.requests.length, seen, 'a request failed closed never reaches the upstream');
    assert.equal(closedHook.stats.checkRetries, 2, 'two retries (the default) before failing');
    assert.equal((await request(open.port(), { path: '/b' })).status, 200);
    assert.equal(openHook.stats.failedOpen, 1);
    // A decision cached before the outage still serves.
    assert.equal((await request(closed.port(), { path: '/a' })).status, 200);
  });

  it('reports every request, complete, to the access log while the server is up', async () => {
    const hook = new PolicyClient();
    const harness = await startProxy(proxyYaml(await startServer()), { hook });
    const sent: { path: string; code: number }[] = [];
    for (let i = 0; i < 40; i++) {
      const p = i % 10 === 9 ? '/closed' : `/items/${i}`;
      const answer = await request(harness.port(), {
        path: p,
        method: i % 2 === 0 ? 'GET' : 'POST',
        headers: { 'x-user': `user-${i}` },
      });
      sent.push({ path: p, code: answer.status });
    }
    await waitFor('every request reported', () => hook.stats.reportsSent === 40);
    await harness.close();
    await server!.close();
    const records = readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(records.length, 40);
    assert.equal(hook.stats.reportsDropped, 0);
    records.forEach((record, i) => {
      assert.equal(record['path'], sent[i]!.path);
      assert.equal(record['code'], sent[i]!.code);
      assert.equal(record['method'], i % 2 === 0 ? 'GET' : 'POST');
      assert.equal(record['user'], `user-${i}`);
      assert.equal(record['reporter'], 'inbound');
      assert.equal(record['app'], 'app');
    });
    assert.equal(records.filter((r) => r['code'] === 403).length, 4);
  });
});
