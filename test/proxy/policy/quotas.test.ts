/**
 * Quotas in the proxy, end to end: a real policy server (memquota), a real upstream, the
 * proxy between them asking for the quota its `policy.quotas` rules name — in exact mode
 * (every request asks) and in prefetch mode (a local allowance).
 *
 * Tolerance of the rate tests: memquota's rolling window lets at most LIMIT requests through
 * in any 1 s window, so over an elapsed time T of offered load well above the limit at most
 * LIMIT × (T/1 s + 1) pass, and at least LIMIT × (⌊T/1 s⌋ − 1) (a full window is never left
 * unused while requests keep coming). No wall-clock speed is asserted: T is measured.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createPolicyServer, type PolicyServer } from '../../../policy-server';
import { PolicyClient } from '../../../proxy';
import {
  closeAllHarnesses,
  clusterYaml,
  request,
  startProxy,
  type ProxyHarness,
} from '../support/proxy-harness';
import { startHttpUpstream, type HttpUpstream } from '../support/upstreams';

const LIMIT = 20;

const POLICY = `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: limits, namespace: istio-system }
spec:
  compiledAdapter: memquota
  params:
    quotas:
      - { name: requestcount.instance.istio-system, maxAmount: ${LIMIT}, validDuration: 1s }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: requestcount, namespace: istio-system }
spec:
  compiledTemplate: quota
  params:
    dimensions:
      user: request.headers["x-user"] | "anonymous"
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: quota, namespace: istio-system }
spec:
  actions: [ { handler: limits, instances: [ requestcount ] } ]
`;

describe('proxy: quotas through the policy client', function () {
  this.timeout(60_000);
  let dir: string;
  let server: PolicyServer;
  let upstream: HttpUpstream;
  let policyAddress: string;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'switchboard-quotas-'));
    writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
    server = createPolicyServer({ address: '127.0.0.1:0', configDir: dir, watch: false });
    policyAddress = (await server.start()).address;
    upstream = await startHttpUpstream('app');
  });
  afterEach(() => closeAllHarnesses());
  after(async () => {
    await upstream?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function proxyWith(hook: PolicyClient, quotas: string): Promise<ProxyHarness> {
    return startProxy(
      `
listeners: [{name: in, role: inbound, address: 127.0.0.1, port: 0}]
routes: [{match: {path: {prefix: /}}, cluster: app}]
clusters:
${clusterYaml('app', [upstream.port])}
policy:
  server: ${policyAddress}
  reportBatchDelayMs: 50
  quotas:
${quotas}
`,
      { hook },
    );
  }

  /** Offers load from `workers` loops for `ms`; counts answers by status. */
  async function offer(port: number, user: string, ms: number, workers = 4) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
    const statuses = new Map<number, number>();
    const started = Date.now();
    const retryAfter: string[] = [];
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (Date.now() - started < ms) {
          const answer = await request(port, { path: '/api/items', headers: { 'x-user': user }, agent });
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          if (answer.status === 429) retryAfter.push(String(answer.headers['retry-after']));
        }
      }),
    );
    agent.destroy();
    return { statuses, elapsedMs: Date.now() - started, retryAfter };
  }

  function assertRate(allowed: number, elapsedMs: number, offered: number): void {
    const seconds = elapsedMs / 1000;
    const most = LIMIT * (seconds + 1);
    const least = LIMIT * (Math.floor(seconds) - 1);
    assert.ok(offered > most, `the load (${offered} requests) must exceed the limit to test it`);
    assert.ok(
      allowed <= most && allowed >= least,
      `${allowed} allowed in ${elapsedMs} ms; limit ${LIMIT}/s allows ${least}..${most}`,
    );
  }

  it('exact: every request asks, the limit holds at its rate, and a refusal is 429 with Retry-After', async () => {
    const hook = new PolicyClient();
    const harness = await proxyWith(
      hook,
      `    rules: [{ match: [{ clause: { request.path: { prefix: /api/ } } }], quotas: [{ quota: requestcount }] }]`,
    );
    const before = upstream.requests.length;
    const { statuses, elapsedMs, retryAfter } = await offer(harness.port(), 'exact-user', 3000);
    const allowed = statuses.get(200) ?? 0;
    const offered = allowed + (statuses.get(429) ?? 0);
    assert.equal(
      offered,
      [...statuses.values()].reduce((a, b) => a + b),
      `statuses ${[...statuses]}`,
    );
    assertRate(allowed, elapsedMs, offered);
    assert.equal(upstream.requests.length - before, allowed, 'refused requests never reach the upstream');
    assert.ok(
      retryAfter.every((v) => v === '1'),
      `Retry-After ${retryAfter[0]}`,
    );
    assert.equal(hook.stats.quotaCalls, offered, 'exact mode asks the server for every request');
    assert.equal(hook.stats.quotaCacheHits, 0);
    assert.equal(hook.stats.quotaUnitsGranted, allowed);
    // A path no rule names charges nothing.
    assert.equal(
      (await request(harness.port(), { path: '/health', headers: { 'x-user': 'exact-user' } })).status,
      200,
    );
    assert.equal(hook.stats.quotaCalls, offered);
  });

  it('prefetch: most requests spend a local allowance, the limit holds, and never more passes than the server granted', async () => {
    const hook = new PolicyClient();
    const harness = await proxyWith(
      hook,
      `    rules: [{ quotas: [{ quota: requestcount, charge: 1 }] }]
    modes: { requestcount: prefetch }`,
    );
    const before = upstream.requests.length;
    const { statuses, elapsedMs } = await offer(harness.port(), 'prefetch-user', 3000);
    const allowed = statuses.get(200) ?? 0;
    const offered = allowed + (statuses.get(429) ?? 0);
    assertRate(allowed, elapsedMs, offered);
    assert.equal(upstream.requests.length - before, allowed);
    // Every request let through spent a unit the server granted; none was let through on credit.
    assert.ok(
      allowed <= hook.stats.quotaUnitsGranted,
      `${allowed} allowed, ${hook.stats.quotaUnitsGranted} granted`,
    );
    assert.ok(hook.stats.quotaCacheHits > 0, 'some requests were served from the allowance');
    assert.ok(
      hook.stats.quotaCalls < offered,
      `${hook.stats.quotaCalls} quota calls for ${offered} requests`,
    );
  });

  it('prefetch under a light load: requests are served from the allowance, refilled before it runs out', async () => {
    const hook = new PolicyClient();
    const harness = await proxyWith(
      hook,
      `    rules: [{ quotas: [{ quota: requestcount }] }]
    modes: { requestcount: prefetch }`,
    );
    // 10 requests one after the other, well under the limit: all pass, few ask the server.
    for (let i = 0; i < 10; i++) {
      assert.equal((await request(harness.port(), { headers: { 'x-user': 'light-user' } })).status, 200);
    }
    assert.ok(hook.stats.quotaCalls <= 5, `${hook.stats.quotaCalls} quota calls`);
    assert.ok(hook.stats.quotaCacheHits >= 5, `${hook.stats.quotaCacheHits} served locally`);
  });

  it("accepts Istio's QuotaSpec and QuotaSpecBinding resources", async () => {
    const hook = new PolicyClient();
    const harness = await proxyWith(
      hook,
      `    specs:
      - apiVersion: config.istio.io/v1alpha2
        kind: QuotaSpec
        metadata: { name: request-count, namespace: default }
        spec:
          rules:
            - match: [{ clause: { 'request.headers[X-User]': { exact: spec-user } } }]
              quotas: [{ quota: requestcount, charge: 5 }]
    bindings:
      - apiVersion: config.istio.io/v1alpha2
        kind: QuotaSpecBinding
        metadata: { name: request-count, namespace: default }
        spec:
          services: [{ name: "*" }]
          quotaSpecs: [{ name: request-count, namespace: default }]`,
    );
    // Each request charges 5 units of requestcount (the spec's charge), asked of the server.
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await request(harness.port(), { headers: { 'x-user': 'spec-user' } })).status);
    }
    const allowed = statuses.filter((s) => s === 200).length;
    assert.ok(allowed >= 1, `${statuses}`);
    assert.equal(hook.stats.quotaCalls, 3);
    assert.equal(hook.stats.quotaUnitsGranted, 5 * allowed);
    // Another user matches no clause: no quota asked.
    const calls = hook.stats.quotaCalls;
    assert.equal((await request(harness.port(), { headers: { 'x-user': 'other' } })).status, 200);
    assert.equal(hook.stats.quotaCalls, calls);
  });
});
