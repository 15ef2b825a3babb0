/**
 * The downstream seam over a stream of our own HTTP/2 server connection
 * (http2/http2-server-connection.ts), for plaintext h2c: the stream is the downstream, no
 * second object per request.
 *
 * It keeps the semantics of the `node:http2` downstream it replaces (http2-stream-downstream.ts,
 * still selectable with `SWITCHBOARD_HTTP2_SERVER=node`): the request's headers are an object
 * as Node builds it (pseudo-headers included; repeated fields joined with `, `, `cookie` with
 * `; `, `set-cookie` an array, the fields Node takes once keep their first value); the
 * response head goes out at `writeHead` with a `date` field when it has none, as Node adds;
 * a HEAD request's or a 204/205/304's head ends the stream, as Node's does; the
 * connection-specific fields are left out of heads and trailers (RFC 9113 §8.2.2); a response
 * without trailers ends with END_STREAM on its last DATA frame; request trailers are dropped,
 * as they were. What differs: the request body is held in the stream while the exchange
 * pauses it, and the client's window for it is given back only when the exchange takes it —
 * a paused upload holds at most one stream window (1 MiB) here.
 */
import { ErrorCode, Http2ServerStream, type HeaderFields } from '../http2';
import type { IncomingHeaders } from './forwarding-headers';
import type { OutgoingHeaders } from './header-operations';
import type { Downstream, DownstreamHandler } from './http-exchange-types';
import { httpDate } from './http1-server-connection';
import { isConnectionField, type SessionAddresses } from './http2-stream-downstream';

/** What a stream asks of the connection it is on: where it runs, and who takes its exchange. */
export interface Http2DownstreamSite extends SessionAddresses {
  /** The stream is on its connection (its request head complete): answer or exchange it. */
  startStream(downstream: Http2ServerDownstream): void;
}

/** Where the request body goes. */
const enum BodyMode {
  /** Not asked for yet: held, the window not given back. */
  Unread,
  /** To the handler (readBody), while not paused. */
  Read,
  /** Dropped (resumeBody before readBody): the window is given back. */
  Dropped,
}

/**
 * Fields Node's HTTP/2 takes once: a repeat is dropped on the way in, and an array value is
 * refused on the way out (its `kSingleValueHeaders`, as documented for incoming headers).
 */
const SINGLE_VALUE_FIELDS: ReadonlySet<string> = new Set([
  ':status',
  ':method',
  ':authority',
  ':scheme',
  ':path',
  ':protocol',
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

/** RFC 9110 §5.6.2 token: what a field name may be. */
const TOKEN = /^[\^_`a-z\-0-9!#$%&'*+.|~]+$/;
/** What a field value may not hold (RFC 9113 §8.2.1). */
const INVALID_VALUE = /[\0\r\n]/;

const NO_FIELDS: HeaderFields = [];
/** The held body of a stream that holds none (most): shared, never pushed to. */
const NO_CHUNKS: Buffer[] = [];
const CONTINUE_FIELDS: HeaderFields = [':status', '100'];

/**
 * The request headers of a validated header list, as `node:http2` builds them for a server
 * stream (its `toHeaderObject`): the object a Node-served exchange saw.
 */
export function nodeStyleHeaders(fields: readonly string[]): IncomingHeaders {
  const headers = Object.create(null) as Record<string, string | string[]>;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    const existing = headers[name];
    if (existing === undefined) {
      headers[name] = name === 'set-cookie' ? [value] : value;
    } else if (name === 'set-cookie') {
      (existing as string[]).push(value);
    } else if (!SINGLE_VALUE_FIELDS.has(name)) {
      headers[name] = `${existing as string}${name === 'cookie' ? '; ' : ', '}${value}`;
    }
  }
  return headers;
}

/**
 * `headers` as HTTP/2 fields after `first` (`:status` and its value, or nothing), without the
 * connection-specific ones, with a `date` when `withDate` and it has none.
 * @throws Error when a name is not a token, a value holds CR, LF or NUL, a pseudo-header is
 * not `:status`, or a field Node takes once has several values — before anything is sent
 */
function fieldsOf(headers: OutgoingHeaders, status: string | undefined, withDate: boolean): string[] {
  const fields: string[] = status === undefined ? [] : [':status', status];
  let dated = !withDate;
  for (const key in headers) {
    const value = headers[key] as string | string[] | number | undefined;
    if (value === undefined) continue;
    const name = key.toLowerCase();
    // The connection-specific fields are left out, as an intermediary does (RFC 9113 §8.2.2).
    if (name === ':status' || isConnectionField(name, value)) continue;
    if (!TOKEN.test(name)) throw new Error(`invalid HTTP/2 field name ${JSON.stringify(key)}`);
    if (name === 'date') dated = true;
    if (Array.isArray(value)) {
      if (value.length > 1 && SINGLE_VALUE_FIELDS.has(name)) {
        throw new Error(`field ${name} must have a single value on HTTP/2`);
      }
      for (const one of value) pushField(fields, name, String(one));
    } else {
      pushField(fields, name, String(value));
    }
  }
  if (!dated) fields.push('date', httpDate());
  return fields;
}

function pushField(fields: string[], name: string, value: string): void {
  if (INVALID_VALUE.test(value)) throw new Error(`invalid value of HTTP/2 field ${name}`);
  fields.push(name, value);
}

/** The status of a head, as a string. @throws Error outside 200…599, as Node's `respond` */
function finalStatus(status: number | string): string {
  const code = Number(status);
  if (!Number.isInteger(code) || code < 200 || code > 599) {
    throw new Error(`invalid HTTP/2 response status ${String(status)}`);
  }
  return String(code);
}

/** Deferred like Node's stream 'close': the exchange records a local answer before it hears. */
function notifyClosed(downstream: Http2ServerDownstream): void {
  downstream.handlerOnClose();
}

export class Http2ServerDownstream extends Http2ServerStream implements Downstream {
  readonly http2 = true;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHeaders;
  readonly hasBody: boolean;
  private handler: DownstreamHandler | undefined;
  /** `end` was called on a live stream (or a trailers-only head sent). */
  private ended = false;
  /** `destroy` was called: the response was cut by us. */
  private cut = false;
  /** `writeHead` was told trailers may follow. */
  private trailersMayFollow = true;
  private bodyMode = BodyMode.Unread;
  /** The handler paused the body (or has not resumed it since readBody). */
  private bodyPaused = true;
  /** Body chunks received while paused or unread (copies), in order; NO_CHUNKS until the first. */
  private heldBody: Buffer[] = NO_CHUNKS;
  /** The client ended the request; whether the handler was told. */
  private requestEnded = false;
  private requestEndDelivered = false;
  /** Inside `deliverHeld`: a nested resume lets the outer loop go on. */
  private delivering = false;

  constructor(
    fields: readonly string[],
    endStream: boolean,
    private readonly site: Http2DownstreamSite,
  ) {
    super();
    const headers = nodeStyleHeaders(fields);
    this.headers = headers;
    this.method = (headers[':method'] as string | undefined) ?? 'GET';
    this.url = (headers[':path'] as string | undefined) ?? '/';
    this.hasBody = !endStream;
    // Nothing takes the body yet: the client's window is not given back until something does.
    this.pauseReceiving();
  }

  get remoteAddress(): string {
    return this.site.remoteAddress;
  }

  get remotePort(): number {
    return this.site.remotePort;
  }

  get localAddress(): string {
    return this.site.localAddress;
  }

  get localPort(): number {
    return this.site.localPort;
  }

  get headersSent(): boolean {
    return this.h2HeadersSent;
  }

  get destroyed(): boolean {
    return this.h2Gone;
  }

  get finished(): boolean {
    // Ended by us, not cut, and our END_STREAM went out (not still queued behind a window the
    // client never opened: a reset then is a disconnect).
    return this.ended && !this.cut && this.endSent;
  }

  // ---- the connection's calls -----------------------------------------------------------

  override onStart(): void {
    this.site.startStream(this);
  }

  override onData(buffer: Buffer, start: number, end: number): void {
    if (this.bodyMode === BodyMode.Dropped) return;
    // A copy: the bytes are in the connection's read buffer, and the upstream may queue them.
    const chunk = Buffer.from(buffer.subarray(start, end));
    if (this.bodyMode === BodyMode.Read && !this.bodyPaused && this.heldBody.length === 0) {
      this.handler!.onRequestData(chunk);
    } else {
      if (this.heldBody === NO_CHUNKS) this.heldBody = [];
      this.heldBody.push(chunk);
    }
  }

  override onEnd(): void {
    this.requestEnded = true;
    if (this.bodyMode === BodyMode.Read && !this.bodyPaused && this.heldBody.length === 0) {
      this.requestEndDelivered = true;
      this.handler!.onRequestEnd();
    }
  }

  override onCancel(): void {
    // onClose follows and tells the handler.
  }

  override onDrain(): void {
    this.handler?.onResponseDrain();
  }

  override onClose(): void {
    this.heldBody = NO_CHUNKS;
    if (this.handler !== undefined) process.nextTick(notifyClosed, this);
  }

  /** @internal see notifyClosed */
  handlerOnClose(): void {
    this.handler!.onDownstreamClose();
  }

  // ---- Downstream ------------------------------------------------------------------------

  attach(handler: DownstreamHandler): void {
    this.handler = handler;
  }

  readBody(): void {
    this.bodyMode = BodyMode.Read;
    this.bodyPaused = true;
    this.pauseReceiving();
  }

  pauseBody(): void {
    this.bodyPaused = true;
    this.pauseReceiving();
  }

  resumeBody(): void {
    this.bodyPaused = false;
    if (this.bodyMode === BodyMode.Unread) {
      // Before readBody: the body flows and is dropped.
      this.bodyMode = BodyMode.Dropped;
      this.heldBody = NO_CHUNKS;
    }
    if (this.delivering) return;
    if (this.bodyMode === BodyMode.Read) this.deliverHeld();
    if (!this.bodyPaused && !this.h2Gone) this.resumeReceiving();
  }

  /** Hands the held chunks, then the end, to the handler until it pauses again. */
  private deliverHeld(): void {
    const handler = this.handler!;
    this.delivering = true;
    try {
      while (this.heldBody.length > 0 && !this.bodyPaused && !this.h2Gone) {
        handler.onRequestData(this.heldBody.shift()!);
      }
      if (this.requestEnded && !this.requestEndDelivered && this.heldBody.length === 0 && !this.bodyPaused) {
        this.requestEndDelivered = true;
        handler.onRequestEnd();
      }
    } finally {
      this.delivering = false;
    }
  }

  writeContinue(): void {
    if (this.h2HeadersSent || this.h2Gone) return;
    this.informational(CONTINUE_FIELDS);
  }

  writeHead(status: number, headers: OutgoingHeaders, trailersMayFollow = true): void {
    // As Node's: nothing to answer on a stream that is gone.
    if (this.h2Gone || this.h2HeadersSent) return;
    // Throws before anything is sent when a field cannot go on HTTP/2.
    const code = finalStatus(status);
    const fields = fieldsOf(headers, code, true);
    this.trailersMayFollow = trailersMayFollow;
    if (this.method === 'HEAD' || code === '204' || code === '205' || code === '304') {
      // No body can follow: the head ends the stream, as Node's respond does.
      this.respond(fields, undefined, NO_FIELDS);
    } else {
      this.respond(fields);
    }
  }

  flushHead(): void {
    // The head went out in writeHead; without one, a 200 goes.
    if (!this.h2HeadersSent && !this.h2Gone) this.writeHead(200, {});
  }

  write(chunk: Buffer): boolean {
    // A HEAD request's or a 204/304's stream ended with its head: there is no body to send.
    if (this.h2Gone || this.h2LocalClosed) return true;
    if (!this.h2HeadersSent) this.writeHead(200, {});
    return this.writeData(chunk);
  }

  holdsWrittenBytes(): boolean {
    return this.holdsQueuedBytes;
  }

  end(body?: string, trailers?: OutgoingHeaders): void {
    if (this.h2Gone) return;
    if (!this.h2HeadersSent) this.writeHead(200, {}, trailers !== undefined);
    this.ended = true;
    if (this.h2LocalClosed) return;
    const payload = body === undefined || body === '' ? EMPTY : Buffer.from(body);
    if (trailers === undefined || !this.trailersMayFollow) {
      this.writeData(payload, true);
      return;
    }
    let fields: string[];
    try {
      fields = fieldsOf(trailers, undefined, false);
    } catch {
      // A trailer HTTP/2 cannot carry: the response cannot end whole, so it ends cut.
      this.destroy();
      return;
    }
    if (fields.length === 0) {
      this.writeData(payload, true);
      return;
    }
    if (payload.length > 0) this.writeData(payload);
    this.endResponse(fields);
  }

  respondTrailersOnly(headers: OutgoingHeaders): boolean {
    if (this.h2Gone || this.h2HeadersSent) return false;
    let fields: string[];
    try {
      fields = fieldsOf(headers, finalStatus(headers[':status'] as string), true);
    } catch {
      // A field HTTP/2 cannot carry: the stream is reset rather than the process failing.
      this.destroy();
      return false;
    }
    this.respond(fields, undefined, NO_FIELDS);
    this.ended = true;
    return true;
  }

  destroy(): void {
    this.cut = true;
    if (!this.h2Gone) this.reset(ErrorCode.InternalError);
  }
}

const EMPTY = Buffer.alloc(0);
