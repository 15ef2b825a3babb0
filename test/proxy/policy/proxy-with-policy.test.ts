/**
 * The proxy asks and tells: a real policy server, a real upstream, the proxy between them
 * with its policy client. Denied requests never reach the upstream; allowed ones do, with
 * the rule's header operations; every completed request is reported.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createPolicyServer, type PolicyServer } from '../../../policy-server';
import { PolicyClient } from '../../../proxy';
import { closeAllHarnesses, clusterYaml, request, startProxy } from '../support/proxy-harness';
import { startHttpUpstream, type HttpUpstream } from '../support/upstreams';

const POLICY = `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: refuse, namespace: istio-system }
spec: { compiledAdapter: denier, params: { status: { code: 7, message: "admins only" } } }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: nothing, namespace: istio-system }
spec: { compiledTemplate: checknothing }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: deny-admin, namespace: istio-system }
spec:
  match: request.path.startsWith("/admin")
  actions: [ { handler: refuse, instances: [ nothing ] } ]
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: tag, namespace: istio-system }
spec:
  requestHeaderOperations: [ { name: x-checked, values: [ '"yes"' ] } ]
`;

describe('proxy: Check and Report through the policy client', function () {
  this.timeout(20_000);
  let dir: string;
  let server: PolicyServer;
  let upstream: HttpUpstream;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'switchboard-mesh-'));
    writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
    server = createPolicyServer({ address: '127.0.0.1:0', configDir: dir, watch: false });
    await server.start();
    upstream = await startHttpUpstream('app');
  });
  after(async () => {
    await closeAllHarnesses();
    await upstream?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('denies with 403 before the upstream, forwards the rest with the rule header, and reports each request', async () => {
    const hook = new PolicyClient();
    const policyAddress = `127.0.0.1:${(await server.start()).port}`;
    const harness = await startProxy(
      `
listeners: [{name: in, role: inbound, address: 127.0.0.1, port: 0}]
routes: [{match: {path: {prefix: /}}, cluster: app}]
clusters:
${clusterYaml('app', [upstream.port])}
policy:
  server: ${policyAddress}
  reportBatchDelayMs: 10
`,
      { hook },
    );
    const seenBefore = upstream.requests.length;
    const denied = await request(harness.port(), { path: '/admin/users' });
    assert.equal(denied.status, 403);
    assert.match(denied.body, /admins only/);
    assert.equal(upstream.requests.length, seenBefore, 'a denied request never reaches the upstream');

    const allowed = await request(harness.port(), { path: '/public' });
    assert.equal(allowed.status, 200);
    const last = upstream.requests[upstream.requests.length - 1];
    assert.equal(last?.headers['x-checked'], 'yes');

    // A second identical request is answered from the decision cache.
    assert.equal((await request(harness.port(), { path: '/public' })).status, 200);
    assert.equal(hook.stats.cacheHits, 1);
    await harness.close();
    assert.equal(hook.stats.reportsSent, 3);
    assert.equal(hook.stats.reportsDropped, 0);
  });
});
