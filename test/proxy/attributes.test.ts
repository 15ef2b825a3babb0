/**
 * What the proxy tells policy: the Istio attribute bags handed to the traffic hook for HTTP
 * requests and TCP connections, a check that denies or changes headers, and the JSON access
 * log. The bags must also survive the Mixer wire encoder, as the policy client will send them.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import {
  AttributeBag,
  decodeCheckRequest,
  decodeReportRequest,
  Duration,
  encodeCheckRequest,
  encodeReportRequest,
  IpAddress,
  STANDARD_MANIFEST,
  Timestamp,
  type Bag,
  type StringMap,
} from '../../attributes';
import type { ProxyConfig, RequestVerdict, TrafficHook } from '../../proxy';
import { bagOf, completedRequestAttributes, type CheckAttributes } from '../../proxy/request-attributes';
import type { HttpRequestFacts } from '../../proxy/traffic-facts';
import {
  clusterYaml,
  closeAllHarnesses,
  request,
  startProxy,
  waitFor,
  type ProxyHarness,
} from './support/proxy-harness';
import {
  startHttpUpstream,
  startTcpEchoServer,
  type HttpUpstream,
  type TcpEchoServer,
} from './support/upstreams';

/** A hook that records every bag, and checks with `decide` when given. */
class RecordingHook implements TrafficHook {
  readonly checked: AttributeBag[] = [];
  readonly completed: AttributeBag[] = [];
  readonly opened: AttributeBag[] = [];
  readonly closed: AttributeBag[] = [];
  readonly configurations: Array<{ generation: number; policy: unknown }> = [];
  decide: ((bag: CheckAttributes) => RequestVerdict | Promise<RequestVerdict>) | undefined;
  checkRequest = (bag: CheckAttributes): RequestVerdict | Promise<RequestVerdict> => {
    this.checked.push(bagOf(bag));
    return this.decide?.(bag) ?? { allowed: true };
  };
  requestCompleted(facts: HttpRequestFacts, checked: AttributeBag | undefined): void {
    this.completed.push(completedRequestAttributes(facts, checked));
  }
  configurationApplied(config: ProxyConfig, generation: number): void {
    this.configurations.push({ generation, policy: config.policy });
  }
  connectionOpened(bag: AttributeBag): void {
    this.opened.push(bag);
  }
  connectionClosed(bag: AttributeBag): void {
    this.closed.push(bag);
  }
}

function map(bag: Bag, name: string): StringMap {
  const value = bag.get(name);
  assert.ok(
    value instanceof Map || (typeof value === 'object' && value !== null && 'get' in value),
    `${name} is a string map`,
  );
  return value as StringMap;
}

function ip(bag: AttributeBag, name: string): string {
  const value = bag.get(name);
  assert.ok(value instanceof IpAddress, `${name} is an IP address`);
  return [...value.bytes].join('.');
}

describe('proxy attributes, checks and access log', function () {
  this.timeout(20_000);
  let upstream: HttpUpstream;
  let echo: TcpEchoServer;
  let hook: RecordingHook;
  let harness: ProxyHarness;

  before(async () => {
    upstream = await startHttpUpstream('reviews');
    echo = await startTcpEchoServer();
  });

  beforeEach(async () => {
    hook = new RecordingHook();
    harness = await startProxy(
      `
node: {name: productpage-v1, namespace: bookinfo, uid: kubernetes://productpage-v1.bookinfo, serviceAccount: bookinfo-productpage, labels: {app: productpage, version: v1}}
listeners:
  - {name: outbound, role: outbound, address: 127.0.0.1, port: 0}
  - {name: inbound, role: inbound, address: 127.0.0.1, port: 0}
  - {name: tcp, role: outbound, address: 127.0.0.1, port: 0, protocol: tcp, cluster: echo}
routes:
  - {name: reviews, match: {path: {prefix: /reviews}}, cluster: reviews}
  - {name: local, directResponse: {status: 200, body: local}}
clusters:
${clusterYaml('reviews', [upstream.port])}${clusterYaml('echo', [echo.port])}
accessLog: {path: access.json}
policy: {server: 127.0.0.1:9091, failPolicy: FAIL_OPEN}`,
      { hook },
    );
  });

  afterEach(async () => {
    await closeAllHarnesses();
  });

  after(async () => {
    await upstream.close();
    await echo.close();
  });

  it('builds request, response, source, destination and context attributes for an outbound request', async () => {
    const port = harness.port('outbound');
    const answer = await request(port, {
      path: '/reviews/1?page=2&sort=asc',
      headers: { host: 'reviews:9080', 'user-agent': 'tester/1', referer: 'http://productpage/' },
    });
    assert.equal(answer.status, 200);
    await waitFor('the completed request', () => hook.completed.length === 1);
    const bag = hook.completed[0]!;
    const seen = upstream.requests.at(-1)!;
    assert.equal(bag.get('request.id'), seen.headers['x-request-id']);
    assert.equal(bag.get('request.method'), 'GET');
    assert.equal(bag.get('request.host'), 'reviews:9080');
    assert.equal(bag.get('request.path'), '/reviews/1?page=2&sort=asc');
    assert.equal(bag.get('request.url_path'), '/reviews/1');
    assert.equal(map(bag, 'request.query_params').get('sort'), 'asc');
    assert.equal(map(bag, 'request.headers').get(':authority'), 'reviews:9080');
    assert.equal(map(bag, 'request.headers').get('user-agent'), 'tester/1');
    assert.equal(map(bag, 'request.headers').get('host'), undefined, 'host is :authority');
    assert.equal(bag.get('request.useragent'), 'tester/1');
    assert.equal(bag.get('request.referer'), 'http://productpage/');
    assert.equal(bag.get('request.scheme'), 'http');
    assert.equal(bag.get('request.size'), 0n);
    assert.ok(bag.get('request.time') instanceof Timestamp);
    assert.equal(bag.get('response.code'), 200n);
    assert.equal(bag.get('response.size'), BigInt(Buffer.byteLength(answer.body)));
    assert.equal(map(bag, 'response.headers').get('x-upstream'), 'reviews');
    const duration = bag.get('response.duration');
    assert.ok(duration instanceof Duration && duration.toNanos() > 0n);
    assert.equal(bag.get('source.name'), 'productpage-v1');
    assert.equal(bag.get('source.namespace'), 'bookinfo');
    assert.equal(bag.get('source.uid'), 'kubernetes://productpage-v1.bookinfo');
    assert.equal(bag.get('source.serviceAccount'), 'bookinfo-productpage');
    assert.equal(map(bag, 'source.labels').get('version'), 'v1');
    assert.equal(ip(bag, 'source.ip'), '127.0.0.1');
    assert.equal(ip(bag, 'destination.ip'), '127.0.0.1');
    assert.equal(bag.get('destination.port'), BigInt(upstream.port));
    assert.equal(bag.get('destination.service.name'), 'reviews');
    assert.equal(bag.get('destination.service.host'), 'reviews');
    assert.equal(
      bag.get('destination.name'),
      undefined,
      'the proxy knows nothing of the destination workload',
    );
    assert.equal(bag.get('context.protocol'), 'http');
    assert.equal(bag.get('context.reporter.kind'), 'outbound');
    assert.equal(bag.get('context.reporter.uid'), 'kubernetes://productpage-v1.bookinfo');
    assert.equal(bag.get('api.operation'), 'reviews');
    for (const name of bag.names())
      assert.ok(STANDARD_MANIFEST.find(name) !== undefined, `${name} is in the Istio vocabulary`);
  });

  it('describes the workload as the destination on an inbound listener', async () => {
    const port = harness.port('inbound');
    await request(port, { path: '/reviews/2', method: 'POST', body: 'twelve bytes' });
    await waitFor('the completed request', () => hook.completed.length === 1);
    const bag = hook.completed[0]!;
    assert.equal(bag.get('context.reporter.kind'), 'inbound');
    assert.equal(bag.get('destination.name'), 'productpage-v1');
    assert.equal(map(bag, 'destination.labels').get('app'), 'productpage');
    assert.equal(bag.get('destination.port'), BigInt(port));
    assert.equal(bag.get('source.name'), undefined);
    assert.equal(bag.get('request.size'), 12n);
  });

  it('encodes for Check and Report (Mixer wire format) and decodes back to the same attributes', () => {
    return (async () => {
      await request(harness.port('outbound'), { path: '/reviews/3' });
      await waitFor(
        'the checked and completed request',
        () => hook.completed.length === 1 && hook.checked.length === 1,
      );
      const check = decodeCheckRequest(encodeCheckRequest({ attributes: hook.checked[0]! }));
      assert.equal(check.attributes.get('request.path'), '/reviews/3');
      assert.equal(check.attributes.get('destination.service.name'), 'reviews');
      const [reported] = decodeReportRequest(encodeReportRequest([hook.completed[0]!]));
      assert.equal(reported!.get('response.code'), 200n);
    })();
  });

  it('a check that denies answers with its status, message and headers; the upstream never sees it', async () => {
    hook.decide = () => ({
      allowed: false,
      status: 429,
      message: 'rate limited by memquota',
      headers: { 'retry-after': '1' },
    });
    const before = upstream.requests.length;
    const answer = await request(harness.port('outbound'), { path: '/reviews/4' });
    assert.equal(answer.status, 429);
    assert.equal(answer.body, 'rate limited by memquota\n');
    assert.equal(answer.headers['retry-after'], '1');
    assert.equal(answer.headers['x-switchboard-reason'], 'denied');
    assert.equal(upstream.requests.length, before);
    await waitFor('the completed request', () => hook.completed.length === 1);
    assert.equal(hook.completed[0]!.get('response.code'), 429n);
    assert.equal(hook.completed[0]!.get('context.proxy_error_code'), 'UAEX');
  });

  it('a check that allows, after a while, may change request and response headers', async () => {
    hook.decide = async (bag) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return {
        allowed: true,
        requestHeaders: {
          set: [['x-user', String(map(bag, 'request.headers').get('x-token'))]],
          add: [],
          remove: ['x-token'],
        },
        responseHeaders: { set: [['x-policy', 'checked']], add: [], remove: [] },
      };
    };
    const answer = await request(harness.port('outbound'), {
      path: '/reviews/5',
      headers: { 'x-token': 'alice' },
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['x-policy'], 'checked');
    const seen = upstream.requests.at(-1)!;
    assert.equal(seen.headers['x-user'], 'alice');
    assert.equal(seen.headers['x-token'], undefined);
  });

  it('a check that fails answers 500 and says so in the log', async () => {
    hook.decide = () => Promise.reject(new Error('policy server unreachable'));
    const answer = await request(harness.port('outbound'), { path: '/reviews/6' });
    assert.equal(answer.status, 500);
    assert.equal(answer.headers['x-switchboard-reason'], 'internal-error');
    assert.ok(harness.logged.some((line) => line.includes('policy server unreachable')));
  });

  it('tells the hook each configuration it applies, with the policy section as written', async () => {
    assert.deepEqual(hook.configurations, [
      { generation: 1, policy: { server: '127.0.0.1:9091', failPolicy: 'FAIL_OPEN' } },
    ]);
    harness.rewrite(
      readFileSync(harness.file, 'utf8').replace('failPolicy: FAIL_OPEN', 'failPolicy: FAIL_CLOSE'),
    );
    assert.deepEqual(await harness.proxy.reload(), { applied: true, generation: 2 });
    assert.deepEqual(hook.configurations[1], {
      generation: 2,
      policy: { server: '127.0.0.1:9091', failPolicy: 'FAIL_CLOSE' },
    });
  });

  it('reports TCP connections when they open and close, with their byte counts', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: harness.port('tcp') });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('0123456789');
    await new Promise((resolve) => socket.once('data', resolve));
    socket.end();
    await new Promise((resolve) => socket.once('close', resolve));
    await waitFor('the closed connection', () => hook.closed.length === 1);
    assert.equal(hook.opened.length, 1);
    const opened = hook.opened[0]!;
    const closed = hook.closed[0]!;
    assert.equal(opened.get('connection.event'), 'open');
    assert.equal(closed.get('connection.event'), 'close');
    assert.equal(closed.get('connection.id'), opened.get('connection.id'));
    assert.equal(closed.get('connection.received.bytes_total'), 10n);
    assert.equal(closed.get('connection.sent.bytes_total'), 10n);
    assert.equal(closed.get('context.protocol'), 'tcp');
    assert.equal(closed.get('destination.service.name'), 'echo');
    assert.equal(closed.get('destination.port'), BigInt(echo.port));
    assert.equal(closed.get('source.name'), 'productpage-v1');
  });

  it('writes one JSON access-log line per request and per TCP connection', async () => {
    await request(harness.port('outbound'), { path: '/reviews/7', headers: { 'x-request-id': 'log-me' } });
    await request(harness.port('outbound'), { path: '/elsewhere' });
    const socket = net.connect({ host: '127.0.0.1', port: harness.port('tcp') });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.resume(); // read the echo, so that its end (and then the close) comes
    socket.end('bytes');
    await new Promise((resolve) => socket.once('close', resolve));
    const file = path.join(harness.dir, 'access.json');
    // The log opens its file asynchronously: until then there are no lines, not an error.
    const lines = (): Array<Record<string, unknown>> =>
      (existsSync(file) ? readFileSync(file, 'utf8') : '')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    await waitFor('three log lines', () => lines().length === 3);
    const [first, second, third] = lines();
    assert.equal(first!['requestId'], 'log-me');
    assert.equal(first!['status'], 200);
    assert.equal(first!['cluster'], 'reviews');
    assert.equal(first!['route'], 'reviews');
    assert.equal(first!['endpoint'], `127.0.0.1:${upstream.port}`);
    assert.equal(second!['route'], 'local');
    assert.equal(second!['responseBytes'], 5);
    assert.equal(third!['protocol'], 'tcp');
    assert.equal(third!['receivedBytes'], 5);
  });
});
