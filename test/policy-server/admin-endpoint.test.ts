/**
 * The admin endpoint, served by a real policy server on loopback: every route, its JSON,
 * and how readiness and liveness follow the server's life (loading, serving, draining).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Client } from '@grpc/grpc-js';
import { AdapterRegistry, defineAdapter, s } from '../../adapters';
import { AttributeBag, encodeCheckRequest } from '../../attributes';
import { createBuiltinRegistry } from '../../adapters';
import { createPolicyServer, type PolicyServer, type PolicyServerOptions } from '../../policy-server';
import { mixer } from '../../proto';
import { callUnary, createRawClient } from '../support/raw-grpc-client';
import { adminGet, adminRequest } from './admin-client';

const CHECK = '/istio.mixer.v1.Mixer/Check';
const decodeCheckResponse = (bytes: Uint8Array): mixer.CheckResponse => mixer.CheckResponse.decode(bytes);
const checkBytes = (requestPath: string): Uint8Array =>
  encodeCheckRequest({ attributes: new AttributeBag([['request.path', requestPath]]) });

const DENY_ADMIN = `apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: refuse, namespace: istio-system }
spec:
  compiledAdapter: denier
  params:
    status: { code: 7, message: admin paths are closed }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: nothing, namespace: istio-system }
spec:
  compiledTemplate: checknothing
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: deny-admin, namespace: istio-system }
spec:
  match: request.path.startsWith("/admin")
  actions:
  - handler: refuse
    instances: [nothing]
`;

/** A second file whose rule's match does not type-check: line 5 of bad.yaml. */
const BAD_RULE = `apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: broken, namespace: istio-system }
spec:
  match: request.path == 42
  actions: []
`;

/**
 * An adapter whose build waits for the test (so that the configuration is still loading)
 * and whose checks take `delayMs` (so that a call is in flight while the server drains).
 */
function gatedRegistry(gate: Promise<void>): AdapterRegistry {
  return createBuiltinRegistry().register(
    defineAdapter({
      name: 'gated',
      description: 'builds when the test opens the gate; answers OK after delayMs',
      templates: ['checknothing'],
      config: s.object({ delayMs: s.integer().default(0) }),
      async build(config) {
        await gate;
        return {
          async handleCheckNothing() {
            await new Promise((resolve) => setTimeout(resolve, config.delayMs));
            return { status: { code: 0, message: '' }, validDurationMs: 1000, validUseCount: 1 };
          },
          close: async () => undefined,
        };
      },
    }),
  );
}

const GATED = (delayMs: number): string => `apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: slow, namespace: istio-system }
spec:
  compiledAdapter: gated
  params: { delayMs: ${delayMs} }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: nothing, namespace: istio-system }
spec:
  compiledTemplate: checknothing
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: everything, namespace: istio-system }
spec:
  actions:
  - handler: slow
    instances: [nothing]
`;

/** A loopback port free a moment ago, for the one test that must reach the endpoint before start() resolves. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

async function waitFor(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 3_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('policy-server: admin endpoint', () => {
  const servers: PolicyServer[] = [];
  const clients: Client[] = [];
  const dirs: string[] = [];
  /** What the servers logged, instead of stderr. */
  const logged: string[] = [];
  const logger = { error: (message: string) => void logged.push(message) };

  const configDir = (files: Record<string, string>): string => {
    const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-admin-'));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
    return dir;
  };

  const startServer = async (options: PolicyServerOptions) => {
    const server = createPolicyServer({
      address: '127.0.0.1:0',
      adminAddress: '127.0.0.1:0',
      logger,
      ...options,
    });
    servers.push(server);
    const listening = await server.start();
    assert.ok(listening.admin !== undefined, 'start() reports the admin address');
    const client = createRawClient(listening.address);
    clients.push(client);
    return { server, client, admin: listening.admin.address };
  };

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await Promise.all(servers.splice(0).map((server) => server.close()));
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    logged.length = 0;
  });

  it('is off unless an admin address is given', async () => {
    const server = createPolicyServer({ address: '127.0.0.1:0' });
    servers.push(server);
    const listening = await server.start();
    assert.equal(listening.admin, undefined);
  });

  it('refuses a malformed admin address when created', () => {
    assert.throws(() => createPolicyServer({ adminAddress: '9093' }), {
      name: 'TypeError',
      message: 'admin address must be HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9093, got "9093"',
    });
  });

  it('answers /healthz SERVING and /readyz ready with the generation', async () => {
    const { admin } = await startServer({ configDir: configDir({ 'policy.yaml': DENY_ADMIN }) });
    const health = await adminGet(admin, '/healthz');
    assert.equal(health.status, 200);
    assert.match(String(health.headers['content-type']), /^application\/json/);
    assert.equal(health.headers['cache-control'], 'no-store');
    assert.deepEqual(health.body, { status: 'SERVING' });
    const ready = await adminGet(admin, '/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { ready: true, generation: 1 });
  });

  it('answers /config with the generation, directory, resources, handlers and rules', async () => {
    const dir = configDir({ 'policy.yaml': DENY_ADMIN });
    const { admin } = await startServer({ configDir: dir });
    const config = await adminGet(admin, '/config');
    assert.equal(config.status, 200);
    assert.deepEqual(config.body, {
      generation: 1,
      configDir: path.resolve(dir),
      resources: 3,
      handlers: ['refuse.handler.istio-system'],
      rules: ['deny-admin.rule.istio-system'],
      lastRefusal: null,
    });
  });

  it('shows a refused change in /config as file:line: path: message while the generation stays', async () => {
    const dir = configDir({ 'policy.yaml': DENY_ADMIN });
    const { server, admin } = await startServer({ configDir: dir, watch: false });
    writeFileSync(path.join(dir, 'bad.yaml'), BAD_RULE);
    const before = Date.now();
    await server.runtime?.reload();
    const config = await adminGet(admin, '/config');
    const body = config.body as {
      generation: number;
      rules: string[];
      lastRefusal: { at: string; errors: string[] } | null;
    };
    assert.equal(body.generation, 1);
    assert.deepEqual(body.rules, ['deny-admin.rule.istio-system']);
    assert.ok(body.lastRefusal !== null, 'lastRefusal is set');
    assert.ok(Date.parse(body.lastRefusal.at) >= before - 1, body.lastRefusal.at);
    assert.equal(body.lastRefusal.errors.length, 1, body.lastRefusal.errors.join('\n'));
    assert.match(body.lastRefusal.errors[0] ?? '', /^.*bad\.yaml:5: spec\.match: /);
    assert.match(logged.join('\n'), /^configuration change refused, generation 1 keeps serving:/);

    // The next change that loads clears it.
    writeFileSync(path.join(dir, 'bad.yaml'), '# fixed\n');
    await server.runtime?.reload();
    const fixed = (await adminGet(admin, '/config')).body as { generation: number; lastRefusal: unknown };
    assert.equal(fixed.generation, 2);
    assert.equal(fixed.lastRefusal, null);
  });

  it('answers /stats with the dispatcher counters of the generation and the uptime', async () => {
    const { client, admin } = await startServer({ configDir: configDir({ 'policy.yaml': DENY_ADMIN }) });
    for (const requestPath of ['/admin/users', '/public', '/admin/keys']) {
      const result = await callUnary(client, CHECK, checkBytes(requestPath), decodeCheckResponse);
      assert.ok(result.ok, result.ok ? '' : result.error.message);
    }
    const stats = await adminGet(admin, '/stats');
    assert.equal(stats.status, 200);
    const body = stats.body as {
      pid: number;
      uptimeSeconds: number;
      generation: number;
      dispatcher: Record<string, number>;
    };
    assert.equal(body.pid, process.pid);
    assert.ok(body.uptimeSeconds > 0);
    assert.equal(body.generation, 1);
    assert.equal(body.dispatcher['checks'], 3);
    assert.equal(body.dispatcher['reports'], 0);
    assert.equal(body.dispatcher['handlerFaults'], 0);
  });

  it("answers /stats with each counting handler's own view, by qualified name", async () => {
    const examples = path.resolve(__dirname, '..', '..', '..', 'examples', 'config');
    const { admin } = await startServer({ configDir: examples, watch: false });
    const body = (await adminGet(admin, '/stats')).body as { handlers: Record<string, unknown> };
    // The example's memquota, stdio and opa handlers keep counters; the deniers and list checkers keep none.
    assert.deepEqual(body.handlers, {
      'request-limits.handler.istio-system': { counters: 0, deduplicationIds: 0 },
      'access-log.handler.istio-system': body.handlers['access-log.handler.istio-system'],
      'api-rbac.handler.istio-system': body.handlers['api-rbac.handler.istio-system'],
    });
    assert.equal(typeof body.handlers['access-log.handler.istio-system'], 'object');
    const opa = body.handlers['api-rbac.handler.istio-system'] as { regoVersion: string; decisions: unknown };
    assert.equal(opa.regoVersion, 'bundle');
    assert.deepEqual(opa.decisions, { allowed: 0, denied: 0, dryRunDenied: 0, failed: 0, timedOut: 0 });
  });

  it('answers 404 for an unknown path, 405 for a method other than GET or HEAD, and HEAD without a body', async () => {
    const { admin } = await startServer({});
    const missing = await adminGet(admin, '/metrics');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, {
      error: 'no route /metrics; routes are /healthz, /readyz, /config, /stats',
    });

    const post = await adminRequest(admin, '/config', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers['allow'], 'GET, HEAD');
    assert.deepEqual(post.body, { error: '/config answers GET and HEAD only, not POST' });

    const head = await adminRequest(admin, '/healthz', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    assert.equal(head.headers['content-length'], String('{"status":"SERVING"}\n'.length));

    const withQuery = await adminGet(admin, '/readyz?verbose=1');
    assert.equal(withQuery.status, 200);
  });

  it('answers /readyz 503 while the first configuration loads, /healthz 200 meanwhile', async () => {
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    // The endpoint must be reached before start() resolves, so its port is chosen up front.
    const adminAddress = `127.0.0.1:${await freePort()}`;
    const server = createPolicyServer({
      address: '127.0.0.1:0',
      adminAddress,
      configDir: configDir({ 'policy.yaml': GATED(0) }),
      registry: gatedRegistry(gate),
      logger,
    });
    servers.push(server);
    const starting = server.start();
    try {
      await waitFor('the admin endpoint listens', () =>
        adminGet(adminAddress, '/healthz').then(
          () => true,
          () => false,
        ),
      );
      const loading = await adminGet(adminAddress, '/readyz');
      assert.equal(loading.status, 503);
      assert.deepEqual(loading.body, { ready: false, reason: 'configuration is loading' });
      assert.deepEqual((await adminGet(adminAddress, '/healthz')).body, { status: 'SERVING' });
      const noConfig = await adminGet(adminAddress, '/config');
      assert.equal(noConfig.status, 503);
      assert.deepEqual(noConfig.body, { error: 'no configuration serves yet' });
      const stats = (await adminGet(adminAddress, '/stats')).body as { generation: number; dispatcher: null };
      assert.equal(stats.generation, 0);
      assert.equal(stats.dispatcher, null);
    } finally {
      openGate();
    }
    const listening = await starting;
    assert.equal(listening.admin?.address, adminAddress);
    assert.equal((await adminGet(adminAddress, '/readyz')).status, 200);
  });

  it('answers 503 NOT_SERVING and not ready while draining, and stops listening once closed', async () => {
    const { server, client, admin } = await startServer({
      configDir: configDir({ 'policy.yaml': GATED(400) }),
      registry: gatedRegistry(Promise.resolve()),
    });
    const inFlight = callUnary(client, CHECK, checkBytes('/slow'), decodeCheckResponse);
    await waitFor('the call reaches the dispatcher', async () => {
      const stats = (await adminGet(admin, '/stats')).body as { dispatcher: { checks: number } };
      return stats.dispatcher.checks === 1;
    });
    // The handler answers 400 ms after the call started: the endpoint is asked meanwhile.
    const closing = server.close();
    const health = await adminGet(admin, '/healthz');
    assert.equal(health.status, 503);
    assert.deepEqual(health.body, { status: 'NOT_SERVING' });
    const ready = await adminGet(admin, '/readyz');
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.body, { ready: false, reason: 'draining' });

    const result = await inFlight;
    assert.ok(result.ok, result.ok ? '' : result.error.message);
    await closing;
    await assert.rejects(adminGet(admin, '/healthz'), /ECONNREFUSED/);
  });
});
