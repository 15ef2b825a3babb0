/**
 * Retries and timeouts through a real proxy: which failures are retried and how often,
 * back-off between attempts, idempotency, the replay buffer, the retry budget, connect
 * failures, resets, per-try and route timeouts.
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { OVERFLOW_HEADER, REASON_HEADER } from '../../proxy';
import {
  clusterYaml,
  closeAllHarnesses,
  request,
  startProxy,
  type ProxyHarness,
} from './support/proxy-harness';
import { startHttpUpstream, type HttpUpstream, type UpstreamHandler } from './support/upstreams';

/** A port nothing listens on: bound, then closed. */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Answers `failures` requests with `status`, then 200 with the body length. */
function failThenSucceed(failures: number, status: number): UpstreamHandler {
  let seen = 0;
  return (_req, res, body) => {
    seen++;
    if (seen <= failures) {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(`failure ${seen}\n`);
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`ok after ${seen} with ${body.length} bytes`);
    }
  };
}

describe('proxy retries and timeouts', function () {
  this.timeout(20_000);
  let upstream: HttpUpstream;
  let arrivals: bigint[];

  beforeEach(async () => {
    upstream = await startHttpUpstream('retried');
    arrivals = [];
  });

  afterEach(async () => {
    await closeAllHarnesses();
    await upstream.close();
  });

  /** A proxy with one route to `upstream` (and the `dead` port first, when given), with `routeExtra` YAML. */
  async function proxyWith(
    routeExtra: string,
    options: { dead?: number; random?: () => number } = {},
  ): Promise<ProxyHarness> {
    const ports = options.dead === undefined ? [upstream.port] : [options.dead, upstream.port];
    return startProxy(
      `
listeners: [{name: out, role: outbound, address: 127.0.0.1, port: 0}]
routes:
  - cluster: backend
${routeExtra}
clusters:
${clusterYaml('backend', ports)}`,
      options.random === undefined ? {} : { environment: { random: options.random } },
    );
  }

  function recordArrivals(handler: UpstreamHandler): UpstreamHandler {
    return (req, res, body) => {
      arrivals.push(process.hrtime.bigint());
      handler(req, res, body);
    };
  }

  it('retries gateway errors until one succeeds, backing off exponentially between attempts', async () => {
    upstream.handle(recordArrivals(failThenSucceed(3, 503)));
    // The random source at its top: each back-off is the whole window, 40, 80, then 160 ms.
    const harness = await proxyWith(
      '    retries: {attempts: 3, retryOn: [gateway-error], backoff: {baseInterval: 40ms, maxInterval: 1s}}',
      { random: () => 0.999999 },
    );
    const answer = await request(harness.port(), { path: '/x' });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'ok after 4 with 0 bytes');
    assert.equal(upstream.requests.length, 4);
    const gapsMs = arrivals.slice(1).map((t, i) => Number(t - arrivals[i]!) / 1e6);
    // Lower bounds only: each retry waited at least its back-off. A back-off just under the
    // window (40 × 0.999999 ms) runs on a whole-millisecond timer, whose clock libuv reads once
    // per loop turn: it can end up to 2 ms before the window as measured here.
    [40, 80, 160].forEach((window, i) =>
      assert.ok(
        gapsMs[i]! >= window - 2,
        `gap ${i + 1} was ${gapsMs[i]} ms, expected at least ${window - 2}`,
      ),
    );
    assert.equal(harness.proxy.stats().counters.retries, 3);
  });

  it('stops after the configured attempts and passes the last answer on', async () => {
    upstream.handle(failThenSucceed(100, 502));
    const harness = await proxyWith(
      '    retries: {attempts: 2, retryOn: [5xx], backoff: {baseInterval: 1ms}}',
    );
    const answer = await request(harness.port());
    assert.equal(answer.status, 502);
    assert.equal(answer.body, 'failure 3\n');
    assert.equal(upstream.requests.length, 3);
  });

  it('does not retry what retryOn does not name', async () => {
    upstream.handle(failThenSucceed(100, 500));
    const harness = await proxyWith(
      '    retries: {attempts: 2, retryOn: [gateway-error], backoff: {baseInterval: 1ms}}',
    );
    assert.equal((await request(harness.port())).status, 500);
    assert.equal(upstream.requests.length, 1);
  });

  it('retries listed status codes', async () => {
    upstream.handle(failThenSucceed(1, 409));
    const harness = await proxyWith(
      '    retries: {attempts: 1, retryOn: [connect-failure], retriableStatusCodes: [409], backoff: {baseInterval: 1ms}}',
    );
    assert.equal((await request(harness.port())).status, 200);
    assert.equal(upstream.requests.length, 2);
  });

  it('does not retry a POST unless the route allows it, and replays its body when it does', async () => {
    upstream.handle(failThenSucceed(1, 503));
    const strict = await proxyWith('    retries: {attempts: 2, backoff: {baseInterval: 1ms}}');
    const body = 'b'.repeat(10_000);
    assert.equal((await request(strict.port(), { method: 'POST', body })).status, 503);
    assert.equal(upstream.requests.length, 1);
    await strict.close();

    upstream.handle(failThenSucceed(1, 503));
    const lenient = await proxyWith(
      '    retries: {attempts: 2, retryNonIdempotent: true, backoff: {baseInterval: 1ms}}',
    );
    const answer = await request(lenient.port(), {
      method: 'POST',
      body,
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'ok after 2 with 10000 bytes');
    assert.deepEqual(
      upstream.requests.slice(1).map((r) => r.body.toString()),
      [body, body],
      'both attempts got the whole body',
    );
  });

  it('does not retry a body longer than the replay buffer', async () => {
    upstream.handle(failThenSucceed(1, 503));
    const harness = await proxyWith(
      '    retries: {attempts: 2, retryNonIdempotent: true, bufferLimitBytes: 1024, backoff: {baseInterval: 1ms}}',
    );
    const answer = await request(harness.port(), { method: 'PUT', body: 'x'.repeat(4096) });
    assert.equal(answer.status, 503);
    assert.equal(upstream.requests.length, 1);
    assert.equal(upstream.requests[0]!.body.length, 4096, 'the one attempt still got the whole body');
  });

  it('keeps retries within the budget and says so when it stops one', async () => {
    upstream.handle(failThenSucceed(100, 503));
    const harness = await proxyWith(
      '    retries: {attempts: 3, budgetPercent: 0, minRetryConcurrency: 0, backoff: {baseInterval: 1ms}}',
    );
    const answer = await request(harness.port());
    assert.equal(answer.status, 503);
    assert.equal(answer.headers[OVERFLOW_HEADER], 'retryBudget');
    assert.equal(upstream.requests.length, 1);
  });

  it('answers 502 when the endpoint refuses the connection', async () => {
    const dead = await deadPort();
    const harness = await startProxy(`
listeners: [{name: out, role: outbound, address: 127.0.0.1, port: 0}]
routes: [{cluster: nowhere}]
clusters:
${clusterYaml('nowhere', [dead])}`);
    const answer = await request(harness.port());
    assert.equal(answer.status, 502);
    assert.equal(answer.headers[REASON_HEADER], 'upstream-connect-failure');
    assert.match(answer.body, /^upstream connect error \(127\.0\.0\.1:\d+\): connect ECONNREFUSED/);
  });

  it('retries a connect failure on another endpoint', async () => {
    const dead = await deadPort();
    const harness = await proxyWith(
      '    retries: {attempts: 1, retryOn: [connect-failure], backoff: {baseInterval: 1ms}}',
      { dead },
    );
    // Round robin: some requests try the dead endpoint first, and must still succeed.
    for (let i = 0; i < 6; i++) assert.equal((await request(harness.port())).status, 200);
    assert.equal(upstream.requests.length, 6);
  });

  it('answers 502 on a reset, and retries one when asked', async () => {
    let seen = 0;
    upstream.handle((req, res) => {
      seen++;
      if (seen === 1) {
        req.socket.destroy();
        return;
      }
      res.end('second time lucky');
    });
    const plain = await proxyWith('');
    const failed = await request(plain.port());
    assert.equal(failed.status, 502);
    assert.equal(failed.headers[REASON_HEADER], 'upstream-reset');
    await plain.close();

    seen = 0;
    const retrying = await proxyWith(
      '    retries: {attempts: 1, retryOn: [reset], backoff: {baseInterval: 1ms}}',
    );
    const answer = await request(retrying.port());
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'second time lucky');
  });

  it('gives up an attempt after the per-try timeout and retries', async () => {
    let seen = 0;
    const stalled: Array<() => void> = [];
    upstream.handle((_req, res) => {
      seen++;
      if (seen === 1) stalled.push(() => res.end('too late'));
      else res.end('in time');
    });
    const harness = await proxyWith(
      '    retries: {attempts: 1, perTryTimeout: 100ms, retryOn: [reset], backoff: {baseInterval: 1ms}}',
    );
    const answer = await request(harness.port());
    assert.equal(answer.body, 'in time');
    assert.equal(seen, 2);
    for (const release of stalled) release();
  });

  it('answers 504 when the route timeout passes, across attempts', async () => {
    const stalled: Array<() => void> = [];
    upstream.handle((_req, res) => void stalled.push(() => res.end('never mind')));
    const harness = await proxyWith('    timeout: 200ms');
    const started = process.hrtime.bigint();
    const answer = await request(harness.port());
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(answer.status, 504);
    assert.equal(answer.headers[REASON_HEADER], 'upstream-timeout');
    assert.ok(elapsedMs >= 200, `timed out after ${elapsedMs} ms`);
    for (const release of stalled) release();
  });

  it('answers 504 with the per-try reason when the last attempt times out', async () => {
    const stalled: Array<() => void> = [];
    upstream.handle((_req, res) => void stalled.push(() => res.end('never mind')));
    const harness = await proxyWith(
      '    retries: {attempts: 1, perTryTimeout: 50ms, retryOn: [reset], backoff: {baseInterval: 1ms}}',
    );
    const answer = await request(harness.port());
    assert.equal(answer.status, 504);
    assert.equal(answer.headers[REASON_HEADER], 'upstream-per-try-timeout');
    assert.equal(stalled.length, 2, 'both attempts reached the upstream');
    for (const release of stalled) release();
  });

  it('reuses upstream connections (keep-alive pooling)', async () => {
    const harness = await proxyWith('');
    for (let i = 0; i < 10; i++) assert.equal((await request(harness.port())).status, 200);
    assert.equal(upstream.connections, 1);
    assert.equal(new Set(upstream.requests.map((r) => r.remotePort)).size, 1);
  });
});
