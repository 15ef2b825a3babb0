/**
 * MEASUREMENT AID, NOT THE PRODUCT. Prototype (iii) of bench/proxy/README.md: an HTTP/1.1
 * reverse proxy on bare `node:net` sockets, to measure how close Node can come to nginx when
 * it does only what a proxy must:
 *   - reads request heads itself (raw-heads.ts: method, version, framing, persistence; drops
 *     hop-by-hop headers; optionally adds x-forwarded-for, x-forwarded-proto, x-request-id)
 *     and writes them upstream as one latin1 string;
 *   - forwards bodies as the bytes that came — Content-Length counted down, chunked bodies
 *     scanned for their end (chunked-scanner.ts) but never de-chunked or copied;
 *   - keeps upstream connections in a LIFO pool of idle sockets, one exchange at a time each;
 *   - reads only the status line and framing headers of responses; a response head that needs
 *     no change is forwarded as the very bytes received, in the same write as its body;
 *   - applies backpressure both ways (pause the reader while the writer's buffer is full);
 *   - retries once, on a fresh connection, a request without body whose pooled connection
 *     closed before answering (the race every keep-alive pool has);
 *   - one object per client connection and one per upstream connection, with listeners bound
 *     once per socket: no closures and no objects per request beyond the parsed heads.
 * Not handled (the real proxy must): Upgrade/WebSocket, 100-continue beyond forwarding 1xx
 * heads, timeouts, header size limits per line, HTTP/1.0 upstream rewriting, routing.
 * When `h2c` is given, a connection opening with the HTTP/2 preface is handed to it.
 */
import * as net from 'node:net';
import { ChunkedBodyError, ChunkedScanner } from './chunked-scanner';
import {
  CHUNKED,
  LENGTH,
  NO_BODY,
  parseRequestHead,
  parseResponseHead,
  UNTIL_CLOSE,
  type AddedHeaders,
  type RequestHead,
} from './raw-heads';
import type { Upstream } from './upstream';

const HEAD_END = Buffer.from('\r\n\r\n');
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_IDLE_UPSTREAMS = 256;
/** A response body up to this size is copied behind a rewritten head, to leave in one write. */
const COALESCE_BYTES = 16 * 1024;

export interface RawProxyOptions {
  /** Add x-forwarded-for, x-forwarded-proto and (when absent) x-request-id, as the real proxy must. */
  readonly addHeaders: boolean;
  /** Receives connections that open with the HTTP/2 preface (the preface chunk pushed back). */
  readonly h2c?: (socket: net.Socket) => void;
  /**
   * Read upstream sockets with `onread` into a buffer of their own, reused while nothing still
   * points into it, instead of the stream's 'data' events (a new Buffer per read).
   */
  readonly upstreamOnread?: boolean;
}

const ONREAD_BYTES = 64 * 1024;

const REQ_HEAD = 0;
const REQ_BODY = 1;
/** The request is sent; the connection waits for the response (pipelined bytes are held). */
const REQ_SENT = 2;

const RESP_HEAD = 0;
const RESP_BODY = 1;
const RESP_DONE = 2;

function simpleResponse(status: number, reason: string): Buffer {
  return Buffer.from(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`,
    'latin1',
  );
}
const BAD_REQUEST = simpleResponse(400, 'Bad Request');
const BAD_GATEWAY = simpleResponse(502, 'Bad Gateway');
const HEAD_TOO_LARGE = simpleResponse(431, 'Request Header Fields Too Large');

function concat(held: Buffer | null, chunk: Buffer): Buffer {
  return held === null || held.length === 0 ? chunk : Buffer.concat([held, chunk]);
}

/** One upstream connection; its listeners are bound once and act for whichever exchange owns it. */
class PooledUpstream {
  readonly socket: net.Socket;
  owner: ClientConnection | null = null;
  /** Whether it has carried an exchange before (a closed idle connection is then retried). */
  used = false;
  closed = false;

  private readBuffer: Buffer | null = null;

  constructor(
    private readonly pool: UpstreamPool,
    upstream: Upstream,
    onread: boolean,
  ) {
    if (onread) {
      this.readBuffer = Buffer.allocUnsafe(ONREAD_BYTES);
      this.socket = net.connect({
        host: upstream.host,
        port: upstream.port,
        noDelay: true,
        onread: {
          buffer: () => this.readBuffer!,
          callback: (n: number, buf: Uint8Array) => this.onRead(n, buf),
        },
      });
    } else {
      this.socket = net.connect({ host: upstream.host, port: upstream.port, noDelay: true });
      this.socket.on('data', (chunk: Buffer) => {
        if (this.owner !== null) this.owner.onUpstreamData(chunk);
        else this.socket.destroy(); // bytes from an idle connection: it is out of step
      });
    }
    this.socket.on('drain', () => this.owner?.onUpstreamDrain());
    this.socket.on('error', () => {}); // 'close' follows and does the work
    this.socket.on('close', () => {
      this.closed = true;
      if (this.owner !== null) this.owner.onUpstreamClosed(this);
      else this.pool.forget(this);
    });
  }

  private onRead(n: number, buf: Uint8Array): boolean {
    const owner = this.owner;
    if (owner === null) {
      this.socket.destroy(); // bytes from an idle connection: it is out of step
      return false;
    }
    owner.onUpstreamData(Buffer.from(buf.buffer, buf.byteOffset, n));
    // Still pointed at (a write in flight, a partial head held): the next read gets a new buffer.
    if (owner.holdsUpstreamBytes()) this.readBuffer = Buffer.allocUnsafe(ONREAD_BYTES);
    return true;
  }
}

class UpstreamPool {
  private readonly idle: PooledUpstream[] = [];

  constructor(
    private readonly upstream: Upstream,
    private readonly onread: boolean,
  ) {}

  acquire(owner: ClientConnection): PooledUpstream {
    let connection = this.idle.pop();
    while (connection !== undefined && connection.closed) connection = this.idle.pop();
    connection ??= new PooledUpstream(this, this.upstream, this.onread);
    connection.owner = owner;
    return connection;
  }

  fresh(owner: ClientConnection): PooledUpstream {
    const connection = new PooledUpstream(this, this.upstream, this.onread);
    connection.owner = owner;
    return connection;
  }

  release(connection: PooledUpstream): void {
    connection.owner = null;
    connection.used = true;
    if (connection.socket.isPaused()) connection.socket.resume();
    if (this.idle.length < MAX_IDLE_UPSTREAMS && !connection.closed) this.idle.push(connection);
    else connection.socket.destroy();
  }

  forget(connection: PooledUpstream): void {
    const at = this.idle.indexOf(connection);
    if (at >= 0) this.idle.splice(at, 1);
  }
}

/** One client connection and the exchange in progress on it. */
class ClientConnection {
  private held: Buffer | null = null;
  private reqPhase = REQ_HEAD;
  private reqFraming = NO_BODY;
  private reqRemaining = 0;
  private readonly reqChunks = new ChunkedScanner();
  private request: RequestHead | null = null;
  private upstream: PooledUpstream | null = null;
  private retried = false;
  private respHeld: Buffer | null = null;
  private respPhase = RESP_DONE;
  private respFraming = NO_BODY;
  private respRemaining = 0;
  private readonly respChunks = new ChunkedScanner();
  private respReusable = true;
  private respStarted = false;
  private first = true;
  private closed = false;
  private readonly added: AddedHeaders;
  private readonly onData = (chunk: Buffer): void => this.onClientData(chunk);

  constructor(
    private readonly socket: net.Socket,
    private readonly pool: UpstreamPool,
    private readonly options: RawProxyOptions,
  ) {
    this.added = { enabled: options.addHeaders, clientAddress: socket.remoteAddress ?? '' };
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('drain', () => this.upstream?.socket.resume());
    socket.on('error', () => {});
    socket.on('close', () => this.onClientClosed());
  }

  private onClientData(chunk: Buffer): void {
    if (this.first) {
      this.first = false;
      if (
        this.options.h2c !== undefined &&
        chunk.length >= H2_PREFACE.length &&
        chunk.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)
      ) {
        this.socket.removeListener('data', this.onData);
        this.socket.pause();
        this.socket.unshift(chunk);
        this.closed = true; // no longer ours
        this.options.h2c(this.socket);
        return;
      }
    }
    if (this.reqPhase === REQ_SENT) {
      // Pipelined: hold it until the response in progress is over.
      this.held = concat(this.held, chunk);
      this.socket.pause();
      return;
    }
    this.consume(chunk);
  }

  /** Processes client bytes from the request head or body in progress. */
  private consume(input: Buffer): void {
    let buf = input;
    let at = 0;
    while (at < buf.length && !this.closed) {
      if (this.reqPhase === REQ_HEAD) {
        const searchFrom = this.held === null ? 0 : Math.max(0, this.held.length - 3);
        buf = concat(this.held, at === 0 ? buf : buf.subarray(at));
        this.held = null;
        at = 0;
        const end = buf.indexOf(HEAD_END, searchFrom);
        if (end < 0) {
          if (buf.length > MAX_HEAD_BYTES) return this.refuse(HEAD_TOO_LARGE);
          this.held = buf;
          return;
        }
        const parsed = parseRequestHead(buf.toString('latin1', 0, end), this.added);
        if (typeof parsed === 'string') return this.refuse(BAD_REQUEST);
        this.startExchange(parsed);
        at = end + 4;
        continue;
      }
      if (this.reqPhase === REQ_BODY) {
        let end: number;
        if (this.reqFraming === LENGTH) {
          end = Math.min(buf.length, at + this.reqRemaining);
          this.reqRemaining -= end - at;
          if (this.reqRemaining === 0) this.reqPhase = REQ_SENT;
        } else {
          try {
            end = this.reqChunks.scan(buf, at, buf.length);
          } catch (error) {
            if (error instanceof ChunkedBodyError) return this.refuse(BAD_REQUEST);
            throw error;
          }
          if (end < 0) end = buf.length;
          else this.reqPhase = REQ_SENT;
        }
        if (!this.upstream!.socket.write(buf.subarray(at, end))) this.socket.pause();
        at = end;
        continue;
      }
      // REQ_SENT: the next request came early; hold it.
      this.held = buf.subarray(at);
      this.socket.pause();
      return;
    }
  }

  private startExchange(request: RequestHead): void {
    this.request = request;
    this.reqFraming = request.framing;
    this.reqRemaining = request.length;
    this.reqChunks.reset();
    this.reqPhase = request.framing === NO_BODY ? REQ_SENT : REQ_BODY;
    this.respPhase = RESP_HEAD;
    this.respHeld = null;
    this.respStarted = false;
    this.retried = false;
    this.upstream = this.pool.acquire(this);
    this.upstream.socket.write(request.text, 'latin1');
  }

  onUpstreamData(chunk: Buffer): void {
    let buf = chunk;
    let at = 0;
    while (at < buf.length) {
      if (this.respPhase === RESP_HEAD) {
        const searchFrom = this.respHeld === null ? 0 : Math.max(0, this.respHeld.length - 3);
        buf = concat(this.respHeld, at === 0 ? buf : buf.subarray(at));
        this.respHeld = null;
        at = 0;
        const end = buf.indexOf(HEAD_END, searchFrom);
        if (end < 0) {
          if (buf.length > MAX_HEAD_BYTES) return this.upstreamFailed();
          this.respHeld = buf;
          return;
        }
        const request = this.request!;
        const head = parseResponseHead(buf.toString('latin1', 0, end), request.isHead, request.keepAlive);
        if (typeof head === 'string' || head.status === 101) return this.upstreamFailed();
        const bodyStart = end + 4;
        if (head.status < 200) {
          // 1xx: forward as is; the final response follows.
          this.respStarted = true;
          this.socket.write(buf.subarray(0, bodyStart));
          at = bodyStart;
          continue;
        }
        this.respFraming = head.framing;
        this.respRemaining = head.length;
        this.respReusable = head.reusable;
        this.respChunks.reset();
        this.respPhase = head.framing === NO_BODY ? RESP_DONE : RESP_BODY;
        const bodyEnd = this.responseBodyEnd(buf, bodyStart);
        if (bodyEnd < 0) return;
        this.respStarted = true;
        let ok: boolean;
        if (head.text === undefined) {
          ok = this.socket.write(buf.subarray(0, bodyEnd));
        } else if (bodyEnd - bodyStart <= COALESCE_BYTES) {
          const headBytes = Buffer.byteLength(head.text, 'latin1');
          const out = Buffer.allocUnsafe(headBytes + bodyEnd - bodyStart);
          out.write(head.text, 0, 'latin1');
          buf.copy(out, headBytes, bodyStart, bodyEnd);
          ok = this.socket.write(out);
        } else {
          this.socket.cork();
          this.socket.write(head.text, 'latin1');
          ok = this.socket.write(buf.subarray(bodyStart, bodyEnd));
          this.socket.uncork();
        }
        if (!ok) this.upstream!.socket.pause();
        at = bodyEnd;
      } else if (this.respPhase === RESP_BODY) {
        const end = this.responseBodyEnd(buf, at);
        if (end < 0) return;
        if (!this.socket.write(buf.subarray(at, end))) this.upstream!.socket.pause();
        at = end;
      } else {
        // Bytes after the end of the response: the connection is out of step; never reuse it.
        this.respReusable = false;
        break;
      }
      if (this.respPhase === RESP_DONE) {
        if (at < buf.length) this.respReusable = false;
        return this.finishExchange();
      }
    }
  }

  /** Where the body in `buf` from `from` ends (setting RESP_DONE when it does), or -1 on a framing error (handled). */
  private responseBodyEnd(buf: Buffer, from: number): number {
    switch (this.respFraming) {
      case NO_BODY:
        return from;
      case LENGTH: {
        const end = Math.min(buf.length, from + this.respRemaining);
        this.respRemaining -= end - from;
        if (this.respRemaining === 0) this.respPhase = RESP_DONE;
        return end;
      }
      case CHUNKED: {
        let end: number;
        try {
          end = this.respChunks.scan(buf, from, buf.length);
        } catch {
          this.upstreamFailed();
          return -1;
        }
        if (end < 0) return buf.length;
        this.respPhase = RESP_DONE;
        return end;
      }
      default: // UNTIL_CLOSE
        return buf.length;
    }
  }

  /** Whether bytes received from the upstream may still be referenced (queued writes, a partial head). */
  holdsUpstreamBytes(): boolean {
    return this.respHeld !== null || this.socket.writableLength > 0;
  }

  onUpstreamDrain(): void {
    if (this.socket.isPaused() && this.reqPhase === REQ_BODY) this.socket.resume();
  }

  onUpstreamClosed(connection: PooledUpstream): void {
    if (connection !== this.upstream) return;
    if (this.respPhase === RESP_BODY && this.respFraming === UNTIL_CLOSE) {
      this.respPhase = RESP_DONE;
      this.respReusable = false;
      this.upstream = null;
      this.closed = true;
      this.socket.end(); // a close-delimited body ends the client connection too
      return;
    }
    // A pooled connection the upstream had closed, before any answer: send again, once.
    const request = this.request;
    if (
      request !== null &&
      connection.used &&
      !this.retried &&
      !this.respStarted &&
      this.respHeld === null &&
      request.framing === NO_BODY
    ) {
      this.retried = true;
      this.upstream = this.pool.fresh(this);
      this.upstream.socket.write(request.text, 'latin1');
      return;
    }
    this.upstream = null;
    this.upstreamFailed();
  }

  /** The upstream cannot answer this request: 502 when nothing was sent yet, else cut the client off. */
  private upstreamFailed(): void {
    if (this.upstream !== null) {
      this.upstream.owner = null;
      this.upstream.socket.destroy();
      this.upstream = null;
    }
    if (this.respStarted) this.socket.destroy();
    else this.refuse(BAD_GATEWAY);
  }

  private finishExchange(): void {
    const upstream = this.upstream!;
    this.upstream = null;
    if (this.reqPhase === REQ_SENT && this.respReusable) this.pool.release(upstream);
    else {
      upstream.owner = null;
      upstream.socket.destroy();
    }
    const keepAlive = this.request!.keepAlive && this.reqPhase === REQ_SENT;
    this.request = null;
    this.respPhase = RESP_DONE;
    if (!keepAlive) {
      this.closed = true;
      this.socket.end();
      return;
    }
    this.reqPhase = REQ_HEAD;
    const held = this.held;
    this.held = null;
    if (this.socket.isPaused()) this.socket.resume();
    if (held !== null && held.length > 0) this.consume(held);
  }

  private refuse(answer: Buffer): void {
    this.closed = true;
    this.socket.end(answer);
  }

  private onClientClosed(): void {
    if (this.closed && this.upstream === null) return;
    this.closed = true;
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream !== null) {
      upstream.owner = null;
      upstream.socket.destroy(); // mid-exchange: its state is unknown
    }
  }
}

export function createRawProxy(upstream: Upstream, options: RawProxyOptions): net.Server {
  const pool = new UpstreamPool(upstream, options.upstreamOnread === true);
  return net.createServer({ noDelay: true }, (socket) => {
    new ClientConnection(socket, pool, options);
  });
}
