/**
 * Real upstream servers for the proxy tests, each on 127.0.0.1 port 0: HTTP/1.1, HTTP/2
 * (h2c), gRPC (@grpc/grpc-js, unary and streaming), a TCP echo server. Each records what
 * it saw, so that tests assert on what reached the upstream, not only on what came back.
 */
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';

/** A request as an upstream saw it. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly httpVersion: string;
  /** Remote port of the connection it came on (tells connections apart). */
  readonly remotePort: number;
}

export type UpstreamHandler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

export interface HttpUpstream {
  readonly port: number;
  /** Requests whose body ended (a request aborted on its way is not among them). */
  readonly requests: SeenRequest[];
  /** Request heads received so far, whatever became of their bodies. */
  readonly heads: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Replaces the handler. */
  handle(handler: UpstreamHandler): void;
  close(): Promise<void>;
}

/**
 * The default answer: 200 with a JSON echo of method, url, headers and body length, and
 * `x-upstream: NAME`.
 */
export function echoHandler(name: string): UpstreamHandler {
  return (req, res, body) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name });
    res.end(
      JSON.stringify({
        upstream: name,
        method: req.method,
        url: req.url,
        headers: req.headers,
        bodyLength: body.length,
      }),
    );
  };
}

/**
 * An HTTP/1.1 server that reads each request body whole (tests send small ones; the large
 * body test has its own upstream) and calls the handler.
 */
export async function startHttpUpstream(name = 'upstream', handler?: UpstreamHandler): Promise<HttpUpstream> {
  let current = handler ?? echoHandler(name);
  const requests: SeenRequest[] = [];
  let connections = 0;
  let heads = 0;
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    heads++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        httpVersion: req.httpVersion,
        remotePort: req.socket.remotePort ?? 0,
      });
      current(req, res, body);
    });
  });
  server.on('connection', (socket: net.Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    get connections() {
      return connections;
    },
    get heads() {
      return heads;
    },
    handle(next) {
      current = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface Http2Upstream {
  readonly port: number;
  readonly requests: SeenRequest[];
  /** Sessions accepted so far. */
  readonly sessions: number;
  close(): Promise<void>;
}

/** An h2c (prior knowledge) server answering like {@link echoHandler}, plus a trailer `x-trailer: done`. */
export async function startHttp2Upstream(name = 'h2-upstream'): Promise<Http2Upstream> {
  const requests: SeenRequest[] = [];
  let sessions = 0;
  const open = new Set<http2.ServerHttp2Session>();
  const server = http2.createServer();
  server.on('session', (session) => {
    sessions++;
    open.add(session);
    session.on('close', () => open.delete(session));
    session.on('error', () => undefined);
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({
        method: String(headers[':method']),
        url: String(headers[':path']),
        headers: headers as http.IncomingHttpHeaders,
        body,
        httpVersion: '2.0',
        remotePort: stream.session?.socket.remotePort ?? 0,
      });
      if (String(headers[':path']).endsWith('/empty')) {
        // A head that ends the stream: no body, no trailers.
        stream.respond({ ':status': 204, 'x-upstream': name }, { endStream: true });
        return;
      }
      stream.respond(
        { ':status': 200, 'content-type': 'application/json', 'x-upstream': name },
        { waitForTrailers: true },
      );
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-trailer': 'done' }));
      stream.end(
        JSON.stringify({
          upstream: name,
          method: headers[':method'],
          url: headers[':path'],
          headers,
          bodyLength: body.length,
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    get sessions() {
      return sessions;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface TcpEchoServer {
  readonly port: number;
  readonly connections: number;
  close(): Promise<void>;
}

/** Echoes every byte; ends its side when the client ends (so half-close is visible). */
export async function startTcpEchoServer(): Promise<TcpEchoServer> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Messages are raw bytes: the tests care about framing and streaming, not about protobuf. */
const bytes = {
  serialize: (value: Buffer): Buffer => value,
  deserialize: (value: Buffer): Buffer => value,
};

/** A test service: Unary echoes, ServerStream answers N numbered messages, Bidi echoes each message, Fail fails. */
export const ECHO_SERVICE: grpc.ServiceDefinition = {
  Unary: {
    path: '/test.Echo/Unary',
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes.serialize,
    requestDeserialize: bytes.deserialize,
    responseSerialize: bytes.serialize,
    responseDeserialize: bytes.deserialize,
  },
  ServerStream: {
    path: '/test.Echo/ServerStream',
    requestStream: false,
    responseStream: true,
    requestSerialize: bytes.serialize,
    requestDeserialize: bytes.deserialize,
    responseSerialize: bytes.serialize,
    responseDeserialize: bytes.deserialize,
  },
  Bidi: {
    path: '/test.Echo/Bidi',
    requestStream: true,
    responseStream: true,
    requestSerialize: bytes.serialize,
    requestDeserialize: bytes.deserialize,
    responseSerialize: bytes.serialize,
    responseDeserialize: bytes.deserialize,
  },
  Fail: {
    path: '/test.Echo/Fail',
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes.serialize,
    requestDeserialize: bytes.deserialize,
    responseSerialize: bytes.serialize,
    responseDeserialize: bytes.deserialize,
  },
};

export interface GrpcUpstream {
  readonly port: number;
  /** Metadata of the calls seen, in order. */
  readonly calls: grpc.Metadata[];
  close(): Promise<void>;
}

export async function startGrpcUpstream(): Promise<GrpcUpstream> {
  const server = new grpc.Server();
  const calls: grpc.Metadata[] = [];
  server.addService(ECHO_SERVICE, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      calls.push(call.metadata);
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', 'unary');
      callback(null, Buffer.concat([Buffer.from('echo:'), call.request]), trailer);
    },
    ServerStream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      calls.push(call.metadata);
      const n = Number(call.request.toString());
      for (let i = 0; i < n; i++) call.write(Buffer.from(`message ${i}`));
      call.end();
    },
    Bidi: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      calls.push(call.metadata);
      call.on('data', (message: Buffer) => call.write(Buffer.concat([Buffer.from('echo:'), message])));
      call.on('end', () => call.end());
    },
    Fail: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      calls.push(call.metadata);
      callback({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error === null ? resolve(bound) : reject(error),
    ),
  );
  return {
    port,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // Streams a test left open must not hold the shutdown.
        setTimeout(() => server.forceShutdown(), 1000).unref();
      }),
  };
}

/** A client for {@link ECHO_SERVICE} at `address`, on its own connection. */
export function createEchoClient(
  address: string,
): grpc.Client & Record<string, (...args: never[]) => unknown> {
  const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
  return new Client(address, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  }) as unknown as grpc.Client & Record<string, (...args: never[]) => unknown>;
}

/** An upstream that answers every connection's first bytes with `answer`, as raw text, then closes. */
export interface RawUpstream {
  readonly port: number;
  /** What it answers from now on (latin1). */
  answer: string;
  close(): Promise<void>;
}

export async function startRawUpstream(): Promise<RawUpstream> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => socket.end(raw.answer, 'latin1'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const raw: RawUpstream = {
    port: (server.address() as net.AddressInfo).port,
    answer: '',
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return raw;
}

/**
 * Makes `server` answer `Expect: 100-continue` as a streaming upstream does: 417 with a body
 * for `/expect-refused`, otherwise `100 Continue` and then its usual 'request' handling.
 */
export function answerExpectContinue(server: http.Server): void {
  server.on('checkContinue', (req, res) => {
    if (req.url === '/expect-refused') {
      res.writeHead(417, { 'content-type': 'text/plain' });
      res.end('no thanks\n');
      return;
    }
    res.writeContinue();
    server.emit('request', req, res);
  });
}

/** Answers 200 with the request's body streamed back, the head sent at once (before any body byte). */
export function echoStreaming(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  res.flushHeaders();
  req.on('data', (chunk: Buffer) => res.write(chunk));
  req.on('end', () => res.end());
}

/** Answers 200 with `body` and a trailer `x-checksum: abc123` (chunked, as HTTP/1.1 carries trailers). */
export function answerWithTrailer(res: http.ServerResponse): void {
  res.writeHead(200, { trailer: 'x-checksum', 'content-type': 'text/plain' });
  res.write('body');
  res.addTrailers({ 'x-checksum': 'abc123' });
  res.end();
}

/** Answers 200 with the request body's length and SHA-256 (hex), `"<bytes> <digest>"`, read as it streams. */
export function answerDigest(req: http.IncomingMessage, res: http.ServerResponse): void {
  const hash = createHash('sha256');
  let bytes = 0;
  req.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  req.on('end', () => res.end(`${bytes} ${hash.digest('hex')}`));
}

/** Listens on 127.0.0.1, port 0; resolves with the port. */
export async function listenOnLoopback(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}
