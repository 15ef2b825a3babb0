/**
 * One attempt of a request on one upstream endpoint, over HTTP/1.1 or HTTP/2, behind one
 * small interface so that the request path (http-exchange.ts) does not care which.
 * HTTP/1.1 is our own client on the pooled sockets; HTTP/2 is Node's.
 */
import * as http2 from 'node:http2';
import type { OutgoingHeaders } from './header-operations';
import type {
  ConnectionUser,
  ConnectionWaiter,
  Http1Connection,
  Http1ConnectionPool,
  PoolFailure,
} from './http1-connection-pool';
import {
  CHUNKED,
  ChunkedBodyError,
  ChunkedDecoder,
  headEnd,
  LENGTH,
  MAX_HEAD_BYTES,
  NO_BODY,
  parseResponseHead,
  UNTIL_CLOSE,
  type ChunkedBodySink,
  type ResponseHead,
} from './http1-response-parser';
import type { Http2SessionPool, PooledSession, SessionWaiter } from './http2-session-pool';
import type { IncomingHeaders, UpstreamFieldLines } from './forwarding-headers';
import { corkForTurn, sendTurnWrites } from './turn-corks';

/** What an attempt tells the request path. After `onFailure` or `onEnd`, nothing more. */
export interface UpstreamCallHandler {
  /** The connection is there: the request head is sent and the body may be written. */
  onReady(call: UpstreamCall): void;
  /** The upstream answered `100 Continue`. */
  onContinue(call: UpstreamCall): void;
  /**
   * The response head; the body follows through onData. HTTP/2 gives `headers` (pseudo-headers
   * included); `endsStream` when the head ends the response (a trailers-only answer). HTTP/1.1
   * gives `received` instead: the parsed head, with its text as received (latin1, without its
   * final CRLFCRLF) for a downstream that forwards it as text (`Downstream.writeReceivedHead`),
   * and its header object built only when read.
   */
  onResponse(
    call: UpstreamCall,
    status: number,
    headers: IncomingHeaders | undefined,
    endsStream: boolean,
    received?: ResponseHead,
  ): void;
  onData(call: UpstreamCall, chunk: Buffer): void;
  /**
   * Whether a chunk given to `onData` may still be referenced (written downstream and not yet
   * sent): the HTTP/1.1 client then reads into new memory instead of reusing its buffer.
   */
  holdsResponseBytes(): boolean;
  /** The response is complete; `trailers` when the upstream sent any. */
  onEnd(call: UpstreamCall, trailers: IncomingHeaders | undefined): void;
  /** The body may be written again after `write` returned false. */
  onDrain(call: UpstreamCall): void;
  /**
   * The attempt failed: no connection (`connectFailure`, `overflow`), or the connection or
   * stream was reset (`reset`; `stale` when it was a reused HTTP/1.1 connection that failed
   * before any response byte — the server closed it as we sent).
   */
  onFailure(call: UpstreamCall, failure: CallFailure): void;
}

export type CallFailure =
  PoolFailure | { readonly kind: 'reset'; readonly detail: string; readonly stale: boolean };

/** The request head of an attempt. */
export interface UpstreamRequestHead {
  readonly method: string;
  /** Origin-form target: path and query. */
  readonly path: string;
  /** Host / :authority to send. */
  readonly authority: string;
  /** End-to-end headers, without Host and pseudo-headers (empty when `fieldLines` is given). */
  readonly headers: OutgoingHeaders;
  /** False when the request has no body: the head alone is the request. */
  readonly hasBody: boolean;
  /**
   * HTTP/1.1 upstreams only: the end-to-end fields as text, forwarded from the received head
   * (forwarding-headers.ts `upstreamFieldLines`), in place of `headers`.
   */
  readonly fieldLines?: UpstreamFieldLines | undefined;
}

export interface UpstreamCall {
  /** Asks the pool for a connection and sends the head once there is one. */
  start(): void;
  /** Writes body bytes; false means wait for onDrain. Only after onReady. */
  write(chunk: Buffer): boolean;
  /** Ends the request body. Only after onReady. */
  end(): void;
  /** Stops delivering response data until resume() (downstream backpressure). */
  pause(): void;
  resume(): void;
  /** Abandons the attempt: the stream or connection is reset; no handler call follows. */
  abort(): void;
}

const HEAD_PHASE = 0;
const BODY_PHASE = 1;
const DONE_PHASE = 2;

/**
 * Whether a head built of `lines` lines (each ending in CRLF, the empty last one included) has
 * no NUL, CR or LF but its own line ends — no value brought one: one pass over the text instead
 * of a regular expression per value (values such as generated ids are concatenations, which a
 * regular expression flattens first, in the runtime).
 */
export function isCleanHead(text: string, lines: number): boolean {
  if (text.indexOf('\0') >= 0) return false;
  let breaks = 0;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) {
    if (text.charCodeAt(at - 1) !== 0x0d) return false;
    breaks++;
  }
  if (breaks !== lines) return false;
  // Every LF follows a CR and there are as many LFs as lines: a CR elsewhere is a bare one.
  let returns = 0;
  for (let at = text.indexOf('\r'); at >= 0; at = text.indexOf('\r', at + 1)) returns++;
  return returns === lines;
}
/** Methods that take `content-length: 0` when sent without a body (as Node's client does). */
const BODYLESS_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'DELETE',
  'OPTIONS',
  'TRACE',
  'CONNECT',
]);
const CHUNK_END = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

/**
 * An attempt over a pooled HTTP/1.1 connection, on the socket itself: the request head is
 * written as one string; a request body without Content-Length is chunk-encoded; the response
 * head is parsed here (http1-response-parser.ts) and the body handed on as it arrives —
 * Content-Length counted down, chunked decoded without copying, or until the close.
 */
export class Http1Call implements UpstreamCall, ConnectionWaiter, ConnectionUser, ChunkedBodySink {
  private connection: Http1Connection | undefined;
  private done = false;
  private reused = false;
  /** Some response byte arrived (a close is then not a stale connection). */
  private answered = false;
  private responded = false;
  private phase = HEAD_PHASE;
  private held: Buffer | undefined;
  private framing = NO_BODY;
  private remaining = 0;
  private reusable = true;
  private decoder: ChunkedDecoder | undefined;
  private chunkedRequest = false;
  private requestEnded = false;

  constructor(
    private readonly pool: Http1ConnectionPool,
    private readonly head: UpstreamRequestHead,
    private readonly handler: UpstreamCallHandler,
  ) {}

  start(): void {
    this.pool.acquire(this);
  }

  onConnectionFailure(failure: PoolFailure): void {
    if (this.done) return;
    this.done = true;
    this.handler.onFailure(this, failure);
  }

  onConnection(connection: Http1Connection, reused: boolean): void {
    if (this.done) {
      connection.release(); // abandoned while waiting: hand the connection back
      return;
    }
    this.reused = reused;
    this.connection = connection;
    connection.user = this;
    const text = this.requestHead();
    if (text === undefined) {
      this.phase = DONE_PHASE;
      this.done = true;
      connection.release();
      this.handler.onFailure(this, {
        kind: 'reset',
        detail: 'a request header value has characters HTTP/1.1 cannot carry',
        stale: false,
      });
      return;
    }
    // Held to the end of the turn with the other requests of this turn (turn-corks.ts).
    corkForTurn(connection);
    connection.socket.write(text, 'latin1');
    this.handler.onReady(this);
  }

  /** The request head, or undefined when a value cannot be written safely. */
  private requestHead(): string | undefined {
    const head = this.head;
    // The request line and host (names were checked where they were made).
    let text = `${head.method} ${head.path} HTTP/1.1\r\nhost: ${head.authority}\r\n`;
    let lines = 2;
    const headers = head.headers;
    let hasLength = false;
    const fieldLines = head.fieldLines;
    if (fieldLines !== undefined) {
      text += fieldLines.text;
      lines += fieldLines.lines;
      hasLength = fieldLines.hasLength;
    }
    for (const name in headers) {
      if (name === 'host' || name === 'connection') continue;
      const value = headers[name]!;
      if (name === 'content-length') hasLength = true;
      if (typeof value === 'string') {
        text += `${name}: ${value}\r\n`;
        lines++;
      } else {
        for (const one of value) {
          text += `${name}: ${one}\r\n`;
          lines++;
        }
      }
    }
    if (!head.hasBody) {
      this.requestEnded = true;
      if (!hasLength && !BODYLESS_METHODS.has(head.method)) {
        text += 'content-length: 0\r\n';
        lines++;
      }
    } else if (!hasLength) {
      this.chunkedRequest = true;
      text += 'transfer-encoding: chunked\r\n';
      lines++;
    }
    text += '\r\n';
    return isCleanHead(text, lines + 1) ? text : undefined;
  }

  write(chunk: Buffer): boolean {
    const connection = this.connection!;
    const socket = connection.socket;
    if (this.done || socket.destroyed) return true;
    // Body bytes stream as written; the head the turn held goes first.
    sendTurnWrites(connection);
    if (!this.chunkedRequest) return socket.write(chunk);
    if (chunk.length === 0) return true;
    socket.cork();
    socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    socket.write(chunk);
    const writable = socket.write(CHUNK_END, 'latin1');
    socket.uncork();
    return writable;
  }

  end(): void {
    if (this.requestEnded) return;
    this.requestEnded = true;
    if (this.done) return;
    if (this.chunkedRequest) {
      corkForTurn(this.connection!);
      this.connection!.socket.write(LAST_CHUNK, 'latin1');
    }
  }

  pause(): void {
    // Once done, the connection may already carry another exchange.
    if (!this.done) this.connection?.socket.pause();
  }

  resume(): void {
    if (!this.done) this.connection?.socket.resume();
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    const connection = this.connection;
    if (connection === undefined) this.pool.cancel(this);
    else if (connection.user === this) connection.discard();
  }

  onSocketDrain(): void {
    if (!this.done) this.handler.onDrain(this);
  }

  holdsReceivedBytes(): boolean {
    // `held` is a copy (see onSocketData); body bytes went to the handler.
    return this.handler.holdsResponseBytes();
  }

  onSocketClose(detail: string): void {
    if (this.done) return;
    if (this.responded && this.framing === UNTIL_CLOSE) {
      // The close is the end of this response.
      this.done = true;
      this.phase = DONE_PHASE;
      this.handler.onEnd(this, undefined);
      return;
    }
    this.fail(this.responded ? 'the upstream closed the connection in the middle of the response' : detail);
  }

  onSocketData(chunk: Buffer): void {
    if (this.done) return;
    this.answered = true;
    let buf = chunk;
    let at = 0;
    while (at < buf.length) {
      if (this.phase === HEAD_PHASE) {
        const held = this.held;
        let searchFrom = 0;
        if (held !== undefined) {
          searchFrom = Math.max(0, held.length - 3);
          buf = Buffer.concat([held, at === 0 ? buf : buf.subarray(at)]);
          this.held = undefined;
          at = 0;
        } else if (at > 0) {
          searchFrom = at;
        }
        const end = headEnd(buf, searchFrom);
        if (end < 0) {
          if (buf.length - at > MAX_HEAD_BYTES) return this.fail('the upstream response head is too large');
          // A copy: the connection reads into the same memory again (see Http1Connection).
          this.held = Buffer.from(at === 0 ? buf : buf.subarray(at));
          return;
        }
        if (end - at > MAX_HEAD_BYTES) return this.fail('the upstream response head is too large');
        const text = buf.toString('latin1', at, end - 4);
        const parsed = parseResponseHead(text, this.head.method === 'HEAD');
        at = end;
        if (typeof parsed === 'string') return this.fail(`malformed upstream response head: ${parsed}`);
        if (!this.onHead(parsed)) return;
        continue;
      }
      if (this.phase === BODY_PHASE) {
        if (this.framing === LENGTH) {
          const end = Math.min(buf.length, at + this.remaining);
          this.remaining -= end - at;
          this.handler.onData(this, at === 0 && end === buf.length ? buf : buf.subarray(at, end));
          if (this.done) return;
          at = end;
          if (this.remaining === 0) this.complete(at < buf.length);
        } else if (this.framing === CHUNKED) {
          let end: number;
          try {
            end = this.decoder!.decode(buf, at, buf.length, this);
          } catch (error) {
            if (error instanceof ChunkedBodyError)
              return this.fail(`malformed chunked body: ${error.message}`);
            throw error;
          }
          if (this.done) return;
          if (end < 0) return;
          at = end;
          this.complete(at < buf.length);
        } else {
          this.handler.onData(this, at === 0 ? buf : buf.subarray(at));
        }
        return;
      }
      // Bytes after the response: the connection is out of step.
      if (!this.done) this.fail('the upstream sent bytes after its response');
      return;
    }
  }

  onBodyData(buf: Buffer, start: number, end: number): void {
    if (!this.done && end > start) this.handler.onData(this, buf.subarray(start, end));
  }

  /** A response head; false when nothing more is to be read (done, or failed). */
  private onHead(parsed: ResponseHead): boolean {
    const status = parsed.status;
    if (status < 200) {
      if (status === 101) {
        this.fail('the upstream switched protocols unasked');
        return false;
      }
      if (status === 100) this.handler.onContinue(this);
      return !this.done;
    }
    this.responded = true;
    this.framing = parsed.framing;
    this.remaining = parsed.length;
    this.reusable = parsed.reusable;
    if (parsed.keepAliveSeconds >= 0)
      this.pool.noteKeepAliveTimeout(this.connection!, parsed.keepAliveSeconds);
    if (parsed.framing === CHUNKED) this.decoder = new ChunkedDecoder();
    this.phase = BODY_PHASE;
    this.handler.onResponse(this, status, undefined, false, parsed);
    if (this.done) return false;
    if (parsed.framing === NO_BODY) {
      this.complete(false);
      return false;
    }
    return true;
  }

  /** The response is complete; `extra`: more bytes followed it. */
  private complete(extra: boolean): void {
    this.done = true;
    this.phase = DONE_PHASE;
    const connection = this.connection!;
    // The upstream answered before the request body was all sent (it refused it early): the
    // connection is in the middle of a request and cannot be reused.
    if (this.reusable && this.requestEnded && !extra) connection.release();
    else connection.discard();
    const trailers = this.decoder?.trailers;
    this.handler.onEnd(this, trailers);
  }

  private fail(detail: string): void {
    if (this.done) return;
    this.done = true;
    this.phase = DONE_PHASE;
    const connection = this.connection;
    if (connection !== undefined && connection.user === this) connection.discard();
    this.handler.onFailure(this, {
      kind: 'reset',
      detail,
      stale: this.reused && !this.answered,
    });
  }
}

/** An attempt as one stream of a pooled HTTP/2 session. */
export class Http2Call implements UpstreamCall, SessionWaiter {
  private stream: http2.ClientHttp2Stream | undefined;
  private done = false;
  private responded = false;
  private trailers: IncomingHeaders | undefined;

  constructor(
    private readonly pool: Http2SessionPool,
    private readonly head: UpstreamRequestHead,
    private readonly handler: UpstreamCallHandler,
    private readonly scheme: string,
  ) {}

  start(): void {
    this.pool.acquire(this);
  }

  onConnectionFailure(failure: PoolFailure): void {
    if (this.done) return;
    this.done = true;
    this.handler.onFailure(this, failure);
  }

  onSession(pooled: PooledSession): void {
    if (this.done) {
      this.pool.streamClosed(pooled);
      return;
    }
    const head = this.head;
    const headers: http2.OutgoingHttpHeaders = {
      ...head.headers,
      ':method': head.method,
      ':path': head.path,
      ':authority': head.authority,
      ':scheme': this.scheme,
    };
    let stream: http2.ClientHttp2Stream;
    try {
      stream = pooled.session.request(headers, { endStream: !head.hasBody });
    } catch (error) {
      // The session went away between the pool's check and now (GOAWAY, close).
      this.pool.streamClosed(pooled);
      this.done = true;
      this.handler.onFailure(this, { kind: 'reset', detail: (error as Error).message, stale: true });
      return;
    }
    this.stream = stream;
    stream.on('response', (responseHeaders, flags) => {
      if (this.done) return;
      const status = Number(responseHeaders[':status']);
      if (status === 100) return; // 'continue' reports it
      this.responded = true;
      // A head that ends the stream is still followed by 'end', which reports the end.
      const endsStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      this.handler.onResponse(this, status, responseHeaders as IncomingHeaders, endsStream);
    });
    stream.on('continue', () => {
      if (!this.done) this.handler.onContinue(this);
    });
    stream.on('trailers', (trailers) => {
      this.trailers = trailers as IncomingHeaders;
    });
    stream.on('data', (chunk: Buffer) => {
      if (!this.done) this.handler.onData(this, chunk);
    });
    stream.on('end', () => {
      if (this.done || !this.responded) return;
      this.done = true;
      this.handler.onEnd(this, this.trailers);
    });
    stream.on('drain', () => {
      if (!this.done) this.handler.onDrain(this);
    });
    stream.on('error', () => undefined); // 'close' reports the failure
    stream.on('close', () => {
      this.pool.streamClosed(pooled);
      if (this.done) return;
      this.done = true;
      const code = stream.rstCode;
      this.handler.onFailure(this, {
        kind: 'reset',
        detail:
          code === undefined || code === 0
            ? 'the upstream closed the stream'
            : `the upstream reset the stream (HTTP/2 error ${code})`,
        // A refused stream was never processed: safe to try again.
        stale: code === http2.constants.NGHTTP2_REFUSED_STREAM && !this.responded,
      });
    });
    this.handler.onReady(this);
  }

  write(chunk: Buffer): boolean {
    return this.stream!.write(chunk);
  }

  end(): void {
    this.stream!.end();
  }

  pause(): void {
    this.stream?.pause();
  }

  resume(): void {
    this.stream?.resume();
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    if (this.stream === undefined) this.pool.cancel(this);
    else if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }
}
