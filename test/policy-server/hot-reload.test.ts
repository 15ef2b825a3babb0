/**
 * Hot reload under load: the configuration directory is rewritten while Checks keep
 * coming, and no call may fail or see a mixture of two configurations; a handler a reload
 * retires is closed only after the calls it was serving have finished.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Client } from '@grpc/grpc-js';
import { AdapterRegistry, defineAdapter, s } from '../../adapters';
import { AttributeBag, encodeCheckRequest } from '../../attributes';
import { createPolicyServer, formatConfigError, type PolicyServer } from '../../policy-server';
import { mixer } from '../../proto';
import { callUnary, createRawClient } from '../support/raw-grpc-client';
import { adminGet } from './admin-client';

const CHECK = '/istio.mixer.v1.Mixer/Check';
const PERMISSION_DENIED = 7;
const decodeCheckResponse = (bytes: Uint8Array): mixer.CheckResponse => mixer.CheckResponse.decode(bytes);
const checkBytes = (requestPath: string): Uint8Array =>
  encodeCheckRequest({ attributes: new AttributeBag([['request.path', requestPath]]) });

/** The path version `v` of the policy denies: /a for odd versions, /b for even ones. */
const deniedPath = (version: number): string => (version % 2 === 1 ? '/a' : '/b');

/**
 * Version `v` of the policy. Three rules, so that a response mixing two configurations
 * would show: two denier rules for the denied path, each handler's message naming the
 * version, and a rule matching everything that stamps the version in a response header.
 * The handlers' parameters change with each version, so every reload retires both.
 */
function policy(version: number): string {
  const denier = (name: string): string => `apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: ${name}, namespace: istio-system }
spec:
  compiledAdapter: denier
  params:
    status: { code: ${PERMISSION_DENIED}, message: v${version} }
`;
  const denyRule = (name: string, handler: string): string => `apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: ${name}, namespace: istio-system }
spec:
  match: request.path == "${deniedPath(version)}"
  actions:
  - handler: ${handler}
    instances: [nothing]
`;
  return [
    denier('deny-one'),
    denier('deny-two'),
    `apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: nothing, namespace: istio-system }
spec:
  compiledTemplate: checknothing
`,
    denyRule('deny-first', 'deny-one'),
    denyRule('deny-second', 'deny-two'),
    `apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: stamp, namespace: istio-system }
spec:
  actions: []
  responseHeaderOperations:
  - name: x-policy
    values: [ '"v${version}"' ]
`,
  ].join('---\n');
}

/** Version `v` broken: both deny rules' matches compare a string with a number. */
const INVALID_MATCH = 'request.path == 404';
const invalidPolicy = (version: number): string =>
  policy(version).replaceAll(`request.path == "${deniedPath(version)}"`, INVALID_MATCH);

/**
 * Rewrites the file in place. Not by writing beside and renaming: on Linux, Node 20's
 * recursive fs.watch (which the runtime uses) sees only the first file renamed over a
 * watched one, and misses every later replacement.
 */
function replaceFile(file: string, text: string): void {
  writeFileSync(file, text);
}

async function waitFor(what: string, condition: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return Date.now() - started;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('policy-server: hot reload', () => {
  const servers: PolicyServer[] = [];
  const clients: Client[] = [];
  const dirs: string[] = [];
  const logged: string[] = [];
  const logger = { error: (message: string) => void logged.push(message) };

  const tempDir = (): string => {
    const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-reload-'));
    dirs.push(dir);
    return dir;
  };

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await Promise.all(servers.splice(0).map((server) => server.close()));
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    logged.length = 0;
  });

  it('under continuous Checks, every call answers from one whole configuration, and changes apply within a bound', async function () {
    this.timeout(20_000);
    const CONCURRENCY = 8;
    const MIN_LOAD_MS = 3_000;
    const SWITCH_BOUND_MS = 3_000;
    const dir = tempDir();
    const file = path.join(dir, 'policy.yaml');
    writeFileSync(file, policy(1));

    const server = createPolicyServer({
      address: '127.0.0.1:0',
      adminAddress: '127.0.0.1:0',
      configDir: dir,
      reloadDelayMs: 50,
      logger,
    });
    servers.push(server);
    const listening = await server.start();
    const client = createRawClient(listening.address);
    clients.push(client);

    // Versions: the newest written (a response may show it as soon as it is written), and
    // the newest confirmed (a response seen with it: every call started later must show it
    // or a newer one, since the server only moves forward).
    let written = 1;
    let confirmed = 1;
    const firstSeen = new Map<number, number>([[1, Date.now()]]);
    const problems: string[] = [];
    let calls = 0;
    let denied = 0;
    let running = true;

    const loop = async (worker: number): Promise<void> => {
      for (let i = 0; running; i++) {
        const requestPath = (worker + i) % 2 === 0 ? '/a' : '/b';
        const floor = confirmed;
        const result = await callUnary(client, CHECK, checkBytes(requestPath), decodeCheckResponse);
        const ceiling = written;
        calls++;
        if (!result.ok) {
          problems.push(`${requestPath}: call failed: ${result.error.code} ${result.error.details}`);
          continue;
        }
        const precondition = result.response.precondition;
        const stamps = (precondition?.routeDirective?.responseHeaderOperations ?? []).filter(
          (op) => op.name === 'x-policy',
        );
        const version = Number(/^v(\d+)$/.exec(stamps[0]?.value ?? '')?.[1]);
        const code = precondition?.status?.code ?? 0;
        const message = precondition?.status?.message ?? '';
        const shouldDeny = deniedPath(version) === requestPath;
        const expected = shouldDeny
          ? `deny-one.handler.istio-system:v${version}, deny-two.handler.istio-system:v${version}`
          : '';
        if (stamps.length !== 1 || !(version >= floor && version <= ceiling)) {
          problems.push(`${requestPath}: stamped ${JSON.stringify(stamps)}, expected v${floor}..v${ceiling}`);
        } else if (code !== (shouldDeny ? PERMISSION_DENIED : 0) || message !== expected) {
          problems.push(`${requestPath}: v${version} answered ${code} "${message}"`);
        } else {
          if (!firstSeen.has(version)) firstSeen.set(version, Date.now());
          if (version > confirmed) confirmed = version;
          if (code !== 0) denied++;
        }
      }
    };

    const started = Date.now();
    const load = Promise.all(Array.from({ length: CONCURRENCY }, (_, worker) => loop(worker)));
    const latencies: number[] = [];
    try {
      await sleep(200);
      for (const step of ['v2', 'v3', 'invalid', 'v4', 'v5']) {
        const generation = server.generation;
        if (step === 'invalid') {
          const writtenAt = Date.now();
          const invalid = invalidPolicy(written);
          replaceFile(file, invalid);
          await waitFor(
            'the invalid change is refused',
            () => (server.runtime?.lastRefusal?.at.getTime() ?? 0) >= writtenAt - 1,
            SWITCH_BOUND_MS,
          );
          const refusal = server.runtime?.lastRefusal;
          assert.ok(refusal !== undefined);
          assert.deepEqual(
            refusal.errors.map(formatConfigError).map((e) => e.replace(/type error in .*/, '…')),
            invalid
              .split('\n')
              .flatMap((line, i) =>
                line.includes(INVALID_MATCH) ? [`${file}:${i + 1}: spec.match: …`] : [],
              ),
          );
          const config = (await adminGet(listening.admin?.address ?? '', '/config')).body as {
            generation: number;
            lastRefusal: { errors: string[] } | null;
          };
          assert.equal(config.generation, generation);
          assert.deepEqual(config.lastRefusal?.errors, refusal.errors.map(formatConfigError));
          // Still the old configuration, a while after the refusal.
          await sleep(300);
          assert.equal(server.generation, generation, 'a refused change does not move the generation');
          continue;
        }
        const version = Number(step.slice(1));
        const writtenAt = Date.now();
        written = version;
        replaceFile(file, policy(version));
        await waitFor(`v${version} is served`, () => firstSeen.has(version), SWITCH_BOUND_MS).catch(
          (error: Error) => {
            throw new Error(
              `${error.message}; generation ${server.generation}; ${problems.slice(0, 3).join('; ')}; logged: ${logged.join('; ')}`,
            );
          },
        );
        latencies.push((firstSeen.get(version) ?? 0) - writtenAt);
        assert.ok(server.generation > generation, `the generation moved past ${generation}`);
        await sleep(300);
      }
      const remaining = MIN_LOAD_MS - (Date.now() - started);
      if (remaining > 0) await sleep(remaining);
    } finally {
      running = false;
      await load;
    }

    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} of ${calls} calls went wrong`);
    assert.ok(calls > 100, `only ${calls} calls`);
    assert.ok(denied > 0 && denied < calls);
    assert.deepEqual([...firstSeen.keys()], [1, 2, 3, 4, 5]);
    assert.ok(
      logged.some((line) => line.startsWith('configuration change refused')),
      'the refusal is logged',
    );
    if (process.env['SWITCHBOARD_TEST_VERBOSE'] !== undefined) {
      process.stdout.write(
        `      ${calls} calls (${denied} denied) in ${Date.now() - started} ms, ${problems.length} wrong; ` +
          `reload latencies ${latencies.join(', ')} ms; final generation ${server.generation}\n`,
      );
    }
  });

  it('closes a handler a reload retired only after the calls it was serving have finished', async () => {
    const events: string[] = [];
    const times = new Map<string, number>();
    const SLOW = defineAdapter({
      name: 'slow',
      description: 'answers OK after delayMs; records when calls finish and when it is closed',
      templates: ['checknothing'],
      config: s.object({ tag: s.string(), uses: s.integer(), delayMs: s.integer().default(0) }),
      build(config) {
        let closed = false;
        return {
          async handleCheckNothing() {
            if (closed) throw new Error(`${config.tag} was called after close`);
            events.push(`${config.tag}: call`);
            await sleep(config.delayMs);
            if (closed) throw new Error(`${config.tag} was closed during a call`);
            events.push(`${config.tag}: answered`);
            times.set(`${config.tag} answered`, Date.now());
            // The use count tells which handler answered (an OK status carries no message).
            return { status: { code: 0, message: '' }, validDurationMs: 1000, validUseCount: config.uses };
          },
          async close() {
            closed = true;
            events.push(`${config.tag}: closed`);
            times.set(`${config.tag} closed`, Date.now());
          },
        };
      },
    });
    const slowPolicy = (tag: string, delayMs: number): string => `apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: slow, namespace: istio-system }
spec:
  compiledAdapter: slow
  params: { tag: ${tag}, uses: ${tag === 'old' ? 1 : 2}, delayMs: ${delayMs} }
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
    const dir = tempDir();
    const file = path.join(dir, 'policy.yaml');
    writeFileSync(file, slowPolicy('old', 500));
    const server = createPolicyServer({
      address: '127.0.0.1:0',
      configDir: dir,
      watch: false,
      registry: new AdapterRegistry().register(SLOW),
      logger,
    });
    servers.push(server);
    const client = createRawClient((await server.start()).address);
    clients.push(client);

    const inFlight = [1, 2, 3].map(() => callUnary(client, CHECK, checkBytes('/'), decodeCheckResponse));
    await waitFor('three calls reach the old handler', () => events.length === 3, 3_000);
    writeFileSync(file, slowPolicy('new', 0));
    await server.runtime?.reload();
    assert.equal(server.generation, 2);
    assert.ok(!events.includes('old: closed'), 'the old handler stays open while its calls run');

    // A call made after the switch goes to the new handler, while the old calls still run.
    const after = await callUnary(client, CHECK, checkBytes('/'), decodeCheckResponse);
    assert.ok(after.ok, after.ok ? '' : after.error.message);
    assert.equal(after.response.precondition?.validUseCount, 2, 'answered by the new handler');
    assert.ok(!events.includes('old: closed'));

    for (const result of await Promise.all(inFlight)) {
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      assert.equal(result.response.precondition?.status?.code, 0);
      assert.equal(result.response.precondition?.validUseCount, 1, 'answered by the old handler');
    }
    await waitFor('the old handler is closed', () => events.includes('old: closed'), 3_000);
    assert.deepEqual(
      events.filter((e) => e.startsWith('old')),
      [
        'old: call',
        'old: call',
        'old: call',
        'old: answered',
        'old: answered',
        'old: answered',
        'old: closed',
      ],
    );
    assert.ok((times.get('old closed') ?? 0) >= (times.get('old answered') ?? Infinity));
    assert.ok(!events.includes('new: closed'), 'the handler serving now stays open');
  });
});
