/**
 * The policy server's front door: a gRPC server on our own HTTP/2 server connection
 * (http2/http2-server-connection.ts, the codec and server the proxy shares), or on
 * `node:http2` with `http2: 'node'`, kept as the reference to measure against: Node's HTTP/2
 * machinery was ~70% of the server's CPU per call. gRPC's HTTP/2 protocol (PROTOCOL-HTTP2.md
 * in grpc/grpc) is small — a POST with `content-type: application/grpc`, each message behind a
 * 5-byte prefix (compressed flag, big-endian length), the status in trailers — and a general
 * gRPC library spends more per call than our whole Check path (measured: an empty
 * @grpc/grpc-js unary handler costs 1.75× the main-thread CPU of an empty handler on bare
 * http2). So the Mixer and health services speak it directly: handlers get the request
 * message's bytes and answer bytes, a {@link GrpcFailure}, or a promise of one.
 *
 * What it does, as gRPC clients (grpc-go in Istio's proxies and Mixer's tools, grpc-js, Envoy)
 * expect: HTTP 415 for a content type that is not gRPC and 405 for a method that is not POST;
 * UNIMPLEMENTED for unknown methods and unknown message encodings; `identity`, `gzip` and
 * `deflate` request messages; RESOURCE_EXHAUSTED past the receive limit (4 MiB by default,
 * gRPC's), reading no further; `grpc-timeout` honoured (DEADLINE_EXCEEDED when a handler's
 * promise outlives it); `grpc-message` percent-encoded; calls the client cancelled are not
 * answered. Shutdown is graceful (GOAWAY; calls in flight finish) or forced. A connection
 * without a call for `idleTimeoutMs` (5 minutes by default) is sent GOAWAY NO_ERROR and
 * closed; a client connects again for its next call.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';
import { StatusCode } from '../templates';
import {
  Http2ServerConnection,
  Http2ServerStream,
  DEFAULT_MAX_HEADER_LIST_BYTES,
  closeSessionWhenIdle,
  requestHeadersOf,
  type HeaderFields,
  type RequestHeaders,
  type ServerConnectionOwner,
} from '../http2';

/** A call that ends with a non-OK gRPC status. Plain data: answering a bad request throws nothing. */
export interface GrpcFailure {
  /** A gRPC status code (the google.rpc.Code numbers), not 0. */
  readonly code: number;
  /** Sent as `grpc-message`; shown to the client. */
  readonly message: string;
}

/**
 * A response message with response headers (gRPC metadata) of the handler's own, made with
 * {@link responseHeaders} once and reused: the per-call cost is this small object only.
 */
export interface GrpcReply {
  readonly message: Uint8Array;
  readonly headers: http2.OutgoingHttpHeaders;
}

/** What a unary handler answers: the response message's bytes (or with metadata), or a failure. */
export type UnaryAnswer = Uint8Array | GrpcReply | GrpcFailure;

/**
 * Response headers carrying `metadata` (lower-case names, not starting with `grpc-` or `:`)
 * besides what every gRPC response has, for {@link GrpcReply}.
 */
export function responseHeaders(metadata: Readonly<Record<string, string>>): http2.OutgoingHttpHeaders {
  return Object.freeze({ ...RESPONSE_HEADERS, ...metadata });
}

/**
 * Serves one unary call. `request` is the request message, decompressed; it may be a view
 * into a larger buffer, so a handler that keeps it past the call copies it. `headers` are the
 * call's request headers (its metadata). May throw only for bugs: a throw answers INTERNAL.
 */
export type UnaryHandler = (request: Buffer, headers: RequestHeaders) => UnaryAnswer | Promise<UnaryAnswer>;

/** The sending side of a server-streaming call. */
export interface ServerStreamWriter {
  /** Sends one response message; ignored once the call has ended. */
  write(message: Uint8Array): void;
  /** Ends the call with OK, or with `failure`. Idempotent. */
  end(failure?: GrpcFailure): void;
  /** Whether the call has ended, by `end()` or because the client went away. */
  readonly ended: boolean;
  /** Called once when the client cancels or the connection closes before `end()`. */
  onCancel(listener: () => void): void;
}

/** Starts one server-streaming call; it lasts until the handler ends it or the client cancels. */
export type ServerStreamHandler = (request: Buffer, writer: ServerStreamWriter) => void;

/** One method of a service, by its HTTP/2 path such as `/istio.mixer.v1.Mixer/Check`. */
export type GrpcMethod =
  | { readonly kind: 'unary'; readonly handle: UnaryHandler }
  | { readonly kind: 'serverStream'; readonly handle: ServerStreamHandler };

/** Options of {@link createGrpcServer}. */
export interface GrpcServerOptions {
  /** The methods served, by path. */
  readonly methods: ReadonlyMap<string, GrpcMethod>;
  /** Largest request message accepted, compressed or not, in bytes. Default 4 MiB (gRPC's default). */
  readonly maxReceiveMessageBytes?: number;
  /** Streams a client may have open at once on one connection. Default 1024 (Mixer's `--maxConcurrentStreams`). */
  readonly maxConcurrentStreams?: number;
  /**
   * How long a connection may go without a call in flight before the server sends it GOAWAY
   * (NO_ERROR) and closes it, in ms; 0: never. Default {@link DEFAULT_IDLE_TIMEOUT_MS}.
   */
  readonly idleTimeoutMs?: number;
  /**
   * The largest header list a call may send (names and values, plus 32 bytes per field),
   * announced as SETTINGS_MAX_HEADER_LIST_SIZE; a call over it is answered 431. Default
   * {@link DEFAULT_MAX_HEADER_LIST_BYTES}.
   */
  readonly maxHeaderListBytes?: number;
  /**
   * The HTTP/2 implementation: `own` (http2/http2-server-connection.ts),
   * or `node` (`node:http2`), kept as the reference to measure against. Default `own`.
   */
  readonly http2?: 'own' | 'node';
  /** Called with faults of the server itself (not of calls): a listening socket's errors. */
  readonly onError?: (error: Error) => void;
}

/** A gRPC server; create it with {@link createGrpcServer}. */
export interface GrpcServer {
  /**
   * Listens on `host` (IPv6 without brackets) and `port` (0 picks one); resolves with the port.
   * @throws Error (rejects) with the socket error, its `code` kept (EADDRINUSE, …)
   */
  listen(host: string, port: number): Promise<number>;
  /**
   * Stops accepting connections, tells clients to go away (GOAWAY), lets calls in flight
   * finish, and resolves when every connection has closed. Idempotent.
   */
  shutdown(): Promise<void>;
  /** Closes every connection now, cancelling calls in flight. */
  forceShutdown(): void;
}

/**
 * The default idle timeout of a client connection: 5 minutes. A sidecar keeps one connection
 * to the policy server and calls on it all the time while it has traffic, so this closes the
 * connections of quiet or vanished sidecars only (a quiet one pays a connect on its next
 * call), unlike the proxy's 5 s keep-alive for downstream clients. gRPC servers default to
 * no limit; Envoy's HTTP idle timeout is an hour.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;

export { DEFAULT_MAX_HEADER_LIST_BYTES };

/** gRPC's default limit on a received message. */
export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024;

const GRPC_CONTENT_TYPE = 'application/grpc';
const ACCEPT_ENCODING = 'identity,gzip,deflate';
const RESPONSE_HEADERS: http2.OutgoingHttpHeaders = Object.freeze({
  ':status': 200,
  'content-type': GRPC_CONTENT_TYPE,
  'grpc-accept-encoding': ACCEPT_ENCODING,
});
const OK_TRAILERS: http2.OutgoingHttpHeaders = Object.freeze({ 'grpc-status': '0' });
const RESPONSE_FIELDS: HeaderFields = [
  ':status',
  '200',
  'content-type',
  GRPC_CONTENT_TYPE,
  'grpc-accept-encoding',
  ACCEPT_ENCODING,
];
const OK_TRAILER_FIELDS: HeaderFields = ['grpc-status', '0'];
const NO_FIELDS: HeaderFields = [];
const MESSAGE_PREFIX_BYTES = 5;
const NO_MESSAGE = Buffer.alloc(0);

/** Creates a server for `options.methods`; nothing is bound until `listen`. */
export function createGrpcServer(options: GrpcServerOptions): GrpcServer {
  return (options.http2 ?? 'own') === 'own' ? createOwnServer(options) : createNodeServer(options);
}

/** The server on our own HTTP/2 connections (http2/http2-server-connection.ts). */
function createOwnServer(options: GrpcServerOptions): GrpcServer {
  const maxMessageBytes = options.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_MESSAGE_BYTES;
  const connectionOptions = {
    maxConcurrentStreams: options.maxConcurrentStreams ?? 1024,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    maxHeaderListBytes: options.maxHeaderListBytes ?? DEFAULT_MAX_HEADER_LIST_BYTES,
  };
  const connections = new Set<Http2ServerConnection>();
  let closing: Promise<void> | undefined;
  let closed: (() => void) | undefined;
  const owner: ServerConnectionOwner = {
    onStream: (fields) => new OwnCallStream(requestHeadersOf(fields), options.methods, maxMessageBytes),
    onClose: (connection) => {
      connections.delete(connection);
      if (connections.size === 0 && !server.listening) closed?.();
    },
  };
  const server = net.createServer({ noDelay: true }, (socket) => {
    const connection = new Http2ServerConnection(socket, owner, connectionOptions);
    connections.add(connection);
    if (closing !== undefined) connection.shutdown();
  });
  server.on('error', (error) => options.onError?.(error));

  return {
    listen: (host, port) => listen(server, host, port),
    shutdown(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        closed = resolve;
        if (!server.listening && connections.size === 0) {
          resolve();
          return;
        }
        server.close(() => {
          if (connections.size === 0) resolve();
        });
        for (const connection of connections) connection.shutdown();
      });
      return closing;
    },
    forceShutdown(): void {
      if (server.listening) server.close();
      for (const connection of [...connections]) connection.destroy();
    },
  };
}

function listen(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onListenError = (error: Error): void => reject(error);
    server.once('error', onListenError);
    server.listen(port, host, () => {
      server.off('error', onListenError);
      const bound = server.address();
      resolve(typeof bound === 'object' && bound !== null ? bound.port : port);
    });
  });
}

/** The server on `node:http2`, kept selectable (`http2: 'node'`) as the reference the own one is measured against. */
function createNodeServer(options: GrpcServerOptions): GrpcServer {
  const maxMessageBytes = options.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_MESSAGE_BYTES;
  const server = http2.createServer({
    settings: {
      maxConcurrentStreams: options.maxConcurrentStreams ?? 1024,
      // Announced, as the own server announces it (Node's default, 65535, is not).
      maxHeaderListSize: options.maxHeaderListBytes ?? DEFAULT_MAX_HEADER_LIST_BYTES,
    },
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  let closing: Promise<void> | undefined;

  // Every emitter gets an 'error' listener: without one, a client's protocol error would end the process.
  server.on('error', (error) => options.onError?.(error));
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => session.destroy());
    closeSessionWhenIdle(session, idleTimeoutMs);
    if (closing !== undefined) session.close();
  });
  server.on('stream', (stream, incomingHeaders) => {
    // Node gives arrays only for set-cookie, which a gRPC request does not carry.
    const headers = incomingHeaders as RequestHeaders;
    stream.on('error', destroyStream);
    const call = new NodeCallStream(stream);
    const method = options.methods.get(headers[':path'] as string);
    const refusal = refuse(headers, method);
    if (refusal !== undefined) {
      respondOnce(call, refusal);
      stream.resume(); // read and drop whatever body comes
      return;
    }
    const incoming = new IncomingCall(call, headers, method as GrpcMethod, maxMessageBytes);
    stream.on('data', (chunk: Buffer) => incoming.onData(chunk, 0, chunk.length));
    stream.on('end', () => incoming.onEnd());
  });

  return {
    listen: (host, port) => listen(server as unknown as net.Server, host, port),
    shutdown(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        if (!server.listening && sessions.size === 0) {
          resolve();
          return;
        }
        server.close(() => resolve());
        for (const session of sessions) session.close();
      });
      return closing;
    },
    forceShutdown(): void {
      if (server.listening) server.close();
      for (const session of sessions) session.destroy();
    },
  };
}

function destroyStream(this: http2.ServerHttp2Stream): void {
  this.destroy();
}

/** What a call needs of its HTTP/2 stream, on either implementation. */
interface CallStream {
  /** Whether an answer can still be sent: no headers sent yet, the stream not closed. */
  readonly canRespond: boolean;
  /** A trailers-only answer with `fields` (status, content type, grpc-status…). */
  respondOnly(headers: GrpcReply['headers']): void;
  /** Headers, the framed message, and OK trailers. */
  respondUnary(headers: GrpcReply['headers'], framed: Buffer): void;
  /** Response headers of a server-streaming call. */
  startStream(): void;
  writeMessage(framed: Buffer): void;
  endStream(trailers: GrpcReply['headers']): void;
  /** `listener` is called once if the stream closes before the answer ended. */
  whenCancelled(listener: () => void): void;
}

class NodeCallStream implements CallStream {
  constructor(private readonly stream: http2.ServerHttp2Stream) {}

  get canRespond(): boolean {
    const stream = this.stream;
    return !(stream.headersSent || stream.destroyed || stream.closed);
  }

  respondOnly(headers: GrpcReply['headers']): void {
    this.stream.respond(headers, { endStream: true });
  }

  respondUnary(headers: GrpcReply['headers'], framed: Buffer): void {
    this.stream.respond(headers, { waitForTrailers: true });
    this.stream.on('wantTrailers', sendOkTrailers);
    this.stream.end(framed);
  }

  startStream(): void {
    this.stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  }

  writeMessage(framed: Buffer): void {
    this.stream.write(framed);
  }

  endStream(trailers: GrpcReply['headers']): void {
    this.stream.on('wantTrailers', () => this.stream.sendTrailers(trailers));
    this.stream.end();
  }

  whenCancelled(listener: () => void): void {
    let ended = false;
    this.stream.on('wantTrailers', () => (ended = true));
    this.stream.on('close', () => {
      if (!ended) listener();
    });
  }
}

function sendOkTrailers(this: http2.ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

/** Header fields, flat (name, value…), of a headers object, made once per object. */
const FIELDS = new WeakMap<object, HeaderFields>();

function fieldsOf(headers: GrpcReply['headers']): HeaderFields {
  let fields = FIELDS.get(headers);
  if (fields === undefined) {
    fields = toFields(headers);
    if (Object.isFrozen(headers)) FIELDS.set(headers, fields);
  }
  return fields;
}

function toFields(headers: GrpcReply['headers']): HeaderFields {
  const fields: string[] = [];
  // Pseudo-headers first (§8.3).
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') && value !== undefined) fields.push(name, String(value));
  }
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    if (Array.isArray(value)) for (const one of value) fields.push(name.toLowerCase(), String(one));
    else fields.push(name.toLowerCase(), String(value));
  }
  return fields;
}

/** A call on our own HTTP/2 connection: the stream, its request, and the call's state. */
class OwnCallStream extends Http2ServerStream implements CallStream {
  private readonly incoming: IncomingCall | undefined;
  private cancelListener: (() => void) | undefined;

  constructor(headers: RequestHeaders, methods: ReadonlyMap<string, GrpcMethod>, maxMessageBytes: number) {
    super();
    const method = methods.get(headers[':path'] as string);
    const refusal = refuse(headers, method);
    if (refusal !== undefined) {
      this.refusal = refusal;
      return;
    }
    this.incoming = new IncomingCall(this, headers, method as GrpcMethod, maxMessageBytes);
  }

  /**
   * Answered once the whole request arrived, as a call would be (its body is dropped, its
   * windows given back): a client sees the same exchange, and the stream's state stays the
   * client's to end, as RFC 9113's conformance tests (h2spec) expect of any request.
   */
  private refusal: Refusal | undefined;

  override onData(buffer: Buffer, start: number, end: number): void {
    this.incoming?.onData(buffer, start, end);
  }

  override onEnd(): void {
    if (this.incoming !== undefined) {
      this.incoming.onEnd();
      return;
    }
    const refusal = this.refusal;
    this.refusal = undefined;
    if (refusal !== undefined) respondOnce(this, refusal);
  }

  override onCancel(): void {
    const listener = this.cancelListener;
    this.cancelListener = undefined;
    listener?.();
  }

  respondOnly(headers: GrpcReply['headers']): void {
    this.respond(fieldsOf(headers), undefined, NO_FIELDS);
  }

  respondUnary(headers: GrpcReply['headers'], framed: Buffer): void {
    this.respond(fieldsOf(headers), framed, OK_TRAILER_FIELDS);
  }

  startStream(): void {
    this.respond(RESPONSE_FIELDS);
  }

  writeMessage(framed: Buffer): void {
    this.writeData(framed);
  }

  endStream(trailers: GrpcReply['headers']): void {
    this.endResponse(trailers === OK_TRAILERS ? OK_TRAILER_FIELDS : toFields(trailers));
  }

  whenCancelled(listener: () => void): void {
    this.cancelListener = listener;
  }
}

/** An answer to a request that is not a call we serve: an HTTP status, or a gRPC failure. */
type Refusal = { readonly httpStatus: number; readonly failure: GrpcFailure } | GrpcFailure;

function refuse(headers: RequestHeaders, method: GrpcMethod | undefined): Refusal | undefined {
  const contentType = headers['content-type'];
  if (contentType === undefined || !contentType.startsWith(GRPC_CONTENT_TYPE)) {
    // gRPC's rule: a non-gRPC content type gets 415, so that an HTTP client sees an error, not 200.
    return {
      httpStatus: 415,
      failure: {
        code: StatusCode.INTERNAL,
        message: `content-type must be application/grpc, got ${contentType ?? 'none'}`,
      },
    };
  }
  if (headers[':method'] !== 'POST') {
    return {
      httpStatus: 405,
      failure: { code: StatusCode.INTERNAL, message: `gRPC calls are POST, got ${headers[':method']}` },
    };
  }
  if (method === undefined) {
    return { code: StatusCode.UNIMPLEMENTED, message: `unknown method ${headers[':path']}` };
  }
  const encoding = headers['grpc-encoding'];
  if (encoding !== undefined && encoding !== 'identity' && encoding !== 'gzip' && encoding !== 'deflate') {
    return {
      code: StatusCode.UNIMPLEMENTED,
      message: `grpc-encoding ${encoding} is not supported; use one of ${ACCEPT_ENCODING}`,
    };
  }
  return undefined;
}

/** Answers with a failure only (a trailers-only response), unless the stream is gone. */
function respondOnce(stream: CallStream, answer: Refusal): void {
  if (!stream.canRespond) return;
  const failure = 'failure' in answer ? answer.failure : answer;
  stream.respondOnly({
    ':status': 'httpStatus' in answer ? answer.httpStatus : 200,
    'content-type': GRPC_CONTENT_TYPE,
    'grpc-accept-encoding': ACCEPT_ENCODING,
    'grpc-status': String(failure.code),
    'grpc-message': encodeGrpcMessage(failure.message),
  });
}

/** A call being received: gathers the request message, then hands it to the method. */
class IncomingCall {
  private readonly chunks: Buffer[] = [];
  private received = 0;
  private refused = false;

  constructor(
    private readonly stream: CallStream,
    private readonly headers: RequestHeaders,
    private readonly method: GrpcMethod,
    private readonly maxMessageBytes: number,
  ) {}

  /** Octets `start`…`end` of `buffer` arrived (a view, kept until the call's end). */
  onData(buffer: Buffer, start: number, end: number): void {
    if (this.refused) return;
    this.received += end - start;
    if (this.received > this.maxMessageBytes + MESSAGE_PREFIX_BYTES) {
      // Stop keeping bytes at once: memory stays bounded whatever the client sends.
      this.refused = true;
      this.chunks.length = 0;
      respondOnce(this.stream, {
        code: StatusCode.RESOURCE_EXHAUSTED,
        message: `received message larger than max (more than ${this.maxMessageBytes} bytes)`,
      });
      return;
    }
    this.chunks.push(start === 0 && end === buffer.length ? buffer : buffer.subarray(start, end));
  }

  onEnd(): void {
    if (this.refused) return;
    const body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const message = this.readMessage(body);
    if (!Buffer.isBuffer(message)) {
      respondOnce(this.stream, message);
      return;
    }
    if (this.method.kind === 'serverStream') {
      const writer = new StreamWriter(this.stream);
      try {
        this.method.handle(message, writer);
      } catch (error) {
        writer.end(internalFailure(error));
      }
      return;
    }
    let answer: UnaryAnswer | Promise<UnaryAnswer>;
    try {
      answer = this.method.handle(message, this.headers);
    } catch (error) {
      respondOnce(this.stream, internalFailure(error));
      return;
    }
    if (answer instanceof Promise) this.awaitAnswer(answer);
    else answerUnary(this.stream, answer);
  }

  /** The one request message of the body, or why there is none. */
  private readMessage(body: Buffer): Buffer | GrpcFailure {
    if (body.length < MESSAGE_PREFIX_BYTES) {
      return {
        code: StatusCode.INTERNAL,
        message:
          body.length === 0
            ? 'the call carries no request message'
            : `the request ends inside a message prefix (${body.length} of 5 bytes)`,
      };
    }
    const compressed = body[0] as number;
    const length = body.readUInt32BE(1);
    if (length > this.maxMessageBytes) {
      return {
        code: StatusCode.RESOURCE_EXHAUSTED,
        message: `received message larger than max (${length} vs. ${this.maxMessageBytes})`,
      };
    }
    if (body.length !== MESSAGE_PREFIX_BYTES + length) {
      return {
        code: StatusCode.INTERNAL,
        message:
          body.length < MESSAGE_PREFIX_BYTES + length
            ? `the request message is cut short: ${body.length - MESSAGE_PREFIX_BYTES} of ${length} bytes`
            : 'a unary call carries more than one request message',
      };
    }
    const payload = length === 0 ? NO_MESSAGE : body.subarray(MESSAGE_PREFIX_BYTES);
    if (compressed === 0) return payload;
    if (compressed !== 1) {
      return { code: StatusCode.INTERNAL, message: `invalid message compression flag ${compressed}` };
    }
    return this.decompress(payload);
  }

  private decompress(payload: Buffer): Buffer | GrpcFailure {
    const encoding = this.headers['grpc-encoding'];
    if (encoding === undefined || encoding === 'identity') {
      return {
        code: StatusCode.INTERNAL,
        message: 'the message is marked compressed but the call has no grpc-encoding',
      };
    }
    try {
      const options = { maxOutputLength: this.maxMessageBytes };
      return encoding === 'gzip' ? gunzipSync(payload, options) : inflateSync(payload, options);
    } catch (error) {
      const tooLarge = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      return tooLarge
        ? {
            code: StatusCode.RESOURCE_EXHAUSTED,
            message: `received message larger than max once decompressed (more than ${this.maxMessageBytes} bytes)`,
          }
        : {
            code: StatusCode.INTERNAL,
            message: `cannot decompress the ${encoding} message: ${String(error)}`,
          };
    }
  }

  private awaitAnswer(answer: Promise<UnaryAnswer>): void {
    const timeoutMs = parseGrpcTimeout(this.headers['grpc-timeout']);
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(
            () =>
              respondOnce(this.stream, {
                code: StatusCode.DEADLINE_EXCEEDED,
                message: `no answer within the call's deadline of ${timeoutMs} ms`,
              }),
            timeoutMs,
          );
    answer.then(
      (value) => {
        if (timer !== undefined) clearTimeout(timer);
        answerUnary(this.stream, value);
      },
      (error: unknown) => {
        if (timer !== undefined) clearTimeout(timer);
        respondOnce(this.stream, internalFailure(error));
      },
    );
  }
}

/** Sends a unary answer, unless the call already ended (cancelled, or past its deadline). */
function answerUnary(stream: CallStream, answer: UnaryAnswer): void {
  let message: Uint8Array;
  let headers: GrpcReply['headers'];
  if (answer instanceof Uint8Array) {
    message = answer;
    headers = RESPONSE_HEADERS;
  } else if (answer.message instanceof Uint8Array) {
    message = answer.message;
    headers = (answer as GrpcReply).headers;
  } else {
    respondOnce(stream, answer as GrpcFailure);
    return;
  }
  if (!stream.canRespond) return;
  stream.respondUnary(headers, frameMessage(message));
}

/** The message behind its 5-byte prefix (not compressed). */
function frameMessage(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, MESSAGE_PREFIX_BYTES);
  return frame;
}

class StreamWriter implements ServerStreamWriter {
  private done = false;
  private cancelListener: (() => void) | undefined;

  constructor(private readonly stream: CallStream) {
    stream.startStream();
    stream.whenCancelled(() => {
      if (this.done) return;
      this.done = true;
      this.cancelListener?.();
    });
  }

  get ended(): boolean {
    return this.done;
  }

  write(message: Uint8Array): void {
    if (!this.done) this.stream.writeMessage(frameMessage(message));
  }

  end(failure?: GrpcFailure): void {
    if (this.done) return;
    this.done = true;
    const trailers =
      failure === undefined
        ? OK_TRAILERS
        : { 'grpc-status': String(failure.code), 'grpc-message': encodeGrpcMessage(failure.message) };
    this.stream.endStream(trailers);
  }

  onCancel(listener: () => void): void {
    this.cancelListener = listener;
  }
}

function internalFailure(error: unknown): GrpcFailure {
  return {
    code: StatusCode.INTERNAL,
    message: `internal error: ${error instanceof Error ? error.message : String(error)}`,
  };
}

const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000001,
};

/** A `grpc-timeout` value (`100m`, `5S`, …: at most 8 digits and a unit) in milliseconds; undefined when absent or malformed. */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (match === null) return undefined;
  // A timer of 0 ms still lets a synchronous answer win; round sub-millisecond deadlines up.
  return Math.ceil(Number(match[1]) * (TIMEOUT_UNIT_MS[match[2] as string] as number));
}

/** `grpc-message` is percent-encoded UTF-8: bytes outside printable ASCII, and `%`, as `%XX`. */
export function encodeGrpcMessage(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let encoded = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    encoded +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}
