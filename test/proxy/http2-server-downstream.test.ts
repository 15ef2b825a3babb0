/**
 * The proxy's h2c listener on our own HTTP/2 server (http2-server-downstream.ts), where it
 * does what Node's did not have to be asked for: the request body's window tied to the
 * exchange (a paused upload gets no WINDOW_UPDATE beyond one window), response backpressure
 * from a slow-reading client back to the upstream, GOAWAY on drain with the streams in flight
 * finished, a trailers-only answer as one HEADERS frame, request headers combined as
 * `node:http2` combines them (the same object on both servers), and an idle connection closed
 * as an HTTP/1.1 one is.
 */
import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import {
  DEFAULT_MAX_FRAME_SIZE,
  ErrorCode,
  FrameFlag,
  FrameType,
  HpackDecoder,
  HpackEncoder,
  STREAM_WINDOW_BYTES,
  Setting,
} from '../../http2';
import type { RequestVerdict, TrafficHook } from '../../proxy';
import type { HttpRequestFacts } from '../../proxy/traffic-facts';
import { KEEP_ALIVE_TIMEOUT_MS } from '../../proxy/http1-server-connection';
import { RawClient, rawFrame, type RawFrame } from '../support/raw-http2-client';
import {
  closeAllHarnesses,
  clusterYaml,
  startProxy,
  waitFor,
  type ProxyHarness,
} from './support/proxy-harness';
import { answerDigest, listenOnLoopback, startGrpcUpstream, type GrpcUpstream } from './support/upstreams';

/** A request head as a raw client sends it. */
function headerBlock(encoder: HpackEncoder, fields: readonly (readonly [string, string])[]): Buffer {
  encoder.begin();
  for (const [name, value] of fields) encoder.header(name, value);
  return Buffer.from(encoder.end());
}

/** DATA frames carrying `body`, of at most a frame each. */
function dataFrames(streamId: number, body: Buffer, endStream: boolean): Buffer {
  const frames: Buffer[] = [];
  for (let at = 0; at < body.length; at += DEFAULT_MAX_FRAME_SIZE) {
    const piece = body.subarray(at, at + DEFAULT_MAX_FRAME_SIZE);
    const last = at + piece.length >= body.length;
    frames.push(rawFrame(FrameType.Data, last && endStream ? FrameFlag.EndStream : 0, streamId, piece));
  }
  return Buffer.concat(frames);
}

function bodyOf(frames: readonly RawFrame[], streamId: number): string {
  return Buffer.concat(
    frames.filter((f) => f.type === FrameType.Data && f.streamId === streamId).map((f) => f.payload),
  ).toString();
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('proxy h2c on the own HTTP/2 server', function () {
  this.timeout(30_000);
  let upstream: http.Server;
  let upstreamPort: number;
  let grpcUpstream: GrpcUpstream;
  /** Checks wait for these to be called while `holdChecks` is set. */
  let holdChecks = false;
  const heldChecks: (() => void)[] = [];
  const completed: HttpRequestFacts[] = [];
  /** What the upstream's /download wrote so far, and whether it ended. */
  let downloadWritten = 0;
  let downloadDone = false;
  const slow: (() => void)[] = [];

  const hook: TrafficHook = {
    checkRequest: () =>
      holdChecks
        ? new Promise<RequestVerdict>((resolve) => heldChecks.push(() => resolve({ allowed: true })))
        : { allowed: true },
    requestCompleted: (facts) => void completed.push(facts),
  };

  const config = (listener = 'plain'): string => `
listeners: [{name: ${listener}, role: outbound, address: 127.0.0.1, port: 0}]
routes:
  - match: {path: {prefix: /test.Echo/}}
    cluster: grpc
  - cluster: app
clusters:
${clusterYaml('app', [upstreamPort])}  - name: grpc
    protocol: http2
    endpoints: [{host: 127.0.0.1, port: ${grpcUpstream.port}}]
`;

  before(async () => {
    upstream = http.createServer((req, res) => {
      if (req.url === '/digest') {
        answerDigest(req, res);
        return;
      }
      if (req.url === '/download') {
        // 32 MiB in 64 KiB pieces, each written once the last one drained.
        const piece = Buffer.alloc(64 * 1024, 0x61);
        downloadWritten = 0;
        downloadDone = false;
        const more = (): void => {
          while (downloadWritten < 32 * 1024 * 1024) {
            downloadWritten += piece.length;
            if (!res.write(piece)) {
              res.once('drain', more);
              return;
            }
          }
          downloadDone = true;
          res.end();
        };
        more();
        return;
      }
      if (req.url === '/slow') {
        slow.push(() => res.end('finished while draining'));
        return;
      }
      req.resume();
      res.end('ok');
    });
    upstreamPort = await listenOnLoopback(upstream);
    grpcUpstream = await startGrpcUpstream();
  });

  after(async () => {
    await closeAllHarnesses();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    await grpcUpstream.close();
  });

  afterEach(() => {
    holdChecks = false;
    for (const release of heldChecks.splice(0)) release();
    for (const finish of slow.splice(0)) finish();
  });

  it('gives a held upload no WINDOW_UPDATE beyond one stream window, then passes it whole', async () => {
    const harness = await startProxy(config(), { hook, http2Server: 'own' });
    const client = new RawClient(harness.port());
    try {
      client.start();
      holdChecks = true;
      const encoder = new HpackEncoder();
      const body = Buffer.alloc(STREAM_WINDOW_BYTES + 1000);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 10)) & 0xff;
      client.write(
        rawFrame(
          FrameType.Headers,
          FrameFlag.EndHeaders,
          1,
          headerBlock(encoder, [
            [':method', 'POST'],
            [':scheme', 'http'],
            [':path', '/digest'],
            [':authority', 'proxy.test'],
          ]),
        ),
      );
      // All a client may send before a WINDOW_UPDATE: the stream window.
      client.write(dataFrames(1, body.subarray(0, STREAM_WINDOW_BYTES), false));
      await waitFor('the check to be asked', () => heldChecks.length === 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const updates = (): RawFrame[] =>
        client.frames.filter((f) => f.type === FrameType.WindowUpdate && f.streamId === 1);
      assert.deepEqual(updates(), [], 'no window given back while nothing takes the body');
      heldChecks.shift()!();
      const update = await client.waitFor(
        (f) => f.type === FrameType.WindowUpdate && f.streamId === 1,
        'the window given back once the body flows',
      );
      assert.ok(update.payload.readUInt32BE(0) <= STREAM_WINDOW_BYTES);
      client.write(dataFrames(1, body.subarray(STREAM_WINDOW_BYTES), true));
      await client.waitFor(
        (f) => f.streamId === 1 && (f.flags & FrameFlag.EndStream) !== 0,
        'the end of the response',
      );
      assert.equal(bodyOf(client.frames, 1), `${body.length} ${sha256(body)}`);
    } finally {
      client.destroy();
    }
  });

  it('holds a slow-reading client back to the upstream, then delivers all of it', async () => {
    const harness = await startProxy(config(), { http2Server: 'own' });
    const session = http2.connect(`http://127.0.0.1:${harness.port()}`);
    try {
      const stream = session.request({ ':method': 'GET', ':path': '/download' });
      let received = 0;
      const hash = createHash('sha256');
      stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
        hash.update(chunk);
      });
      // The client stops reading: its windows stay shut once they are used up.
      stream.pause();
      await waitFor('the upstream to start writing', () => downloadWritten > 0);
      let last = -1;
      await waitFor(
        'the upstream to be held back',
        async () => {
          const now = downloadWritten;
          await new Promise((resolve) => setTimeout(resolve, 200));
          const still = now === downloadWritten && now === last;
          last = downloadWritten;
          return still;
        },
        15_000,
      );
      assert.equal(downloadDone, false, 'the upstream could not write it all');
      assert.ok(downloadWritten < 32 * 1024 * 1024, `held at ${downloadWritten} bytes`);
      const ended = new Promise<void>((resolve, reject) => {
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      stream.resume();
      await ended;
      assert.equal(received, 32 * 1024 * 1024);
      assert.equal(hash.digest('hex'), sha256(Buffer.alloc(32 * 1024 * 1024, 0x61)));
    } finally {
      session.destroy();
    }
  });

  it('sends GOAWAY when its listener drains, and finishes the stream in flight', async () => {
    const harness: ProxyHarness = await startProxy(config('first'), { http2Server: 'own' });
    const session = http2.connect(`http://127.0.0.1:${harness.port('first')}`);
    session.on('error', () => undefined);
    try {
      const goAway = new Promise<{ code: number; lastStreamId: number }>((resolve) =>
        session.once('goaway', (code, lastStreamId) => resolve({ code, lastStreamId })),
      );
      const stream = session.request({ ':method': 'GET', ':path': '/slow' });
      stream.setEncoding('utf8');
      let body = '';
      stream.on('data', (c: string) => (body += c));
      const ended = new Promise<void>((resolve, reject) => {
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      await waitFor('the slow request to arrive', () => slow.length === 1);
      harness.rewrite(config('second'));
      assert.deepEqual(await harness.proxy.reload(), { applied: true, generation: 2 });
      assert.deepEqual(await goAway, { code: http2.constants.NGHTTP2_NO_ERROR, lastStreamId: 1 });
      slow.shift()!();
      await ended;
      assert.equal(body, 'finished while draining');
      await waitFor('the drained connection to close', () => session.closed || session.destroyed);
    } finally {
      session.destroy();
    }
  });

  it('answers a trailers-only gRPC failure as one HEADERS frame that ends the stream', async () => {
    const harness = await startProxy(config(), { http2Server: 'own' });
    const client = new RawClient(harness.port());
    try {
      client.start();
      const encoder = new HpackEncoder();
      const message = Buffer.from([0, 0, 0, 0, 1, 0x78]);
      client.write(
        Buffer.concat([
          rawFrame(
            FrameType.Headers,
            FrameFlag.EndHeaders,
            1,
            headerBlock(encoder, [
              [':method', 'POST'],
              [':scheme', 'http'],
              [':path', '/test.Echo/Fail'],
              [':authority', 'proxy.test'],
              ['content-type', 'application/grpc'],
              ['te', 'trailers'],
            ]),
          ),
          rawFrame(FrameType.Data, FrameFlag.EndStream, 1, message),
        ]),
      );
      const head = await client.waitFor(
        (f) => f.type === FrameType.Headers && f.streamId === 1,
        'the answer',
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(head.flags & FrameFlag.EndStream, FrameFlag.EndStream, 'the head ends the stream');
      assert.deepEqual(
        client.frames.filter((f) => f.streamId === 1 && f.type !== FrameType.WindowUpdate).length,
        1,
        'nothing but the head',
      );
      const fields: string[] = [];
      assert.equal(new HpackDecoder().decode(head.payload, fields), undefined);
      const at = (name: string): string | undefined => fields[fields.indexOf(name) + 1];
      assert.equal(at(':status'), '200');
      assert.equal(at('grpc-status'), String(grpc.status.NOT_FOUND));
      assert.equal(at('grpc-message'), 'no%20such%20thing', 'percent-encoded, as gRPC sends it');
      assert.ok(at('date') !== undefined, 'a date, as Node adds');
    } finally {
      client.destroy();
    }
  });

  it('combines repeated request fields as node:http2 does', async () => {
    const seen: Record<string, unknown>[] = [];
    for (const http2Server of ['own', 'node'] as const) {
      const harness = await startProxy(config(), { hook, http2Server });
      const client = new RawClient(harness.port());
      try {
        client.start();
        completed.length = 0;
        const encoder = new HpackEncoder();
        client.write(
          rawFrame(
            FrameType.Headers,
            FrameFlag.EndHeaders | FrameFlag.EndStream,
            1,
            headerBlock(encoder, [
              [':method', 'GET'],
              [':scheme', 'http'],
              [':path', '/fields'],
              [':authority', 'proxy.test'],
              ['cookie', 'a=1'],
              ['cookie', 'b=2'],
              ['x-list', 'one'],
              ['x-list', 'two'],
              ['user-agent', 'first'],
              ['user-agent', 'second'],
              ['set-cookie', 'odd'],
            ]),
          ),
        );
        await client.waitFor((f) => f.streamId === 1 && (f.flags & FrameFlag.EndStream) !== 0, 'the answer');
        await waitFor('the request to be recorded', () => completed.length === 1);
        const headers = completed[0]!.requestHeaders;
        seen.push(
          Object.fromEntries(
            ['cookie', 'x-list', 'user-agent', 'set-cookie', ':path', ':authority'].map((n) => [
              n,
              headers[n],
            ]),
          ),
        );
      } finally {
        client.destroy();
        await closeAllHarnesses();
      }
    }
    assert.deepEqual(seen[0], seen[1], 'the same request headers on both servers');
    assert.deepEqual(seen[0], {
      cookie: 'a=1; b=2',
      'x-list': 'one, two',
      'user-agent': 'first',
      'set-cookie': ['odd'],
      ':path': '/fields',
      ':authority': 'proxy.test',
    });
  });

  it('closes an h2c connection without streams after the HTTP/1.1 keep-alive timeout, on both servers', async () => {
    const idleClose = async (
      harness: ProxyHarness,
    ): Promise<{ afterMs: number; goAway: RawFrame | undefined }> => {
      const client = new RawClient(harness.port());
      try {
        client.start();
        const openedAt = performance.now();
        let timer: NodeJS.Timeout | undefined;
        const bound = new Promise<void>(
          (resolve) => (timer = setTimeout(resolve, KEEP_ALIVE_TIMEOUT_MS + 3000)),
        );
        await Promise.race([client.closed, bound]);
        clearTimeout(timer);
        return {
          afterMs: performance.now() - openedAt,
          goAway: client.frames.find((f) => f.type === FrameType.GoAway),
        };
      } finally {
        client.destroy();
      }
    };
    const [own, node] = await Promise.all([
      startProxy(config('own'), { http2Server: 'own' }).then(idleClose),
      startProxy(config('node'), { http2Server: 'node' }).then(idleClose),
    ]);
    for (const [name, closed] of [
      ['own', own],
      ['node', node],
    ] as const) {
      assert.ok(closed.goAway !== undefined, `${name}: GOAWAY`);
      assert.equal(closed.goAway.payload.readUInt32BE(4), ErrorCode.NoError, `${name}: NO_ERROR`);
      assert.ok(closed.afterMs >= KEEP_ALIVE_TIMEOUT_MS - 50, `${name}: closed after ${closed.afterMs} ms`);
      assert.ok(closed.afterMs < KEEP_ALIVE_TIMEOUT_MS + 3000, `${name}: closed after ${closed.afterMs} ms`);
    }
  });

  it('serves h2c on node:http2 when SWITCHBOARD_HTTP2_SERVER=node, and refuses to start on another value', async () => {
    /** The INITIAL_WINDOW_SIZE the listener's first SETTINGS announce, if any. */
    const announcedWindow = async (harness: ProxyHarness): Promise<number | undefined> => {
      const client = new RawClient(harness.port());
      try {
        client.start();
        const settings = await client.waitFor(
          (f) => f.type === FrameType.Settings && (f.flags & FrameFlag.Ack) === 0,
          'SETTINGS',
        );
        for (let at = 0; at < settings.payload.length; at += 6) {
          if (settings.payload.readUInt16BE(at) === Setting.InitialWindowSize) {
            return settings.payload.readUInt32BE(at + 2);
          }
        }
        return undefined;
      } finally {
        client.destroy();
      }
    };
    const before = process.env['SWITCHBOARD_HTTP2_SERVER'];
    try {
      delete process.env['SWITCHBOARD_HTTP2_SERVER'];
      assert.equal(await announcedWindow(await startProxy(config())), STREAM_WINDOW_BYTES, 'ours by default');
      process.env['SWITCHBOARD_HTTP2_SERVER'] = 'node';
      const onNode = await announcedWindow(await startProxy(config()));
      assert.notEqual(onNode, STREAM_WINDOW_BYTES, "node:http2's settings");
      process.env['SWITCHBOARD_HTTP2_SERVER'] = 'nghttp2';
      await assert.rejects(
        startProxy(config()),
        /SWITCHBOARD_HTTP2_SERVER must be own or node, got "nghttp2"/,
      );
    } finally {
      if (before === undefined) delete process.env['SWITCHBOARD_HTTP2_SERVER'];
      else process.env['SWITCHBOARD_HTTP2_SERVER'] = before;
      await closeAllHarnesses();
    }
  });
});
