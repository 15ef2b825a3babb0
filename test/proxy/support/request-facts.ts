/**
 * HttpRequestFacts for tests that hand a request to a policy client or an attribute builder
 * without running one through a proxy: a plain GET on an inbound listener, with `changes`
 * over it.
 */
import type { NodeIdentity } from '../../../proxy/config-model';
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
