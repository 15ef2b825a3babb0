/**
 * The downstream side of an exchange: the seam between the request path (http-exchange.ts)
 * and a server. Four stand behind it: our own HTTP/1.1 server on `node:net`
 * (http1-server-connection.ts), our own HTTP/2 server for plaintext h2c
 * (http2-server-downstream.ts), Node's `http2` core streams for h2c when
 * `SWITCHBOARD_HTTP2_SERVER=node` (http2-stream-downstream.ts), and Node's secure `http2`
 * server, whose compatibility objects carry h2 and HTTP/1.1 over TLS (node-downstream.ts).
 */
import type { HeaderOperations } from './config-model';
import type { IncomingHeaders } from './forwarding-headers';
import type { OutgoingHeaders } from './header-operations';
import type { ProxyReason } from './traffic-facts';

/** What a downstream tells its exchange. After `onDownstreamClose`, nothing more. */
export interface DownstreamHandler {
  /** A piece of the request body (only after `readBody`, and not while paused). */
  onRequestData(chunk: Buffer): void;
  /** The request body is complete. */
  onRequestEnd(): void;
  /** The response may be written again after `write` returned false. */
  onResponseDrain(): void;
  /**
   * The exchange is over for the downstream: the response was handed over whole (`finished`),
   * or the connection or stream went away first.
   */
  onDownstreamClose(): void;
  /**
   * The server answered the request itself, with `status`, because the request broke one of
   * the listener's limits (`onDownstreamClose` follows): the exchange records why, rather than
   * a client that went away.
   */
  onRefusedByServer(status: number, reason: ProxyReason): void;
}

/** One request and its response, as the exchange sees them. */
export interface Downstream {
  readonly http2: boolean;
  readonly method: string;
  /** The request target as sent (`:path` on HTTP/2). */
  readonly url: string;
  readonly headers: IncomingHeaders;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** The request has a body (it may still be empty, as a chunked one can be). */
  readonly hasBody: boolean;
  /**
   * Our HTTP/1.1 server only: the request head as received (latin1, request line first, without
   * its final CRLFCRLF, validated), when each of its fields is on one line — its lines can then
   * be forwarded as they are (forwarding-headers.ts `upstreamFieldLines`). Else undefined.
   */
  readonly receivedHead?: string | undefined;
  /** The response head went out (or is queued to go out with the first body bytes). */
  readonly headersSent: boolean;
  /** The connection or stream is gone. */
  readonly destroyed: boolean;
  /** All of the response was handed to the connection or stream. */
  readonly finished: boolean;
  /** Where the events go; called once, before anything else. */
  attach(handler: DownstreamHandler): void;
  /** Starts delivering the request body to the handler, paused: `resumeBody` lets it flow. */
  readBody(): void;
  pauseBody(): void;
  /** Lets the request body flow; before `readBody`, it is read and dropped. */
  resumeBody(): void;
  /** Sends `100 Continue`. */
  writeContinue(): void;
  /**
   * Sets the response head. It goes out with the first body bytes, or at once on `flushHead`.
   * A `connection: close` field closes the connection after the response (HTTP/1.1).
   * `trailersMayFollow` (default true) false promises that `end` will get no trailers: HTTP/2
   * core streams then end the stream with the last body bytes instead of asking for trailers
   * after them (an empty frame, one more write); trailers given to `end` anyway are dropped.
   * @throws Error when a field cannot be sent on this protocol (the response is then untouched)
   */
  writeHead(status: number, headers: OutgoingHeaders, trailersMayFollow?: boolean): void;
  /**
   * Our HTTP/1.1 server only (absent elsewhere): sets the response head from the text of a
   * received HTTP/1.1 response head (latin1, status line first, without its final CRLFCRLF,
   * already validated by http1-response-parser.ts), its field lines forwarded as received
   * except the hop-by-hop ones, those `listed` (by the upstream's `Connection`, lower-case)
   * and those `ops` removes or sets; then the lines `ops` sets and adds. The status line is
   * ours. `close` closes the connection after the response. Otherwise as `writeHead`.
   * @throws Error when an operation's value cannot be sent (the response is then untouched)
   */
  writeReceivedHead?(
    status: number,
    head: string,
    listed: ReadonlySet<string> | undefined,
    ops: HeaderOperations | undefined,
    close: boolean,
  ): void;
  flushHead(): void;
  /** Writes body bytes; false means wait for onResponseDrain. */
  write(chunk: Buffer): boolean;
  /**
   * Whether a chunk given to `write` may still be referenced (a write not yet done, bytes
   * queued): the caller must not reuse its memory then. Absent: always assume so.
   */
  holdsWrittenBytes?(): boolean;
  /**
   * Ends the response, after `body` (a local answer's text) and with `trailers` when given.
   * Without `body` (the end of a forwarded response) `onDownstreamClose` may be called before
   * `end` returns; with one, only after (the exchange records its local answer first).
   */
  end(body?: string, trailers?: OutgoingHeaders): void;
  /**
   * HTTP/2: answers with a head that ends the stream (gRPC's trailers-only form). False on
   * HTTP/1.1, or when the stream is gone.
   */
  respondTrailersOnly(headers: OutgoingHeaders): boolean;
  /** Cuts the exchange: the stream is reset, or the HTTP/1.1 connection closed. */
  destroy(): void;
}
