/**
 * Our own HTTP/2 server (http2/http2-server-connection.ts) under the policy server's gRPC
 * transport, against real clients — node:http2 (nghttp2) and @grpc/grpc-js — and against
 * a raw TCP client that breaks the protocol on purpose.
 */
import { strict as assert } from 'node:assert';
import * as http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import { Client, Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import { CLIENT_PREFACE, ErrorCode, FrameFlag, FrameType, HpackDecoder, HpackEncoder } from '../../http2';
import {
  createGrpcServer,
  responseHeaders,
  type GrpcMethod,
  type GrpcServer,
  type UnaryAnswer,
} from '../../policy-server/grpc-transport';
import { RawClient, grpcMessage, grpcRequestBlock, rawFrame } from '../support/raw-http2-client';

const MIB = 1024 * 1024;

/** A pattern of `bytes` octets that a lost or reordered chunk would change. */
function pattern(bytes: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 31 + seed + (i >> 12)) & 0xff;
  return out;
}

interface NodeAnswer {
  readonly headers: http2.IncomingHttpHeaders;
  readonly trailers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly grpcStatus: string | undefined;
}

function nodeCall(
  session: http2.ClientHttp2Session,
  path: string,
  body: Buffer,
  extra: http2.OutgoingHttpHeaders = {},
): Promise<NodeAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...extra,
    });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (headers = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', reject);
    stream.on('close', () =>
      resolve({
        headers,
        trailers,
        body: Buffer.concat(chunks),
        grpcStatus: (trailers['grpc-status'] ?? headers['grpc-status']) as string | undefined,
      }),
    );
    stream.end(body);
  });
}

describe('http2: own HTTP/2 server connection (gRPC transport)', () => {
  let server: GrpcServer;
  let port: number;
  let pending: ((answer: UnaryAnswer) => void)[];
  let streamCancels: number;
  const sessions: http2.ClientHttp2Session[] = [];
  const clients: Client[] = [];
  const raws: RawClient[] = [];
  const bigMetadata = 'm'.repeat(40_000);

  async function start(maxConcurrentStreams = 16): Promise<void> {
    pending = [];
    streamCancels = 0;
    server = createGrpcServer({
      maxConcurrentStreams,
      methods: new Map<string, GrpcMethod>([
        ['/test.Echo/Echo', { kind: 'unary', handle: (request) => Buffer.from(request) }],
        [
          '/test.Echo/BigMetadata',
          {
            kind: 'unary',
            handle: (request) => ({
              message: Buffer.from(request),
              headers: responseHeaders({ 'x-big': bigMetadata }),
            }),
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
              writer.onCancel(() => streamCancels++);
              const count = request.length === 0 ? 3 : request[0]!;
              for (let i = 0; i < count; i++) writer.write(Buffer.concat([Buffer.from([i]), request]));
              if (request.length !== 0 && request[0] === 0) return; // left open for the client to cancel
              writer.end();
            },
          },
        ],
      ]),
    });
    port = await server.listen('127.0.0.1', 0);
  }

  function session(): http2.ClientHttp2Session {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    s.on('error', () => undefined);
    sessions.push(s);
    return s;
  }

  function grpcClient(): Client {
    const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), {
      'grpc.max_receive_message_length': 8 * MIB,
    });
    clients.push(client);
    return client;
  }

  function raw(allowHalfOpen = false): RawClient {
    const client = new RawClient(port, allowHalfOpen);
    raws.push(client);
    return client;
  }

  beforeEach(() => start());

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const s of sessions.splice(0)) s.destroy();
    for (const r of raws.splice(0)) r.destroy();
    server.forceShutdown();
    await server.shutdown();
  });

  describe('with a node:http2 client', () => {
    it('answers unary calls, repeated on one connection', async () => {
      const s = session();
      for (const text of ['one', 'two', 'three']) {
        const answer = await nodeCall(s, '/test.Echo/Echo', grpcMessage(Buffer.from(text)));
        assert.equal(answer.headers[':status'], 200);
        assert.equal(answer.headers['content-type'], 'application/grpc');
        assert.equal(answer.grpcStatus, '0');
        assert.deepEqual(answer.body, grpcMessage(Buffer.from(text)));
      }
    });

    it('streams messages to a server-streaming call', async () => {
      const answer = await nodeCall(session(), '/test.Echo/Stream', grpcMessage(Buffer.from([4, 9])));
      assert.equal(answer.grpcStatus, '0');
      const expected = [0, 1, 2, 3].map((i) => grpcMessage(Buffer.from([i, 4, 9])));
      assert.deepEqual(answer.body, Buffer.concat(expected));
    });

    it('takes and sends 3 MiB messages under flow control, on several streams at once', async () => {
      const s = session();
      const messages = [pattern(3 * MIB, 1), pattern(3 * MIB, 2)];
      const answers = await Promise.all(messages.map((m) => nodeCall(s, '/test.Echo/Echo', grpcMessage(m))));
      answers.forEach((answer, i) => {
        assert.equal(answer.grpcStatus, '0');
        assert.equal(answer.body.length, 3 * MIB + 5);
        assert.ok(answer.body.equals(grpcMessage(messages[i]!)), `answer ${i} differs`);
      });
    });

    it('sends response headers larger than a frame in HEADERS and CONTINUATION, and takes such request headers', async () => {
      const answer = await nodeCall(session(), '/test.Echo/BigMetadata', grpcMessage(Buffer.from('x')), {
        'x-request-big': 'r'.repeat(30_000),
      });
      assert.equal(answer.grpcStatus, '0');
      assert.equal(answer.headers['x-big'], bigMetadata);
      assert.deepEqual(answer.body, grpcMessage(Buffer.from('x')));
    });

    it('reads a gzip-compressed message', async () => {
      const answer = await nodeCall(
        session(),
        '/test.Echo/Echo',
        grpcMessage(gzipSync(Buffer.from('zipped')), true),
        {
          'grpc-encoding': 'gzip',
        },
      );
      assert.equal(answer.grpcStatus, '0');
      assert.deepEqual(answer.body, grpcMessage(Buffer.from('zipped')));
    });

    it('answers DEADLINE_EXCEEDED past grpc-timeout', async () => {
      const answer = await nodeCall(session(), '/test.Echo/Later', grpcMessage(Buffer.alloc(0)), {
        'grpc-timeout': '30m',
      });
      assert.equal(answer.grpcStatus, '4');
      assert.equal(pending.length, 1);
    });

    it('tells a server-streaming handler when the client cancels', async () => {
      const stream = session().request({
        ':method': 'POST',
        ':path': '/test.Echo/Stream',
        'content-type': 'application/grpc',
      });
      stream.on('error', () => undefined);
      stream.end(grpcMessage(Buffer.from([0])));
      await new Promise<void>((resolve) => stream.on('response', () => resolve()));
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await eventually(() => streamCancels === 1);
    });

    it('answers PING', async () => {
      const s = session();
      // node:http2 cancels a ping sent before the session connected.
      await new Promise<void>((resolve) => s.once('connect', () => resolve()));
      const payload = Buffer.from('12345678');
      const echoed = await new Promise<Buffer>((resolve, reject) =>
        s.ping(payload, (error, _duration, answer) => (error ? reject(error) : resolve(answer))),
      );
      assert.deepEqual(echoed, payload);
    });

    it('on shutdown sends GOAWAY, lets the call in flight finish, then closes', async () => {
      const s = session();
      const goAway = new Promise<number>((resolve) => s.on('goaway', (code) => resolve(code)));
      const inFlight = nodeCall(s, '/test.Echo/Later', grpcMessage(Buffer.alloc(0)));
      await eventually(() => pending.length === 1);
      let closed = false;
      const shutdown = server.shutdown().then(() => (closed = true));
      assert.equal(await goAway, http2.constants.NGHTTP2_NO_ERROR);
      assert.equal(closed, false);
      pending[0]!(Buffer.from('finished'));
      const answer = await inFlight;
      assert.equal(answer.grpcStatus, '0');
      assert.deepEqual(answer.body, grpcMessage(Buffer.from('finished')));
      await shutdown;
      assert.equal(closed, true);
    });
  });

  describe('with a @grpc/grpc-js client', () => {
    function unary(
      client: Client,
      path: string,
      request: Buffer,
      options: { deadlineMs?: number; metadata?: Metadata } = {},
    ) {
      return new Promise<{ error: ServiceError | null; response: Buffer | undefined }>((resolve) =>
        client.makeUnaryRequest<Buffer, Buffer>(
          path,
          (b) => b,
          (b) => b,
          request,
          options.metadata ?? new Metadata(),
          { deadline: Date.now() + (options.deadlineMs ?? 5000) },
          (error, response) => resolve({ error, response }),
        ),
      );
    }

    it('makes unary calls, and 3 MiB ones both ways', async () => {
      const client = grpcClient();
      const small = await unary(client, '/test.Echo/Echo', Buffer.from('hello'));
      assert.equal(small.error, null);
      assert.deepEqual(small.response, Buffer.from('hello'));
      const message = pattern(3 * MIB, 7);
      const large = await unary(client, '/test.Echo/Echo', message);
      assert.equal(large.error, null);
      assert.ok(large.response?.equals(message));
    });

    it('makes a server-streaming call', async () => {
      const client = grpcClient();
      const received: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        const call = client.makeServerStreamRequest<Buffer, Buffer>(
          '/test.Echo/Stream',
          (b) => b,
          (b) => b,
          Buffer.from([2, 5]),
        );
        call.on('data', (m: Buffer) => received.push(m));
        call.on('error', reject);
        call.on('end', () => resolve());
      });
      assert.deepEqual(received, [Buffer.from([0, 2, 5]), Buffer.from([1, 2, 5])]);
    });

    it('sends gzip-compressed messages the server reads', async () => {
      const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), {
        'grpc.default_compression_algorithm': 2,
      });
      clients.push(client);
      const message = Buffer.alloc(10_000, 'a');
      const answer = await unary(client, '/test.Echo/Echo', message);
      assert.equal(answer.error, null);
      assert.deepEqual(answer.response, message);
    });

    it('gets DEADLINE_EXCEEDED and UNIMPLEMENTED', async () => {
      const client = grpcClient();
      const late = await unary(client, '/test.Echo/Later', Buffer.alloc(0), { deadlineMs: 50 });
      assert.equal(late.error?.code, 4);
      const unknown = await unary(client, '/test.Echo/Nope', Buffer.alloc(0));
      assert.equal(unknown.error?.code, 12);
    });
  });

  describe('with a raw TCP client', () => {
    async function assertStillServing(): Promise<void> {
      const answer = await nodeCall(session(), '/test.Echo/Echo', grpcMessage(Buffer.from('still here')));
      assert.equal(answer.grpcStatus, '0');
    }

    it('answers a bad preface with GOAWAY PROTOCOL_ERROR, and keeps serving others', async () => {
      const client = raw();
      client.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      assert.equal(await client.goAwayCode(), ErrorCode.ProtocolError);
      await client.closed;
      await assertStillServing();
    });

    it('answers DATA on stream 0 with GOAWAY PROTOCOL_ERROR', async () => {
      const client = raw();
      client.start();
      client.write(rawFrame(FrameType.Data, 0, 0, Buffer.from('x')));
      assert.equal(await client.goAwayCode(), ErrorCode.ProtocolError);
      await assertStillServing();
    });

    it('answers a frame above MAX_FRAME_SIZE with GOAWAY FRAME_SIZE_ERROR', async () => {
      const client = raw();
      client.start();
      client.write(rawFrame(FrameType.Data, 0, 1, Buffer.alloc(20_000)));
      assert.equal(await client.goAwayCode(), ErrorCode.FrameSizeError);
      await assertStillServing();
    });

    it('answers an undecodable header block with GOAWAY COMPRESSION_ERROR', async () => {
      const client = raw();
      client.start();
      // Index 0 is never valid (RFC 7541 §6.1).
      client.write(
        rawFrame(FrameType.Headers, FrameFlag.EndHeaders | FrameFlag.EndStream, 1, Buffer.from([0x80])),
      );
      assert.equal(await client.goAwayCode(), ErrorCode.CompressionError);
      await assertStillServing();
    });

    it('answers DATA on a closed stream with GOAWAY STREAM_CLOSED', async () => {
      const client = raw();
      client.start();
      const encoder = new HpackEncoder();
      client.write(
        Buffer.concat([
          rawFrame(FrameType.Headers, FrameFlag.EndHeaders, 1, grpcRequestBlock(encoder, '/test.Echo/Echo')),
          rawFrame(FrameType.Data, FrameFlag.EndStream, 1, grpcMessage(Buffer.from('a'))),
        ]),
      );
      const trailers = await client.waitFor(
        (f) => f.type === FrameType.Headers && f.streamId === 1 && (f.flags & FrameFlag.EndStream) !== 0,
        'the answer on stream 1',
      );
      assert.ok(trailers !== undefined);
      client.write(rawFrame(FrameType.Data, 0, 1, Buffer.from('late')));
      assert.equal(await client.goAwayCode(), ErrorCode.StreamClosed);
      await assertStillServing();
    });

    it('refuses a stream above MAX_CONCURRENT_STREAMS with RST_STREAM REFUSED_STREAM', async () => {
      server.forceShutdown();
      await server.shutdown();
      await start(1);
      const client = raw();
      client.start();
      const encoder = new HpackEncoder();
      client.write(
        Buffer.concat([
          rawFrame(FrameType.Headers, FrameFlag.EndHeaders, 1, grpcRequestBlock(encoder, '/test.Echo/Later')),
          rawFrame(FrameType.Data, FrameFlag.EndStream, 1, grpcMessage(Buffer.alloc(0))),
          rawFrame(FrameType.Headers, FrameFlag.EndHeaders, 3, grpcRequestBlock(encoder, '/test.Echo/Echo')),
        ]),
      );
      const reset = await client.waitFor(
        (f) => f.type === FrameType.RstStream && f.streamId === 3,
        'RST_STREAM on 3',
      );
      assert.equal(reset.payload.readUInt32BE(0), ErrorCode.RefusedStream);
      await eventually(() => pending.length === 1);
      // Stream 1 is still served.
      pending[0]!(Buffer.from('one'));
      const data = await client.waitFor((f) => f.type === FrameType.Data && f.streamId === 1, 'DATA on 1');
      assert.deepEqual(data.payload, grpcMessage(Buffer.from('one')));
    });

    it('drops the answer of a call the client reset, and answers PING after it', async () => {
      const client = raw();
      client.start();
      const encoder = new HpackEncoder();
      const cancel = Buffer.alloc(4);
      cancel.writeUInt32BE(ErrorCode.Cancel);
      client.write(
        Buffer.concat([
          rawFrame(FrameType.Headers, FrameFlag.EndHeaders, 1, grpcRequestBlock(encoder, '/test.Echo/Later')),
          rawFrame(FrameType.Data, FrameFlag.EndStream, 1, grpcMessage(Buffer.alloc(0))),
        ]),
      );
      await eventually(() => pending.length === 1);
      client.write(rawFrame(FrameType.RstStream, 0, 1, cancel));
      await new Promise((resolve) => setTimeout(resolve, 20));
      pending[0]!(Buffer.from('too late'));
      client.write(rawFrame(FrameType.Ping, 0, 0, Buffer.from('pingpong')));
      const pong = await client.waitFor((f) => f.type === FrameType.Ping, 'PING ACK');
      assert.equal(pong.flags & FrameFlag.Ack, FrameFlag.Ack);
      assert.deepEqual(pong.payload, Buffer.from('pingpong'));
      assert.equal(client.frames.filter((f) => f.streamId === 1).length, 0);
    });

    it("sends no more than the client's windows allow, and the rest on WINDOW_UPDATE", async () => {
      const client = raw();
      const settings = Buffer.alloc(6);
      settings.writeUInt16BE(0x4, 0); // INITIAL_WINDOW_SIZE
      settings.writeUInt32BE(10, 2);
      client.write(Buffer.concat([CLIENT_PREFACE, rawFrame(FrameType.Settings, 0, 0, settings)]));
      const encoder = new HpackEncoder();
      const message = pattern(95, 3);
      client.write(
        Buffer.concat([
          rawFrame(FrameType.Headers, FrameFlag.EndHeaders, 1, grpcRequestBlock(encoder, '/test.Echo/Echo')),
          rawFrame(FrameType.Data, FrameFlag.EndStream, 1, grpcMessage(message)),
        ]),
      );
      await client.waitFor((f) => f.type === FrameType.Data && f.streamId === 1, 'the first DATA');
      await new Promise((resolve) => setTimeout(resolve, 30));
      const dataBytes = (): number =>
        client.frames.filter((f) => f.type === FrameType.Data).reduce((sum, f) => sum + f.payload.length, 0);
      assert.equal(dataBytes(), 10, 'the stream window of 10 octets');
      assert.equal(client.frames.filter((f) => f.type === FrameType.Headers).length, 1, 'no trailers yet');
      const increment = Buffer.alloc(4);
      increment.writeUInt32BE(1000);
      client.write(rawFrame(FrameType.WindowUpdate, 0, 1, increment));
      await client.waitFor(
        (f) => f.type === FrameType.Headers && (f.flags & FrameFlag.EndStream) !== 0,
        'the trailers after the window opened',
      );
      const body = Buffer.concat(
        client.frames.filter((f) => f.type === FrameType.Data).map((f) => f.payload),
      );
      assert.deepEqual(body, grpcMessage(message));
    });

    it('ends a graceful shutdown even when a client keeps its connection open', async () => {
      const client = raw(true);
      client.start();
      await client.waitFor((f) => f.type === FrameType.Settings, 'our SETTINGS');
      const started = Date.now();
      await server.shutdown();
      assert.equal(await client.goAwayCode(), ErrorCode.NoError);
      assert.ok(Date.now() - started < 3000, `shutdown took ${Date.now() - started} ms`);
    });

    it('sends repeated response headers as one-byte table references', async () => {
      const client = raw();
      client.start();
      const encoder = new HpackEncoder();
      for (const id of [1, 3]) {
        client.write(
          Buffer.concat([
            rawFrame(
              FrameType.Headers,
              FrameFlag.EndHeaders,
              id,
              grpcRequestBlock(encoder, '/test.Echo/Echo'),
            ),
            rawFrame(FrameType.Data, FrameFlag.EndStream, id, grpcMessage(Buffer.from('a'))),
          ]),
        );
        await client.waitFor(
          (f) => f.type === FrameType.Headers && f.streamId === id && (f.flags & FrameFlag.EndStream) !== 0,
          `the answer on ${id}`,
        );
      }
      const blocks = client.frames.filter((f) => f.type === FrameType.Headers);
      const decoder = new HpackDecoder();
      const fields: string[] = [];
      for (const block of blocks) assert.equal(decoder.decode(block.payload, fields), undefined);
      assert.deepEqual(fields.slice(0, 6), [
        ':status',
        '200',
        'content-type',
        'application/grpc',
        'grpc-accept-encoding',
        'identity,gzip,deflate',
      ]);
      // The second call's headers (3 fields) and trailers (1 field) are one octet each.
      assert.equal(blocks[2]!.payload.length, 3);
      assert.equal(blocks[3]!.payload.length, 1);
    });
  });
});

async function eventually(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(condition(), 'condition not met within 2 s');
}
