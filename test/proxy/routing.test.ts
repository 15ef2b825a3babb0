/**
 * Routing through a real proxy to real upstreams: matches, weighted splits, header
 * operations, rewrites, redirects, direct responses, fault injection with a seeded random,
 * and the forwarding headers.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { createSeededRandom, REASON_HEADER } from '../../proxy';
import {
  clusterYaml,
  closeAllHarnesses,
  request,
  startProxy,
  type ProxyHarness,
} from './support/proxy-harness';
import { startHttpUpstream, type HttpUpstream } from './support/upstreams';

interface Echo {
  readonly upstream: string;
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly bodyLength: number;
}

describe('proxy routing', function () {
  this.timeout(20_000);
  let v1: HttpUpstream;
  let v2: HttpUpstream;
  let harness: ProxyHarness;
  let port: number;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

  before(async () => {
    v1 = await startHttpUpstream('v1');
    v2 = await startHttpUpstream('v2');
    harness = await startProxy(
      `
listeners:
  - {name: out, role: outbound, address: 127.0.0.1, port: 0}
routes:
  - name: health
    match: {path: {exact: /healthz}, methods: [GET, HEAD]}
    directResponse: {status: 200, body: "ok", headers: {x-served-by: proxy}}
  - name: old-docs
    match: {path: {prefix: /old-docs/}}
    redirect: {pathPrefix: /docs/, status: 308}
  - name: secure
    match: {path: {prefix: /login}}
    redirect: {scheme: https, host: login.example.com, stripQuery: true}
  - name: canary-header
    match: {path: {prefix: /reviews/}, headers: [{name: x-canary, exact: "always"}]}
    cluster: v2
  - name: split
    match: {path: {prefix: /reviews/}}
    destinations: [{cluster: v1, weight: 80}, {cluster: v2, weight: 20}]
  - name: rewritten
    match: {path: {prefix: /api/v1/}}
    rewrite: {pathPrefix: /v2/, host: api.internal}
    requestHeaders:
      set: {x-env: test}
      add: {x-tag: proxy}
      remove: [x-secret]
    responseHeaders:
      set: {cache-control: no-store}
      remove: [x-upstream]
    cluster: v1
  - name: query-routed
    match: {query: [{name: version, exact: "2"}]}
    cluster: v2
  - name: host-routed
    match: {authority: {exact: two.example}}
    cluster: v2
  - name: aborted
    match: {path: {prefix: /flaky/}}
    fault: {abort: {status: 503, percent: 25}}
    cluster: v1
  - name: delayed
    match: {path: {prefix: /slow/}}
    fault: {delay: {fixed: 150ms, percent: 100}}
    cluster: v1
  - name: default
    match: {path: {prefix: /}}
    cluster: v1
  - name: unreachable
    cluster: v1
clusters:
${clusterYaml('v1', [v1.port])}${clusterYaml('v2', [v2.port])}`,
      { environment: { random: createSeededRandom(2024) } },
    );
    port = harness.port();
  });

  after(async () => {
    agent.destroy();
    await closeAllHarnesses();
    await v1.close();
    await v2.close();
  });

  const get = (path: string, headers: http.OutgoingHttpHeaders = {}, method = 'GET') =>
    request(port, { path, headers, method, agent });
  const echoOf = (body: string): Echo => JSON.parse(body) as Echo;

  it('answers a direct response without an upstream', async () => {
    const before = v1.requests.length + v2.requests.length;
    const answer = await get('/healthz');
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'ok');
    assert.equal(answer.headers['x-served-by'], 'proxy');
    assert.equal(v1.requests.length + v2.requests.length, before);
  });

  it('a method outside the route falls through to the next route', async () => {
    const answer = await get('/healthz', {}, 'POST');
    assert.equal(echoOf(answer.body).upstream, 'v1');
  });

  it('redirects, replacing the matched prefix and keeping the query', async () => {
    const answer = await get('/old-docs/guide?page=2', { host: 'docs.example:8080' });
    assert.equal(answer.status, 308);
    assert.equal(answer.headers.location, 'http://docs.example:8080/docs/guide?page=2');
  });

  it('redirects to another scheme and host, dropping the port and the query', async () => {
    const answer = await get('/login?next=/x', { host: 'www.example:8080' });
    assert.equal(answer.status, 301);
    assert.equal(answer.headers.location, 'https://login.example.com/login');
  });

  it('routes on a header before the weighted split', async () => {
    for (let i = 0; i < 20; i++)
      assert.equal(echoOf((await get('/reviews/1', { 'x-canary': 'always' })).body).upstream, 'v2');
  });

  it('splits by weight within statistical bounds (seeded random)', async () => {
    const n = 400;
    let toV2 = 0;
    for (let i = 0; i < n; i++) if (echoOf((await get('/reviews/1')).body).upstream === 'v2') toV2++;
    // Binomial(400, 0.2): mean 80, standard deviation 8; allow four of them.
    assert.ok(Math.abs(toV2 - 80) <= 32, `${toV2} of ${n} went to v2`);
  });

  it('rewrites the path prefix and the host, and changes headers both ways', async () => {
    const answer = await get('/api/v1/users?id=7', { 'x-secret': 's3cr3t', 'x-tag': 'client' });
    const echo = echoOf(answer.body);
    assert.equal(echo.url, '/v2/users?id=7');
    assert.equal(echo.headers.host, 'api.internal');
    assert.equal(echo.headers['x-env'], 'test');
    assert.equal(echo.headers['x-tag'], 'client, proxy');
    assert.equal(echo.headers['x-secret'], undefined);
    assert.equal(answer.headers['cache-control'], 'no-store');
    assert.equal(answer.headers['x-upstream'], undefined);
  });

  it('routes on query parameters and on the authority (without its port)', async () => {
    assert.equal(echoOf((await get('/q?version=2')).body).upstream, 'v2');
    assert.equal(echoOf((await get('/q?version=3')).body).upstream, 'v1');
    assert.equal(echoOf((await get('/x', { host: 'TWO.example:9999' })).body).upstream, 'v2');
  });

  it('sets x-forwarded-for, x-forwarded-proto, x-request-id and traceparent; keeps given ones', async () => {
    const fresh = echoOf((await get('/fresh')).body).headers;
    assert.equal(fresh['x-forwarded-for'], '127.0.0.1');
    assert.equal(fresh['x-forwarded-proto'], 'http');
    assert.match(String(fresh['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.match(String(fresh['traceparent']), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const kept = echoOf(
      (
        await get('/kept', {
          'x-forwarded-for': '203.0.113.9',
          'x-forwarded-proto': 'https',
          'x-request-id': 'req-1',
          traceparent,
          tracestate: 'vendor=1',
        })
      ).body,
    ).headers;
    assert.equal(kept['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(kept['x-forwarded-proto'], 'https');
    assert.equal(kept['x-request-id'], 'req-1');
    assert.equal(kept['traceparent'], traceparent);
    assert.equal(kept['tracestate'], 'vendor=1');
    const invalid = echoOf(
      (await get('/bad-trace', { traceparent: 'garbage', tracestate: 'vendor=1' })).body,
    ).headers;
    assert.notEqual(invalid['traceparent'], 'garbage');
    assert.equal(invalid['tracestate'], undefined, 'tracestate goes with an invalid traceparent');
  });

  it('removes hop-by-hop headers, and those the Connection header names', async () => {
    const echo = echoOf(
      (
        await get('/hop', {
          connection: 'keep-alive, x-hop',
          'x-hop': 'drop me',
          'keep-alive': 'timeout=5',
          te: 'trailers, deflate',
          'proxy-connection': 'keep-alive',
        })
      ).body,
    );
    assert.equal(echo.headers['x-hop'], undefined);
    assert.equal(echo.headers['proxy-connection'], undefined);
    assert.equal(echo.headers['te'], 'trailers');
    assert.equal(echo.headers['keep-alive'], undefined);
  });

  it('injects aborts at the configured percentage (seeded random)', async () => {
    const n = 400;
    let aborted = 0;
    for (let i = 0; i < n; i++) {
      const answer = await get('/flaky/x');
      if (answer.status === 503) {
        assert.equal(answer.headers[REASON_HEADER], 'fault-abort');
        aborted++;
      } else {
        assert.equal(answer.status, 200);
      }
    }
    // Binomial(400, 0.25): mean 100, standard deviation 8.7; allow four of them.
    assert.ok(Math.abs(aborted - 100) <= 35, `${aborted} of ${n} aborted`);
  });

  it('injects a fixed delay', async () => {
    const started = process.hrtime.bigint();
    const answer = await get('/slow/x');
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(answer.status, 200);
    // A lower bound only: the delay must have happened; how much longer it took is the machine's business.
    assert.ok(elapsedMs >= 150, `answered after ${elapsedMs} ms`);
  });

  it('answers 404 with a reason when no route matches', async () => {
    const lone = await startProxy(`
listeners: [{name: l, role: inbound, address: 127.0.0.1, port: 0}]
routes: [{match: {path: {exact: /only}}, cluster: v1}]
clusters:
${clusterYaml('v1', [v1.port])}`);
    const answer = await request(lone.port(), { path: '/other' });
    assert.equal(answer.status, 404);
    assert.equal(answer.headers[REASON_HEADER], 'no-route');
    assert.match(answer.body, /^no route for GET 127\.0\.0\.1:\d+\/other\n$/);
    await lone.close();
  });
});
