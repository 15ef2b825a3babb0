import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { AttributeBag } from '../../../attributes';
import { createPolicyServer, type PolicyServer } from '../../../policy-server';
import type { ProxyConfig } from '../../../proxy/config-model';
import { PolicyClient } from '../../../proxy/policy/policy-client';
import { parsePolicySettings } from '../../../proxy/policy/policy-settings';
import { freePort } from '../../support/redis-servers';
import { requestFacts } from '../support/request-facts';

/** Denies /admin (PERMISSION_DENIED) and rate-limits nothing; `label` makes each version differ. */
function policyYaml(deniedPath: string): string {
  return `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: refuse, namespace: istio-system }
spec: { compiledAdapter: denier, params: { status: { code: 7, message: "no entry to ${deniedPath}" } } }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: nothing, namespace: istio-system }
spec: { compiledTemplate: checknothing }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: deny-path, namespace: istio-system }
spec:
  match: request.path == "${deniedPath}"
  actions: [ { handler: refuse, instances: [ nothing ] } ]
`;
}

function request(requestPath: string): AttributeBag {
  return new AttributeBag([
    ['request.path', requestPath],
    ['destination.service.host', 'ratings.default.svc.cluster.local'],
  ]);
}

const config = (policy: Record<string, unknown> | undefined): ProxyConfig =>
  ({ policy }) as unknown as ProxyConfig;

describe('proxy: policy client against a real policy server', function () {
  this.timeout(20_000);
  let dir: string;
  let server: PolicyServer | undefined;
  let client: PolicyClient | undefined;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'switchboard-policy-client-'));
  });
  afterEach(async () => {
    await client?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(): Promise<string> {
    writeFileSync(path.join(dir, 'policy.yaml'), policyYaml('/admin'));
    server = createPolicyServer({ address: '127.0.0.1:0', configDir: dir, watch: false });
    return (await server.start()).address;
  }

  it('denies with HTTP 403 and the status message, allows the rest, and answers repeats from the cache', async () => {
    const address = await start();
    client = new PolicyClient();
    client.configurationApplied(config({ server: address }));
    assert.deepEqual(await client.checkRequest(request('/admin')), {
      allowed: false,
      status: 403,
      message: 'refuse.handler.istio-system:no entry to /admin',
    });
    assert.deepEqual(await client.checkRequest(request('/public')), { allowed: true });
    const repeat = request('/public');
    assert.deepEqual(await client.checkRequest(repeat), { allowed: true });
    assert.equal(repeat.get('check.cache_hit'), true);
    assert.equal(client.stats.checks, 2);
    assert.equal(client.stats.cacheHits, 1);
    assert.equal(server?.runtime?.current().dispatcher.stats.checks, 2);
  });

  it('drops cached decisions once the server answers from a newer configuration generation', async () => {
    const address = await start();
    client = new PolicyClient();
    client.configurationApplied(config({ server: address, reportBatchDelayMs: 0 }));
    assert.deepEqual(await client.checkRequest(request('/reports')), { allowed: true });
    writeFileSync(path.join(dir, 'policy.yaml'), policyYaml('/reports'));
    await server?.runtime?.reload();
    // A Report answered by generation 2 tells the client; the cached allow is gone.
    client.requestCompleted(requestFacts({ url: '/other' }), undefined);
    const deadline = Date.now() + 5000;
    while (client.stats.reportBatchesSent === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(client.stats.reportBatchesSent, 1);
    const after = await client.checkRequest(request('/reports'));
    assert.deepEqual(after, {
      allowed: false,
      status: 403,
      message: 'refuse.handler.istio-system:no entry to /reports',
    });
  });

  it('batches Reports and delivers every completed request', async () => {
    const address = await start();
    client = new PolicyClient();
    client.configurationApplied(config({ server: address, reportBatchEntries: 10, reportBatchDelayMs: 50 }));
    for (let i = 0; i < 25; i++) client.requestCompleted(requestFacts({ url: `/r/${i}` }), undefined);
    await client.close();
    assert.equal(client.stats.reportsSent, 25);
    assert.ok(client.stats.reportBatchesSent >= 3, `batches ${client.stats.reportBatchesSent}`);
    assert.equal(server?.runtime?.current().dispatcher.stats.reports, client.stats.reportBatchesSent);
  });

  it('fails closed (503) or open, by policy, when the server is unreachable, and says why', async () => {
    const port = await freePort();
    client = new PolicyClient();
    client.configurationApplied(config({ server: `127.0.0.1:${port}`, checkTimeoutMs: 500 }));
    const closed = request('/x');
    const verdict = await client.checkRequest(closed);
    assert.ok(!verdict.allowed);
    assert.equal(verdict.status, 503);
    assert.match(verdict.message, /^policy check failed: /);
    assert.equal(closed.get('check.error_code'), 14n);
    client.configurationApplied(
      config({ server: `127.0.0.1:${port}`, checkTimeoutMs: 500, failPolicy: 'FAIL_OPEN' }),
    );
    assert.deepEqual(await client.checkRequest(request('/x')), { allowed: true });
    assert.equal(client.stats.failedOpen, 1);
  });

  it('lets concurrent misses of an expired decision wait for one Check instead of asking each', async () => {
    writeFileSync(path.join(dir, 'policy.yaml'), policyYaml('/admin'));
    server = createPolicyServer({
      address: '127.0.0.1:0',
      configDir: dir,
      watch: false,
      validDurationMs: 50,
    });
    const address = (await server.start()).address;
    client = new PolicyClient();
    client.configurationApplied(config({ server: address }));
    await client.checkRequest(request('/public')); // the decision's signature is known from now on
    await new Promise((resolve) => setTimeout(resolve, 120)); // …and the decision has expired
    const verdicts = await Promise.all(
      Array.from({ length: 20 }, () => client!.checkRequest(request('/public'))),
    );
    assert.ok(verdicts.every((v) => v.allowed));
    // Waiters look again as soon as the one answer arrives, well within its 50 ms validity.
    const checks = server.runtime!.current().dispatcher.stats.checks;
    assert.equal(checks, 2, `${checks} Checks at the server for 21 requests`);
    assert.equal(client.stats.checks + client.stats.checksCoalesced, 21);
  });

  it('reads the policy section with every problem named', () => {
    assert.deepEqual(parsePolicySettings(undefined), { problems: [] });
    assert.deepEqual(
      parsePolicySettings({ server: 'nowhere', failPolicy: 'MAYBE', checkTimeoutMs: 0, extra: 1 }).problems,
      [
        { path: 'policy.server', message: 'must be host:port, e.g. 127.0.0.1:9091, got "nowhere"' },
        { path: 'policy.checkTimeoutMs', message: 'must be a whole number >= 1, got 0' },
        { path: 'policy.failPolicy', message: 'must be FAIL_CLOSE or FAIL_OPEN, got "MAYBE"' },
        {
          path: 'policy.extra',
          message:
            'unknown key; known: server, failPolicy, checkTimeoutMs, cacheEntries, reportBatchEntries, reportBatchDelayMs, reportBufferEntries, checkRetries, checkRetryBaseMs, checkRetryMaxMs, prefetchMinAmount, prefetchWindowMs, prefetchCloseWaitMs, tcpReportIntervalMs, quotas',
        },
      ],
    );
    for (const server of ['127.0.0.1:0', '127.0.0.1:70000'])
      assert.deepEqual(parsePolicySettings({ server }).problems, [
        {
          path: 'policy.server',
          message: `must be host:port with a port from 1 to 65535, e.g. 127.0.0.1:9091, got "${server}"`,
        },
      ]);
  });
});
