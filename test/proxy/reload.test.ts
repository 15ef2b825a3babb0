/**
 * Configuration reloads: a changed file is watched and applied; an invalid one is refused
 * with every error and the running configuration keeps serving; unchanged clusters keep
 * their connections; a retired listener drains; and a stream of reloads under load drops
 * no request.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import {
  clusterYaml,
  closeAllHarnesses,
  request,
  request2,
  startProxy,
  waitFor,
} from './support/proxy-harness';
import { startHttpUpstream, type HttpUpstream } from './support/upstreams';

describe('proxy configuration reload', function () {
  this.timeout(60_000);
  let v1: HttpUpstream;
  let v2: HttpUpstream;

  const configFor = (cluster: string, extraRoutes = '', listener = 'out'): string => `
listeners: [{name: ${listener}, role: outbound, address: 127.0.0.1, port: 0}]
routes:
${extraRoutes}  - cluster: ${cluster}
clusters:
${clusterYaml('v1', [v1.port])}${clusterYaml('v2', [v2.port])}`;

  const upstreamOf = (body: string): string => (JSON.parse(body) as { upstream: string }).upstream;

  beforeEach(async () => {
    v1 = await startHttpUpstream('v1');
    v2 = await startHttpUpstream('v2');
  });

  afterEach(async () => {
    await closeAllHarnesses();
    await v1.close();
    await v2.close();
  });

  it('applies a changed file it watches', async () => {
    const harness = await startProxy(configFor('v1'), {
      watch: true,
      reloadDelayMs: 20,
      pollIntervalMs: 100,
    });
    const port = harness.port();
    assert.equal(upstreamOf((await request(port)).body), 'v1');
    harness.rewrite(configFor('v2'));
    await waitFor('the new routes', async () => upstreamOf((await request(port)).body) === 'v2');
    assert.equal(harness.proxy.generation, 2);
    assert.ok(harness.logged.some((line) => line.includes('configuration generation 2 applied')));
  });

  it('refuses an invalid change with every error, and keeps serving the running configuration', async () => {
    const harness = await startProxy(configFor('v1'), {
      watch: true,
      reloadDelayMs: 20,
      pollIntervalMs: 100,
    });
    const port = harness.port();
    harness.rewrite(
      configFor('v3', '  - {match: {path: {prefix: nope}}, cluster: v2}\n').replace(
        'port: 0}',
        'port: 0, colour: blue}',
      ),
    );
    await waitFor('the refusal', () => harness.proxy.stats().lastRefusal !== undefined);
    const refusal = harness.proxy.stats().lastRefusal!;
    assert.deepEqual(
      refusal.errors.map((e) => `${e.line}: ${e.path}: ${e.message}`),
      [
        '2: listeners[0].colour: unknown key; the keys here are name, role, address, port, protocol, tls, routes, streamIdleTimeout, limits, cluster, idleTimeout',
        '4: routes[0].match.path.prefix: must start with /, got "nope"; e.g. prefix: /nope',
        '5: routes[1].cluster: no cluster named v3; define it under clusters, or use one of v1, v2',
      ],
    );
    const logged = harness.logged.find((line) => line.includes('configuration change refused'))!;
    assert.match(logged, /generation 1 keeps serving \(3 errors\)/);
    assert.ok(logged.includes(`${harness.file}:5: routes[1].cluster: no cluster named v3`));
    assert.equal(harness.proxy.generation, 1);
    assert.equal(upstreamOf((await request(port)).body), 'v1');
    harness.rewrite(configFor('v2'));
    await waitFor('the fixed configuration', async () => upstreamOf((await request(port)).body) === 'v2');
    assert.equal(harness.proxy.stats().lastRefusal, undefined);
  });

  it('keeps unchanged clusters, with their pooled connections, across a reload', async () => {
    const harness = await startProxy(configFor('v1'));
    const port = harness.port();
    await request(port);
    harness.rewrite(
      configFor('v1', '  - {match: {path: {exact: /direct}}, directResponse: {status: 204}}\n'),
    );
    assert.deepEqual(await harness.proxy.reload(), { applied: true, generation: 2 });
    assert.equal((await request(port, { path: '/direct' })).status, 204);
    await request(port);
    assert.equal(v1.connections, 1, 'the connection pooled before the reload served after it');
    assert.deepEqual(await harness.proxy.reload(), { applied: false, unchanged: true, generation: 2 });
  });

  it('drains a retired listener: its requests in flight finish, new connections go to the new one', async () => {
    const held: Array<() => void> = [];
    v1.handle((req, res) => {
      if (req.url === '/slow') held.push(() => res.end('finished on the old listener'));
      else res.end('quick');
    });
    const harness = await startProxy(configFor('v1', '', 'first'));
    const oldPort = harness.port('first');
    const inFlight = request(oldPort, { path: '/slow' });
    await waitFor('the slow request to arrive', () => held.length === 1);
    harness.rewrite(configFor('v1', '', 'second'));
    assert.deepEqual(await harness.proxy.reload(), { applied: true, generation: 2 });
    const newPort = harness.port('second');
    assert.notEqual(newPort, oldPort);
    assert.equal((await request(newPort)).body, 'quick');
    await assert.rejects(request(oldPort), /ECONNREFUSED/, 'the retired listener no longer accepts');
    held.shift()!();
    const answer = await inFlight;
    assert.equal(answer.body, 'finished on the old listener');
    assert.equal(
      answer.headers.connection,
      'close',
      'a draining listener closes the connection after the response',
    );
  });

  it('drops no request while the configuration changes under load', async () => {
    // Each answer takes a little while, so that reloads land on requests in flight.
    for (const upstream of [v1, v2]) {
      const name = upstream === v1 ? 'v1' : 'v2';
      upstream.handle((_req, res, body) => {
        setTimeout(() => res.end(JSON.stringify({ upstream: name, bodyLength: body.length })), 3);
      });
    }
    const harness = await startProxy(configFor('v1'), {
      watch: true,
      reloadDelayMs: 10,
      pollIntervalMs: 100,
    });
    const port = harness.port();
    let running = true;
    const failures: string[] = [];
    const served = { v1: 0, v2: 0, total: 0 };
    const note = (status: number, body: string, expectedLength: number): void => {
      served.total++;
      if (status !== 200) {
        failures.push(`status ${status}: ${body}`);
        return;
      }
      const parsed = JSON.parse(body) as { upstream: 'v1' | 'v2'; bodyLength: number };
      served[parsed.upstream]++;
      if (parsed.bodyLength !== expectedLength)
        failures.push(`body of ${expectedLength} arrived as ${parsed.bodyLength}`);
    };
    const http1Client = async (i: number): Promise<void> => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (let n = 0; running; n++) {
          const body = n % 2 === 0 ? undefined : 'x'.repeat(1000 + i);
          try {
            const answer = await request(port, {
              agent,
              method: body === undefined ? 'GET' : 'POST',
              path: `/c${i}/${n}`,
              body,
            });
            note(answer.status, answer.body, body?.length ?? 0);
          } catch (error) {
            failures.push(`client ${i}: ${(error as Error).message}`);
          }
        }
      } finally {
        agent.destroy();
      }
    };
    const http2Client = async (): Promise<void> => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on('error', (error) => failures.push(`h2 session: ${error.message}`));
      try {
        while (running) {
          const answers = await Promise.allSettled(
            [0, 1, 2, 3].map(() => request2(session, { ':method': 'GET', ':path': '/h2' })),
          );
          for (const a of answers) {
            if (a.status === 'rejected') failures.push(`h2: ${(a.reason as Error).message}`);
            else note(a.value.status, a.value.body, 0);
          }
        }
      } finally {
        session.close();
      }
    };
    const clients = [...[0, 1, 2, 3, 4, 5].map(http1Client), http2Client()];
    for (let generation = 2; generation <= 11; generation++) {
      const target = generation % 2 === 0 ? 'v2' : 'v1';
      // Alternate the routes, and now and then the clusters too.
      const extra = generation % 3 === 0 ? `  - {match: {path: {prefix: /never/}}, cluster: v1}\n` : '';
      let text = configFor(target, extra);
      if (generation % 4 === 0) text += clusterYaml('v3', [v1.port]);
      harness.rewrite(text);
      await waitFor(`generation ${generation}`, () => harness.proxy.generation === generation);
      const before = served.total;
      await waitFor(`requests on generation ${generation}`, () => served.total >= before + 20);
    }
    running = false;
    await Promise.all(clients);
    assert.deepEqual(failures, []);
    assert.ok(served.total >= 200, `only ${served.total} requests were served`);
    assert.ok(served.v1 > 0 && served.v2 > 0, `both clusters served: ${JSON.stringify(served)}`);
  });
});
