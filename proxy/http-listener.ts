/**
 * An HTTP listener: HTTP/1.1 and HTTP/2 on one port. Without TLS, HTTP/2 is "prior
 * knowledge" h2c, told apart from HTTP/1.1 by the connection preface (RFC 9113 §3.4: it
 * starts with `PRI `, which no HTTP/1.1 method is) and served by our own HTTP/2 server
 * connection (http2/http2-server-connection.ts, streams as http2-server-downstream.ts), or,
 * with `SWITCHBOARD_HTTP2_SERVER=node`, by Node's `http2` core stream API
 * (http2-stream-downstream.ts); HTTP/1.1 by our own server on the socket
 * (http1-server-connection.ts). With TLS, Node's secure `http2` server offers h2 and
 * http/1.1 by ALPN and serves both (its compatibility objects, node-downstream.ts). Each
 * request becomes an {@link HttpExchange} on the listener's current context; a reload swaps
 * the context, and requests in flight keep the one they started with.
 */
import { readFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import {
  Http2ServerConnection,
  closeSessionWhenIdle,
  type Http2ServerKind,
  type Http2ServerStream,
  type ServerConnectionOwner,
} from '../http2';
import {
  MAX_REQUEST_HEAD_BYTES,
  MAX_REQUEST_HEADERS,
  type HttpListenerConfig,
  type RequestLimits,
} from './config-model';
import type { IncomingHeaders } from './forwarding-headers';
import type { OutgoingHeaders } from './header-operations';
import { HttpExchange, type HttpExchangeContext } from './http-exchange';
import {
  Http1ServerConnection,
  KEEP_ALIVE_TIMEOUT_MS,
  type Http1RequestSink,
  type Http1ServerRequest,
} from './http1-server-connection';
import { NodeDownstream } from './node-downstream';
import { Http2StreamDownstream, sessionAddressesOf, type SessionAddresses } from './http2-stream-downstream';
import { Http2ServerDownstream, type Http2DownstreamSite } from './http2-server-downstream';
import { proxyUpgrade } from './upgrade-proxy';
import { DeadlineSweep } from './deadline-sweep';
import { AcceptedSocket, SHARED_READ_BUFFER_BYTES, type ReceivedBytesSink } from './accepted-socket';

/** How long a new plaintext connection may stay silent before its protocol is known, in ms. */
const SNIFF_TIMEOUT_MS = 60_000;

/** The HTTP/2 client preface starts so; an HTTP/1.1 request line cannot. */
const PREFACE_START = Buffer.from('PRI');

/** What a client may have open on one HTTP/2 connection, on either server. */
const MAX_CONCURRENT_STREAMS = 1024;

/** Where a listener listens once bound. */
export interface BoundAddress {
  readonly address: string;
  readonly port: number;
}

/** TLS material read for a listener. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** Reads a listener's certificate and key. @throws Error naming the file that cannot be read */
export async function readTlsMaterial(config: HttpListenerConfig): Promise<TlsMaterial | undefined> {
  if (config.tls === undefined) return undefined;
  const read = async (file: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (error) {
      throw new Error(
        `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
  };
  return { cert: await read(config.tls.certFile), key: await read(config.tls.keyFile) };
}

export class HttpListener implements Http1RequestSink {
  private context: HttpExchangeContext;
  private readonly server: net.Server;
  private readonly h2: http2.Http2Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly h1Connections = new Set<Http1ServerConnection>();
  private readonly forgetH1 = (connection: Http1ServerConnection): void =>
    void this.h1Connections.delete(connection);
  /** Open HTTP/2 sessions, with their connection's addresses (read once per session). */
  private readonly sessions = new Map<http2.Http2Session, SessionAddresses>();
  /** Open h2c connections on our own HTTP/2 server. */
  private readonly h2cConnections = new Set<Http2ServerConnection>();
  private draining = false;
  /** Set while draining: called when a connection closes. */
  private onSocketClosed: (() => void) | undefined;
  private readonly isDraining = (): boolean => this.draining;
  /** The timeouts of this listener's exchanges, on one timer. */
  private readonly deadlines = new DeadlineSweep();
  /** What the plaintext connections read into (accepted-socket.ts); allocated with the first. */
  private sharedReadBuffer: Buffer | undefined;

  constructor(
    private config: HttpListenerConfig,
    context: Omit<HttpExchangeContext, 'draining' | 'deadlines'>,
    tls: TlsMaterial | undefined,
    /** Which server takes plaintext h2c: our own (default) or `node:http2`. TLS is always Node's. */
    h2cServer: Http2ServerKind = 'own',
  ) {
    this.context = { ...context, draining: this.isDraining, deadlines: this.deadlines };
    const onRequest = (
      req: http.IncomingMessage | http2.Http2ServerRequest,
      res: http.ServerResponse | http2.Http2ServerResponse,
    ): void => {
      if (refusedByHeadLimits(req, res, this.config.limits)) {
        this.refusedNodeRequest(req);
        return;
      }
      new HttpExchange(this.context, new NodeDownstream(req, res), {
        http2: req.httpVersionMajor === 2,
        secure: tls !== undefined,
        expectContinue: false,
      }).start();
    };
    const onCheckContinue = (
      req: http.IncomingMessage | http2.Http2ServerRequest,
      res: http.ServerResponse | http2.Http2ServerResponse,
    ): void => {
      if (refusedByHeadLimits(req, res, this.config.limits)) {
        this.refusedNodeRequest(req);
        return;
      }
      new HttpExchange(this.context, new NodeDownstream(req, res), {
        http2: req.httpVersionMajor === 2,
        secure: tls !== undefined,
        expectContinue: true,
      }).start();
    };
    const onUpgrade = (req: http.IncomingMessage, socket: net.Socket, head: Buffer): void => {
      proxyUpgrade(
        this.context,
        { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers },
        socket,
        head,
        true,
      );
    };
    const onSession = (session: http2.ServerHttp2Session): void => {
      this.sessions.set(session, sessionAddressesOf(session));
      session.on('close', () => this.sessions.delete(session));
      // A session error (a protocol violation by the peer) ends that session only.
      session.on('error', () => undefined);
      // As the own server's h2c connections below; not on TLS (h2 there is Node's, as before).
      if (tls === undefined) closeSessionWhenIdle(session, KEEP_ALIVE_TIMEOUT_MS);
      if (this.draining) session.close();
    };
    const onStream = (stream: http2.ServerHttp2Stream): void => {
      stream.on('error', () => undefined); // a reset stream is the exchange's business, not the process's
    };
    if (tls !== undefined) {
      const secure = http2.createSecureServer({
        cert: tls.cert,
        key: tls.key,
        allowHTTP1: true,
        ALPNProtocols: ['h2', 'http/1.1'],
        ...NODE_HTTP2_OPTIONS,
      });
      secure.on('request', onRequest);
      secure.on('checkContinue', onCheckContinue);
      secure.on('upgrade', onUpgrade);
      secure.on('session', onSession);
      secure.on('stream', onStream);
      secure.on('connection', (socket: net.Socket) => this.track(socket));
      secure.on('tlsClientError', () => undefined);
      this.server = secure;
    } else {
      if (h2cServer === 'node') {
        // Core streams, not the compatibility layer: no 'request' listener, which would build a
        // request and a response object per stream (see http2-stream-downstream.ts).
        const h2 = http2.createServer(NODE_HTTP2_OPTIONS);
        h2.on('session', onSession);
        h2.on(
          'stream',
          (
            stream: http2.ServerHttp2Stream,
            headers: http2.IncomingHttpHeaders,
            _flags: number,
            raw: string[],
          ) => this.onH2cStream(stream, headers, raw),
        );
        this.h2 = h2;
      }
      // Half-open: a client that ends its side after a request still gets the response.
      // Paused: each accepted socket is read with onread instead (accepted-socket.ts).
      this.server = net.createServer({ noDelay: true, allowHalfOpen: true, pauseOnConnect: true }, (socket) =>
        this.accept(socket),
      );
    }
    // listen() reports bind errors; later ones (EMFILE on accept, …) are an operator's business.
    this.server.on('error', (error: Error) => {
      if (this.server.listening)
        this.context.services.logger.error(`listener ${this.config.name}: ${error.message}`);
    });
  }

  get name(): string {
    return this.config.name;
  }

  /** Binds the address; resolves with where it listens. @throws the bind error (EADDRINUSE, …) */
  listen(): Promise<BoundAddress> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen({ host: this.config.address, port: this.config.port }, () => {
        this.server.off('error', onError);
        const bound = this.server.address() as net.AddressInfo;
        resolve({ address: bound.address, port: bound.port });
      });
    });
  }

  /** Requests from now on use `context` (a new generation); requests in flight keep theirs. */
  update(config: HttpListenerConfig, context: Omit<HttpExchangeContext, 'draining' | 'deadlines'>): void {
    this.config = config;
    this.context = { ...context, draining: this.isDraining, deadlines: this.deadlines };
  }

  /** Open connections, for stats and tests. */
  get connections(): number {
    return this.sockets.size;
  }

  /**
   * Stops accepting, lets requests in flight finish (HTTP/1.1 connections close after
   * their current response, HTTP/2 sessions get GOAWAY), and closes what is left after
   * `timeoutMs`. Resolves once every connection is closed.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.server.close();
    for (const connection of this.h1Connections) connection.closeIfIdle();
    for (const session of this.sessions.keys()) session.close();
    // GOAWAY with the last stream id: the streams open finish, then each connection closes.
    for (const connection of this.h2cConnections) connection.shutdown();
    if (this.sockets.size > 0) await this.whenSocketsClosed(timeoutMs);
    // No exchange is left to time out.
    this.deadlines.close();
  }

  private whenSocketsClosed(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const socket of this.sockets) socket.destroy();
      }, timeoutMs);
      timer.unref();
      const check = (): void => {
        if (this.sockets.size > 0) return;
        clearTimeout(timer);
        resolve();
      };
      this.onSocketClosed = check;
      check();
    });
  }

  /** Closes everything now. */
  destroy(): void {
    this.draining = true;
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
    this.deadlines.close();
  }

  /** Http1RequestSink: a plaintext HTTP/1.1 request our server answered before any exchange. */
  onRefused(status: number, socket: net.Socket): void {
    this.refused(status, 'http', socket.remoteAddress);
  }

  /**
   * A request a server answered itself, before any exchange (a malformed head, one over the
   * listener's limits, a CONNECT or an expectation h2c does not serve): counted, and in the
   * access log with what was read of it (Envoy logs such a request too, flagged DPE).
   */
  refused(
    status: number,
    protocol: 'http' | 'http2',
    remoteAddress: string | undefined,
    head?: { method?: string | undefined; authority?: string | undefined; path?: string | undefined },
  ): void {
    this.context.services.counters.refusedRequests++;
    this.context.generation.accessLog?.logRefused({
      startTimeMs: Date.now(),
      listenerName: this.config.name,
      protocol,
      status,
      reason: status === 413 || status === 431 ? 'request-too-large' : 'downstream-protocol-error',
      remoteAddress: remoteAddress ?? '',
      ...head,
    });
  }

  /** A request refusedByHeadLimits answered (431). */
  private refusedNodeRequest(req: http.IncomingMessage | http2.Http2ServerRequest): void {
    const http2Request = req.httpVersionMajor === 2;
    const authority = http2Request ? req.headers[':authority'] : req.headers.host;
    this.refused(431, http2Request ? 'http2' : 'http', req.socket?.remoteAddress, {
      method: req.method,
      authority: typeof authority === 'string' ? authority : undefined,
      path: req.url,
    });
  }

  onRequest(request: Http1ServerRequest): void {
    new HttpExchange(this.context, request, {
      http2: false,
      secure: false,
      expectContinue: request.expectContinue,
    }).start();
  }

  /**
   * A plaintext HTTP/2 stream on our own server, its head complete: answered as the Node-served
   * one is (below), then exchanged.
   */
  startH2cStream(downstream: Http2ServerDownstream): void {
    const expect = downstream.headers['expect'];
    let expectContinue = false;
    if (downstream.method === 'CONNECT') {
      this.refuseH2cStream(downstream, CONNECT_REFUSED);
      return;
    }
    if (expect !== undefined) {
      if (expect !== '100-continue') {
        this.refuseH2cStream(downstream, EXPECTATION_FAILED);
        return;
      }
      expectContinue = true;
    }
    new HttpExchange(this.context, downstream, { http2: true, secure: false, expectContinue }).start();
  }

  /** Answers a stream of our own h2c server with `answer` alone, as refused. */
  private refuseH2cStream(downstream: Http2ServerDownstream, answer: OutgoingHeaders): void {
    downstream.respondTrailersOnly(answer);
    const authority = downstream.headers[':authority'];
    this.refused(Number(answer[':status']), 'http2', downstream.remoteAddress, {
      method: downstream.method,
      authority: typeof authority === 'string' ? authority : undefined,
      path: downstream.url,
    });
  }

  /** An h2c connection on our own server closed. */
  forgetH2c(connection: Http2ServerConnection): void {
    this.h2cConnections.delete(connection);
  }

  /** Answers a `node:http2` stream with `status` alone, as refused. */
  private refuseNodeH2cStream(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    status: number,
  ): void {
    respondOnly(stream, status);
    const field = (name: string): string | undefined => {
      const value = headers[name];
      return typeof value === 'string' ? value : undefined;
    };
    this.refused(status, 'http2', stream.session?.socket?.remoteAddress, {
      method: field(':method'),
      authority: field(':authority'),
      path: field(':path'),
    });
  }

  /** A plaintext HTTP/2 stream: answered as Node's compatibility layer would, then exchanged. */
  private onH2cStream(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    raw: readonly string[],
  ): void {
    stream.on('error', ignoreStreamError);
    // Node holds a client only to the largest limits (NODE_HTTP2_OPTIONS); the listener's, here.
    if (isOverHeadLimits(raw, this.config.limits)) {
      this.refuseNodeH2cStream(stream, headers, 431);
      return;
    }
    const method = headers[':method'];
    const expect = headers['expect'];
    let expectContinue = false;
    if (method === 'CONNECT') {
      // No tunnels over HTTP/2 here (nor were there through Node's 'connect' event).
      this.refuseNodeH2cStream(stream, headers, 405);
      return;
    }
    if (expect !== undefined) {
      if (expect !== '100-continue') {
        this.refuseNodeH2cStream(stream, headers, 417);
        return;
      }
      // The 100 goes when the upstream asks for the body (HttpExchange.onContinue).
      expectContinue = true;
    }
    const session = stream.session;
    const addresses = (session !== undefined ? this.sessions.get(session) : undefined) ?? NO_ADDRESSES;
    new HttpExchange(this.context, new Http2StreamDownstream(stream, headers as IncomingHeaders, addresses), {
      http2: true,
      secure: false,
      expectContinue,
    }).start();
  }

  /** A plaintext HTTP/1.1 request that asks to switch protocols (Http1RequestSink). */
  onUpgrade(request: Http1ServerRequest, socket: net.Socket, rest: Buffer): void {
    proxyUpgrade(this.context, request, socket, rest, false);
  }

  private get readBuffer(): Buffer {
    return (this.sharedReadBuffer ??= Buffer.allocUnsafe(SHARED_READ_BUFFER_BYTES));
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.onSocketClosed?.();
    });
  }

  /** A plaintext connection: read with `onread` from the start, its protocol sniffed first. */
  private accept(accepted: net.Socket): void {
    const reader = new AcceptedSocket(accepted, this.readBuffer, NO_RECEIVER);
    reader.receiver = new ProtocolSniff(this, reader);
    const socket = reader.socket;
    this.track(socket);
    socket.on('error', () => undefined); // the protocol servers add their own handling
  }

  /** ProtocolSniff: the connection speaks HTTP/1.1; `seen` is valid during the call only. */
  serveHttp1(reader: AcceptedSocket, seen: Buffer): void {
    const connection = new Http1ServerConnection(
      reader.socket,
      this,
      this.config.limits,
      this.forgetH1,
      this.deadlines,
      reader,
    );
    this.h1Connections.add(connection);
    connection.onReceivedBytes(seen);
  }

  /** ProtocolSniff: the connection speaks HTTP/2; `seen` is a copy. */
  serveHttp2(reader: AcceptedSocket, seen: Buffer): void {
    const socket = reader.socket;
    // As Node's HTTP/2 server: a client that ends its side ends the connection.
    socket.allowHalfOpen = false;
    if (this.h2 === undefined) {
      // Our own server, fed from the listener's read buffer like the HTTP/1.1 one.
      const site = new H2cConnectionSite(this, socket);
      const connection = new Http2ServerConnection(socket, site, {
        maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
        // One listener, one keep-alive: an h2c client without a stream goes when an HTTP/1.1 one would.
        idleTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
        maxHeaderListBytes: this.config.limits.maxHeadBytes,
        maxHeaderCount: this.config.limits.maxHeaderCount,
        readsSocket: false,
      });
      site.connection = connection;
      this.h2cConnections.add(connection);
      reader.receiver = site;
      connection.receive(seen);
      if (this.draining) connection.shutdown();
      return;
    }
    reader.receiver = undefined; // Node's session reads the socket as a stream
    // The HTTP/2 session reads bytes already buffered in the socket (node#35475).
    socket.pause();
    socket.unshift(seen);
    this.h2!.emit('connection', socket);
  }
}

/**
 * Node's HTTP/2 servers (TLS, and `SWITCHBOARD_HTTP2_SERVER=node`) are given the largest head
 * a listener may configure as their own hard caps, announced as MAX_HEADER_LIST_SIZE: once a
 * client has acknowledged them, Node resets a stream over them (ENHANCE_YOUR_CALM) rather
 * than answering, so the listener's own limits are held by isOverHeadLimits, which answers
 * 431 — as our own server does below its hard block cap. Fixed, they need no new server
 * when a listener's limits change on reload. (Its pair count includes the pseudo-headers.)
 */
const NODE_HTTP2_OPTIONS: http2.ServerOptions = Object.freeze({
  maxHeaderListPairs: MAX_REQUEST_HEADERS + 5,
  settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: MAX_REQUEST_HEAD_BYTES },
});

/**
 * Whether a request's raw header list (names and values alternating) is over the listener's
 * head limits, counted as RFC 9113 §6.5.2 counts (name, value and 32 a field); the field
 * count leaves the pseudo-headers out.
 */
export function isOverHeadLimits(raw: readonly string[], limits: RequestLimits): boolean {
  let bytes = 0;
  let fields = 0;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    bytes += name.length + raw[i + 1]!.length + 32;
    if (name.charCodeAt(0) !== 0x3a) fields++;
  }
  return bytes > limits.maxHeadBytes || fields > limits.maxHeaderCount;
}

/**
 * Answers 431 to a request Node's servers took over the listener's head limits (see
 * NODE_HTTP2_OPTIONS; over TLS its HTTP/1.1 parser has its own 16 KiB cap, which a larger
 * `requestHeadBytes` does not lift). True when it answered.
 */
function refusedByHeadLimits(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
  limits: RequestLimits,
): boolean {
  if (!isOverHeadLimits(req.rawHeaders, limits)) return false;
  res.writeHead(431, { 'content-type': 'text/plain' });
  res.end(
    `request head over the listener's limits (${limits.maxHeadBytes} bytes, ${limits.maxHeaderCount} fields)\n`,
  );
  return true;
}

/** A reset stream is the exchange's business, not the process's. */
function ignoreStreamError(): void {}

/** Answers a stream with a bare status, ending it. */
function respondOnly(stream: http2.ServerHttp2Stream, status: number): void {
  if (!stream.destroyed && !stream.closed) stream.respond({ ':status': status }, { endStream: true });
}

/** The addresses of a stream whose session was not seen (it closed already). */
const NO_ADDRESSES: SessionAddresses = Object.freeze({
  remoteAddress: '',
  remotePort: 0,
  localAddress: '',
  localPort: 0,
});

const CONNECT_REFUSED: OutgoingHeaders = Object.freeze({ ':status': '405' }) as OutgoingHeaders;
const EXPECTATION_FAILED: OutgoingHeaders = Object.freeze({ ':status': '417' }) as OutgoingHeaders;

/**
 * One h2c connection on our own server, as its streams and its listener see it: the
 * connection's addresses (read once), the owner that makes its streams, and the receiver of
 * its socket's bytes.
 */
class H2cConnectionSite implements Http2DownstreamSite, ServerConnectionOwner, ReceivedBytesSink {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  connection: Http2ServerConnection | undefined;

  constructor(
    private readonly listener: HttpListener,
    socket: net.Socket,
  ) {
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? '';
    this.localPort = socket.localPort ?? 0;
  }

  onReceivedBytes(chunk: Buffer): void {
    this.connection!.receive(chunk);
  }

  onStream(fields: readonly string[], endStream: boolean): Http2ServerStream {
    return new Http2ServerDownstream(fields, endStream, this);
  }

  startStream(downstream: Http2ServerDownstream): void {
    this.listener.startH2cStream(downstream);
  }

  /** Our h2c server answered a stream itself (its header list over the limit). */
  onRefused(status: number): void {
    this.listener.refused(status, 'http2', this.remoteAddress);
  }

  onClose(connection: Http2ServerConnection): void {
    this.listener.forgetH2c(connection);
  }
}

/** The receiver of a reader until the sniff sets its own. */
const NO_RECEIVER: ReceivedBytesSink = { onReceivedBytes: () => undefined };

/** Reads the first bytes of a plaintext connection and hands it to the HTTP/1.1 or HTTP/2 server. */
class ProtocolSniff implements ReceivedBytesSink {
  /** Bytes of a preface too short to tell yet (a copy). */
  private seen: Buffer | undefined;
  private readonly onSilence = (): void => void this.reader.socket.destroy();
  private readonly onEarlyEnd = (): void => void this.reader.socket.destroy();

  constructor(
    private readonly listener: HttpListener,
    private readonly reader: AcceptedSocket,
  ) {
    const socket = reader.socket;
    // A connection that says nothing is closed, as the HTTP servers' header timeouts would.
    socket.setTimeout(SNIFF_TIMEOUT_MS, this.onSilence);
    // The socket is half-open capable: a client that ends before saying anything is done.
    socket.once('end', this.onEarlyEnd);
  }

  onReceivedBytes(chunk: Buffer): void {
    const seen = this.seen === undefined ? chunk : Buffer.concat([this.seen, chunk]);
    const n = Math.min(seen.length, PREFACE_START.length);
    const isPreface = seen.subarray(0, n).equals(PREFACE_START.subarray(0, n));
    if (isPreface && seen.length < PREFACE_START.length) {
      this.seen = Buffer.from(seen); // too short to tell yet; the read buffer is reused
      return;
    }
    this.seen = undefined;
    const socket = this.reader.socket;
    socket.off('end', this.onEarlyEnd);
    socket.setTimeout(0);
    socket.off('timeout', this.onSilence);
    if (isPreface) this.listener.serveHttp2(this.reader, Buffer.from(seen));
    else this.listener.serveHttp1(this.reader, seen);
  }
}
