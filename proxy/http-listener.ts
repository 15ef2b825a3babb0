/**
 * An HTTP listener: HTTP/1.1 and HTTP/2 on one port. Without TLS, HTTP/2 is "prior
 * knowledge" h2c, told apart from HTTP/1.1 by the connection preface (RFC 9113 §3.4: it
 * starts with `PRI `, which no HTTP/1.1 method is); with TLS, ALPN offers h2 and
 * http/1.1. Each request becomes an {@link HttpExchange} on the listener's current context;
 * a reload swaps the context, and requests in flight keep the one they started with.
 */
import { readFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { HttpListenerConfig } from './config-model';
import { HttpExchange, type HttpExchangeContext } from './http-exchange';
import { proxyUpgrade } from './upgrade-proxy';

/** How long a new plaintext connection may stay silent before its protocol is known, in ms. */
const SNIFF_TIMEOUT_MS = 60_000;

/** The HTTP/2 client preface starts so; an HTTP/1.1 request line cannot. */
const PREFACE_START = Buffer.from('PRI');

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

export class HttpListener {
  private context: HttpExchangeContext;
  private readonly server: net.Server;
  private readonly h1: http.Server | undefined;
  private readonly h2: http2.Http2Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private draining = false;
  /** Set while draining: called when a connection closes. */
  private onSocketClosed: (() => void) | undefined;
  private readonly isDraining = (): boolean => this.draining;

  constructor(
    private config: HttpListenerConfig,
    context: Omit<HttpExchangeContext, 'draining'>,
    tls: TlsMaterial | undefined,
  ) {
    this.context = { ...context, draining: this.isDraining };
    const onRequest = (
      req: http.IncomingMessage | http2.Http2ServerRequest,
      res: http.ServerResponse | http2.Http2ServerResponse,
    ): void => {
      new HttpExchange(this.context, req, res, {
        http2: req.httpVersionMajor === 2,
        secure: tls !== undefined,
        expectContinue: false,
      }).start();
    };
    const onCheckContinue = (
      req: http.IncomingMessage | http2.Http2ServerRequest,
      res: http.ServerResponse | http2.Http2ServerResponse,
    ): void => {
      new HttpExchange(this.context, req, res, {
        http2: req.httpVersionMajor === 2,
        secure: tls !== undefined,
        expectContinue: true,
      }).start();
    };
    const onUpgrade = (req: http.IncomingMessage, socket: net.Socket, head: Buffer): void => {
      proxyUpgrade(this.context, req, socket, head, tls !== undefined);
    };
    const onSession = (session: http2.ServerHttp2Session): void => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      // A session error (a protocol violation by the peer) ends that session only.
      session.on('error', () => undefined);
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
        settings: { maxConcurrentStreams: 1024 },
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
      const h1 = http.createServer({
        // Long uploads and downloads are normal through a proxy: no whole-request deadline.
        requestTimeout: 0,
        headersTimeout: 60_000,
        keepAliveTimeout: 5_000,
      });
      h1.on('request', onRequest);
      h1.on('checkContinue', onCheckContinue);
      h1.on('upgrade', onUpgrade);
      h1.on('clientError', (_error, socket: net.Socket) => {
        if (socket.writable)
          socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
        else socket.destroy();
      });
      const h2 = http2.createServer({ settings: { maxConcurrentStreams: 1024 } });
      h2.on('request', onRequest);
      h2.on('checkContinue', onCheckContinue);
      h2.on('session', onSession);
      h2.on('stream', onStream);
      this.h1 = h1;
      this.h2 = h2;
      this.server = net.createServer({ noDelay: true }, (socket) => this.sniff(socket));
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
  update(config: HttpListenerConfig, context: Omit<HttpExchangeContext, 'draining'>): void {
    this.config = config;
    this.context = { ...context, draining: this.isDraining };
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
    this.h1?.closeIdleConnections();
    for (const session of this.sessions) session.close();
    if (this.sockets.size === 0) return;
    await new Promise<void>((resolve) => {
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
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.onSocketClosed?.();
    });
  }

  /** Reads the first bytes of a plaintext connection and hands it to the HTTP/1.1 or HTTP/2 server. */
  private sniff(socket: net.Socket): void {
    this.track(socket);
    socket.on('error', () => undefined); // the protocol servers add their own handling
    let seen: Buffer | undefined;
    // A connection that says nothing is closed, as the HTTP servers' header timeouts would.
    const onSilence = (): void => void socket.destroy();
    socket.setTimeout(SNIFF_TIMEOUT_MS, onSilence);
    const onData = (chunk: Buffer): void => {
      seen = seen === undefined ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE_START.length);
      const isPreface = seen.subarray(0, n).equals(PREFACE_START.subarray(0, n));
      if (isPreface && seen.length < PREFACE_START.length) return; // too short to tell yet
      socket.off('data', onData);
      socket.setTimeout(0);
      socket.off('timeout', onSilence);
      if (isPreface) {
        // The HTTP/2 session reads bytes already buffered in the socket (node#35475).
        socket.pause();
        socket.unshift(seen);
        this.h2!.emit('connection', socket);
      } else {
        // The HTTP/1.1 server reads from the socket's handle; the bytes already read are handed over as an event.
        this.h1!.emit('connection', socket);
        socket.emit('data', seen);
      }
    };
    socket.on('data', onData);
  }
}
