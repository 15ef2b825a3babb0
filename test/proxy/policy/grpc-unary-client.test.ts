import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as fc from 'fast-check';
import { GrpcUnaryClient } from '../../../proxy/policy/grpc-unary-client';
import type { HpackEncoder } from '../../../http2';
import { Http2ClientConnection, Http2Stream } from '../../../proxy/policy/http2-client-connection';

const PATH = '/istio.mixer.v1.Mixer/Check';

function frame(message: Uint8Array): Buffer {
  const framed = Buffer.alloc(5 + message.length);
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, 5);
  return framed;
}

/** Reads a request's whole body and returns its gRPC message. */
async function readMessage(stream: http2.ServerHttp2Stream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  assert.equal(body[0], 0, 'not compressed');
  assert.equal(body.readUInt32BE(1), body.length - 5, 'the prefix counts the message');
  return body.subarray(5);
}

/** Answers OK with `message`, response headers `headers` and trailers `trailers`. */
function answer(
  stream: http2.ServerHttp2Stream,
  message: Uint8Array,
  headers: http2.OutgoingHttpHeaders = {},
  trailers: http2.OutgoingHttpHeaders = { 'grpc-status': '0' },
): void {
  stream.respond(
    { ':status': 200, 'content-type': 'application/grpc', ...headers },
    { waitForTrailers: true },
  );
  stream.on('wantTrailers', () => stream.sendTrailers(trailers));
  stream.end(frame(message));
}

interface TestServer {
  readonly address: string;
  readonly server: http2.Http2Server;
  readonly sessions: http2.ServerHttp2Session[];
}

describe('proxy: gRPC unary client (own HTTP/2) against node:http2', function () {
  this.timeout(20_000);
  let server: TestServer | undefined;
  let client: GrpcUnaryClient | undefined;

  afterEach(async () => {
    client?.close();
    client = undefined;
    if (server !== undefined) {
      for (const session of server.sessions) session.destroy();
      await new Promise((resolve) => server!.server.close(resolve));
      server = undefined;
    }
  });

  async function start(
    onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
    settings: http2.Settings = {},
  ): Promise<TestServer> {
    const h2 = http2.createServer({ settings, maxSessionMemory: 100 });
    const sessions: http2.ServerHttp2Session[] = [];
    h2.on('session', (session) => sessions.push(session));
    h2.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      onStream(stream, headers);
    });
    h2.listen(0, '127.0.0.1');
    await once(h2, 'listening');
    const port = (h2.address() as net.AddressInfo).port;
    server = { address: `127.0.0.1:${port}`, server: h2, sessions };
    client = new GrpcUnaryClient(server.address);
    return server;
  }

  it('calls: the request carries path, content type, te, timeout and metadata; the answer its message and headers', async () => {
    const seen: http2.IncomingHttpHeaders[] = [];
    await start(async (stream, headers) => {
      seen.push(headers);
      const message = await readMessage(stream);
      answer(stream, Buffer.concat([Buffer.from('echo:'), message]), {
        'x-switchboard-config-generation': '7',
      });
    });
    for (const id of ['first', 'second', 'third']) {
      const result = await client!.call(PATH, Buffer.from(id), 1500, {
        'x-request-id': id,
        'x-constant': 'same',
      });
      assert.equal(result.code, 0, result.message);
      assert.equal(result.body?.toString(), `echo:${id}`);
      assert.equal(result.headers?.['x-switchboard-config-generation'], '7');
      assert.equal(result.headers?.[':status'], '200');
    }
    assert.equal(seen.length, 3);
    for (const [i, headers] of seen.entries()) {
      assert.equal(headers[':method'], 'POST');
      assert.equal(headers[':scheme'], 'http');
      assert.equal(headers[':path'], PATH);
      assert.equal(headers[':authority'], server!.address);
      assert.equal(headers['content-type'], 'application/grpc');
      assert.equal(headers.te, 'trailers');
      assert.equal(headers['grpc-timeout'], '1500m');
      assert.equal(headers['x-request-id'], ['first', 'second', 'third'][i]);
      assert.equal(headers['x-constant'], 'same');
    }
    assert.equal(server!.sessions.length, 1, 'one connection for all calls');
  });

  it('close: calls in flight finish, later ones fail UNAVAILABLE at once', async () => {
    await start(async (stream) => {
      await readMessage(stream);
      await new Promise((resolve) => setTimeout(resolve, 50));
      answer(stream, Buffer.from('late'));
    });
    const inFlight = client!.call(PATH, Buffer.from('x'), 2000);
    await new Promise((resolve) => setTimeout(resolve, 10));
    client!.close();
    client!.close();
    const after = await client!.call(PATH, Buffer.from('y'), 2000);
    assert.deepEqual([after.code, after.message], [14, 'the policy client is closed']);
    const result = await inFlight;
    assert.equal(result.code, 0, result.message);
    assert.equal(result.body?.toString(), 'late');
  });

  it('reads a trailers-only failure and percent-decodes grpc-message', async () => {
    await start((stream) => {
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '7',
          'grpc-message': encodeURIComponent('no entry to /admin ✓ 100%'),
        },
        { endStream: true },
      );
    });
    const result = await client!.call(PATH, Buffer.from('x'), 1000);
    assert.equal(result.code, 7);
    assert.equal(result.message, 'no entry to /admin ✓ 100%');
    assert.equal(result.body, undefined);
  });

  it('reads a failure in trailers after headers, and an HTTP status without grpc-status', async () => {
    let calls = 0;
    await start(async (stream) => {
      await readMessage(stream);
      if (calls++ === 0) {
        answer(stream, Buffer.alloc(0), {}, { 'grpc-status': '8', 'grpc-message': 'quota%20exhausted' });
      } else {
        stream.respond({ ':status': 503 }, { endStream: true });
      }
    });
    const failed = await client!.call(PATH, Buffer.from('x'), 1000);
    assert.deepEqual([failed.code, failed.message], [8, 'quota exhausted']);
    const http = await client!.call(PATH, Buffer.from('x'), 1000);
    assert.equal(http.code, 14);
    assert.match(http.message, /HTTP status 503/);
  });

  it('sends and receives 2 MiB each way, and a header block larger than a frame (CONTINUATION)', async () => {
    const big = Buffer.alloc(2 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    let metadataLength = 0;
    await start(async (stream, headers) => {
      metadataLength = String(headers['x-big']).length;
      const message = await readMessage(stream);
      assert.equal(Buffer.compare(message, big), 0, 'the server got the request intact');
      answer(stream, Buffer.from(message).reverse());
    });
    const result = await client!.call(PATH, big, 10_000, { 'x-big': 'b'.repeat(40_000) });
    assert.equal(result.code, 0, result.message);
    assert.equal(metadataLength, 40_000);
    assert.equal(Buffer.compare(result.body!, Buffer.from(big).reverse()), 0);
  });

  it('keeps within small windows and a small header table the server sets, also when it lowers them later', async () => {
    const request = Buffer.alloc(100_000, 1);
    await start(
      async (stream) => {
        const message = await readMessage(stream);
        answer(stream, Buffer.alloc(message.length, 2));
      },
      { initialWindowSize: 1000, headerTableSize: 0, maxFrameSize: 16_384 },
    );
    const first = await client!.call(PATH, request, 5000, { 'x-a': 'a' });
    assert.equal(first.code, 0, first.message);
    assert.equal(first.body?.length, request.length);
    server!.sessions[0]!.settings({ initialWindowSize: 500, headerTableSize: 64 });
    for (let i = 0; i < 3; i++) {
      const result = await client!.call(PATH, request, 5000, { 'x-a': 'a', 'x-i': String(i) });
      assert.equal(result.code, 0, result.message);
      assert.equal(result.body?.length, request.length);
    }
    assert.equal(server!.sessions.length, 1);
  });

  it('after a GOAWAY, the next call succeeds on a new connection', async () => {
    await start(async (stream) => {
      await readMessage(stream);
      answer(stream, Buffer.from('ok'));
    });
    assert.equal((await client!.call(PATH, Buffer.from('1'), 1000)).code, 0);
    server!.sessions[0]!.goaway(http2.constants.NGHTTP2_NO_ERROR);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const result = await client!.call(PATH, Buffer.from('2'), 1000);
    assert.equal(result.code, 0, result.message);
    assert.equal(server!.sessions.length, 2);
  });

  it('fails a call UNAVAILABLE when the server drops the connection mid-call, and reconnects for the next', async () => {
    let calls = 0;
    await start(async (stream) => {
      await readMessage(stream);
      if (calls++ === 0) stream.session?.destroy();
      else answer(stream, Buffer.from('ok'));
    });
    const dropped = await client!.call(PATH, Buffer.from('1'), 1000);
    assert.equal(dropped.code, 14);
    assert.match(dropped.message, /127\.0\.0\.1:\d+/);
    const next = await client!.call(PATH, Buffer.from('2'), 1000);
    assert.equal(next.code, 0, next.message);
  });

  it('answers UNAVAILABLE when nothing listens', async () => {
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    client = new GrpcUnaryClient(`127.0.0.1:${port}`);
    const result = await client.call(PATH, Buffer.from('x'), 1000);
    assert.equal(result.code, 14);
    assert.match(result.message, /ECONNREFUSED/);
  });

  it('ends a call DEADLINE_EXCEEDED at its deadline, and the server sees the stream cancelled', async () => {
    let resetCode: Promise<number> | undefined;
    await start((stream) => {
      resetCode = new Promise((resolve) => stream.on('close', () => resolve(stream.rstCode)));
    });
    const started = performance.now();
    const result = await client!.call(PATH, Buffer.from('x'), 100);
    const elapsed = performance.now() - started;
    assert.equal(result.code, 4);
    assert.match(result.message, /within 100 ms/);
    assert.ok(elapsed >= 95 && elapsed < 1000, `ended after ${elapsed} ms`);
    assert.equal(await resetCode, http2.constants.NGHTTP2_CANCEL);
  });

  it('after a deadline, keeps a connection whose server answers the PING', async () => {
    await start(() => undefined);
    client = new GrpcUnaryClient(server!.address, { pingTimeoutMs: 200 });
    assert.equal((await client.call(PATH, Buffer.from('x'), 100)).code, 4);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal((await client.call(PATH, Buffer.from('y'), 100)).code, 4);
    assert.equal(server!.sessions.length, 1, 'one connection for both calls');
  });

  it('maps a reset stream to a status: REFUSED_STREAM is UNAVAILABLE', async () => {
    await start((stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
    const result = await client!.call(PATH, Buffer.from('x'), 1000);
    assert.equal(result.code, 14);
    assert.match(result.message, /REFUSED_STREAM/);
  });

  it("queues calls beyond the server's MAX_CONCURRENT_STREAMS", async () => {
    let open = 0;
    let mostOpen = 0;
    await start(
      async (stream) => {
        open++;
        mostOpen = Math.max(mostOpen, open);
        await readMessage(stream);
        await new Promise((resolve) => setTimeout(resolve, 20));
        open--;
        answer(stream, Buffer.from('ok'));
      },
      { maxConcurrentStreams: 1 },
    );
    // The first call lets the server's SETTINGS arrive.
    assert.equal((await client!.call(PATH, Buffer.from('0'), 2000)).code, 0);
    const results = await Promise.all(
      [1, 2, 3, 4].map((i) => client!.call(PATH, Buffer.from(String(i)), 2000)),
    );
    assert.deepEqual(
      results.map((r) => r.code),
      [0, 0, 0, 0],
    );
    assert.equal(mostOpen, 1);
  });

  it("answers the server's PING", async () => {
    await start(async (stream) => {
      await readMessage(stream);
      answer(stream, Buffer.from('ok'));
    });
    assert.equal((await client!.call(PATH, Buffer.from('x'), 1000)).code, 0);
    const duration = await new Promise<number>((resolve, reject) =>
      server!.sessions[0]!.ping((error, ms) => (error === null ? resolve(ms) : reject(error))),
    );
    assert.ok(duration >= 0);
  });

  it('decodes whatever headers and grpc-message node:http2 encodes (Huffman, dynamic table, eviction)', async () => {
    await start(async (stream) => {
      const spec = JSON.parse((await readMessage(stream)).toString()) as {
        headers: Record<string, string>;
        message: string;
      };
      answer(stream, Buffer.from('ok'), spec.headers, {
        'grpc-status': '0',
        'grpc-message': encodeURIComponent(spec.message),
      });
    });
    const name = fc.stringMatching(/^x-[a-z0-9-]{1,20}$/);
    const value = fc
      .string({
        unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
        maxLength: 300,
      })
      .map((v) => v.trim());
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.tuple(name, value), { selector: ([n]) => n, maxLength: 20 }),
        fc.string({ maxLength: 50 }),
        async (pairs, message) => {
          const headers = Object.fromEntries(pairs);
          const result = await client!.call(PATH, Buffer.from(JSON.stringify({ headers, message })), 2000);
          assert.equal(result.code, 0, result.message);
          for (const [n, v] of pairs) assert.equal(result.headers?.[n], v, n);
        },
      ),
      { numRuns: 150 },
    );
    assert.equal(server!.sessions.length, 1, 'all on one connection: its dynamic table carried over');
  });

  it('decodes grpc-message of a failure whatever its characters', async () => {
    await start(async (stream) => {
      const text = (await readMessage(stream)).toString();
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '3',
          'grpc-message': encodeURIComponent(text),
        },
        { endStream: true },
      );
    });
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 40 }), async (text) => {
        const result = await client!.call(PATH, Buffer.from(text), 2000);
        assert.deepEqual([result.code, result.message], [3, text]);
      }),
      { numRuns: 100 },
    );
  });

  describe('a server that breaks HTTP/2', () => {
    /** A TCP server that reads the client's preface and answers `reply`; resolves with what the client sent after. */
    async function rawServer(
      reply: Buffer,
    ): Promise<{ address: string; received: Promise<Buffer>; close: () => void }> {
      const sockets: net.Socket[] = [];
      let deliver: (bytes: Buffer) => void = () => undefined;
      const received = new Promise<Buffer>((resolve) => (deliver = resolve));
      const tcp = net.createServer((socket) => {
        sockets.push(socket);
        const chunks: Buffer[] = [];
        socket.on('data', (chunk) => chunks.push(chunk));
        socket.on('end', () => {
          deliver(Buffer.concat(chunks));
          socket.end();
        });
        socket.on('error', () => undefined);
        socket.write(reply);
      });
      tcp.listen(0, '127.0.0.1');
      await once(tcp, 'listening');
      return {
        address: `127.0.0.1:${(tcp.address() as net.AddressInfo).port}`,
        received,
        close: () => {
          for (const socket of sockets) socket.destroy();
          tcp.close();
        },
      };
    }

    /** Whether what the client sent holds a frame of `type` with exactly `flags`. */
    function hasFrame(bytes: Buffer, type: number, flags: number): boolean {
      let pos = 24; // the preface
      while (pos + 9 <= bytes.length) {
        if (bytes[pos + 3] === type && bytes[pos + 4] === flags) return true;
        pos += 9 + bytes.readUIntBE(pos, 3);
      }
      return false;
    }

    /** The GOAWAY error code in what the client sent, or undefined. */
    function goAwayCode(bytes: Buffer): number | undefined {
      let pos = 24; // the preface
      while (pos + 9 <= bytes.length) {
        const length = bytes.readUIntBE(pos, 3);
        if (bytes[pos + 3] === 0x7) return bytes.readUInt32BE(pos + 9 + 4);
        pos += 9 + length;
      }
      return undefined;
    }

    const settings = Buffer.from('000000040000000000', 'hex');
    const cases: [string, Buffer, number, RegExp][] = [
      // HEADERS on stream 1 with an index beyond the tables.
      [
        'an undecodable header block: COMPRESSION_ERROR',
        Buffer.concat([settings, Buffer.from('00000101050000000180', 'hex')]),
        0x9,
        /COMPRESSION_ERROR.*index 0/,
      ],
      [
        'a frame above MAX_FRAME_SIZE: FRAME_SIZE_ERROR',
        Buffer.concat([settings, Buffer.from('00ffff00000000000100', 'hex')]),
        0x6,
        /FRAME_SIZE_ERROR/,
      ],
      [
        'HTTP/1.1 instead of HTTP/2',
        Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'),
        0x6,
        /FRAME_SIZE_ERROR|not SETTINGS/,
      ],
      [
        'a header block above 64 KiB in CONTINUATIONs: ENHANCE_YOUR_CALM',
        Buffer.concat([
          settings,
          h2Frame(0x1, 0x0, 1, Buffer.alloc(16384, 0x88)),
          ...Array.from({ length: 4 }, () => h2Frame(0x9, 0x0, 1, Buffer.alloc(16384, 0x88))),
        ]),
        0xb,
        /ENHANCE_YOUR_CALM/,
      ],
      [
        'PING on a stream: PROTOCOL_ERROR',
        Buffer.concat([settings, h2Frame(0x6, 0x0, 1, Buffer.alloc(8))]),
        0x1,
        /PROTOCOL_ERROR.*PING on a stream/,
      ],
      [
        'PING of 7 octets: FRAME_SIZE_ERROR',
        Buffer.concat([settings, h2Frame(0x6, 0x0, 0, Buffer.alloc(7))]),
        0x6,
        /FRAME_SIZE_ERROR.*PING of 7 octets/,
      ],
      [
        'DATA on stream 0: PROTOCOL_ERROR',
        Buffer.concat([settings, Buffer.from('000001000000000000ff', 'hex')]),
        0x1,
        /PROTOCOL_ERROR/,
      ],
    ];
    for (const [what, reply, code, message] of cases) {
      it(`${what}: ends the connection with GOAWAY and fails the call UNAVAILABLE`, async () => {
        const raw = await rawServer(reply);
        try {
          client = new GrpcUnaryClient(raw.address);
          const result = await client.call(PATH, Buffer.from('x'), 2000);
          assert.equal(result.code, 14);
          assert.match(result.message, message);
          assert.equal(goAwayCode(await raw.received), code);
        } finally {
          raw.close();
        }
      });
    }

    /** The RST_STREAM error code in what the client sent, or undefined. */
    function rstStreamCode(bytes: Buffer): number | undefined {
      let pos = 24;
      while (pos + 9 <= bytes.length) {
        const length = bytes.readUIntBE(pos, 3);
        if (bytes[pos + 3] === 0x3) return bytes.readUInt32BE(pos + 9);
        pos += 9 + length;
      }
      return undefined;
    }

    // HPACK: 0x88 is `:status: 200`; `08 03 313030` is `:status: 100` (literal, indexed name).
    const head200 = h2Frame(0x1, 0x4, 1, Buffer.from('88', 'hex'));
    const grpcOk = Buffer.concat([
      Buffer.from('000b', 'hex'),
      Buffer.from('grpc-status'),
      Buffer.from('0130', 'hex'),
    ]);
    const streamCases: [string, Buffer, number][] = [
      [
        'trailers without END_STREAM: PROTOCOL_ERROR',
        Buffer.concat([settings, head200, h2Frame(0x1, 0x4, 1, grpcOk)]),
        0x1,
      ],
      [
        'DATA before the response head: PROTOCOL_ERROR',
        Buffer.concat([settings, h2Frame(0x0, 0x0, 1, Buffer.from('00000000017a', 'hex'))]),
        0x1,
      ],
      [
        'a stream window above 2^31 - 1: FLOW_CONTROL_ERROR',
        Buffer.concat([settings, h2Frame(0x8, 0x0, 1, Buffer.from('7fffffff', 'hex'))]),
        0x3,
      ],
    ];
    for (const [what, reply, code] of streamCases) {
      it(`${what}: resets that stream and fails the call at once, not at its deadline`, async () => {
        const raw = await rawServer(reply);
        try {
          client = new GrpcUnaryClient(raw.address);
          const started = Date.now();
          const result = await client.call(PATH, Buffer.from('x'), 5000);
          assert.notEqual(result.code, 0);
          assert.notEqual(result.code, 4, 'not left to its deadline');
          assert.ok(Date.now() - started < 4000);
          client.close();
          assert.equal(rstStreamCode(await raw.received), code);
        } finally {
          raw.close();
        }
      });
    }

    it('gives up a connection whose server answers nothing, not even a PING, and connects again', async () => {
      // A server that takes the connection and then says nothing at all (SETTINGS included).
      const connections: net.Socket[] = [];
      const received: Buffer[][] = [];
      const tcp = net.createServer((socket) => {
        const chunks: Buffer[] = [];
        connections.push(socket);
        received.push(chunks);
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('error', () => undefined);
      });
      tcp.listen(0, '127.0.0.1');
      await once(tcp, 'listening');
      try {
        client = new GrpcUnaryClient(`127.0.0.1:${(tcp.address() as net.AddressInfo).port}`, {
          pingTimeoutMs: 200,
        });
        assert.equal((await client.call(PATH, Buffer.from('x'), 100)).code, 4);
        // A call on the same connection while the PING is out: it ends when the probe gives up.
        const started = performance.now();
        const waiting = await client.call(PATH, Buffer.from('y'), 10_000);
        const waited = performance.now() - started;
        assert.equal(waiting.code, 14);
        assert.match(waiting.message, /did not answer a PING within 200 ms/);
        assert.ok(waited < 1000, `ended after ${waited} ms, not at its deadline`);
        assert.equal(connections.length, 1);
        // The PING went out: type 6, no ACK, on stream 0.
        assert.ok(hasFrame(Buffer.concat(received[0]!), 0x6, 0x0), 'a PING was sent');
        // The next call connects again.
        assert.equal((await client.call(PATH, Buffer.from('z'), 100)).code, 4);
        assert.equal(connections.length, 2);
      } finally {
        client?.close();
        client = undefined;
        for (const socket of connections) socket.destroy();
        tcp.close();
      }
    });

    it('skips an informational (1xx) head and reads the response after it', async () => {
      const informational = h2Frame(0x1, 0x4, 1, Buffer.from('0803313030', 'hex'));
      const generation = Buffer.concat([
        Buffer.from('0003', 'hex'),
        Buffer.from('x-g'),
        Buffer.from('0137', 'hex'),
      ]);
      const raw = await rawServer(
        Buffer.concat([
          settings,
          informational,
          h2Frame(0x1, 0x4, 1, Buffer.concat([Buffer.from('88', 'hex'), generation])),
          h2Frame(0x0, 0x0, 1, Buffer.from('00000000017a', 'hex')),
          h2Frame(0x1, 0x5, 1, grpcOk),
        ]),
      );
      try {
        client = new GrpcUnaryClient(raw.address);
        const result = await client.call(PATH, Buffer.from('x'), 5000);
        assert.equal(result.code, 0, result.message);
        assert.equal(result.headers?.[':status'], '200');
        assert.equal(result.headers?.['x-g'], '7');
        assert.deepEqual(result.body, Buffer.from('z'));
      } finally {
        raw.close();
      }
    });

    it('answers UNAVAILABLE, not a throw, for a port nothing can connect to', async () => {
      client = new GrpcUnaryClient('127.0.0.1:70000');
      const result = await client.call(PATH, Buffer.from('x'), 1000);
      assert.equal(result.code, 14);
      assert.match(result.message, /cannot reach the policy server at 127\.0\.0\.1:70000/);
    });
  });
});

/** One HTTP/2 frame: type, flags, stream id, payload. */
function h2Frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

describe('proxy: HTTP/2 client connection', () => {
  /** A request with a fixed payload that records how it ended. */
  class RecordingStream extends Http2Stream {
    readonly payloadBytes = 5;
    ended: Promise<string>;
    private settle: (how: string) => void = () => undefined;
    constructor() {
      super();
      this.ended = new Promise((resolve) => (this.settle = resolve));
    }
    writeHeaders(encoder: HpackEncoder): void {
      encoder.header(':method', 'POST');
      encoder.header(':scheme', 'http');
      encoder.header(':path', PATH);
      encoder.header(':authority', 'test');
      encoder.header('content-type', 'application/grpc');
    }
    copyPayload(out: Buffer, pos: number, from: number, to: number): void {
      out.fill(0, pos, pos + to - from);
    }
    onHeaders(): void {}
    onData(): void {}
    onEnd(): void {
      this.settle(`ended on stream ${this.h2StreamId}`);
    }
    onAbort(code: number | undefined, reason: string): void {
      this.settle(`aborted: ${code} ${reason}`);
    }
  }

  it('takes no stream beyond its last stream id, finishes the open ones, then closes', async () => {
    const h2 = http2.createServer();
    let streams = 0;
    h2.on('stream', (stream) => {
      streams++;
      stream.on('error', () => undefined);
      stream.resume();
      stream.on('end', () => stream.respond({ ':status': 200, 'grpc-status': '0' }, { endStream: true }));
    });
    h2.listen(0, '127.0.0.1');
    await once(h2, 'listening');
    const sessionClosed = new Promise((resolve) =>
      h2.on('session', (session) => session.on('close', resolve)),
    );
    const port = (h2.address() as net.AddressInfo).port;
    const retired: number[] = [];
    const connection = new Http2ClientConnection(
      '127.0.0.1',
      port,
      { onRetired: (_, orphans) => retired.push(orphans.length) },
      'test',
      5,
    );
    try {
      const requests = [new RecordingStream(), new RecordingStream(), new RecordingStream()];
      for (const request of requests) assert.equal(connection.start(request), true);
      assert.equal(connection.acceptsStreams, false, 'stream 5 was the last');
      assert.deepEqual(retired, [0]);
      assert.equal(connection.start(new RecordingStream()), false);
      assert.deepEqual(await Promise.all(requests.map((r) => r.ended)), [
        'ended on stream 1',
        'ended on stream 3',
        'ended on stream 5',
      ]);
      await sessionClosed;
      assert.equal(streams, 3);
    } finally {
      connection.destroy('test over');
      await new Promise((resolve) => h2.close(resolve));
    }
  });
});
