/**
 * The facts the data path records about each HTTP request and TCP connection, in plain
 * fields. Attribute bags (attribute-builder.ts, request-attributes.ts), Report sets
 * (policy/request-report.ts) and access-log lines (access-log.ts) are all made from these,
 * and only when someone wants them.
 */
import type { HeaderOperations, ListenerRole, NodeIdentity } from './config-model';
import type { IncomingHeaders } from './forwarding-headers';
import type { OutgoingHeaders } from './header-operations';

/**
 * Why the proxy answered or cut an exchange itself; sent as `x-switchboard-reason` on local
 * answers, and as Envoy's response flag in `context.proxy_error_code`.
 */
export type ProxyReason =
  | 'no-route'
  | 'no-healthy-upstream'
  | 'upstream-connect-failure'
  | 'upstream-reset'
  | 'upstream-timeout'
  | 'upstream-per-try-timeout'
  | 'stream-idle-timeout'
  | 'overflow'
  | 'fault-abort'
  | 'denied'
  | 'downstream-disconnect'
  | 'request-too-large'
  | 'downstream-protocol-error'
  | 'internal-error';

/** Envoy's response flags for each reason (`%RESPONSE_FLAGS%`), as Istio reported them. */
export const RESPONSE_FLAGS: Readonly<Record<ProxyReason, string>> = {
  'no-route': 'NR',
  'no-healthy-upstream': 'UH',
  'upstream-connect-failure': 'UF',
  'upstream-reset': 'UR',
  'upstream-timeout': 'UT',
  'upstream-per-try-timeout': 'UT',
  'stream-idle-timeout': 'SI',
  overflow: 'UO',
  'fault-abort': 'FI',
  denied: 'UAEX',
  'downstream-disconnect': 'DC',
  // The client sent more than the listener takes: Envoy flags a head over its limit so.
  'request-too-large': 'DPE',
  // A request the server could not read (a malformed head or body): Envoy's codec error.
  'downstream-protocol-error': 'DPE',
  'internal-error': 'DPE',
};

/** Where traffic came in, and who the proxy speaks for. */
export interface ListenerFacts {
  readonly listenerName: string;
  readonly role: ListenerRole;
  readonly node: NodeIdentity;
}

export interface HttpRequestFacts extends ListenerFacts {
  /** `http` (HTTP/1.1), `http2`, or `grpc` (HTTP/2 with a gRPC content type). */
  readonly protocol: 'http' | 'http2' | 'grpc';
  readonly secure: boolean;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly method: string;
  /** Host or :authority as sent, port included. */
  readonly authority: string;
  /** Path and query, as sent. */
  readonly url: string;
  readonly urlPath: string;
  readonly query: string | undefined;
  /** The downstream request's headers, as received. */
  readonly requestHeaders: IncomingHeaders;
  /**
   * Our HTTP/1.1 server only: the request head as received (request line and fields), when
   * each field was on one line. Requests with the same text have the same method, target,
   * authority and headers, so a reader may compare the texts instead. Else undefined.
   */
  readonly receivedRequestHead: string | undefined;
  readonly requestId: string;
  readonly traceparent: string;
  /** When the request arrived, ms since the epoch. */
  readonly startTimeMs: number;
  /** Body bytes received from downstream so far. */
  readonly requestBytes: number;
  /** Status sent downstream; 0 when none was (the client went away, or the stream was reset). */
  readonly status: number;
  /** Headers sent downstream, when a response was. */
  readonly responseHeaders: OutgoingHeaders | undefined;
  /**
   * When the response head went downstream as the upstream's own text (HTTP/1.1 on both
   * sides), what `responseHeaders` is made of: that text, the header operations applied to it,
   * and whether `connection: close` was added. Requests that agree on the three sent the same
   * headers, so a reader may compare them instead of building the headers. Undefined (and
   * undefined, false) otherwise.
   */
  readonly forwardedResponseHead: string | undefined;
  readonly forwardedResponseOps: HeaderOperations | undefined;
  readonly forwardedResponseClose: boolean;
  readonly responseBytes: number;
  /** Time from arrival to the end of the response, in ms (fractional). */
  readonly durationMs: number;
  readonly routeName: string | undefined;
  readonly clusterName: string | undefined;
  /** `host:port` of the endpoint that answered (or was tried last). */
  readonly endpointId: string | undefined;
  readonly endpointHost: string | undefined;
  readonly endpointPort: number | undefined;
  /** Upstream attempts made (retries included). */
  readonly attempts: number;
  readonly reason: ProxyReason | undefined;
  /** From the response trailers or headers, for gRPC. */
  readonly grpcStatus: string | undefined;
  readonly grpcMessage: string | undefined;
}

export interface TcpConnectionFacts extends ListenerFacts {
  readonly connectionId: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly startTimeMs: number;
  /** Bytes received from downstream (sent upstream). */
  readonly receivedBytes: number;
  /** Bytes sent downstream (received from upstream). */
  readonly sentBytes: number;
  readonly durationMs: number;
  readonly clusterName: string;
  readonly endpointId: string | undefined;
  readonly endpointHost: string | undefined;
  readonly endpointPort: number | undefined;
  /** Why the proxy closed it, when it did. */
  readonly reason: ProxyReason | undefined;
}
