/**
 * Our own HTTP/2 server connection's flow control as a proxy uses it, against a raw client
 * that counts frames: a stream whose consumer paused gets no WINDOW_UPDATE (the client can
 * send one window, no more) until it resumes; `writeData` answers false when a client does
 * not open its window, and `onDrain` follows when it does; 1xx heads and resets.
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  ErrorCode,
  FrameFlag,
  FrameType,
  HpackDecoder,
  HpackEncoder,
  Http2ServerConnection,
  Http2ServerStream,
  STREAM_HIGH_WATER_BYTES,
  STREAM_WINDOW_BYTES,
  Setting,
  settingsFrame,
  windowUpdateFrame,
  type ServerConnectionOwner,
} from '../../http2';
import { RawClient, rawFrame, sleep, type RawFrame } from '../support/raw-http2-client';

/** A stream that records what the connection tells it and lets the test answer. */
class RecordingStream extends Http2ServerStream {
  received = 0;
  ended = false;
  cancelled = false;
  closed = false;
  drains = 0;

  constructor(paused: boolean) {
    super();
    if (paused) this.pauseReceiving();
  }

  override onData(_buffer: Buffer, start: number, end: number): void {
    this.received += end - start;
  }

  override onEnd(): void {
    this.ended = true;
  }

  override onCancel(): void {
    this.cancelled = true;
  }

  override onDrain(): void {
    this.drains++;
  }

  override onClose(): void {
    this.closed = true;
  }
}

function requestBlock(encoder: HpackEncoder, method = 'POST'): Buffer {
  encoder.begin();
  for (const [name, value] of [
    [':method', method],
    [':scheme', 'http'],
    [':path', '/upload'],
    [':authority', 'localhost'],
  ] as const) {
    encoder.header(name, value);
  }
  return Buffer.from(encoder.end());
}

/** DATA frames of `bytes` octets in all, of at most a frame each. */
function dataFrames(streamId: number, bytes: number, endStream: boolean): Buffer {
  const frames: Buffer[] = [];
  for (let sent = 0; sent < bytes; sent += DEFAULT_MAX_FRAME_SIZE) {
    const size = Math.min(DEFAULT_MAX_FRAME_SIZE, bytes - sent);
    const last = sent + size >= bytes;
    frames.push(
      rawFrame(FrameType.Data, last && endStream ? FrameFlag.EndStream : 0, streamId, Buffer.alloc(size, 7)),
    );
  }
  return Buffer.concat(frames);
}

function isStreamWindowUpdate(streamId: number): (f: RawFrame) => boolean {
  return (f) => f.type === FrameType.WindowUpdate && f.streamId === streamId;
}

describe('http2: own server connection, flow control for a proxy', () => {
  let server: net.Server;
  let port: number;
  let streams: RecordingStream[];
  let pausedStreams: boolean;
  const raws: RawClient[] = [];

  beforeEach(async () => {
    streams = [];
    pausedStreams = true;
    const owner: ServerConnectionOwner = {
      onStream: () => {
        const stream = new RecordingStream(pausedStreams);
        streams.push(stream);
        return stream;
      },
      onClose: () => undefined,
    };
    server = net.createServer(
      (socket) => new Http2ServerConnection(socket, owner, { maxConcurrentStreams: 16 }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });

  afterEach(async () => {
    for (const raw of raws.splice(0)) raw.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function raw(settings: readonly (readonly [Setting, number])[] = []): RawClient {
    const client = new RawClient(port);
    raws.push(client);
    client.write(Buffer.concat([CLIENT_PREFACE, settingsFrame(settings)]));
    return client;
  }

  it('gives no window back to a paused stream: one window, then WINDOW_UPDATE only on resume', async () => {
    const client = raw();
    const encoder = new HpackEncoder();
    client.write(rawFrame(FrameType.Headers, FrameFlag.EndHeaders, 1, requestBlock(encoder)));
    // The whole stream window, which a client may send without waiting.
    client.write(dataFrames(1, STREAM_WINDOW_BYTES, false));
    await waitUntil(() => streams[0]?.received === STREAM_WINDOW_BYTES, 'the window to arrive');
    await sleep(100);
    assert.equal(client.frames.filter(isStreamWindowUpdate(1)).length, 0, 'no WINDOW_UPDATE while paused');
    streams[0]!.resumeReceiving();
    const update = await client.waitFor(isStreamWindowUpdate(1), 'a WINDOW_UPDATE on resume');
    assert.equal(update.payload.readUInt32BE(0), STREAM_WINDOW_BYTES, 'the whole window given back');
    client.write(dataFrames(1, 1000, true));
    await waitUntil(() => streams[0]!.ended, 'the request to end');
    assert.equal(streams[0]!.received, STREAM_WINDOW_BYTES + 1000);
  });

  it('resets a paused stream whose client sends past the window with FLOW_CONTROL_ERROR', async () => {
    const client = raw();
    const encoder = new HpackEncoder();
    client.write(rawFrame(FrameType.Headers, FrameFlag.EndHeaders, 1, requestBlock(encoder)));
    client.write(dataFrames(1, STREAM_WINDOW_BYTES + 100, false));
    const reset = await client.waitFor(
      (f) => f.type === FrameType.RstStream && f.streamId === 1,
      'RST_STREAM',
    );
    assert.equal(reset.payload.readUInt32BE(0), ErrorCode.FlowControlError);
    assert.equal(streams[0]!.received, STREAM_WINDOW_BYTES, 'nothing past the window delivered');
    assert.ok(streams[0]!.cancelled && streams[0]!.closed);
  });

  it('gives the window back as it goes to a stream that is not paused', async () => {
    pausedStreams = false;
    const client = raw();
    const encoder = new HpackEncoder();
    client.write(rawFrame(FrameType.Headers, FrameFlag.EndHeaders, 1, requestBlock(encoder)));
    client.write(dataFrames(1, STREAM_WINDOW_BYTES, false));
    await client.waitFor(isStreamWindowUpdate(1), 'a WINDOW_UPDATE');
  });

  it('answers false from writeData while the client keeps its window shut, and drains when it opens', async () => {
    const client = raw([[Setting.InitialWindowSize, 0]]);
    const encoder = new HpackEncoder();
    client.write(
      rawFrame(
        FrameType.Headers,
        FrameFlag.EndHeaders | FrameFlag.EndStream,
        1,
        requestBlock(encoder, 'GET'),
      ),
    );
    await waitUntil(() => streams.length === 1 && streams[0]!.ended, 'the request');
    const stream = streams[0]!;
    stream.informational([':status', '100']);
    stream.respond([':status', '200']);
    assert.equal(stream.writeData(Buffer.alloc(STREAM_HIGH_WATER_BYTES, 1)), true, 'up to the mark: true');
    assert.equal(stream.holdsQueuedBytes, true, 'queued behind the shut window');
    assert.equal(stream.writeData(Buffer.alloc(10, 2)), false, 'past the mark: false');
    assert.equal(stream.writeData(Buffer.alloc(10, 3), true), true, 'an end is taken');
    await sleep(50);
    assert.equal(stream.drains, 0);
    assert.equal(
      client.frames.filter((f) => f.type === FrameType.Data).length,
      0,
      'no DATA past a shut window',
    );
    const heads = client.frames.filter((f) => f.type === FrameType.Headers);
    assert.equal(heads.length, 2, 'the 100 and the 200 heads');
    const decoder = new HpackDecoder();
    const first: string[] = [];
    assert.equal(decoder.decode(heads[0]!.payload, first), undefined);
    assert.deepEqual(first, [':status', '100']);
    assert.equal(heads[0]!.flags & FrameFlag.EndStream, 0);
    const increment = STREAM_HIGH_WATER_BYTES + 20;
    client.write(Buffer.concat([windowUpdateFrame(1, increment), windowUpdateFrame(0, increment)]));
    const last = await client.waitFor(
      (f) => f.type === FrameType.Data && (f.flags & FrameFlag.EndStream) !== 0,
      'the last DATA with END_STREAM',
    );
    assert.deepEqual(last.payload.subarray(-10), Buffer.alloc(10, 3));
    await waitUntil(() => stream.drains === 1, 'onDrain');
    assert.equal(stream.endSent, true);
    assert.equal(stream.closed, true, 'the stream left the connection whole');
    assert.equal(stream.cancelled, false);
  });

  it('resets a stream on reset(), and tells it', async () => {
    const client = raw();
    const encoder = new HpackEncoder();
    client.write(rawFrame(FrameType.Headers, FrameFlag.EndHeaders, 1, requestBlock(encoder)));
    await waitUntil(() => streams.length === 1, 'the request');
    streams[0]!.reset(ErrorCode.InternalError);
    const reset = await client.waitFor((f) => f.type === FrameType.RstStream, 'RST_STREAM');
    assert.equal(reset.payload.readUInt32BE(0), ErrorCode.InternalError);
    assert.ok(streams[0]!.closed);
  });
});

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
