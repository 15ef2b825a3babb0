import { strict as assert } from 'node:assert';
import * as http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import type { Client } from '@grpc/grpc-js';
import {
  createGrpcServer,
  encodeGrpcMessage,
  parseGrpcTimeout,
  type GrpcMethod,
  type GrpcServer,
  type ServerStreamWriter,
  type UnaryAnswer,
} from '../../policy-server/grpc-transport';
import { callUnary, createRawClient } from '../support/raw-grpc-client';

/** What a raw HTTP/2 client saw of one call. */
interface RawAnswer {
  readonly httpStatus: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly trailers: http2.IncomingHttpHeaders;
  /** The response body, prefixes included. */
  readonly body: Buffer;
  /** grpc-status from the trailers, or from the headers of a trailers-only answer. */
  readonly grpcStatus: string | undefined;
  readonly grpcMessage: string | undefined;
}

/** One gRPC message frame. */
function frame(message: Uint8Array, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** Sends `body` in one request with `headers` and collects the whole answer. */
function rawCall(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer | Buffer[],
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', 'content-type': 'application/grpc', ...headers });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (responseHeaders = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', reject);
    stream.on('close', () => {
      const statusFrom = (name: string): string | undefined =>
        (trailers[name] ?? responseHeaders[name]) as string | undefined;
      resolve({
        httpStatus: Number(responseHeaders[':status']),
        headers: responseHeaders,
        trailers,
        body: Buffer.concat(chunks),
        grpcStatus: statusFrom('grpc-status'),
        grpcMessage: statusFrom('grpc-message'),
      });
    });
    const parts = Array.isArray(body) ? body : [body];
    for (const part of parts) stream.write(part);
    stream.end();
  });
}

const echo: GrpcMethod = { kind: 'unary', handle: (request) => Buffer.from(request) };

for (const implementation of ['own', 'node'] as const) {
  describe(`policy server: gRPC transport (${implementation} HTTP/2)`, () => {
    let server: GrpcServer;
    let address: string;
    let session: http2.ClientHttp2Session;
    const clients: Client[] = [];
    let streamWriters: ServerStreamWriter[];
    let pending: ((answer: UnaryAnswer) => void)[];

    beforeEach(async () => {
      streamWriters = [];
      pending = [];
      server = createGrpcServer({
        http2: implementation,
        maxReceiveMessageBytes: 1024,
        methods: new Map<string, GrpcMethod>([
          ['/test.Echo/Echo', echo],
          [
            '/test.Echo/Fail',
            { kind: 'unary', handle: () => ({ code: 7, message: 'denied: ünïcode % ok' }) },
          ],
          [
            '/test.Echo/Throw',
            {
              kind: 'unary',
              handle: () => {
                throw new Error('boom');
              },
            },
          ],
          [
            '/test.Echo/Later',
            { kind: 'unary', handle: () => new Promise<UnaryAnswer>((resolve) => pending.push(resolve)) },
          ],
          [
            '/test.Echo/Stream',
            {
              kind: 'serverStream',
              handle: (request, writer) => {
                writer.write(request);
                streamWriters.push(writer);
              },
            },
          ],
        ]),
      });
      const port = await server.listen('127.0.0.1', 0);
      address = `127.0.0.1:${port}`;
      session = http2.connect(`http://${address}`);
      session.on('error', () => undefined);
    });

    afterEach(async () => {
      for (const client of clients.splice(0)) client.close();
      session.destroy();
      server.forceShutdown();
      await server.shutdown();
    });

    it('answers a unary call to a gRPC client: the message framed, then grpc-status 0', async () => {
      const client = createRawClient(address);
      clients.push(client);
      const result = await callUnary(client, '/test.Echo/Echo', Buffer.from('hello'), (b) =>
        Buffer.from(b).toString(),
      );
      assert.deepEqual(result, { ok: true, response: 'hello' });
    });

    it('answers a message split over several DATA frames, and an empty message', async () => {
      const whole = frame(Buffer.from('split message'));
      const answer = await rawCall(session, { ':path': '/test.Echo/Echo' }, [
        whole.subarray(0, 3),
        whole.subarray(3, 9),
        whole.subarray(9),
      ]);
      assert.equal(answer.grpcStatus, '0');
      assert.deepEqual(answer.body, whole);
      const empty = await rawCall(session, { ':path': '/test.Echo/Echo' }, frame(Buffer.alloc(0)));
      assert.equal(empty.grpcStatus, '0');
      assert.deepEqual(empty.body, frame(Buffer.alloc(0)));
    });

    it('sends a failure as a trailers-only answer with the message percent-encoded', async () => {
      const answer = await rawCall(session, { ':path': '/test.Echo/Fail' }, frame(Buffer.alloc(0)));
      assert.equal(answer.httpStatus, 200);
      assert.equal(answer.headers['grpc-status'], '7');
      assert.equal(answer.grpcMessage, 'denied: %C3%BCn%C3%AFcode %25 ok');
      assert.equal(answer.body.length, 0);
      const client = createRawClient(address);
      clients.push(client);
      const result = await callUnary(client, '/test.Echo/Fail', Buffer.alloc(0), (b) => b);
      assert.ok(!result.ok);
      assert.equal(result.error.code, 7);
      assert.equal(result.error.details, 'denied: ünïcode % ok');
    });

    it('answers UNIMPLEMENTED for an unknown method and an unknown message encoding', async () => {
      const unknown = await rawCall(session, { ':path': '/test.Echo/Nope' }, frame(Buffer.from('x')));
      assert.equal(unknown.grpcStatus, '12');
      assert.equal(unknown.grpcMessage, 'unknown method /test.Echo/Nope');
      const snappy = await rawCall(
        session,
        { ':path': '/test.Echo/Echo', 'grpc-encoding': 'snappy' },
        frame(Buffer.from('x'), true),
      );
      assert.equal(snappy.grpcStatus, '12');
      assert.equal(
        snappy.grpcMessage,
        'grpc-encoding snappy is not supported; use one of identity,gzip,deflate',
      );
    });

    it('refuses a request that is not gRPC with HTTP 415, and a GET with 405', async () => {
      const json = await rawCall(
        session,
        { ':path': '/test.Echo/Echo', 'content-type': 'application/json' },
        Buffer.from('{}'),
      );
      assert.equal(json.httpStatus, 415);
      assert.equal(json.grpcMessage, 'content-type must be application/grpc, got application/json');
      const get = await new Promise<number>((resolve) => {
        const stream = session.request({
          ':method': 'GET',
          ':path': '/test.Echo/Echo',
          'content-type': 'application/grpc',
        });
        stream.on('response', (h) => resolve(h[':status'] as number));
        stream.resume();
        stream.end();
      });
      assert.equal(get, 405);
    });

    it('reads gzip-compressed requests and refuses a compressed flag without an encoding', async () => {
      const answer = await rawCall(
        session,
        { ':path': '/test.Echo/Echo', 'grpc-encoding': 'gzip' },
        frame(gzipSync(Buffer.from('zipped')), true),
      );
      assert.equal(answer.grpcStatus, '0');
      assert.deepEqual(answer.body, frame(Buffer.from('zipped')));
      const bare = await rawCall(session, { ':path': '/test.Echo/Echo' }, frame(Buffer.from('x'), true));
      assert.equal(bare.grpcStatus, '13');
      assert.equal(bare.grpcMessage, 'the message is marked compressed but the call has no grpc-encoding');
    });

    it('answers RESOURCE_EXHAUSTED past the receive limit, also once decompressed', async () => {
      const large = await rawCall(session, { ':path': '/test.Echo/Echo' }, frame(Buffer.alloc(4096)));
      assert.equal(large.grpcStatus, '8');
      assert.match(large.grpcMessage ?? '', /^received message larger than max/);
      const bomb = await rawCall(
        session,
        { ':path': '/test.Echo/Echo', 'grpc-encoding': 'gzip' },
        frame(gzipSync(Buffer.alloc(64 * 1024)), true),
      );
      assert.equal(bomb.grpcStatus, '8');
      assert.equal(
        bomb.grpcMessage,
        'received message larger than max once decompressed (more than 1024 bytes)',
      );
      // The connection still serves.
      assert.equal(
        (await rawCall(session, { ':path': '/test.Echo/Echo' }, frame(Buffer.from('ok')))).grpcStatus,
        '0',
      );
    });

    it('answers INTERNAL for a body with no message, a cut message or two messages', async () => {
      const cases: [Buffer, string][] = [
        [Buffer.alloc(0), 'the call carries no request message'],
        [Buffer.from([0, 0]), 'the request ends inside a message prefix (2 of 5 bytes)'],
        [frame(Buffer.from('abcdef')).subarray(0, 8), 'the request message is cut short: 3 of 6 bytes'],
        [
          Buffer.concat([frame(Buffer.from('a')), frame(Buffer.from('b'))]),
          'a unary call carries more than one request message',
        ],
      ];
      for (const [body, message] of cases) {
        const answer = await rawCall(session, { ':path': '/test.Echo/Echo' }, body);
        assert.equal(answer.grpcStatus, '13', message);
        assert.equal(answer.grpcMessage, message);
      }
    });

    it('answers INTERNAL when a handler throws, and keeps serving', async () => {
      const answer = await rawCall(session, { ':path': '/test.Echo/Throw' }, frame(Buffer.alloc(0)));
      assert.equal(answer.grpcStatus, '13');
      assert.equal(answer.grpcMessage, 'internal error: boom');
      assert.equal(
        (await rawCall(session, { ':path': '/test.Echo/Echo' }, frame(Buffer.from('ok')))).grpcStatus,
        '0',
      );
    });

    it('answers DEADLINE_EXCEEDED when an asynchronous answer outlives grpc-timeout, and drops the late answer', async () => {
      const answer = await rawCall(
        session,
        { ':path': '/test.Echo/Later', 'grpc-timeout': '30m' },
        frame(Buffer.alloc(0)),
      );
      assert.equal(answer.grpcStatus, '4');
      assert.equal(answer.grpcMessage, "no answer within the call's deadline of 30 ms");
      assert.equal(pending.length, 1);
      pending[0]?.(Buffer.from('too late')); // must not throw or reach the closed stream
      const inTime = rawCall(
        session,
        { ':path': '/test.Echo/Later', 'grpc-timeout': '10S' },
        frame(Buffer.alloc(0)),
      );
      await eventually(() => pending.length === 2);
      pending[1]?.(Buffer.from('in time'));
      const answered = await inTime;
      assert.equal(answered.grpcStatus, '0');
      assert.deepEqual(answered.body, frame(Buffer.from('in time')));
    });

    it('streams messages to a server-streaming call and ends it with a status', async () => {
      const call = rawCall(session, { ':path': '/test.Echo/Stream' }, frame(Buffer.from('first')));
      await eventually(() => streamWriters.length === 1);
      const writer = streamWriters[0] as ServerStreamWriter;
      writer.write(Buffer.from('second'));
      writer.end({ code: 14, message: 'going away' });
      assert.equal(writer.ended, true);
      writer.write(Buffer.from('ignored'));
      const answer = await call;
      assert.deepEqual(
        answer.body,
        Buffer.concat([frame(Buffer.from('first')), frame(Buffer.from('second'))]),
      );
      assert.equal(answer.trailers['grpc-status'], '14');
      assert.equal(answer.trailers['grpc-message'], 'going away');
    });

    it('tells a server-streaming handler when the client cancels', async () => {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/test.Echo/Stream',
        'content-type': 'application/grpc',
      });
      stream.on('error', () => undefined);
      stream.end(frame(Buffer.from('x')));
      await eventually(() => streamWriters.length === 1);
      let cancelled = false;
      streamWriters[0]?.onCancel(() => (cancelled = true));
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await eventually(() => cancelled);
      assert.equal(streamWriters[0]?.ended, true);
    });

    it('lets calls in flight finish on shutdown, and refuses new connections', async () => {
      const inFlight = rawCall(session, { ':path': '/test.Echo/Later' }, frame(Buffer.alloc(0)));
      await eventually(() => pending.length === 1);
      let closed = false;
      const shutdown = server.shutdown().then(() => (closed = true));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(closed, false);
      pending[0]?.(Buffer.from('finished'));
      const answer = await inFlight;
      assert.equal(answer.grpcStatus, '0');
      assert.deepEqual(answer.body, frame(Buffer.from('finished')));
      await shutdown;
      const refused = await new Promise<boolean>((resolve) => {
        const late = http2.connect(`http://${address}`);
        late.on('error', () => resolve(true));
        late.on('connect', () => {
          late.destroy();
          resolve(false);
        });
      });
      assert.equal(refused, true);
    });

    it('parses grpc-timeout and percent-encodes grpc-message', () => {
      assert.equal(parseGrpcTimeout('100m'), 100);
      assert.equal(parseGrpcTimeout('5S'), 5000);
      assert.equal(parseGrpcTimeout('2M'), 120_000);
      assert.equal(parseGrpcTimeout('1H'), 3_600_000);
      assert.equal(parseGrpcTimeout('1500u'), 2);
      assert.equal(parseGrpcTimeout('7n'), 1);
      assert.equal(parseGrpcTimeout('123456789S'), undefined);
      assert.equal(parseGrpcTimeout('10s'), undefined);
      assert.equal(parseGrpcTimeout(undefined), undefined);
      assert.equal(encodeGrpcMessage('plain text: ok'), 'plain text: ok');
      assert.equal(encodeGrpcMessage('50% off\n'), '50%25 off%0A');
    });
  });
}

async function eventually(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
