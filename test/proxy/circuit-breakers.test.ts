/**
 * The request path's side of circuit breaking: it takes a `requests` slot per request, a
 * `connections` slot per upstream connection, a `pendingRequests` slot while waiting for
 * one and a `retries` slot per retry in flight, and answers 503 naming the breaker that
 * tripped. The limits are set on the cluster configuration object directly (how they are
 * written in YAML is the cluster parser's business, proxy/cluster/).
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { formatProxyConfigError, OVERFLOW_HEADER, parseProxyConfig, REASON_HEADER } from '../../proxy';
import type { CircuitBreakerConfig } from '../../proxy/cluster';
import { DEFAULT_ENVIRONMENT } from '../../proxy/environment';
import { HttpListener } from '../../proxy/http-listener';
import { ProxyGeneration, type ProxyServices } from '../../proxy/proxy-generation';
import { NO_HOOK } from '../../proxy/traffic-hook';
import { UpstreamCluster } from '../../proxy/upstream-cluster';
import { clusterYaml, request, waitFor } from './support/proxy-harness';
import { startHttpUpstream, type HttpUpstream } from './support/upstreams';

interface Running {
  readonly port: number;
  readonly cluster: UpstreamCluster;
  close(): Promise<void>;
}

/** One listener routing everything to cluster `backend` on `ports`, with these breaker limits. */
async function startWithBreakers(
  ports: readonly number[],
  limits: Partial<CircuitBreakerConfig>,
  routeExtra = '',
): Promise<Running> {
  const outcome = parseProxyConfig(
    `listeners: [{name: out, role: outbound, address: 127.0.0.1, port: 0}]
routes:
  - cluster: backend
${routeExtra}
clusters:
${clusterYaml('backend', ports)}`,
    'breakers.yaml',
  );
  if (!outcome.ok) throw new Error(outcome.errors.map(formatProxyConfigError).join('\n'));
  const config = outcome.config;
  const clusterConfig = config.clusters[0]!;
  const cluster = new UpstreamCluster(
    { ...clusterConfig, circuitBreakers: { ...clusterConfig.circuitBreakers, ...limits } },
    DEFAULT_ENVIRONMENT,
  );
  const generation = new ProxyGeneration(1, config, new Map([['backend', cluster]]), undefined);
  const services: ProxyServices = {
    environment: DEFAULT_ENVIRONMENT,
    hook: NO_HOOK,
    logger: { error: () => undefined, info: () => undefined },
    counters: { httpRequests: 0, tcpConnections: 0, retries: 0, reasons: {}, refusedRequests: 0 },
  };
  const listenerConfig = config.listeners[0]!;
  if (listenerConfig.protocol !== 'http') throw new Error('http listener expected');
  const listener = new HttpListener(
    listenerConfig,
    { generation, listener: listenerConfig, routes: generation.routeTableFor(listenerConfig), services },
    undefined,
  );
  const bound = await listener.listen();
  return {
    port: bound.port,
    cluster,
    async close() {
      listener.destroy();
      await cluster.close();
    },
  };
}

describe('proxy circuit breakers', function () {
  this.timeout(20_000);
  let upstream: HttpUpstream;
  let other: HttpUpstream;
  let held: Array<() => void>;
  let running: Running | undefined;

  beforeEach(async () => {
    held = [];
    upstream = await startHttpUpstream('held');
    other = await startHttpUpstream('other');
    // Requests to /hold wait until the test lets them go.
    const holding = (name: string) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url === '/hold') held.push(() => res.end(`${name} released`));
      else res.end(`${name} at once`);
    };
    upstream.handle(holding('held'));
    other.handle(holding('other'));
  });

  afterEach(async () => {
    for (const release of held) release();
    await running?.close();
    running = undefined;
    await upstream.close();
    await other.close();
  });

  it('maxRequests: a request beyond the limit gets 503 naming the breaker', async () => {
    running = await startWithBreakers([upstream.port], { maxRequests: 1 });
    const first = request(running.port, { path: '/hold' });
    await waitFor('the first request to reach the upstream', () => held.length === 1);
    const second = await request(running.port, { path: '/now' });
    assert.equal(second.status, 503);
    assert.equal(second.headers[OVERFLOW_HEADER], 'maxRequests');
    assert.equal(second.headers[REASON_HEADER], 'overflow');
    assert.equal(running.cluster.cluster.stats().breakerTrips.requests, 1);
    held.shift()!();
    assert.equal((await first).body, 'held released');
    assert.equal((await request(running.port, { path: '/now' })).status, 200, 'the slot came back');
  });

  it('maxConnections and maxPendingRequests: one waits for the busy connection, the next is refused', async () => {
    running = await startWithBreakers([upstream.port], { maxConnections: 1, maxPendingRequests: 1 });
    const first = request(running.port, { path: '/hold' });
    await waitFor('the first request to hold the connection', () => held.length === 1);
    const second = request(running.port, { path: '/now' });
    await waitFor(
      'the second request to wait',
      () => running!.cluster.cluster.stats().breakerTrips.connections >= 1,
    );
    const third = await request(running.port, { path: '/now' });
    assert.equal(third.status, 503);
    assert.equal(third.headers[OVERFLOW_HEADER], 'maxPendingRequests');
    held.shift()!();
    assert.equal((await first).status, 200);
    const waited = await second;
    assert.equal(waited.status, 200);
    assert.equal(waited.body, 'held at once');
    assert.equal(upstream.connections, 1, 'the waiting request got the one connection when it came free');
  });

  it('maxConnections: an endpoint with no connection of its own cannot wait for one', async () => {
    running = await startWithBreakers([upstream.port, other.port], { maxConnections: 1 });
    const first = request(running.port, { path: '/hold' });
    await waitFor('the first request to hold the only connection', () => held.length === 1);
    const second = await request(running.port, { path: '/now' });
    assert.equal(second.status, 503);
    assert.equal(second.headers[OVERFLOW_HEADER], 'maxConnections');
    held.shift()!();
    assert.equal((await first).status, 200);
  });

  it('maxRetries: a retry beyond the limit is not made, and the answer says why', async () => {
    // Every request fails once (503); its retry is held.
    const seen = new Set<string>();
    upstream.handle((req, res) => {
      const id = String(req.headers['x-request-id']);
      if (!seen.has(id)) {
        seen.add(id);
        res.writeHead(503);
        res.end('first attempt fails');
        return;
      }
      held.push(() => res.end('retry served'));
    });
    running = await startWithBreakers(
      [upstream.port],
      { maxRetries: 1 },
      '    retries: {attempts: 1, retryOn: [gateway-error], backoff: {baseInterval: 1ms}}',
    );
    const first = request(running.port, { path: '/a' });
    await waitFor('the first retry to be in flight', () => held.length === 1);
    const second = await request(running.port, { path: '/b' });
    assert.equal(second.status, 503);
    assert.equal(second.headers[OVERFLOW_HEADER], 'maxRetries');
    assert.equal(second.body, 'first attempt fails');
    held.shift()!();
    assert.equal((await first).body, 'retry served');
  });
});
