/**
 * The downstream HTTP/1.1 server on `node:net`: one object per connection, its socket
 * listeners bound once, reading request heads itself (http1-request-parser.ts) and acting as
 * the {@link Downstream} of one exchange at a time.
 *
 * - **Bodies** are handed on as they arrive: Content-Length counted down, chunked decoded into
 *   slices of the received buffers. While the exchange has paused the body (or not asked for
 *   it yet), the socket is paused and at most the buffer in hand is held.
 * - **Pipelining**: the next request's head is read only once the current response is
 *   finished and its request body read; bytes that come early are held (and the socket paused
 *   when they pass the head limit), so two exchanges never share the connection.
 * - **Responses**: the head is written with the first body bytes (one write for a small
 *   response), chunk-encoded when it has no Content-Length on an HTTP/1.1 request, until the
 *   close on an HTTP/1.0 one; `connection: close` when the request, the response or draining
 *   asks for it.
 * - **100-continue**: relayed by the exchange (`writeContinue`); a final answer sent without a
 *   100 while the body is still unread closes the connection, as the client may or may not
 *   send the body.
 * - **Upgrade** (`Connection: upgrade` with `Upgrade`): the socket is handed to the sink with
 *   the bytes that followed the head; this object lets go of it.
 * - **Malformed requests** get a precise 400, 413, 431, 501 or 505 and the connection closes.
 * - **Idle connections** close after `KEEP_ALIVE_TIMEOUT_MS` without bytes and no exchange,
 *   and so does a connection whose last response went out while its client keeps it open.
 */
import { STATUS_CODES } from 'node:http';
import type * as net from 'node:net';
import type { IncomingHeaders } from './forwarding-headers';
import { DEFAULT_REQUEST_LIMITS, type HeaderOperations, type RequestLimits } from './config-model';
import type { OutgoingHeaders } from './header-operations';
import type { Downstream, DownstreamHandler } from './http-exchange-types';
import { parseRequestHead, type RequestHead } from './http1-request-parser';
import {
  CHUNKED,
  ChunkedBodyError,
  ChunkedDecoder,
  headEnd,
  LENGTH,
  nameIs,
  NO_BODY,
  type ChunkedBodySink,
} from './http1-response-parser';
import { HOP_BY_HOP, isHopByHop, isHopByHopAt } from './forwarding-headers';
import { DeadlineSweep, type DeadlineHolder } from './deadline-sweep';
import type { AcceptedSocket, ReceivedBytesSink } from './accepted-socket';
import type { ProxyReason } from './traffic-facts';
import { corkForTurn, sendTurnWrites } from './turn-corks';

/** How long a connection may stay silent between requests, in ms (Node's server default). */
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/** Where the connection's requests go. */
export interface Http1RequestSink {
  /** A request head was read: start its exchange (it calls `attach` at once). */
  onRequest(request: Http1ServerRequest): void;
  /**
   * A request asks to switch protocols: the socket is the sink's from now on (paused), with
   * `rest`, the bytes received after the head.
   */
  onUpgrade(request: Http1ServerRequest, socket: net.Socket, rest: Buffer): void;
  /**
   * The server answered a request itself, before any exchange (a malformed head, a limit);
   * `socket` is the connection's.
   */
  onRefused(status: number, socket: net.Socket): void;
}

const READ_HEAD = 0;
const READ_BODY = 1;
/** The request is read; its response is not finished yet. */
const AWAIT_RESPONSE = 2;
const CLOSED = 3;

const CRLF = '\r\n';
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
/** Characters a header value cannot carry on HTTP/1.1 (Node's server refuses the same). */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Responses smaller than this go out with their head in one buffer; larger ones corked. */
const COALESCE_BYTES = 16 * 1024;

let cachedDate = '';
let cachedDateSecond = -1;

/** The Date header value, computed at most once a second (shared with http2-server-downstream.ts). */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== cachedDateSecond) {
    cachedDateSecond = second;
    cachedDate = new Date(now).toUTCString();
  }
  return cachedDate;
}

/** One request of a connection and its response: the exchange's {@link Downstream}. */
export class Http1ServerRequest implements Downstream {
  readonly http2 = false;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHeaders;
  readonly hasBody: boolean;
  readonly receivedHead: string | undefined;
  readonly expectContinue: boolean;
  readonly minorVersion: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  handler: DownstreamHandler | undefined;
  headersSent = false;
  finished = false;
  /** The handler was told the exchange is over. */
  closed = false;
  /** readBody was called: body bytes go to the handler. */
  bodyListening = false;
  /** Body bytes may flow (to the handler when listening, else dropped). */
  bodyFlowing = false;
  continueSent = false;
  /** The response head, not yet written. */
  pendingHead: string | undefined;
  chunkedResponse = false;
  /** HEAD, 1xx, 204, 304: the response has no body whatever the head says. */
  noResponseBody = false;
  keepAlive: boolean;

  constructor(
    private readonly connection: Http1ServerConnection,
    head: RequestHead,
  ) {
    this.method = head.method;
    this.url = head.target;
    this.headers = head.headers;
    this.hasBody = head.framing !== NO_BODY;
    this.receivedHead = head.repeatedFields ? undefined : head.text;
    this.expectContinue = head.expectContinue;
    this.minorVersion = head.minorVersion;
    this.keepAlive = head.keepAlive;
    this.remoteAddress = connection.remoteAddress;
    this.remotePort = connection.remotePort;
    this.localAddress = connection.localAddress;
    this.localPort = connection.localPort;
  }

  get destroyed(): boolean {
    return this.connection.socket.destroyed;
  }

  attach(handler: DownstreamHandler): void {
    this.handler = handler;
  }

  readBody(): void {
    this.bodyListening = true;
    this.bodyFlowing = false;
  }

  pauseBody(): void {
    this.bodyFlowing = false;
  }

  resumeBody(): void {
    if (this.bodyFlowing) return;
    this.bodyFlowing = true;
    if (this.connection.current === this) this.connection.resumeReading();
  }

  writeContinue(): void {
    if (this.headersSent || this.continueSent || this.connection.current !== this) return;
    this.continueSent = true;
    corkForTurn(this.connection);
    this.connection.socket.write(CONTINUE, 'latin1');
  }

  writeHead(status: number, headers: OutgoingHeaders): void {
    if (this.headersSent) throw new Error('the response head was sent already');
    let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    let hasLength = false;
    let hasDate = false;
    let close = false;
    for (const name in headers) {
      const value = headers[name]!;
      if (name.length === 14 && name === 'content-length') hasLength = true;
      else if (name.length === 4 && name === 'date') hasDate = true;
      else if (name.length === 10 && name === 'connection') {
        close = /(^|,)\s*close\s*(,|$)/i.test(String(value));
        continue; // written below, once persistence is known
      } else if (name.length === 17 && name === 'transfer-encoding') continue; // the framing is ours
      if (!TOKEN.test(name)) throw new Error(`invalid header name ${JSON.stringify(name)}`);
      if (typeof value === 'string') {
        if (BAD_VALUE.test(value)) throw new Error(`invalid character in header ${name}`);
        text += `${name}: ${value}\r\n`;
      } else {
        for (const one of value) {
          if (BAD_VALUE.test(one)) throw new Error(`invalid character in header ${name}`);
          text += `${name}: ${one}\r\n`;
        }
      }
    }
    this.finishHead(text, status, hasLength, hasDate, close);
  }

  writeReceivedHead(
    status: number,
    head: string,
    listed: ReadonlySet<string> | undefined,
    ops: HeaderOperations | undefined,
    close: boolean,
  ): void {
    if (this.headersSent) throw new Error('the response head was sent already');
    let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    let hasLength = false;
    let hasDate = false;
    let cut: ReadonlySet<string> | undefined = listed;
    if (ops !== undefined && (ops.remove.length > 0 || ops.set.length > 0)) {
      const names = new Set(listed);
      for (const name of ops.remove) names.add(name);
      for (const [name] of ops.set) names.add(name);
      cut = names;
    }
    // Runs of kept lines are copied as slices: [keepFrom, pos) is kept so far.
    let pos = head.indexOf(CRLF);
    pos = pos < 0 ? head.length : pos + 2;
    let keepFrom = pos;
    while (pos < head.length) {
      let end = head.indexOf(CRLF, pos);
      if (end < 0) end = head.length;
      // The response parser refused lines without a name and colon, and obs-folds.
      const colon = head.indexOf(':', pos);
      const nameLength = colon - pos;
      let drop = false;
      if (cut === undefined) {
        // The usual case: names compared in place (no slice, no lower-case copy per line).
        if (nameLength <= 17 && NOTED_LENGTHS[nameLength] === 1) {
          if (nameLength === 14 && nameIs(head, pos, 'content-length')) {
            // Repeats were checked equal by the parser; one line goes on (as Node's client keeps one).
            if (hasLength) drop = true;
            hasLength = true;
          } else if (nameLength === 4 && nameIs(head, pos, 'date')) hasDate = true;
          else drop = isHopByHopAt(head, pos, nameLength);
        }
      } else {
        // Names the upstream's Connection lists, or header operations replace: any name.
        const name = head.slice(pos, colon).toLowerCase();
        if (isHopByHop(name) || cut.has(name)) drop = true;
        else if (name === 'content-length') {
          // Repeats were checked equal by the parser; one line goes on (as Node's client keeps one).
          if (hasLength) drop = true;
          hasLength = true;
        } else if (name === 'date') hasDate = true;
      }
      if (drop) {
        if (pos > keepFrom) text += head.slice(keepFrom, pos);
        keepFrom = end + 2;
      }
      pos = end + 2;
    }
    if (keepFrom < head.length) text += `${head.slice(keepFrom)}\r\n`;
    if (ops !== undefined) {
      for (const [name, value] of ops.set) text += opLine(name, value);
      for (const [name, value] of ops.add) text += opLine(name, value);
      if (!hasDate) hasDate = hasOp(ops, 'date');
    }
    this.finishHead(text, status, hasLength, hasDate, close);
  }

  /** Ends a head whose field lines are `text`: date, framing, persistence. */
  private finishHead(
    text: string,
    status: number,
    hasLength: boolean,
    hasDate: boolean,
    close: boolean,
  ): void {
    if (!hasDate) text += `date: ${httpDate()}\r\n`;
    if (this.method === 'HEAD' || status < 200 || status === 204 || status === 304) {
      this.noResponseBody = true;
    } else if (!hasLength) {
      if (this.minorVersion === 1) {
        this.chunkedResponse = true;
        text += 'transfer-encoding: chunked\r\n';
      } else {
        close = true; // the end of the body is the close
      }
    }
    // A final answer before a 100 Continue: the client may or may not send the body, so
    // the connection cannot be trusted for another request (Node's server does the same).
    if (close || this.connection.peerEnded || (this.expectContinue && !this.continueSent))
      this.keepAlive = false;
    if (!this.keepAlive) text += 'connection: close\r\n';
    else if (this.minorVersion === 0) text += 'connection: keep-alive\r\n';
    this.pendingHead = `${text}\r\n`;
    this.headersSent = true;
  }

  flushHead(): void {
    const head = this.pendingHead;
    if (head === undefined || this.connection.current !== this) return;
    this.pendingHead = undefined;
    corkForTurn(this.connection);
    this.connection.socket.write(head, 'latin1');
  }

  write(chunk: Buffer): boolean {
    const connection = this.connection;
    const socket = connection.socket;
    if (this.finished || connection.current !== this || socket.destroyed) return true;
    if (this.noResponseBody || chunk.length === 0) {
      this.flushHead();
      return true;
    }
    const head = this.pendingHead;
    this.pendingHead = undefined;
    if (head !== undefined && chunk.length < COALESCE_BYTES && !this.chunkedResponse) {
      // One string, one write, held to the end of the turn (turn-corks.ts): the head and a
      // small body leave in one packet, with the other answers of this turn. A latin1 string
      // holds no reference to the chunk, which the caller may then reuse.
      corkForTurn(connection);
      return socket.write(head + chunk.toString('latin1'), 'latin1');
    }
    // Body bytes stream as written; what the turn held goes first.
    sendTurnWrites(connection);
    connection.bytesQueued = true;
    if (this.chunkedResponse) {
      const size = `${chunk.length.toString(16)}\r\n`;
      socket.cork();
      socket.write(head === undefined ? size : head + size, 'latin1');
      socket.write(chunk);
      const writable = socket.write(CRLF, 'latin1');
      socket.uncork();
      return writable;
    }
    if (head === undefined) return socket.write(chunk);
    socket.cork();
    socket.write(head, 'latin1');
    const writable = socket.write(chunk);
    socket.uncork();
    return writable;
  }

  holdsWrittenBytes(): boolean {
    // A write the kernel took whole is done synchronously; anything else is still queued. Only
    // bytes are referenced: strings held for the turn are not.
    const connection = this.connection;
    if (!connection.bytesQueued) return false;
    if (connection.socket.writableLength > 0) return true;
    connection.bytesQueued = false;
    return false;
  }

  end(body?: string, trailers?: OutgoingHeaders): void {
    const connection = this.connection;
    if (this.finished || connection.current !== this) return;
    this.finished = true;
    const socket = connection.socket;
    if (!socket.destroyed) {
      const head = this.pendingHead ?? '';
      this.pendingHead = undefined;
      const last = this.chunkedResponse ? `0\r\n${trailerLines(trailers)}\r\n` : '';
      if (body === undefined || body === '' || this.noResponseBody) {
        if (head !== '' || last !== '') {
          corkForTurn(connection);
          socket.write(head + last, 'latin1');
        }
      } else {
        // A local answer: its text is UTF-8, the head latin1.
        const bytes = Buffer.from(body, 'utf8');
        sendTurnWrites(connection);
        socket.cork();
        socket.write(this.chunkedResponse ? `${head}${bytes.length.toString(16)}\r\n` : head, 'latin1');
        socket.write(bytes);
        if (this.chunkedResponse) socket.write(`\r\n${last}`, 'latin1');
        socket.uncork();
      }
    }
    connection.responseFinished(this, body === undefined);
  }

  respondTrailersOnly(): boolean {
    return false;
  }

  destroy(): void {
    this.connection.socket.destroy();
  }
}

/** Response fields a proxy never forwards: as `downstreamResponseHeaders` leaves out. */
const HOP_BY_HOP_RESPONSE = HOP_BY_HOP;
/** 1 at the lengths of the names `writeReceivedHead` must look at (hop-by-hop, content-length, date). */
const NOTED_LENGTHS = new Uint8Array(18);
for (const name of [...HOP_BY_HOP_RESPONSE, 'content-length', 'date']) NOTED_LENGTHS[name.length] = 1;

/** A field line from a route's header operation (names were checked when the route was read). */
function opLine(name: string, value: string): string {
  if (BAD_VALUE.test(value)) throw new Error(`invalid character in header ${name}`);
  return `${name}: ${value}\r\n`;
}

function hasOp(ops: HeaderOperations, name: string): boolean {
  for (const [one] of ops.set) if (one === name) return true;
  for (const [one] of ops.add) if (one === name) return true;
  return false;
}

/** Trailer fields as lines, the ones that cannot be written left out. */
function trailerLines(trailers: OutgoingHeaders | undefined): string {
  if (trailers === undefined) return '';
  let text = '';
  for (const name in trailers) {
    if (!TOKEN.test(name)) continue;
    const value = trailers[name]!;
    for (const one of typeof value === 'string' ? [value] : value)
      if (!BAD_VALUE.test(one)) text += `${name}: ${one}\r\n`;
  }
  return text;
}

/** Tells the exchange its downstream is over (after the response's last write). */
function notifyClosed(request: Http1ServerRequest): void {
  if (request.closed) return;
  request.closed = true;
  request.handler?.onDownstreamClose();
}

export class Http1ServerConnection implements ChunkedBodySink, DeadlineHolder, ReceivedBytesSink {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** The request whose exchange owns the connection now. */
  current: Http1ServerRequest | undefined;
  /** The client ended its side: no request after the current one. */
  peerEnded = false;
  /** turn-corks.ts's */
  corkedForTurn = false;
  /** Bytes (not strings) were handed to the socket since its queue was last seen empty. */
  bytesQueued = false;
  private state = READ_HEAD;
  /** Received bytes not yet consumed: a partial head, held body bytes, or pipelined requests. */
  private buffered: Buffer | undefined;
  /** Where to look for the end of a head in `buffered` (bytes before were searched already). */
  private searchFrom = 0;
  private framing = NO_BODY;
  private remaining = 0;
  private decoder: ChunkedDecoder | undefined;
  private bodyBytes = 0;
  private bodyComplete = true;
  private processing = false;
  private readPaused = false;
  /**
   * Received chunks are in a read buffer shared with other connections (accepted-socket.ts),
   * valid only while `onReceivedBytes` runs: what is kept is copied.
   */
  private readonly sharedReads: boolean;
  private readonly onData = (chunk: Buffer): void => this.onReceivedBytes(chunk);
  private readonly onEnd = (): void => this.peerEnd();
  private readonly onClose = (): void => this.socketClosed();
  private readonly onDrain = (): void => {
    const current = this.current;
    if (current !== undefined && !current.closed) current.handler?.onResponseDrain();
  };
  /** When bytes last went either way (the sweep's clock, ms): the keep-alive timeout counts from it. */
  lastActiveMs: number;
  // DeadlineHolder links, the sweep's
  sweepPrev: DeadlineHolder | undefined = undefined;
  sweepNext: DeadlineHolder | undefined = undefined;
  sweepLinked = false;
  /** The connection made its own sweep (none was given) and closes it when it goes. */
  private readonly ownsDeadlines: boolean;
  private readonly deadlines: DeadlineSweep;

  constructor(
    readonly socket: net.Socket,
    private readonly sink: Http1RequestSink,
    private readonly limits: RequestLimits = DEFAULT_REQUEST_LIMITS,
    /** Called once the connection is closed (or handed over by an upgrade). */
    private readonly onGone: ((connection: Http1ServerConnection) => void) | undefined = undefined,
    /**
     * The timer of the keep-alive timeout, shared by the listener's connections (one timer,
     * not one socket timeout refreshed by every read and write); default: one of its own.
     */
    deadlines?: DeadlineSweep,
    /** The socket's reader when it is read with `onread` (accepted-socket.ts); else 'data' events. */
    private readonly reader: AcceptedSocket | undefined = undefined,
  ) {
    this.ownsDeadlines = deadlines === undefined;
    this.deadlines = deadlines ?? new DeadlineSweep();
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? '';
    this.localPort = socket.localPort ?? 0;
    this.sharedReads = reader !== undefined;
    if (reader !== undefined) reader.receiver = this;
    else socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    this.lastActiveMs = this.deadlines.now();
    this.deadlines.watch(this, this.lastActiveMs + KEEP_ALIVE_TIMEOUT_MS);
  }

  /** DeadlineHolder: the keep-alive timeout. */
  nextDeadlineMs(): number {
    return this.lastActiveMs + KEEP_ALIVE_TIMEOUT_MS;
  }

  /** DeadlineHolder: `KEEP_ALIVE_TIMEOUT_MS` without bytes either way. */
  onDeadline(nowMs: number): void {
    // Counted again from now, as a socket timeout fires again only after more silence.
    this.lastActiveMs = nowMs;
    // Idle between requests, or answered and waiting for a client that never closes.
    if (this.current === undefined || this.state === CLOSED) this.socket.destroy();
  }

  /** Bytes went one way or the other: the keep-alive timeout starts again. */
  touch(): void {
    this.lastActiveMs = this.deadlines.now();
  }

  /** The connection is gone or handed over: no more timeout. */
  private stopDeadlines(): void {
    this.deadlines.unwatch(this);
    if (this.ownsDeadlines) this.deadlines.close();
  }

  /** Closes the connection now if no request is on it (draining). */
  closeIfIdle(): void {
    if (this.current === undefined && this.state === READ_HEAD) this.socket.destroy();
  }

  /**
   * Bytes from the client (also those the protocol sniff read before this object took the
   * socket). With a reader, `chunk` is valid during the call only.
   */
  onReceivedBytes(chunk: Buffer): void {
    // After the last response (or a refusal) nothing more is read: bytes are dropped, not held.
    this.lastActiveMs = this.deadlines.now();
    if (this.state === CLOSED) return;
    const held = this.buffered;
    this.buffered = held === undefined ? chunk : Buffer.concat([held, chunk]);
    this.process();
    // Bytes kept for later (a partial head, a pipelined request, a paused body) leave the shared buffer.
    const kept = this.buffered;
    if (this.sharedReads && kept !== undefined && kept.buffer === chunk.buffer)
      this.buffered = Buffer.from(kept);
  }

  /** Consumes buffered bytes as far as the state allows. Not re-entered: nested calls only set flags. */
  private process(): void {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.buffered !== undefined && this.state !== CLOSED) {
        if (this.state === READ_HEAD) {
          if (this.current !== undefined) {
            // A pipelined request waits for the current response.
            if (this.buffered.length > this.limits.maxHeadBytes) this.pauseReading();
            return;
          }
          if (!this.readHead()) return;
        } else if (this.state === READ_BODY) {
          if (!this.readBody()) return;
        } else {
          // AWAIT_RESPONSE: bytes of the next request wait for this response.
          if (this.buffered.length > this.limits.maxHeadBytes) this.pauseReading();
          return;
        }
      }
    } finally {
      this.processing = false;
    }
  }

  /** Reads a head from `buffered`; false when more bytes are needed or the connection is done. */
  private readHead(): boolean {
    let buf = this.buffered!;
    // A client may send empty lines between requests (RFC 9112 §2.2).
    if (buf[0] === 13) {
      let skip = 0;
      while (skip + 1 < buf.length && buf[skip] === 13 && buf[skip + 1] === 10) skip += 2;
      if (skip > 0) {
        this.consume(skip);
        this.searchFrom = 0;
        if (this.buffered === undefined) return false;
        buf = this.buffered;
      }
    }
    const end = headEnd(buf, this.searchFrom);
    const max = this.limits.maxHeadBytes;
    if (end < 0) {
      if (buf.length > max) {
        this.refuse(431, `request head larger than ${max} bytes`);
        return false;
      }
      this.searchFrom = Math.max(0, buf.length - 3);
      return false;
    }
    if (end > max) {
      this.refuse(431, `request head larger than ${max} bytes`);
      return false;
    }
    this.searchFrom = 0;
    const parsed = parseRequestHead(buf.toString('latin1', 0, end - 4), this.limits);
    if ('status' in parsed) {
      this.refuse(parsed.status, parsed.message);
      return false;
    }
    this.consume(end);
    if (parsed.method === 'CONNECT') {
      this.refuse(501, 'CONNECT is not supported by this listener');
      return false;
    }
    const request = new Http1ServerRequest(this, parsed);
    this.current = request;
    if (parsed.upgrade) {
      this.handOver(request);
      return false;
    }
    this.framing = parsed.framing;
    this.remaining = parsed.length;
    this.bodyBytes = 0;
    this.decoder = parsed.framing === CHUNKED ? new ChunkedDecoder() : undefined;
    this.bodyComplete = parsed.framing === NO_BODY;
    this.state = this.bodyComplete ? AWAIT_RESPONSE : READ_BODY;
    this.sink.onRequest(request);
    return true;
  }

  /** Hands body bytes on; false when they must wait (paused) or more are needed. */
  private readBody(): boolean {
    const request = this.current;
    // Once the response is finished, what is left of the body is read and dropped.
    const flowing = request === undefined || request.finished || request.bodyFlowing;
    if (!flowing) {
      this.pauseReading();
      return false;
    }
    const buf = this.buffered!;
    if (this.framing === LENGTH) {
      const take = Math.min(this.remaining, buf.length);
      this.remaining -= take;
      this.consume(take);
      this.deliver(take === buf.length ? buf : buf.subarray(0, take));
      if (this.remaining === 0) this.bodyEnded();
      return true;
    }
    let end: number;
    try {
      end = this.decoder!.decode(buf, 0, buf.length, this);
    } catch (error) {
      if (!(error instanceof ChunkedBodyError)) throw error;
      const tooLarge = error.message === 'chunk size too large';
      this.refuse(tooLarge ? 413 : 400, `malformed chunked body: ${error.message}`);
      return false;
    }
    if (this.state === CLOSED) return false;
    if (end < 0) {
      this.buffered = undefined;
      return false;
    }
    this.consume(end);
    this.bodyEnded();
    return true;
  }

  onBodyData(buf: Buffer, start: number, end: number): void {
    if (this.state === CLOSED || end <= start) return;
    this.bodyBytes += end - start;
    if (this.bodyBytes > this.limits.maxBodyBytes) {
      this.refuse(
        413,
        `request body over the limit of ${this.limits.maxBodyBytes} bytes`,
        'request-too-large',
      );
      return;
    }
    this.deliver(buf.subarray(start, end));
  }

  private deliver(chunk: Buffer): void {
    const request = this.current;
    if (request === undefined || request.finished || !request.bodyListening || chunk.length === 0) return;
    // The exchange may keep body chunks (queued writes, the retry buffer): not in the shared buffer.
    request.handler?.onRequestData(this.sharedReads ? Buffer.from(chunk) : chunk);
  }

  private bodyEnded(): void {
    this.bodyComplete = true;
    this.decoder = undefined;
    const request = this.current;
    if (request === undefined || request.finished) {
      this.nextRequest();
      return;
    }
    this.state = AWAIT_RESPONSE;
    if (request.bodyListening) request.handler?.onRequestEnd();
  }

  /**
   * The current response is finished (called by the request's `end`). The exchange hears it
   * before this returns when `notifyNow` (the end of a forwarded response: no tick per
   * request), else on the next tick (a local answer, recorded by the exchange after `end`).
   */
  responseFinished(request: Http1ServerRequest, notifyNow: boolean): void {
    this.touch();
    this.afterResponse(request);
    if (notifyNow) notifyClosed(request);
    else process.nextTick(notifyClosed, request);
  }

  /** The connection after a response: closed, reading the rest of the body, or the next request. */
  private afterResponse(request: Http1ServerRequest): void {
    if (this.state === CLOSED) return;
    const unreadBody = !this.bodyComplete;
    if (
      !request.keepAlive ||
      (unreadBody && request.expectContinue && !request.continueSent) ||
      this.peerEnded
    ) {
      // The client hears the end of the connection after the response.
      this.state = CLOSED;
      this.buffered = undefined;
      this.socket.end();
      return;
    }
    if (unreadBody) {
      // Read the rest of the body and drop it; the next request follows it.
      this.state = READ_BODY;
      this.resumeReading();
      return;
    }
    this.nextRequest();
  }

  private nextRequest(): void {
    this.current = undefined;
    this.state = READ_HEAD;
    this.resumeReading();
  }

  /** Reading may go on (the body was resumed, or a request finished). */
  resumeReading(): void {
    if (this.readPaused) {
      this.readPaused = false;
      this.socket.resume();
    }
    if (this.buffered !== undefined) this.process();
  }

  private pauseReading(): void {
    if (this.readPaused) return;
    this.readPaused = true;
    this.socket.pause();
  }

  private consume(bytes: number): void {
    const buf = this.buffered!;
    this.buffered = bytes >= buf.length ? undefined : buf.subarray(bytes);
  }

  /** Answers a request that cannot be read, and closes the connection. */
  /** Answers `status` itself and closes; an exchange under way hears `reason` when given. */
  private refuse(status: number, message: string, reason?: ProxyReason): void {
    const current = this.current;
    this.state = CLOSED;
    this.buffered = undefined;
    const socket = this.socket;
    if (current !== undefined && current.headersSent) {
      socket.destroy();
      return;
    }
    // The exchange must not answer on top of this: its response counts as started, and the
    // connection is no longer its.
    this.current = undefined;
    if (current !== undefined) current.headersSent = true;
    const body = `${message}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Bad Request'}\r\n` +
        `date: ${httpDate()}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    if (current === undefined) {
      this.sink.onRefused(status, socket);
      return;
    }
    if (reason !== undefined && !current.closed) current.handler?.onRefusedByServer(status, reason);
    process.nextTick(notifyClosed, current);
  }

  private handOver(request: Http1ServerRequest): void {
    const rest = this.buffered === undefined ? Buffer.alloc(0) : Buffer.from(this.buffered);
    this.buffered = undefined;
    this.state = CLOSED;
    this.current = undefined;
    const socket = this.socket;
    socket.pause();
    // The tunnel reads the socket as a stream.
    if (this.reader !== undefined) this.reader.receiver = undefined;
    else socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('close', this.onClose);
    socket.off('drain', this.onDrain);
    this.stopDeadlines();
    this.onGone?.(this);
    this.sink.onUpgrade(request, socket, rest);
  }

  private peerEnd(): void {
    this.peerEnded = true;
    const current = this.current;
    if (current === undefined || this.state === READ_BODY) {
      // Nothing to answer, or a body that will never be complete.
      this.state = CLOSED;
      if (current === undefined) this.socket.end();
      else this.socket.destroy();
    }
    // Else the response is on its way; responseFinished ends the connection after it.
  }

  private socketClosed(): void {
    this.stopDeadlines();
    this.state = CLOSED;
    this.buffered = undefined;
    const current = this.current;
    if (current !== undefined) notifyClosed(current);
    this.onGone?.(this);
  }
}
