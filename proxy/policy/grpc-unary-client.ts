/**
 * A unary gRPC client over h2c (HTTP/2 with prior knowledge), for the proxy's calls to the
 * policy server: one connection, opened on the first call and again after it closes, every
 * call under a deadline. The result is data — a status and, on OK, the response message and
 * headers — never an exception, so that the caller applies its failure policy in one place.
 *
 * The HTTP/2 is our own (http2-client-connection.ts, hpack.ts) on a bare socket, not
 * `node:http2`: a call is one socket write of a few frames and little else (measured in
 * bench/policy-client.ts).
 *
 * A call that reaches its deadline makes its connection ask the server for a sign of life (a
 * PING, see `probe`): a server that answers keeps the connection; one that does not within
 * `pingTimeoutMs` loses it, and the next call connects again instead of waiting out its
 * deadline on a connection nothing answers.
 */
import { DeadlineSweep, type DeadlineHolder } from '../deadline-sweep';
import type { HpackEncoder } from '../../http2';
import { Http2ClientConnection, Http2Stream, type ConnectionOwner } from './http2-client-connection';
import { ErrorCode } from '../../http2';

/** Response headers (gRPC metadata) by lower-case name; repeated names joined with ', '. */
export type ResponseHeaders = Readonly<Record<string, string | undefined>>;

/** How a call ended. `code` 0 is OK; 4 DEADLINE_EXCEEDED, 13 INTERNAL and 14 UNAVAILABLE come from here. */
export interface UnaryResult {
  readonly code: number;
  readonly message: string;
  /** The response message, on OK. */
  readonly body?: Buffer;
  /** The response headers (gRPC metadata), when the server answered. */
  readonly headers?: ResponseHeaders;
}

const CANCELLED = 1;
const UNKNOWN = 2;
const DEADLINE_EXCEEDED = 4;
const PERMISSION_DENIED = 7;
const UNIMPLEMENTED = 12;
const INTERNAL = 13;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

/** gRPC's PROTOCOL-HTTP2: the status of an answer with an HTTP status other than 200 and no grpc-status. */
function statusOfHttp(httpStatus: string | undefined): number {
  switch (httpStatus) {
    case '400':
      return INTERNAL;
    case '401':
      return UNAUTHENTICATED;
    case '403':
      return PERMISSION_DENIED;
    case '404':
      return UNIMPLEMENTED;
    case '429':
    case '502':
    case '503':
    case '504':
      return UNAVAILABLE;
    default:
      return UNKNOWN;
  }
}

/** gRPC's status of a stream the server reset with `code` (RST_STREAM). */
function statusOfReset(code: number): number {
  switch (code) {
    case ErrorCode.Cancel:
      return CANCELLED;
    case ErrorCode.RefusedStream:
      return UNAVAILABLE;
    case ErrorCode.EnhanceYourCalm:
      return UNAVAILABLE;
    case ErrorCode.InadequateSecurity:
      return PERMISSION_DENIED;
    default:
      return code === ErrorCode.NoError ? UNAVAILABLE : INTERNAL;
  }
}

/** grpc-message is percent-encoded UTF-8; a malformed encoding is shown as sent. */
function decodeGrpcMessage(text: string): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Options of {@link GrpcUnaryClient}. */
export interface GrpcUnaryClientOptions {
  /**
   * After a call ends at its deadline, how long the server has to answer a PING before the
   * connection is given up (its calls UNAVAILABLE) and the next call opens a new one. Default
   * 2000 ms.
   */
  readonly pingTimeoutMs?: number;
}

export const DEFAULT_PING_TIMEOUT_MS = 2000;

export class GrpcUnaryClient implements ConnectionOwner {
  private connection: Http2ClientConnection | undefined;
  private readonly sweep = new DeadlineSweep();
  private readonly host: string;
  private readonly port: number;
  private closed = false;
  /** Calls not settled yet: the deadline sweep stops once the client is closed and none is left. */
  private pendingCalls = 0;

  /** @internal see {@link GrpcUnaryClientOptions.pingTimeoutMs} */
  readonly pingTimeoutMs: number;

  /** `address` is `host:port` of a server speaking gRPC over h2c (`[::1]:port` for IPv6). */
  constructor(
    private readonly address: string,
    options: GrpcUnaryClientOptions = {},
  ) {
    this.pingTimeoutMs = options.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
    const colon = address.lastIndexOf(':');
    this.host = address.slice(0, colon).replace(/^\[|\]$/g, '');
    this.port = Number(address.slice(colon + 1));
  }

  /**
   * Calls `path` with `message`; answers within `deadlineMs` (DEADLINE_EXCEEDED otherwise).
   * `metadata` adds request headers (gRPC metadata; lower-case names, ASCII values). A value
   * that changes from call to call (an id) is sent without indexing; repeated ones compress
   * to one byte.
   */
  call(
    path: string,
    message: Uint8Array,
    deadlineMs: number,
    metadata?: Readonly<Record<string, string>>,
  ): Promise<UnaryResult> {
    if (this.closed) return Promise.resolve({ code: UNAVAILABLE, message: 'the policy client is closed' });
    const call = new UnaryCall(this, path, this.address, message, deadlineMs, metadata);
    const result = new Promise<UnaryResult>((resolve) => (call.resolve = resolve));
    this.pendingCalls++;
    this.sweep.watch(call, call.deadlineAtMs);
    this.dispatch(call);
    return result;
  }

  /**
   * Closes the connection once the calls in flight are done (their deadlines still hold);
   * later calls answer UNAVAILABLE at once. Idempotent.
   */
  close(): void {
    this.closed = true;
    this.connection?.close();
    this.connection = undefined;
    if (this.pendingCalls === 0) this.sweep.close();
  }

  /** @internal */
  onRetired(connection: Http2ClientConnection, orphans: Http2Stream[]): void {
    if (this.connection === connection) this.connection = undefined;
    for (const orphan of orphans) this.dispatch(orphan as UnaryCall);
  }

  /** @internal a call ended: its deadline goes. */
  settled(call: UnaryCall): void {
    this.sweep.unwatch(call);
    if (--this.pendingCalls === 0 && this.closed) this.sweep.close();
  }

  private dispatch(call: UnaryCall): void {
    if (this.closed) {
      call.finish({ code: UNAVAILABLE, message: 'the policy client is closed' });
      return;
    }
    let connection = this.connection;
    if (connection === undefined || !connection.acceptsStreams) {
      try {
        connection = new Http2ClientConnection(this.host, this.port, this, this.address);
      } catch (error) {
        // net.connect throws at once for what it cannot even try (a port out of range, …).
        call.finish({
          code: UNAVAILABLE,
          message: `cannot reach the policy server at ${this.address}: ${(error as Error).message}`,
        });
        return;
      }
      this.connection = connection;
    }
    call.connection = connection;
    // A new connection takes the call; a retired one was replaced above.
    connection.start(call);
  }
}

/** One call: the request, the response as it arrives, the deadline. */
class UnaryCall extends Http2Stream implements DeadlineHolder {
  sweepPrev: DeadlineHolder | undefined = undefined;
  sweepNext: DeadlineHolder | undefined = undefined;
  sweepLinked = false;
  resolve: ((result: UnaryResult) => void) | undefined;
  connection: Http2ClientConnection | undefined;
  readonly deadlineAtMs: number;
  readonly payloadBytes: number;
  private headers: Record<string, string> | undefined;
  private status: string | undefined;
  private statusMessage: string | undefined;
  private chunks: Buffer[] | undefined;
  private chunk: Buffer | undefined;

  constructor(
    private readonly client: GrpcUnaryClient,
    private readonly path: string,
    private readonly authority: string,
    private readonly message: Uint8Array,
    private readonly deadlineMs: number,
    private readonly metadata: Readonly<Record<string, string>> | undefined,
  ) {
    super();
    this.payloadBytes = 5 + message.length;
    this.deadlineAtMs = performance.now() + deadlineMs;
  }

  nextDeadlineMs(): number {
    return this.deadlineAtMs;
  }

  onDeadline(): void {
    const connection = this.connection;
    if (connection !== undefined) {
      connection.cancel(this);
      // No answer in time: a slow server, or one that is gone without closing — ask.
      connection.probe(this.client.pingTimeoutMs);
    }
    this.finish({
      code: DEADLINE_EXCEEDED,
      message: `no answer from the policy server within ${this.deadlineMs} ms`,
    });
  }

  writeHeaders(encoder: HpackEncoder): void {
    encoder.header(':method', 'POST');
    encoder.header(':scheme', 'http');
    encoder.header(':path', this.path);
    encoder.header(':authority', this.authority);
    encoder.header('content-type', 'application/grpc');
    encoder.header('te', 'trailers');
    encoder.header('grpc-timeout', `${Math.max(1, Math.ceil(this.deadlineMs))}m`);
    const metadata = this.metadata;
    if (metadata !== undefined) for (const name in metadata) encoder.header(name, metadata[name]!);
  }

  copyPayload(out: Buffer, pos: number, from: number, to: number): void {
    // The gRPC message prefix: not compressed, then the length (4 octets, big-endian).
    const length = this.message.length;
    for (; from < to && from < 5; from++) out[pos++] = from === 0 ? 0 : (length >>> (8 * (4 - from))) & 0xff;
    if (to > from) out.set(this.message.subarray(from - 5, to - 5), pos);
  }

  onHeaders(fields: readonly string[], first: boolean, endStream: boolean): void {
    if (first) {
      const headers: Record<string, string> = Object.create(null);
      for (let i = 0; i < fields.length; i += 2) {
        const name = fields[i]!;
        const previous = headers[name];
        headers[name] = previous === undefined ? fields[i + 1]! : `${previous}, ${fields[i + 1]!}`;
      }
      this.headers = headers;
      if (!endStream) return;
    }
    // Trailers, or the headers of a trailers-only answer.
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === 'grpc-status') this.status = fields[i + 1];
      else if (fields[i] === 'grpc-message') this.statusMessage = fields[i + 1];
    }
  }

  onData(buffer: Buffer, start: number, end: number): void {
    const piece = buffer.subarray(start, end);
    if (this.chunk === undefined) this.chunk = piece;
    else (this.chunks ??= [this.chunk]).push(piece);
  }

  onEnd(): void {
    const headers = this.headers;
    if (this.status === undefined) {
      const httpStatus = headers?.[':status'];
      this.finish(
        httpStatus === '200'
          ? { code: INTERNAL, message: 'the policy server ended the call without grpc-status' }
          : {
              code: statusOfHttp(httpStatus),
              message: `the policy server answered HTTP status ${httpStatus}`,
            },
      );
      return;
    }
    const code = /^\d{1,10}$/.test(this.status) ? Number(this.status) : NaN;
    if (!Number.isInteger(code)) {
      this.finish({ code: INTERNAL, message: `the policy server answered grpc-status ${this.status}` });
      return;
    }
    if (code !== 0) {
      const message = decodeGrpcMessage(this.statusMessage ?? '');
      this.finish(headers === undefined ? { code, message } : { code, message, headers });
      return;
    }
    const body = this.chunks !== undefined ? Buffer.concat(this.chunks) : (this.chunk ?? EMPTY);
    if (body.length < 5 || body[0] !== 0 || body.length !== 5 + body.readUInt32BE(1)) {
      this.finish({ code: INTERNAL, message: 'the policy server answered a malformed message' });
      return;
    }
    this.finish({
      code: 0,
      message: '',
      body: body.subarray(5),
      ...(headers === undefined ? {} : { headers }),
    });
  }

  onAbort(code: number | undefined, reason: string): void {
    this.finish({ code: code === undefined ? UNAVAILABLE : statusOfReset(code), message: reason });
  }

  finish(result: UnaryResult): void {
    const resolve = this.resolve;
    if (resolve === undefined) return;
    this.resolve = undefined;
    this.client.settled(this);
    resolve(result);
  }
}

const EMPTY = Buffer.alloc(0);
