/**
 * HttpRequestFacts for tests that hand a request to a policy client or an attribute builder
 * without running one through a proxy: a plain GET on an inbound listener, with `changes`
 * over it.
 */
import type { HeaderOperations, NodeIdentity } from '../../../proxy/config-model';
import type { OutgoingHeaders } from '../../../proxy/header-operations';
import type { HttpRequestFacts } from '../../../proxy/traffic-facts';

const NODE: NodeIdentity = Object.freeze({
  name: 'ratings-v1',
  namespace: 'default',
  labels: { app: 'ratings' },
});

export function requestFacts(changes: Partial<HttpRequestFacts> = {}): HttpRequestFacts {
  const url = changes.url ?? '/';
  const question = url.indexOf('?');
  return {
    listenerName: 'inbound',
    role: 'inbound',
    node: NODE,
    protocol: 'http',
    secure: false,
    remoteAddress: '127.0.0.1',
    remotePort: 40000,
    localAddress: '127.0.0.1',
    localPort: 8080,
    method: 'GET',
    authority: 'ratings.default.svc.cluster.local',
    url,
    urlPath: question < 0 ? url : url.slice(0, question),
    query: question < 0 ? undefined : url.slice(question + 1),
    requestHeaders: { host: 'ratings.default.svc.cluster.local', 'user-agent': 'test' },
    receivedRequestHead: undefined,
    requestId: 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6',
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    startTimeMs: 1_800_000_000_000,
    requestBytes: 0,
    status: 200,
    responseHeaders: { 'content-type': 'text/plain', 'content-length': '2' },
    forwardedResponseHead: undefined,
    forwardedResponseOps: undefined,
    forwardedResponseClose: false,
    responseBytes: 2,
    durationMs: 1.5,
    routeName: 'default',
    clusterName: 'ratings',
    endpointId: '127.0.0.1:9080',
    endpointHost: '127.0.0.1',
    endpointPort: 9080,
    attempts: 1,
    reason: undefined,
    grpcStatus: undefined,
    grpcMessage: undefined,
    ...changes,
  };
}

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

/**
 * A request drawn at random over the shapes attribute readers tell apart: roles, nodes, heads
 * given as text or not, queries, forwarded response heads with operations, outcomes.
 */
export function randomRequestFacts(random: () => number): HttpRequestFacts {
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
    remoteAddress: pick(['127.0.0.1', '::ffff:10.0.0.7', '10.0.0.8', 'not-an-address']),
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
  return requestFacts(changes);
}
