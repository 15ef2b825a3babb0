/**
 * What our own HTTP/2 server (http2/http2-server-connection.ts) does with a client that keeps
 * a connection without streams — it goes away after the idle timeout, never while a stream is
 * open — and with a request header list above the limit it announces (MAX_HEADER_LIST_SIZE):
 * 431 on that stream, the connection kept. Also the `node:http2` choice's idle timeout, and the
 * proxy's policy client across a server's idle GOAWAY.
 */
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_HEADER_LIST_BYTES,
  ErrorCode,
  FRAME_HEADER_BYTES,
  FrameFlag,
  FrameType,
  HpackDecoder,
  HpackEncoder,
  Http2ServerConnection,
  Http2ServerStream,
  Setting,
  goAwayFrame,
  settingsFrame,
} from '../../http2';
import {
  createGrpcServer,
  type GrpcMethod,
  type GrpcServer,
  type UnaryAnswer,
} from '../../policy-server/grpc-transport';
import { GrpcUnaryClient } from '../../proxy/policy/grpc-unary-client';
import {
  RawClient,
  grpcMessage,
  grpcRequestBlock,
  rawFrame,
  sleep,
  type RawFrame,
} from '../support/raw-http2-client';

const IDLE_MS = 200;
const ECHO = '/test.Echo/Echo';
const LATER = '/test.Echo/Later';

/** A header block as HEADERS and CONTINUATION frames of at most 16384 octets. */
function headerFrames(streamId: number, block: Buffer, endStream: boolean): Buffer {
  const frames: Buffer[] = [];
  for (let at = 0; at < block.length || at === 0; at += 16_384) {
    const piece = block.subarray(at, at + 16_384);
    const last = at + 16_384 >= block.length;
    const flags = (last ? FrameFlag.EndHeaders : 0) | (at === 0 && endStream ? FrameFlag.EndStream : 0);
    frames.push(rawFrame(at === 0 ? FrameType.Headers : FrameType.Continuation, flags, streamId, piece));
  }
  return Buffer.concat(frames);
}

function isGoAway(f: RawFrame): boolean {
  return f.type === FrameType.GoAway;
}

/** The value of `id` in the server's first SETTINGS, if it has one. */
async function announced(client: RawClient, id: Setting): Promise<number | undefined> {
  const settings = await client.waitFor(
    (f) => f.type === FrameType.Settings && (f.flags & FrameFlag.Ack) === 0,
    'SETTINGS',
  );
  for (let at = 0; at < settings.payload.length; at += 6) {
    if (settings.payload.readUInt16BE(at) === id) return settings.payload.readUInt32BE(at + 2);
  }
  return undefined;
}

async function eventually(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !condition(); i++) await sleep(10);
  assert.ok(condition(), `${what}: not within 3 s`);
}

describe('http2: own server connection, idle timeout and header list limit', function () {
  this.timeout(20_000);
  let server: GrpcServer | undefined;
  let port: number;
  let pending: ((answer: UnaryAnswer) => void)[];
  const raws: RawClient[] = [];

  async function start(http2Choice: 'own' | 'node' = 'own', idleTimeoutMs = IDLE_MS): Promise<void> {
    pending = [];
    server = createGrpcServer({
      http2: http2Choice,
      idleTimeoutMs,
      methods: new Map<string, GrpcMethod>([
        [ECHO, { kind: 'unary', handle: (request) => Buffer.from(request) }],
        [
          LATER,
          { kind: 'unary', handle: () => new Promise<UnaryAnswer>((resolve) => pending.push(resolve)) },
        ],
      ]),
    });
    port = await server.listen('127.0.0.1', 0);
  }

  function raw(): RawClient {
    const client = new RawClient(port);
    raws.push(client);
    client.start();
    return client;
  }

  afterEach(async () => {
    for (const r of raws.splice(0)) r.destroy();
    server?.forceShutdown();
    await server?.shutdown();
    server = undefined;
  });

  it('sends a connection without streams GOAWAY NO_ERROR after the idle timeout, then closes it', async () => {
    await start();
    const client = raw();
    const encoder = new HpackEncoder();
    // Before the request: the server's idle clock cannot start before it is answered.
    const sentAt = performance.now();
    client.write(
      Buffer.concat([
        rawFrame(FrameType.Headers, FrameFlag.EndHeaders, 1, grpcRequestBlock(encoder, ECHO)),
        rawFrame(FrameType.Data, FrameFlag.EndStream, 1, grpcMessage(Buffer.from('hi'))),
      ]),
    );
    await client.waitFor(
      (f) => f.type === FrameType.Headers && f.streamId === 1 && (f.flags & FrameFlag.EndStream) !== 0,
      'the answer on stream 1',
    );
    await sleep(IDLE_MS / 2);
    assert.equal(client.frames.filter(isGoAway).length, 0, 'no GOAWAY before the timeout');
    const goAway = await client.waitFor(isGoAway, 'GOAWAY');
    assert.ok(performance.now() - sentAt >= IDLE_MS - 2, 'not before the timeout');
    assert.equal(goAway.payload.readUInt32BE(0), 1, 'the last stream id it took');
    assert.equal(goAway.payload.readUInt32BE(4), ErrorCode.NoError);
    assert.equal(goAway.payload.toString('latin1', 8), `idle for ${IDLE_MS} ms`);
    await client.closed;
  });

  it('closes a connection that never opened a stream', async () => {
    await start();
    const client = raw();
    const goAway = await client.waitFor(isGoAway, 'GOAWAY');
    assert.equal(goAway.payload.readUInt32BE(0), 0);
    assert.equal(goAway.payload.readUInt32BE(4), ErrorCode.NoError);
    await client.closed;
  });

  it('keeps a connection whose stream is open past the timeout; the timeout counts from its end', async () => {
    await start();
    const client = raw();
    const encoder = new HpackEncoder();
    client.write(
      Buffer.concat([
        rawFrame(FrameType.Headers, FrameFlag.EndHeaders, 1, grpcRequestBlock(encoder, LATER)),
        rawFrame(FrameType.Data, FrameFlag.EndStream, 1, grpcMessage(Buffer.alloc(0))),
      ]),
    );
    await eventually('the slow call to arrive', () => pending.length === 1);
    await sleep(IDLE_MS * 3);
    assert.equal(client.frames.filter(isGoAway).length, 0, 'no GOAWAY while the stream is open');
    // Before the answer: the server's idle clock cannot start before the stream ends.
    const answeringAt = performance.now();
    pending[0]!(Buffer.from('late'));
    const trailers = await client.waitFor(
      (f) => f.type === FrameType.Headers && f.streamId === 1 && (f.flags & FrameFlag.EndStream) !== 0,
      'the answer on stream 1',
    );
    assert.ok(trailers !== undefined);
    await sleep(IDLE_MS / 2);
    assert.equal(client.frames.filter(isGoAway).length, 0, 'no GOAWAY right after the stream ended');
    const goAway = await client.waitFor(isGoAway, 'GOAWAY');
    assert.ok(performance.now() - answeringAt >= IDLE_MS - 2, 'counted from the end of the stream');
    assert.equal(goAway.payload.readUInt32BE(4), ErrorCode.NoError);
    await client.closed;
  });

  it('closes no connection with idleTimeoutMs 0', async () => {
    await start('own', 0);
    const client = raw();
    await sleep(IDLE_MS * 2);
    client.write(rawFrame(FrameType.Ping, 0, 0, Buffer.from('stillon!')));
    const pong = await client.waitFor((f) => f.type === FrameType.Ping, 'PING ACK');
    assert.deepEqual(pong.payload, Buffer.from('stillon!'));
    assert.equal(client.frames.filter(isGoAway).length, 0);
  });

  it('on node:http2 too: GOAWAY NO_ERROR after the idle timeout, none while a stream is open', async () => {
    await start('node');
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      const goAway = new Promise<number>((resolve) => session.once('goaway', (code) => resolve(code)));
      const stream = session.request({
        ':method': 'POST',
        ':path': LATER,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      stream.on('error', () => undefined);
      stream.end(grpcMessage(Buffer.alloc(0)));
      await eventually('the slow call to arrive', () => pending.length === 1);
      await sleep(IDLE_MS * 3);
      assert.equal(session.closed, false, 'kept while the stream is open');
      const closed = once(stream, 'close');
      pending[0]!(Buffer.from('late'));
      stream.resume();
      await closed;
      assert.equal(await goAway, http2.constants.NGHTTP2_NO_ERROR);
      await eventually('the session to close', () => session.closed || session.destroyed);
    } finally {
      session.destroy();
    }
  });

  for (const choice of ['own', 'node'] as const) {
    it(`announces MAX_HEADER_LIST_SIZE ${DEFAULT_MAX_HEADER_LIST_BYTES} in its SETTINGS (${choice})`, async () => {
      await start(choice);
      assert.equal(await announced(raw(), Setting.MaxHeaderListSize), DEFAULT_MAX_HEADER_LIST_BYTES);
    });
  }

  it('announces the maxHeaderListBytes it is given, and answers a list above it 431 on its stream only', async () => {
    // A bare connection: the owner answers every stream it gets 200.
    let streamsMade = 0;
    class Answer200 extends Http2ServerStream {
      onData(): void {}
      onEnd(): void {
        this.respond([':status', '200'], Buffer.from('ok'), []);
      }
      onCancel(): void {}
    }
    const listener = net.createServer((socket) => {
      new Http2ServerConnection(
        socket,
        {
          onStream: () => {
            streamsMade++;
            return new Answer200();
          },
          onClose: () => undefined,
        },
        { maxConcurrentStreams: 10, maxHeaderListBytes: 1000 },
      );
    });
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    port = (listener.address() as net.AddressInfo).port;
    try {
      const client = raw();
      assert.equal(await announced(client, Setting.MaxHeaderListSize), 1000);
      const encoder = new HpackEncoder();
      // 6 pseudo and regular fields of the request (about 250 octets) and one of 800: above 1000.
      client.write(headerFrames(1, grpcRequestBlock(encoder, ECHO, [['x-big', 'b'.repeat(800)]]), false));
      client.write(rawFrame(FrameType.Data, FrameFlag.EndStream, 1, grpcMessage(Buffer.from('body'))));
      // Then a request within the limit, on the same connection.
      client.write(headerFrames(3, grpcRequestBlock(encoder, ECHO, [['x-small', 's'.repeat(100)]]), true));
      const refused = await client.waitFor((f) => f.type === FrameType.Headers && f.streamId === 1, '431');
      const decoder = new HpackDecoder();
      const fields: string[] = [];
      assert.equal(decoder.decode(refused.payload, fields), undefined);
      assert.deepEqual(fields, [':status', '431']);
      assert.equal(refused.flags & FrameFlag.EndStream, FrameFlag.EndStream);
      const reset = await client.waitFor(
        (f) => f.type === FrameType.RstStream && f.streamId === 1,
        'RST_STREAM',
      );
      assert.equal(
        reset.payload.readUInt32BE(0),
        ErrorCode.NoError,
        'the body it may still send is not wanted',
      );
      const answered = await client.waitFor(
        (f) => f.type === FrameType.Headers && f.streamId === 3,
        'stream 3',
      );
      fields.length = 0;
      assert.equal(decoder.decode(answered.payload, fields), undefined);
      assert.deepEqual(fields.slice(0, 2), [':status', '200']);
      assert.equal(streamsMade, 1, 'the refused request never reached the owner');
      assert.equal(client.frames.filter(isGoAway).length, 0, 'the connection goes on');
    } finally {
      listener.close();
    }
  });

  describe('the policy client across an idle GOAWAY', () => {
    /**
     * A TCP relay to the server that counts connections; `fakeFirst`: the first connection is
     * not relayed but answered by a server that sends GOAWAY (NO_ERROR, last stream 0) on the
     * first HEADERS, as an idle timeout's GOAWAY does when it crosses a call on the wire.
     */
    async function relay(
      fakeFirst: boolean,
    ): Promise<{ port: number; accepted: () => number; close: () => void }> {
      let accepted = 0;
      const sockets = new Set<net.Socket>();
      const relayServer = net.createServer((socket) => {
        accepted++;
        sockets.add(socket);
        socket.on('error', () => undefined);
        if (fakeFirst && accepted === 1) {
          socket.write(settingsFrame([]));
          let seen = Buffer.alloc(0);
          socket.on('data', (chunk: Buffer) => {
            seen = Buffer.concat([seen, chunk]);
            for (let at = CLIENT_PREFACE.length; at + FRAME_HEADER_BYTES <= seen.length;) {
              if (seen[at + 3] === FrameType.Headers) {
                socket.end(goAwayFrame(0, ErrorCode.NoError, 'idle'));
                return;
              }
              at += FRAME_HEADER_BYTES + seen.readUIntBE(at, 3);
            }
          });
          return;
        }
        const upstream = net.connect(port, '127.0.0.1');
        sockets.add(upstream);
        upstream.on('error', () => socket.destroy());
        socket.pipe(upstream).pipe(socket);
      });
      relayServer.listen(0, '127.0.0.1');
      await once(relayServer, 'listening');
      return {
        port: (relayServer.address() as net.AddressInfo).port,
        accepted: () => accepted,
        close: () => {
          relayServer.close();
          for (const socket of sockets) socket.destroy();
        },
      };
    }

    it('after the server closed an idle connection, the next call succeeds on a new one', async () => {
      await start();
      const via = await relay(false);
      const client = new GrpcUnaryClient(`127.0.0.1:${via.port}`);
      try {
        const first = await client.call(ECHO, Buffer.from('one'), 2000);
        assert.equal(first.code, 0, first.message);
        await sleep(IDLE_MS * 3);
        const second = await client.call(ECHO, Buffer.from('two'), 2000);
        assert.equal(second.code, 0, second.message);
        assert.deepEqual(second.body, Buffer.from('two'));
        assert.equal(via.accepted(), 2, 'a new connection for the second call');
      } finally {
        client.close();
        via.close();
      }
    });

    it('a call the GOAWAY crossed (above its last stream id) goes to a new connection, not lost', async () => {
      await start('own', 0);
      const via = await relay(true);
      const client = new GrpcUnaryClient(`127.0.0.1:${via.port}`);
      try {
        const result = await client.call(ECHO, Buffer.from('retried'), 2000);
        assert.equal(result.code, 0, result.message);
        assert.deepEqual(result.body, Buffer.from('retried'));
        assert.equal(via.accepted(), 2);
      } finally {
        client.close();
        via.close();
      }
    });
  });
});
