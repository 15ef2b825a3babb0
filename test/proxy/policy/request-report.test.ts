import { strict as assert } from 'node:assert';
import {
  AttributeBag,
  decodeReportRequest,
  ReportRequestEncoder,
  valueKey,
  type Bag,
} from '../../../attributes';
import { buildRequestAttributes, completedRequestAttributes } from '../../../proxy/attribute-builder';
import type { HeaderOperations, NodeIdentity } from '../../../proxy/config-model';
import { createSeededRandom } from '../../../proxy/environment';
import type { OutgoingHeaders } from '../../../proxy/header-operations';
import { RequestReportWriter } from '../../../proxy/policy/request-report';
import type { HttpRequestFacts } from '../../../proxy/traffic-facts';
import { requestFacts } from '../support/request-facts';

const NODES: NodeIdentity[] = [
  { name: 'ratings-v1', namespace: 'default', labels: { app: 'ratings', version: 'v1' } },
  { name: 'frontend', namespace: 'shop', uid: 'kubernetes://frontend-1.shop', labels: {} },
];
const OPS: HeaderOperations = { set: [['x-set', 'yes']], add: [], remove: [] };
/** Request heads: the same text always stands for the same method, target and headers. */
const HEADS = [
  {
    text: 'GET /a HTTP/1.1\r\nHost: h\r\nX-User: alice',
    url: '/a',
    headers: { host: 'h', 'x-user': 'alice' },
  },
  { text: 'GET /a?q=1&q=2 HTTP/1.1\r\nHost: h', url: '/a?q=1&q=2', headers: { host: 'h' } },
  {
    text: 'GET /b HTTP/1.1\r\nHost: h\r\nUser-Agent: wrk\r\nReferer: /x',
    url: '/b',
    headers: { host: 'h', 'user-agent': 'wrk', referer: '/x' },
  },
];
/** Response heads forwarded as text, with the headers each stands for. */
const RESPONSES = [
  { text: 'HTTP/1.1 200 OK\r\nContent-Length: 2', headers: { 'content-length': '2' } },
  { text: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: x', headers: { 'content-length': '2', date: 'x' } },
];

/** A request drawn at random over the shapes the writer tells apart. */
function randomRequest(random: () => number): { facts: HttpRequestFacts; checked: AttributeBag | undefined } {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const head = pick(HEADS);
  const byText = random() < 0.5;
  const url = byText ? head.url : pick(['/c', '/c?x=1', '/d?', '/e']);
  const question = url.indexOf('?');
  const changes: { -readonly [K in keyof HttpRequestFacts]?: HttpRequestFacts[K] } = {
    node: pick(NODES),
    role: pick(['inbound', 'outbound'] as const),
    url,
    urlPath: question < 0 ? url : url.slice(0, question),
    query: question < 0 ? undefined : url.slice(question + 1),
    requestHeaders: byText
      ? head.headers
      : pick([{ host: 'h' }, { host: 'h', 'user-agent': 'curl' }, { 'x-a': ['1', '2'] }]),
    receivedRequestHead: byText ? head.text : undefined,
    authority: byText ? 'h' : pick(['h', 'h:8080', '[::1]:80']),
    method: byText ? 'GET' : pick(['GET', 'POST']),
    requestId: pick(['id-1', 'id-2', `id-${Math.floor(random() * 1e6)}`]),
    startTimeMs: 1_800_000_000_000 + Math.floor(random() * 3) * 1000.25,
    durationMs: pick([0, 1.5, 0.000_4, 2500.123_456]),
    remoteAddress: pick(['127.0.0.1', '::ffff:10.0.0.7', '10.0.0.8']),
    status: pick([200, 200, 503, 0]),
    requestBytes: pick([0, 10, 2 ** 40]),
    responseBytes: pick([0, 2]),
    routeName: pick(['default', undefined]),
    clusterName: pick(['ratings', undefined]),
    endpointHost: pick(['127.0.0.1', 'not-an-address', undefined]),
    endpointPort: pick([9080, undefined]),
    reason: pick([undefined, 'upstream-reset', 'denied'] as const),
    grpcStatus: pick([undefined, '0', '14']),
    grpcMessage: pick([undefined, 'unavailable']),
    secure: random() < 0.2,
    protocol: pick(['http', 'http2', 'grpc'] as const),
  };
  const shape = random();
  if (shape < 0.4) {
    const response = pick(RESPONSES);
    const ops = pick([undefined, OPS]);
    const close = random() < 0.3;
    const headers: Record<string, string | undefined> = { ...response.headers };
    if (ops !== undefined) headers['x-set'] = 'yes';
    if (close) headers['connection'] = 'close';
    Object.assign(changes, {
      forwardedResponseHead: response.text,
      forwardedResponseOps: ops,
      forwardedResponseClose: close,
      responseHeaders: headers,
    });
  } else {
    changes.responseHeaders = pick<OutgoingHeaders | undefined>([
      undefined,
      { 'content-length': '2' },
      { 'set-cookie': ['a=1', 'b=2'] },
    ]);
  }
  const facts = requestFacts(changes);
  let checked: AttributeBag | undefined;
  if (random() < 0.7) {
    // As the proxy makes it: the request's attributes, then what the check adds.
    checked = buildRequestAttributes(facts);
    checked.set('check.cache_hit', random() < 0.5);
    if (random() < 0.3) checked.set('quota.cache_hit', random() < 0.5);
    if (random() < 0.2) {
      checked.set('check.error_code', 14n);
      checked.set('check.error_message', 'unavailable');
    }
  }
  return { facts, checked };
}

/** Writes every request through the writer, a new batch whenever one refuses the next. */
function writeBatches(
  requests: readonly { facts: HttpRequestFacts; checked: AttributeBag | undefined }[],
  batchEntries = 1000,
): Uint8Array[] {
  const writer = new RequestReportWriter();
  const batches: Uint8Array[] = [];
  let encoder = new ReportRequestEncoder();
  for (const { facts, checked } of requests) {
    // As the Report sender does: a refused request starts the next batch, a full batch closes.
    writer.prepare(facts, checked);
    if (!encoder.add(writer)) {
      batches.push(encoder.finish());
      encoder = new ReportRequestEncoder();
      assert.ok(encoder.add(writer), 'a new batch takes any request');
    }
    writer.release();
    if (encoder.count >= batchEntries) {
      batches.push(encoder.finish());
      encoder = new ReportRequestEncoder();
    }
  }
  if (encoder.count > 0) batches.push(encoder.finish());
  return batches;
}

function described(bag: Bag): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [...bag.names()].sort()) out[name] = valueKey(bag.get(name)!);
  return out;
}

describe('proxy: Report sets written from the request facts', () => {
  it('decode to exactly the attributes the bag builder makes, over many random sequences', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const random = createSeededRandom(seed);
      const requests = Array.from({ length: 60 }, () => randomRequest(random));
      const decoded = writeBatches(requests, 1 + Math.floor(random() * 30)).flatMap((batch) =>
        decodeReportRequest(batch),
      );
      assert.equal(decoded.length, requests.length, `seed ${seed}: every request reported once`);
      requests.forEach(({ facts, checked }, i) => {
        const expected = completedRequestAttributes(facts, checked?.clone());
        assert.deepEqual(described(decoded[i]!), described(expected), `seed ${seed}, request ${i}`);
      });
    }
  });

  it('writes only what changed since the request before', () => {
    const first = requestFacts({ receivedRequestHead: 'GET / HTTP/1.1\r\nHost: h', requestId: 'a' });
    const second = requestFacts({ receivedRequestHead: 'GET / HTTP/1.1\r\nHost: h', requestId: 'b' });
    const one = writeBatches([{ facts: first, checked: undefined }])[0]!;
    const two = writeBatches([
      { facts: first, checked: undefined },
      { facts: second, checked: undefined },
    ])[0]!;
    // The second set holds request.id alone: a handful of bytes, not another whole set.
    assert.ok(two.length - one.length < 12, `second set took ${two.length - one.length} bytes`);
    assert.deepEqual(
      decodeReportRequest(two).map((bag) => bag.get('request.id')),
      ['a', 'b'],
    );
  });

  it('is refused after a request that had an attribute it lacks, and after another source', () => {
    const writer = new RequestReportWriter();
    const encoder = new ReportRequestEncoder();
    assert.ok(encoder.add(writer.prepare(requestFacts({ url: '/a?q=1' }), undefined)));
    assert.equal(encoder.add(writer.prepare(requestFacts({ url: '/a' }), undefined)), false);
    const other = new ReportRequestEncoder();
    assert.ok(other.add(new AttributeBag([['request.path', '/']])));
    assert.equal(other.add(writer.prepare(requestFacts(), undefined)), false);
    assert.equal(encoder.count, 1);
    assert.equal(other.count, 1);
  });
});
