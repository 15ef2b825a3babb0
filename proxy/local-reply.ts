/**
 * Answers the proxy gives itself: no route, no healthy endpoint, a tripped breaker, an
 * upstream that failed or timed out, an injected fault, a denial. Each carries a short
 * text body and `x-switchboard-reason` (and, for a breaker, `x-switchboard-overflow`
 * naming it). A gRPC request gets a gRPC answer instead (HTTP 200, trailers-only, with
 * `grpc-status` mapped from the HTTP status as gRPC's own mapping does), so that gRPC
 * clients see UNAVAILABLE or DEADLINE_EXCEEDED rather than a protocol error.
 */
import type { OutgoingHeaders } from './header-operations';
import type { Downstream } from './http-exchange-types';
import type { ProxyReason } from './traffic-facts';

/** The header that says why the proxy answered itself. */
export const REASON_HEADER = 'x-switchboard-reason';
/** The header that names the circuit breaker that tripped. */
export const OVERFLOW_HEADER = 'x-switchboard-overflow';

/** gRPC status for an HTTP status (the gRPC "HTTP to gRPC status code mapping"). */
export function grpcStatusFor(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

export interface LocalReply {
  readonly status: number;
  readonly reason: ProxyReason | undefined;
  /** One line of text, without the newline. */
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/**
 * Sends `reply` downstream (nothing is sent when the response has started or the stream is
 * gone). `grpc` answers in gRPC's trailers-only form on HTTP/2. Returns the headers sent.
 */
export function sendLocalReply(
  downstream: Downstream,
  reply: LocalReply,
  grpc: boolean,
  closeConnection: boolean,
): OutgoingHeaders | undefined {
  if (downstream.headersSent || downstream.destroyed || downstream.finished) return undefined;
  const headers: OutgoingHeaders = { ...reply.headers };
  if (reply.reason !== undefined) headers[REASON_HEADER] = reply.reason;
  if (grpc && downstream.http2) {
    headers[':status'] = '200';
    headers['content-type'] = 'application/grpc';
    headers['grpc-status'] = String(grpcStatusFor(reply.status));
    headers['grpc-message'] = encodeGrpcMessage(reply.message);
    const sent = downstream.respondTrailersOnly(headers);
    delete headers[':status'];
    return sent ? headers : undefined;
  }
  const body = `${reply.message}\n`;
  headers['content-type'] ??= 'text/plain; charset=utf-8';
  headers['content-length'] = String(Buffer.byteLength(body));
  if (closeConnection) headers['connection'] = 'close';
  try {
    downstream.writeHead(reply.status, headers, false);
  } catch {
    // A field this protocol refuses (from a policy's denial, say): cut rather than fail.
    downstream.destroy();
    return undefined;
  }
  downstream.end(body);
  return headers;
}

/**
 * gRPC's percent-encoding of grpc-message: UTF-8 bytes outside printable ASCII
 * (0x20–0x7E), and `%` itself, become %XX; everything else stays as it is.
 */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
