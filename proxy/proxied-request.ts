/**
 * What every request through the proxy knows of itself, whether it is an ordinary exchange
 * (http-exchange.ts) or an upgrade to a tunnel (upgrade-proxy.ts): the request as routing sees
 * it (RouteRequest) and the facts the attributes and the access log are made of
 * (HttpRequestFacts), with the outcome fields each kind fills in as it goes.
 */
import type { HeaderOperations, HttpListenerConfig, NodeIdentity } from './config-model';
import { requestIdsOf, type IncomingHeaders, type RequestIds } from './forwarding-headers';
import { parseRequestTarget } from './request-target';
import type { RouteRequest } from './route-table';
import type { ProxyReason } from './traffic-facts';

/** The downstream request and its connection. */
export interface RequestSource {
  readonly method: string;
  /** The request target as received (origin form, or absolute form over HTTP/1.1). */
  readonly url: string;
  readonly headers: IncomingHeaders;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

export abstract class ProxiedRequest implements RouteRequest {
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly headers: IncomingHeaders;
  readonly listenerName: string;
  readonly role: HttpListenerConfig['role'];
  readonly node: NodeIdentity;
  readonly protocol: 'http' | 'http2' | 'grpc';
  readonly secure: boolean;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly authority: string;
  readonly url: string;
  readonly urlPath: string;
  readonly query: string | undefined;
  readonly requestHeaders: IncomingHeaders;
  readonly startTimeMs: number;
  readonly requestId: string;
  readonly traceparent: string;
  protected readonly ids: RequestIds;
  requestBytes = 0;
  status = 0;
  responseBytes = 0;
  durationMs = 0;
  routeName: string | undefined;
  clusterName: string | undefined;
  endpointId: string | undefined;
  endpointHost: string | undefined;
  endpointPort: number | undefined;
  attempts = 0;
  reason: ProxyReason | undefined;
  private parsedQuery: URLSearchParams | undefined;

  constructor(
    listener: HttpListenerConfig,
    node: NodeIdentity,
    startTimeMs: number,
    source: RequestSource,
    origin: { readonly http2: boolean; readonly secure: boolean },
  ) {
    this.listenerName = listener.name;
    this.role = listener.role;
    this.node = node;
    this.secure = origin.secure;
    const headers = source.headers;
    this.headers = headers;
    this.requestHeaders = headers;
    this.method = source.method;
    this.remoteAddress = source.remoteAddress;
    this.remotePort = source.remotePort;
    this.localAddress = source.localAddress;
    this.localPort = source.localPort;
    this.startTimeMs = startTimeMs;
    this.ids = requestIdsOf(headers);
    this.requestId = this.ids.requestId;
    this.traceparent = this.ids.traceparent;
    const target = parseRequestTarget(source.url, headers, origin.http2);
    this.authority = target.authority;
    this.host = target.host;
    this.url = target.url;
    this.urlPath = target.urlPath;
    this.path = target.urlPath;
    this.query = target.query;
    const contentType = headers['content-type'];
    this.protocol = origin.http2
      ? typeof contentType === 'string' && contentType.startsWith('application/grpc')
        ? 'grpc'
        : 'http2'
      : 'http';
  }

  /** See HttpRequestFacts: only an exchange on our HTTP/1.1 server has the head's text. */
  get receivedRequestHead(): string | undefined {
    return undefined;
  }

  /** See HttpRequestFacts: only an exchange that forwarded a received head as text has these. */
  get forwardedResponseHead(): string | undefined {
    return undefined;
  }

  get forwardedResponseOps(): HeaderOperations | undefined {
    return undefined;
  }

  get forwardedResponseClose(): boolean {
    return false;
  }

  queryParameter(name: string): string | undefined {
    if (this.query === undefined) return undefined;
    this.parsedQuery ??= new URLSearchParams(this.query);
    return this.parsedQuery.get(name) ?? undefined;
  }
}
