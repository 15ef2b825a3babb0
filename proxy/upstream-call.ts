/**
 * One attempt of a request on one upstream endpoint, over HTTP/1.1 or HTTP/2, behind one
 * small interface so that the request path (http-exchange.ts) does not care which — and
 * so that a faster HTTP/1.1 client can replace {@link Http1Call} later without touching it.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { OutgoingHeaders } from './header-operations';
import type { ConnectionWaiter, Http1ConnectionPool, PoolFailure } from './http1-connection-pool';
import type { Http2SessionPool, PooledSession, SessionWaiter } from './http2-session-pool';
import type { IncomingHeaders } from './forwarding-headers';

/** What an attempt tells the request path. After `onFailure` or `onEnd`, nothing more. */
export interface UpstreamCallHandler {
  /** The connection is there: the request head is sent and the body may be written. */
  onReady(call: UpstreamCall): void;
  /** The upstream answered `100 Continue`. */
  onContinue(call: UpstreamCall): void;
  /**
   * The response head; the body follows through onData. Headers include pseudo-headers for
   * HTTP/2; `endsStream` when the head ends the response (an HTTP/2 trailers-only answer).
   */
  onResponse(call: UpstreamCall, status: number, headers: IncomingHeaders, endsStream: boolean): void;
  onData(call: UpstreamCall, chunk: Buffer): void;
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
  /** End-to-end headers, without Host and pseudo-headers. */
  readonly headers: OutgoingHeaders;
  /** False when the request has no body: the head alone is the request. */
  readonly hasBody: boolean;
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

/** An attempt over a pooled HTTP/1.1 connection, using Node's HTTP client on it. */
export class Http1Call implements UpstreamCall, ConnectionWaiter {
  private request: http.ClientRequest | undefined;
  private response: http.IncomingMessage | undefined;
  private done = false;
  private reused = false;

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

  onConnection(socket: net.Socket, reused: boolean): void {
    if (this.done) {
      socket.emit('free'); // abandoned while waiting: hand the connection back
      return;
    }
    this.reused = reused;
    const head = this.head;
    const headers = head.headers;
    headers['host'] = head.authority;
    headers['connection'] = 'keep-alive';
    const request = http.request({
      method: head.method,
      path: head.path,
      headers,
      setHost: false,
      createConnection: () => socket,
    });
    this.request = request;
    request.on('response', (response) => this.onUpstreamResponse(response));
    request.on('continue', () => {
      if (!this.done) this.handler.onContinue(this);
    });
    request.on('drain', () => {
      if (!this.done) this.handler.onDrain(this);
    });
    request.on('error', (error: Error) => this.fail(error.message));
    if (!head.hasBody) request.end();
    else request.flushHeaders();
    this.handler.onReady(this);
  }

  write(chunk: Buffer): boolean {
    return this.request!.write(chunk);
  }

  end(): void {
    this.request!.end();
  }

  pause(): void {
    this.response?.pause();
  }

  resume(): void {
    this.response?.resume();
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    if (this.request === undefined) this.pool.cancel(this);
    else this.request.destroy();
  }

  private onUpstreamResponse(response: http.IncomingMessage): void {
    if (this.done) return;
    this.response = response;
    const keepAlive = response.headers['keep-alive'];
    if (keepAlive !== undefined) {
      const seconds = /timeout=(\d+)/.exec(String(keepAlive))?.[1];
      if (seconds !== undefined) this.pool.noteKeepAliveTimeout(response.socket, Number(seconds));
    }
    response.on('data', (chunk: Buffer) => {
      if (!this.done) this.handler.onData(this, chunk);
    });
    response.on('end', () => {
      if (this.done) return;
      this.done = true;
      // The upstream answered before the request body was all sent (it refused it early):
      // the connection is in the middle of a request and cannot be reused.
      if (!this.request!.writableEnded) this.request!.destroy();
      const trailers = response.trailers;
      this.handler.onEnd(this, Object.keys(trailers).length > 0 ? trailers : undefined);
    });
    response.on('error', (error: Error) => this.fail(error.message));
    response.on('close', () => {
      if (!response.complete) this.fail('the upstream closed the connection in the middle of the response');
    });
    this.handler.onResponse(this, response.statusCode ?? 502, response.headers, false);
  }

  private fail(detail: string): void {
    if (this.done) return;
    this.done = true;
    this.request?.destroy();
    this.handler.onFailure(this, {
      kind: 'reset',
      detail,
      stale: this.reused && this.response === undefined,
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
