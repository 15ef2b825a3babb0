/**
 * The downstream seam over Node's server objects: the `http2` compatibility request and
 * response (h2 or HTTP/1.1 over TLS, where ALPN decides). Plaintext HTTP/1.1 has its own
 * server (http1-server-connection.ts), plaintext h2c Node's core streams
 * (http2-stream-downstream.ts).
 */
import type * as http from 'node:http';
import * as http2 from 'node:http2';
import type { IncomingHeaders } from './forwarding-headers';
import type { OutgoingHeaders } from './header-operations';
import type { Downstream, DownstreamHandler } from './http-exchange-types';

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

export class NodeDownstream implements Downstream {
  readonly http2: boolean;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHeaders;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly hasBody: boolean;
  private handler: DownstreamHandler | undefined;
  private readonly onDrain = (): void => this.handler?.onResponseDrain();

  constructor(
    private readonly req: NodeRequest,
    private readonly res: NodeResponse,
  ) {
    this.http2 = req.httpVersionMajor === 2;
    this.method = req.method ?? 'GET';
    this.url = req.url ?? '/';
    const headers = req.headers as IncomingHeaders;
    this.headers = headers;
    const socket = req.socket;
    this.remoteAddress = socket?.remoteAddress ?? '';
    this.remotePort = socket?.remotePort ?? 0;
    this.localAddress = socket?.localAddress ?? '';
    this.localPort = socket?.localPort ?? 0;
    this.hasBody = this.http2
      ? !(req as http2.Http2ServerRequest).stream.endAfterHeaders
      : headers['transfer-encoding'] !== undefined ||
        (headers['content-length'] !== undefined && headers['content-length'] !== '0');
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  get destroyed(): boolean {
    return this.res.destroyed;
  }

  get finished(): boolean {
    return this.res.writableFinished;
  }

  attach(handler: DownstreamHandler): void {
    this.handler = handler;
    this.res.on('close', () => handler.onDownstreamClose());
  }

  readBody(): void {
    const req = this.req;
    req.on('data', (chunk: Buffer) => this.handler!.onRequestData(chunk));
    req.on('end', () => this.handler!.onRequestEnd());
    req.pause();
  }

  pauseBody(): void {
    this.req.pause();
  }

  resumeBody(): void {
    this.req.resume();
  }

  writeContinue(): void {
    this.res.writeContinue();
  }

  writeHead(status: number, headers: OutgoingHeaders): void {
    this.res.writeHead(status, headers);
  }

  flushHead(): void {
    (this.res as { flushHeaders(): void }).flushHeaders();
  }

  write(chunk: Buffer): boolean {
    if ((this.res as NodeJS.WritableStream).write(chunk)) return true;
    this.res.once('drain', this.onDrain);
    return false;
  }

  end(body?: string, trailers?: OutgoingHeaders): void {
    if (trailers !== undefined) this.res.addTrailers(trailers);
    if (body === undefined) this.res.end();
    else this.res.end(body);
  }

  respondTrailersOnly(headers: OutgoingHeaders): boolean {
    if (!this.http2) return false;
    const stream = (this.req as http2.Http2ServerRequest).stream;
    if (stream.destroyed) return false;
    stream.respond(headers as http2.OutgoingHttpHeaders, { endStream: true });
    return true;
  }

  destroy(): void {
    if (this.http2) {
      const stream = (this.req as http2.Http2ServerRequest).stream;
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    } else {
      this.res.destroy();
    }
  }
}
