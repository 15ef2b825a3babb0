/**
 * Attribute bags of the Istio vocabulary (attributes/manifest.ts) from the proxy's traffic
 * facts: what a policy client sends in Check and Report.
 *
 * Which side the configured `node` is depends on the listener's role, as in Istio: on an
 * inbound listener the proxy reports for the destination (the workload it fronts; the peer
 * is the source), on an outbound one for the source (the upstream endpoint is the
 * destination, and the cluster names the destination service).
 */
import { AttributeBag, Duration, FlatStringMap, IpAddress, Timestamp } from '../attributes';
import type { IncomingHeaders } from './forwarding-headers';
import { plainAddress } from './forwarding-headers';
import type { OutgoingHeaders } from './header-operations';
import type { HttpRequestFacts, ListenerFacts, TcpConnectionFacts } from './traffic-facts';
import { RESPONSE_FLAGS } from './traffic-facts';

/** Request, source, destination and context attributes: what a Check needs. */
export function buildRequestAttributes(facts: HttpRequestFacts): AttributeBag {
  const bag = new AttributeBag();
  const pairs: string[] = [':authority', facts.authority, ':method', facts.method, ':path', facts.url];
  appendHeaderPairs(pairs, facts.requestHeaders, true);
  bag.set('request.headers', new FlatStringMap(pairs));
  bag.set('request.id', facts.requestId);
  bag.set('request.host', facts.authority);
  bag.set('request.method', facts.method);
  bag.set('request.path', facts.url);
  bag.set('request.url_path', facts.urlPath);
  if (facts.query !== undefined) {
    const query: string[] = [];
    for (const [name, value] of new URLSearchParams(facts.query)) query.push(name, value);
    bag.set('request.query_params', new FlatStringMap(query));
  }
  bag.set('request.scheme', facts.secure ? 'https' : 'http');
  bag.set('request.time', timestampOf(facts.startTimeMs));
  const userAgent = facts.requestHeaders['user-agent'];
  if (typeof userAgent === 'string') bag.set('request.useragent', userAgent);
  const referer = facts.requestHeaders['referer'];
  if (typeof referer === 'string') bag.set('request.referer', referer);
  bag.set('context.protocol', facts.protocol);
  if (facts.routeName !== undefined) bag.set('api.operation', facts.routeName);
  setPeers(bag, facts, facts.remoteAddress, facts.localAddress, facts.localPort);
  if (facts.role === 'outbound' && facts.clusterName !== undefined) {
    bag.set('destination.service.name', facts.clusterName);
    bag.set('destination.service.host', hostOf(facts.authority));
  } else if (facts.role === 'inbound') {
    bag.set('destination.service.host', hostOf(facts.authority));
  }
  return bag;
}

/** Adds what is known once the exchange ended: response, sizes, duration, the endpoint. */
export function addResponseAttributes(bag: AttributeBag, facts: HttpRequestFacts): AttributeBag {
  const endTimeMs = facts.startTimeMs + facts.durationMs;
  bag.set('request.size', BigInt(facts.requestBytes));
  bag.set('response.code', BigInt(facts.status));
  bag.set('response.size', BigInt(facts.responseBytes));
  bag.set('response.time', timestampOf(endTimeMs));
  bag.set('response.duration', Duration.fromNanos(BigInt(Math.round(facts.durationMs * 1e6))));
  if (facts.responseHeaders !== undefined) {
    const pairs: string[] = [];
    appendHeaderPairs(pairs, facts.responseHeaders, false);
    bag.set('response.headers', new FlatStringMap(pairs));
  }
  if (facts.grpcStatus !== undefined) bag.set('response.grpc_status', facts.grpcStatus);
  if (facts.grpcMessage !== undefined) bag.set('response.grpc_message', facts.grpcMessage);
  if (facts.reason !== undefined) bag.set('context.proxy_error_code', RESPONSE_FLAGS[facts.reason]);
  // Outbound: the endpoint that was tried is the destination.
  if (facts.role === 'outbound' && facts.endpointHost !== undefined) {
    setIp(bag, 'destination.ip', facts.endpointHost);
    bag.set('destination.port', BigInt(facts.endpointPort ?? 0));
  }
  if (facts.clusterName !== undefined && facts.role === 'outbound')
    bag.set('destination.service.name', facts.clusterName);
  bag.set('context.time', timestampOf(endTimeMs));
  return bag;
}

/** A TCP connection's attributes at `event` (open, continue — while open — or close). */
export function buildConnectionAttributes(
  facts: TcpConnectionFacts,
  event: 'open' | 'continue' | 'close',
): AttributeBag {
  const bag = new AttributeBag();
  bag.set('connection.id', facts.connectionId);
  bag.set('connection.event', event);
  bag.set('connection.received.bytes', BigInt(facts.receivedBytes));
  bag.set('connection.received.bytes_total', BigInt(facts.receivedBytes));
  bag.set('connection.sent.bytes', BigInt(facts.sentBytes));
  bag.set('connection.sent.bytes_total', BigInt(facts.sentBytes));
  bag.set('connection.duration', Duration.fromNanos(BigInt(Math.round(facts.durationMs * 1e6))));
  bag.set('connection.mtls', false);
  bag.set('context.protocol', 'tcp');
  bag.set('context.time', timestampOf(facts.startTimeMs + facts.durationMs));
  setPeers(bag, facts, facts.remoteAddress, facts.localAddress, facts.localPort);
  if (facts.role === 'outbound') {
    bag.set('destination.service.name', facts.clusterName);
    if (facts.endpointHost !== undefined) {
      setIp(bag, 'destination.ip', facts.endpointHost);
      bag.set('destination.port', BigInt(facts.endpointPort ?? 0));
    }
  }
  if (facts.reason !== undefined) bag.set('context.proxy_error_code', RESPONSE_FLAGS[facts.reason]);
  return bag;
}

/** source.* and destination.* from the node and the connection; context.reporter.*. */
function setPeers(
  bag: AttributeBag,
  facts: ListenerFacts,
  remoteAddress: string,
  localAddress: string,
  localPort: number,
): void {
  const node = facts.node;
  const side = facts.role === 'inbound' ? 'destination' : 'source';
  bag.set('context.reporter.kind', facts.role);
  if (node.uid !== undefined) bag.set('context.reporter.uid', node.uid);
  if (node.name !== undefined) bag.set(`${side}.name`, node.name);
  if (node.namespace !== undefined) bag.set(`${side}.namespace`, node.namespace);
  if (node.uid !== undefined) bag.set(`${side}.uid`, node.uid);
  if (node.serviceAccount !== undefined) bag.set(`${side}.serviceAccount`, node.serviceAccount);
  const labels: string[] = [];
  for (const key in node.labels) labels.push(key, node.labels[key]!);
  bag.set(`${side}.labels`, new FlatStringMap(labels));
  setIp(bag, 'source.ip', remoteAddress);
  if (facts.role === 'inbound') {
    setIp(bag, 'destination.ip', localAddress);
    bag.set('destination.port', BigInt(localPort));
  }
}

function setIp(bag: AttributeBag, name: string, address: string): void {
  const ip = IpAddress.parse(plainAddress(address));
  if (ip !== undefined) bag.set(name, ip);
}

function timestampOf(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  return new Timestamp(seconds, Math.min(999_999_999, Math.floor((ms - seconds * 1000) * 1e6)));
}

function hostOf(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  const colon = authority.lastIndexOf(':');
  return colon < 0 ? authority : authority.slice(0, colon);
}

/** Header names and values alternating; several values of one name joined with ", ". */
function appendHeaderPairs(
  pairs: string[],
  headers: IncomingHeaders | OutgoingHeaders,
  skipHost: boolean,
): void {
  for (const name in headers) {
    const value = (headers as Record<string, string | string[] | undefined>)[name];
    if (value === undefined || (skipHost && name === 'host')) continue;
    if (name.charCodeAt(0) === 58) continue; // pseudo-headers are added above, normalised
    pairs.push(name, Array.isArray(value) ? value.join(', ') : String(value));
  }
}
