/**
 * Attribute bags of the Istio vocabulary (attributes/manifest.ts) from the proxy's traffic
 * facts: what a policy client sends in a Check, and the reference the two faster readers
 * are held to — request-attributes.ts (a check's attributes, read as asked for) and
 * policy/request-report.ts (a Report set written straight from the facts).
 *
 * Which side the configured `node` is depends on the listener's role, as in Istio: on an
 * inbound listener the proxy reports for the destination (the workload it fronts; the peer
 * is the source), on an outbound one for the source (the upstream endpoint is the
 * destination, and the cluster names the destination service).
 */
import {
  AttributeBag,
  Duration,
  FlatStringMap,
  GLOBAL_WORD_INDEX,
  IpAddress,
  Timestamp,
  type AttributeValue,
} from '../attributes';
import type { NodeIdentity } from './config-model';
import type { IncomingHeaders } from './forwarding-headers';
import { plainAddress } from './forwarding-headers';
import type { OutgoingHeaders } from './header-operations';
import type { HttpRequestFacts, ListenerFacts, TcpConnectionFacts } from './traffic-facts';
import { RESPONSE_FLAGS } from './traffic-facts';

/** Request, source, destination and context attributes: what a Check needs. */
export function buildRequestAttributes(facts: HttpRequestFacts): AttributeBag {
  const bag = new AttributeBag();
  bag.setGlobalWord(W.requestHeaders, new FlatStringMap(requestHeaderPairs(facts)));
  bag.setGlobalWord(W.requestId, facts.requestId);
  bag.setGlobalWord(W.requestHost, facts.authority);
  bag.setGlobalWord(W.requestMethod, facts.method);
  bag.setGlobalWord(W.requestPath, facts.url);
  bag.setGlobalWord(W.requestUrlPath, facts.urlPath);
  if (facts.query !== undefined)
    bag.setGlobalWord(W.requestQueryParams, new FlatStringMap(queryPairs(facts.query)));
  bag.setGlobalWord(W.requestScheme, facts.secure ? 'https' : 'http');
  bag.setGlobalWord(W.requestTime, timestampOf(facts.startTimeMs));
  const userAgent = facts.requestHeaders['user-agent'];
  if (typeof userAgent === 'string') bag.setGlobalWord(W.requestUseragent, userAgent);
  const referer = facts.requestHeaders['referer'];
  if (typeof referer === 'string') bag.setGlobalWord(W.requestReferer, referer);
  bag.setGlobalWord(W.contextProtocol, facts.protocol);
  if (facts.routeName !== undefined) bag.setGlobalWord(W.apiOperation, facts.routeName);
  setPeers(bag, facts, facts.remoteAddress, facts.localAddress, facts.localPort);
  if (facts.role === 'outbound' && facts.clusterName !== undefined) {
    bag.setGlobalWord(W.destinationServiceName, facts.clusterName);
    bag.setGlobalWord(W.destinationServiceHost, hostOf(facts.authority));
  } else if (facts.role === 'inbound') {
    bag.setGlobalWord(W.destinationServiceHost, hostOf(facts.authority));
  }
  return bag;
}

/** Every name nodeAttributesOf may give, on either side (which ones depends on the node and role). */
export const NODE_ATTRIBUTE_NAMES: ReadonlySet<string> = new Set([
  'context.reporter.kind',
  'context.reporter.uid',
  ...['source', 'destination'].flatMap((side) =>
    ['name', 'namespace', 'uid', 'serviceAccount', 'labels'].map((field) => `${side}.${field}`),
  ),
]);

/** Every name buildRequestAttributes may set (which of them it does depends on the request). */
export const REQUEST_ATTRIBUTE_NAMES: ReadonlySet<string> = new Set([
  'request.headers',
  'request.id',
  'request.host',
  'request.method',
  'request.path',
  'request.url_path',
  'request.query_params',
  'request.scheme',
  'request.time',
  'request.useragent',
  'request.referer',
  'context.protocol',
  'api.operation',
  'source.ip',
  'destination.ip',
  'destination.port',
  'destination.service.name',
  'destination.service.host',
  ...NODE_ATTRIBUTE_NAMES,
]);

/** Adds what is known once the exchange ended: response, sizes, duration, the endpoint. */
export function addResponseAttributes(bag: AttributeBag, facts: HttpRequestFacts): AttributeBag {
  const endTimeMs = facts.startTimeMs + facts.durationMs;
  bag.setGlobalWord(W.requestSize, BigInt(facts.requestBytes));
  bag.setGlobalWord(W.responseCode, BigInt(facts.status));
  bag.setGlobalWord(W.responseSize, BigInt(facts.responseBytes));
  const endTime = timestampOf(endTimeMs);
  bag.setGlobalWord(W.responseTime, endTime);
  bag.setGlobalWord(W.responseDuration, Duration.fromNanos(BigInt(durationNanos(facts.durationMs))));
  const responseHeaders = facts.responseHeaders;
  if (responseHeaders !== undefined) {
    const pairs: string[] = [];
    appendHeaderPairs(pairs, responseHeaders, false);
    bag.setGlobalWord(W.responseHeaders, new FlatStringMap(pairs));
  }
  if (facts.grpcStatus !== undefined) bag.setGlobalWord(W.responseGrpcStatus, facts.grpcStatus);
  if (facts.grpcMessage !== undefined) bag.setGlobalWord(W.responseGrpcMessage, facts.grpcMessage);
  if (facts.reason !== undefined) bag.setGlobalWord(W.contextProxyErrorCode, RESPONSE_FLAGS[facts.reason]);
  // Outbound: the endpoint that was tried is the destination.
  if (facts.role === 'outbound' && facts.endpointHost !== undefined) {
    setIp(bag, W.destinationIp, facts.endpointHost);
    bag.setGlobalWord(W.destinationPort, BigInt(facts.endpointPort ?? 0));
  }
  if (facts.clusterName !== undefined && facts.role === 'outbound')
    bag.setGlobalWord(W.destinationServiceName, facts.clusterName);
  // Values are immutable: the two times may share one.
  bag.setGlobalWord(W.contextTime, endTime);
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
      setIp(bag, W.destinationIp, facts.endpointHost);
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
  for (const { index, name, value } of nodeAttributesOf(facts.node, facts.role)) {
    if (index === undefined) bag.set(name, value);
    else bag.setGlobalWord(index, value);
  }
  setIp(bag, W.sourceIp, remoteAddress);
  if (facts.role === 'inbound') {
    setIp(bag, W.destinationIp, localAddress);
    bag.setGlobalWord(W.destinationPort, BigInt(localPort));
  }
}

/** An attribute every request of a node gets, with its global word index when it has one. */
export interface NodeAttribute {
  readonly index: number | undefined;
  readonly name: string;
  readonly value: AttributeValue;
}

/**
 * The attributes a node's identity gives every request, made once per node and role:
 * values are immutable, so every bag may share them.
 */
export function nodeAttributesOf(node: NodeIdentity, role: ListenerFacts['role']): readonly NodeAttribute[] {
  const known = NODE_ATTRIBUTES.get(node);
  const cached = known?.[role];
  if (cached !== undefined) return cached;
  const side = role === 'inbound' ? 'destination' : 'source';
  const out: NodeAttribute[] = [];
  const add = (name: string, value: AttributeValue): void => {
    out.push({ index: GLOBAL_WORD_INDEX.get(name), name, value });
  };
  add('context.reporter.kind', role);
  if (node.uid !== undefined) add('context.reporter.uid', node.uid);
  if (node.name !== undefined) add(`${side}.name`, node.name);
  if (node.namespace !== undefined) add(`${side}.namespace`, node.namespace);
  if (node.uid !== undefined) add(`${side}.uid`, node.uid);
  if (node.serviceAccount !== undefined) add(`${side}.serviceAccount`, node.serviceAccount);
  const labels: string[] = [];
  for (const key in node.labels) labels.push(key, node.labels[key]!);
  add(`${side}.labels`, new FlatStringMap(labels));
  NODE_ATTRIBUTES.set(node, { ...known, [role]: out });
  return out;
}

const NODE_ATTRIBUTES = new WeakMap<NodeIdentity, Partial<Record<ListenerFacts['role'], NodeAttribute[]>>>();

/** Addresses already parsed (a proxy sees few): the parse is most of an IP attribute's cost. */
const PARSED_IPS = new Map<string, IpAddress | null>();
const PARSED_IPS_MAX = 1024;

/** The IP attribute of an address (the same object for the same address, while remembered); undefined when it is none. */
export function ipOf(address: string): IpAddress | undefined {
  let ip = PARSED_IPS.get(address);
  if (ip === undefined) {
    ip = IpAddress.parse(plainAddress(address)) ?? null;
    if (PARSED_IPS.size >= PARSED_IPS_MAX) PARSED_IPS.clear();
    PARSED_IPS.set(address, ip);
  }
  return ip ?? undefined;
}

function setIp(bag: AttributeBag, word: number, address: string): void {
  const ip = ipOf(address);
  if (ip !== undefined) bag.setGlobalWord(word, ip);
}

/** Global dictionary index of an attribute name this file sets (all of them are words of it). */
function word(name: string): number {
  const index = GLOBAL_WORD_INDEX.get(name);
  if (index === undefined) throw new Error(`${name} is not a global dictionary word`);
  return index;
}

/** The slots of the attributes set on every request, looked up once. */
const W = {
  requestHeaders: word('request.headers'),
  requestId: word('request.id'),
  requestHost: word('request.host'),
  requestMethod: word('request.method'),
  requestPath: word('request.path'),
  requestUrlPath: word('request.url_path'),
  requestQueryParams: word('request.query_params'),
  requestScheme: word('request.scheme'),
  requestTime: word('request.time'),
  requestUseragent: word('request.useragent'),
  requestReferer: word('request.referer'),
  requestSize: word('request.size'),
  responseCode: word('response.code'),
  responseSize: word('response.size'),
  responseTime: word('response.time'),
  responseDuration: word('response.duration'),
  responseHeaders: word('response.headers'),
  responseGrpcStatus: word('response.grpc_status'),
  responseGrpcMessage: word('response.grpc_message'),
  contextProtocol: word('context.protocol'),
  contextProxyErrorCode: word('context.proxy_error_code'),
  contextTime: word('context.time'),
  apiOperation: word('api.operation'),
  destinationServiceName: word('destination.service.name'),
  destinationServiceHost: word('destination.service.host'),
  destinationIp: word('destination.ip'),
  destinationPort: word('destination.port'),
  sourceIp: word('source.ip'),
} as const;

function timestampOf(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  return new Timestamp(seconds, nanosAfter(ms, seconds));
}

/** The nanoseconds of time `ms` (since the epoch) after its whole `seconds`: a timestamp's nanos. */
export function nanosAfter(ms: number, seconds: number): number {
  return Math.min(999_999_999, Math.floor((ms - seconds * 1000) * 1e6));
}

/** A duration of `ms` in whole nanoseconds, as `response.duration` carries it. */
export function durationNanos(ms: number): number {
  return Math.round(ms * 1e6);
}

/** `request.headers` as names and values alternating: `:authority`, `:method`, `:path`, then the fields (not `host`). */
export function requestHeaderPairs(facts: HttpRequestFacts): string[] {
  const pairs: string[] = [':authority', facts.authority, ':method', facts.method, ':path', facts.url];
  appendHeaderPairs(pairs, facts.requestHeaders, true);
  return pairs;
}

/** `request.query_params` as names and values alternating. */
export function queryPairs(query: string): string[] {
  const pairs: string[] = [];
  for (const [name, value] of new URLSearchParams(query)) pairs.push(name, value);
  return pairs;
}

/** The host of an authority: without its port, brackets kept for IPv6. */
export function hostOf(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  const colon = authority.lastIndexOf(':');
  return colon < 0 ? authority : authority.slice(0, colon);
}

/**
 * Header names and values alternating; several values of one name joined with ", ". Pseudo-
 * headers are left out (the request's are added as `:authority`, `:method`, `:path` from the
 * facts), and `host` too when `skipHost`.
 */
export function appendHeaderPairs(
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
