/**
 * The downstream seam over Node's core HTTP/2 stream API (`ServerHttp2Stream`), for plaintext
 * h2c. Node's compatibility layer (node-downstream.ts, still used over TLS) builds a request
 * and a response object per stream, wraps the stream's body in a second Readable and the
 * socket in Proxies; here the exchange talks to the stream itself.
 *
 * What the compatibility layer did that is kept: the request's headers are Node's object as
 * received (pseudo-headers included); the response head goes out at `writeHead` (the exchange
 * flushes it at once on HTTP/2 anyway); `date` is added by Node. What differs: a response the
 * exchange says will have no trailers (a local answer, an HTTP/1.1 upstream's unchunked one)
 * ends with its last DATA frame, where the compatibility layer always waited for trailers
 * and sent an empty frame after the body, a write more per response; the connection-specific
 * fields HTTP/2 forbids (`connection`, `keep-alive`, `proxy-connection`, `transfer-encoding`,
 * `upgrade`, `te` other than `trailers`) are left out of a head, as RFC 9113 §8.2.2 has an
 * intermediary do — the compatibility layer dropped only `connection` and threw at the
 * others, out of a stream event; the stream's own `destroyed` is reported (the compatibility
 * response has none).
 */
import * as http2 from 'node:http2';
import type { IncomingHeaders } from './forwarding-headers';
import type { OutgoingHeaders } from './header-operations';
import type { Downstream, DownstreamHandler } from './http-exchange-types';

const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;

/** Fields of HTTP/1.1 connections that HTTP/2 forbids (RFC 9113 §8.2.2); `te` apart. */
const CONNECTION_FIELDS = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'];

/**
 * Whether a field (lower-case `name`) is connection-specific, which HTTP/2 forbids (RFC 9113
 * §8.2.2): one of {@link CONNECTION_FIELDS}, or `te` with a value other than `trailers`.
 */
export function isConnectionField(name: string, value: unknown): boolean {
  if (name === 'te') return !(typeof value === 'string' && value.toLowerCase() === 'trailers');
  return CONNECTION_FIELDS.includes(name);
}

/**
 * `headers` without the connection-specific fields: the same object when it has none (the
 * usual case, and no copy then), else a copy without them.
 */
export function withoutConnectionFields(headers: OutgoingHeaders): OutgoingHeaders {
  let found = false;
  for (const name of CONNECTION_FIELDS) if (headers[name] !== undefined) found = true;
  const te = headers['te'];
  const badTe = te !== undefined && !(typeof te === 'string' && te.toLowerCase() === 'trailers');
  if (!found && !badTe) return headers;
  const copy: OutgoingHeaders = { ...headers };
  for (const name of CONNECTION_FIELDS) delete copy[name];
  if (badTe) delete copy['te'];
  return copy;
}

/** Where a session's connection runs; read once per session, not per stream. */
export interface SessionAddresses {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

/** Reads the addresses of a session's socket. */
export function sessionAddressesOf(session: http2.Http2Session): SessionAddresses {
  const socket = session.socket;
  return {
    remoteAddress: socket?.remoteAddress ?? '',
    remotePort: socket?.remotePort ?? 0,
    localAddress: socket?.localAddress ?? '',
    localPort: socket?.localPort ?? 0,
  };
}

/** The options of a head that body and trailers may follow: Node asks for the trailers. */
const RESPOND_FOR_TRAILERS: http2.ServerStreamResponseOptions = { waitForTrailers: true };
/** The options of a head that body but no trailers follow: END_STREAM goes on the last bytes. */
const RESPOND_OPEN: http2.ServerStreamResponseOptions = {};
/** The options of a head that ends the stream. */
const RESPOND_END: http2.ServerStreamResponseOptions = { endStream: true };
/** Trailers when the response has none: an empty DATA frame with END_STREAM goes out. */
const NO_TRAILERS: OutgoingHeaders = Object.freeze({}) as OutgoingHeaders;

export class Http2StreamDownstream implements Downstream {
  readonly http2 = true;
  readonly method: string;
  readonly url: string;
  readonly hasBody: boolean;
  private handler: DownstreamHandler | undefined;
  /** `end` was called on a live stream (or a trailers-only head sent). */
  private ended = false;
  /** `destroy` was called: the response was cut by us. */
  private cut = false;
  /** The trailers `end` was given, sent when the stream asks for them. */
  private trailers: OutgoingHeaders | undefined;
  private readonly onDrain = (): void => this.handler?.onResponseDrain();
  private readonly onClose = (): void => this.handler!.onDownstreamClose();
  private readonly onWantTrailers = (): void => {
    try {
      this.stream.sendTrailers(this.trailers ?? NO_TRAILERS);
    } catch {
      // A trailer HTTP/2 cannot carry: the response cannot end whole, so it ends cut.
      this.destroy();
    }
  };

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    /** As Node gives them, pseudo-headers included (what the compatibility request's are). */
    readonly headers: IncomingHeaders,
    private readonly addresses: SessionAddresses,
  ) {
    this.method = (headers[':method'] as string | undefined) ?? 'GET';
    this.url = (headers[':path'] as string | undefined) ?? '/';
    this.hasBody = !stream.endAfterHeaders;
  }

  get remoteAddress(): string {
    return this.addresses.remoteAddress;
  }

  get remotePort(): number {
    return this.addresses.remotePort;
  }

  get localAddress(): string {
    return this.addresses.localAddress;
  }

  get localPort(): number {
    return this.addresses.localPort;
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  get finished(): boolean {
    // Not the stream's writableFinished alone: Node ends the writable side of a stream the
    // client reset, and a cut response would then look whole. Nor that alone when the last
    // DATA frame carried END_STREAM: the stream may close before its writable side says
    // 'finish'. Ended by us and closed without an error code (a reset has one) is whole.
    if (!this.ended || this.cut) return false;
    const stream = this.stream;
    return stream.writableFinished || (stream.writableEnded && stream.rstCode === NGHTTP2_NO_ERROR);
  }

  attach(handler: DownstreamHandler): void {
    this.handler = handler;
    // 'close' comes once, however the stream ends (whole, reset by either side, session gone).
    this.stream.once('close', this.onClose);
  }

  readBody(): void {
    const stream = this.stream;
    const handler = this.handler!;
    stream.pause();
    stream.on('data', (chunk: Buffer) => handler.onRequestData(chunk));
    stream.once('end', () => handler.onRequestEnd());
  }

  pauseBody(): void {
    this.stream.pause();
  }

  resumeBody(): void {
    // Before readBody there is no 'data' listener: the body flows and is dropped.
    this.stream.resume();
  }

  writeContinue(): void {
    const stream = this.stream;
    if (stream.headersSent || stream.destroyed || stream.closed) return;
    stream.additionalHeaders({ ':status': 100 });
  }

  writeHead(status: number, headers: OutgoingHeaders, trailersMayFollow = true): void {
    const stream = this.stream;
    // As the compatibility response: nothing to answer on a stream that is gone.
    if (stream.destroyed || stream.closed) return;
    const out = withoutConnectionFields(headers) as http2.OutgoingHttpHeaders;
    // Node copies the head before it sends it; ':status' is ours only for the call.
    out[':status'] = status;
    try {
      // Throws before anything is sent when a field cannot go on HTTP/2.
      stream.respond(out, trailersMayFollow ? RESPOND_FOR_TRAILERS : RESPOND_OPEN);
    } finally {
      delete out[':status'];
    }
    if (trailersMayFollow) stream.once('wantTrailers', this.onWantTrailers);
  }

  flushHead(): void {
    // The head went out in writeHead; without one, a 200 goes.
    const stream = this.stream;
    if (!stream.headersSent && !stream.destroyed && !stream.closed) this.writeHead(200, {});
  }

  write(chunk: Buffer): boolean {
    const stream = this.stream;
    // A HEAD request's or a 204/304's stream ended with its head: there is no body to send.
    if (stream.writableEnded || stream.destroyed) return true;
    if (!stream.headersSent) this.writeHead(200, {});
    if (stream.write(chunk)) return true;
    stream.once('drain', this.onDrain);
    return false;
  }

  end(body?: string, trailers?: OutgoingHeaders): void {
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    if (!stream.headersSent) this.writeHead(200, {}, trailers !== undefined);
    this.ended = true;
    this.trailers = trailers;
    if (stream.writableEnded) return;
    if (body === undefined || body === '') stream.end();
    else stream.end(body);
  }

  respondTrailersOnly(headers: OutgoingHeaders): boolean {
    const stream = this.stream;
    if (stream.destroyed || stream.closed || stream.headersSent) return false;
    try {
      stream.respond(withoutConnectionFields(headers) as http2.OutgoingHttpHeaders, RESPOND_END);
      this.ended = true;
    } catch {
      // A field HTTP/2 cannot carry: the stream is reset rather than the process failing.
      this.destroy();
      return false;
    }
    return true;
  }

  destroy(): void {
    const stream = this.stream;
    this.cut = true;
    if (!stream.destroyed) stream.close(NGHTTP2_INTERNAL_ERROR);
  }
}
