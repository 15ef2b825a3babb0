/**
 * One client HTTP/2 connection (RFC 9113) over cleartext TCP with prior knowledge (h2c), on a
 * bare `net.Socket`: what the policy client's unary gRPC calls need and no more. It replaces
 * `node:http2`, whose client cost about 5 µs per proxied request in Report batches alone.
 *
 * A request is an {@link Http2Stream}: its header fields and its payload are written as ONE
 * buffer when the flow-control windows allow (otherwise what fits, and the rest on
 * WINDOW_UPDATE), and the buffers of one turn of the event loop leave in one system call; the
 * response arrives as calls on the stream. Streams beyond the server's
 * MAX_CONCURRENT_STREAMS wait in a queue. A protocol fault of the server ends the connection
 * (GOAWAY with the error code) and every stream on it, each told why; nothing throws. A
 * server's GOAWAY retires the connection: the streams it did not process go back to the owner.
 *
 * A server that stops answering without closing (a frozen process, a peer gone behind a
 * dropped route: TCP alone notices neither for minutes) is found by {@link probe}: a PING
 * unanswered within its time ends the connection, so that the next call opens a new one.
 */
import * as net from 'node:net';
import type { HpackEncoder } from '../../http2';
import {
  CLIENT_PREFACE,
  CONNECTION_WINDOW_BYTES,
  DEFAULT_INITIAL_WINDOW_SIZE,
  ErrorCode,
  FRAME_HEADER_BYTES,
  FrameFlag,
  FrameType,
  Http2Connection,
  MAX_WINDOW_SIZE,
  STREAM_WINDOW_BYTES,
  Setting,
  errorCodeName,
  goAwayFrame,
  pingFrame,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
  writeFrameHeader,
} from '../../http2';

/** The most header block octets (HEADERS and its CONTINUATIONs) we hold for one block. */
const MAX_HEADER_BLOCK_BYTES = 64 * 1024;
/** The most header fields one decoded block may hold (name and value each count one). */
const MAX_HEADER_LIST_ENTRIES = 2 * 1024;
/** The largest stream id; a connection that used it takes no more streams. */
const MAX_STREAM_ID = 2 ** 31 - 1;

/**
 * A request on a connection, with its response handlers. The `h2…` fields are the
 * connection's bookkeeping, set when the stream starts.
 */
export abstract class Http2Stream {
  /** @internal 0 until the stream starts. */
  h2StreamId = 0;
  /** @internal what the server lets us send on this stream */
  h2SendWindow = 0;
  /** @internal payload octets sent */
  h2SentBytes = 0;
  /** @internal DATA octets received and not yet given back by WINDOW_UPDATE */
  h2UnackedBytes = 0;
  /** @internal whether the first header block (the response headers) arrived */
  h2HeadersSeen = false;

  /** The payload's length in octets; 0 is not supported (gRPC always sends a message prefix). */
  abstract readonly payloadBytes: number;
  /** Encodes the request's header fields, pseudo-headers first. */
  abstract writeHeaders(encoder: HpackEncoder): void;
  /** Copies payload octets `from`…`to` into `out` at `pos`. */
  abstract copyPayload(out: Buffer, pos: number, from: number, to: number): void;
  /** A header block arrived: `fields` is name, value, name, value…; `first` tells headers from trailers. */
  abstract onHeaders(fields: readonly string[], first: boolean, endStream: boolean): void;
  /** DATA arrived: octets `start`…`end` of `buffer` (a view: the stream may keep it). */
  abstract onData(buffer: Buffer, start: number, end: number): void;
  /** The response ended (END_STREAM); the stream is closed. */
  abstract onEnd(): void;
  /**
   * The stream ended without a complete response: `code` is the server's RST_STREAM error code,
   * or undefined when the connection failed or went away; `reason` says what happened.
   */
  abstract onAbort(code: number | undefined, reason: string): void;
}

/** What a connection tells its owner. */
export interface ConnectionOwner {
  /**
   * The connection takes no new streams (GOAWAY, failure, close, ids used up); `orphans` are
   * streams the server did not process — never started, or above a GOAWAY's last stream id —
   * for the owner to start on another connection.
   */
  onRetired(connection: Http2ClientConnection, orphans: Http2Stream[]): void;
}

export class Http2ClientConnection extends Http2Connection<Http2Stream> {
  /** False once the connection takes no new streams. */
  acceptsStreams = true;
  private readonly waiting: Http2Stream[] = [];
  private readonly blocked: Http2Stream[] = [];
  private nextStreamId = 1;
  /** The server's MAX_CONCURRENT_STREAMS. */
  private maxConcurrentStreams = Number.POSITIVE_INFINITY;
  /** The PING {@link probe} sent and waits for, and when it gives up; undefined when none is out. */
  private probeTimer: NodeJS.Timeout | undefined;
  private probePayload: Buffer | undefined;
  private probesSent = 0;

  constructor(
    host: string,
    port: number,
    private readonly owner: ConnectionOwner,
    /** Where the connection is, for messages. */
    private readonly address: string,
    /** The last stream id this connection uses (RFC 9113 §5.1.1: 2^31 - 1; lower in tests). */
    private readonly maxStreamId = MAX_STREAM_ID,
  ) {
    super(net.connect({ host, port, noDelay: true }), MAX_HEADER_BLOCK_BYTES);
    const socket = this.socket;
    socket.setNoDelay(true);
    // The calls keep what they need alive; an idle connection must not hold the process.
    socket.unref();
    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    socket.on('error', (error) => this.fail(undefined, `connection to ${address} failed: ${error.message}`));
    socket.on('close', () => this.fail(undefined, `the connection to ${address} closed`));
    socket.write(
      Buffer.concat([
        CLIENT_PREFACE,
        settingsFrame([
          [Setting.EnablePush, 0],
          [Setting.InitialWindowSize, STREAM_WINDOW_BYTES],
        ]),
        windowUpdateFrame(0, CONNECTION_WINDOW_BYTES - DEFAULT_INITIAL_WINDOW_SIZE),
      ]),
    );
  }

  /** Starts `stream` now, or when the server's MAX_CONCURRENT_STREAMS allows; false if retired. */
  start(stream: Http2Stream): boolean {
    if (!this.acceptsStreams) return false;
    if (this.streams.size >= this.maxConcurrentStreams) this.waiting.push(stream);
    else this.open(stream);
    return true;
  }

  /** Gives up `stream` (waiting or open): an open one is reset with CANCEL. Nothing more is called on it. */
  cancel(stream: Http2Stream): void {
    const queued = this.waiting.indexOf(stream);
    if (queued >= 0) {
      this.waiting.splice(queued, 1);
      return;
    }
    const id = stream.h2StreamId;
    if (id === 0 || this.streams.get(id) !== stream) return;
    this.forget(stream);
    if (!this.ended) this.send(rstStreamFrame(id, ErrorCode.Cancel));
    this.afterStreamClosed();
  }

  /** Takes no new streams; open and waiting ones finish, then the connection ends. Idempotent. */
  close(): void {
    this.retire([]);
    this.afterStreamClosed();
  }

  /**
   * Asks the server for a sign of life (a call went unanswered until its deadline): a PING,
   * unless one is out already. Without its ACK within `timeoutMs` the connection ends as
   * {@link destroy} ends it, each stream still on it aborted (UNAVAILABLE to a call).
   */
  probe(timeoutMs: number): void {
    if (this.ended || this.probeTimer !== undefined) return;
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(++this.probesSent, 4);
    this.probePayload = payload;
    this.send(pingFrame(payload));
    this.probeTimer = setTimeout(
      () =>
        this.fail(
          undefined,
          `the policy server at ${this.address} did not answer a PING within ${timeoutMs} ms`,
        ),
      timeoutMs,
    );
    // A probe must not hold the process open by itself.
    this.probeTimer.unref();
  }

  /** Ends the connection now: every stream is aborted with `reason`. Idempotent. */
  destroy(reason: string): void {
    this.fail(undefined, reason);
  }

  private open(stream: Http2Stream): void {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    stream.h2StreamId = id;
    stream.h2SendWindow = this.initialWindowSize;
    stream.h2SentBytes = 0;
    this.streams.set(id, stream);
    // A call in flight keeps the process alive, as its timer would; an idle connection does not.
    if (this.streams.size === 1) this.socket.ref();
    // Ids used up: the streams still waiting go to the owner's next connection.
    if (this.nextStreamId > this.maxStreamId) this.retire(this.waiting.splice(0));

    const encoder = this.encoder;
    encoder.begin();
    stream.writeHeaders(encoder);
    const block = encoder.end();
    const payloadBytes = stream.payloadBytes;
    const sendable = Math.max(0, Math.min(payloadBytes, this.sendWindow, stream.h2SendWindow));
    const dataFrames = Math.ceil(sendable / this.maxFrameSize);
    const out = Buffer.allocUnsafe(
      this.headerFramesBytes(block.length) + dataFrames * FRAME_HEADER_BYTES + sendable,
    );
    const pos = this.writeHeaderFrames(out, 0, id, block, false);
    this.writeData(out, pos, stream, sendable);
    this.send(out);
    if (stream.h2SentBytes < payloadBytes) this.blocked.push(stream);
  }

  /** Writes `amount` payload octets of `stream` as DATA frames into `out` at `pos`, and counts them. */
  private writeData(out: Buffer, pos: number, stream: Http2Stream, amount: number): number {
    const end = stream.h2SentBytes + amount;
    const payloadBytes = stream.payloadBytes;
    for (let from = stream.h2SentBytes; from < end;) {
      const to = Math.min(end, from + this.maxFrameSize);
      pos = writeFrameHeader(
        out,
        pos,
        to - from,
        FrameType.Data,
        to === payloadBytes ? FrameFlag.EndStream : 0,
        stream.h2StreamId,
      );
      stream.copyPayload(out, pos, from, to);
      pos += to - from;
      from = to;
    }
    stream.h2SentBytes = end;
    stream.h2SendWindow -= amount;
    this.sendWindow -= amount;
    return pos;
  }

  /** Sends what the windows now allow of the streams waiting for them. */
  private flushBlocked(): void {
    while (this.blocked.length > 0 && this.sendWindow > 0 && !this.ended) {
      let progressed = false;
      for (let i = 0; i < this.blocked.length && this.sendWindow > 0; i++) {
        const stream = this.blocked[i]!;
        const amount = Math.min(
          stream.payloadBytes - stream.h2SentBytes,
          this.sendWindow,
          stream.h2SendWindow,
        );
        if (amount <= 0) continue;
        const frames = Math.ceil(amount / this.maxFrameSize);
        const out = Buffer.allocUnsafe(frames * FRAME_HEADER_BYTES + amount);
        this.writeData(out, 0, stream, amount);
        this.send(out);
        progressed = true;
        if (stream.h2SentBytes === stream.payloadBytes) this.blocked.splice(i--, 1);
      }
      if (!progressed) return;
    }
  }

  private forget(stream: Http2Stream): void {
    this.streams.delete(stream.h2StreamId);
    if (stream.h2SentBytes < stream.payloadBytes) {
      const at = this.blocked.indexOf(stream);
      if (at >= 0) this.blocked.splice(at, 1);
    }
  }

  /** A stream left: start waiting ones, or end a retired connection that has none left. */
  private afterStreamClosed(): void {
    if (this.ended) return;
    while (this.waiting.length > 0 && this.streams.size < this.maxConcurrentStreams)
      this.open(this.waiting.shift()!);
    if (this.streams.size === 0) this.socket.unref();
    if (!this.acceptsStreams && this.streams.size === 0 && this.waiting.length === 0) {
      this.ended = true;
      this.stopProbe();
      this.socket.end(goAwayFrame(0, ErrorCode.NoError, ''));
    }
  }

  private retire(orphans: Http2Stream[]): void {
    if (!this.acceptsStreams) return;
    this.acceptsStreams = false;
    this.owner.onRetired(this, orphans);
  }

  /**
   * Ends the connection: with a GOAWAY carrying `code` when we found a fault (undefined: the
   * socket failed or closed), aborting every stream with `reason`.
   */
  private fail(code: ErrorCode | undefined, reason: string): void {
    this.stopProbe();
    if (this.ended && this.streams.size === 0 && this.waiting.length === 0) {
      this.socket.destroy();
      return;
    }
    this.ended = true;
    if (code !== undefined && !this.socket.destroyed) {
      this.socket.end(goAwayFrame(0, code, reason));
      this.socket.destroySoon();
    } else {
      this.socket.destroy();
    }
    const streams = [...this.streams.values(), ...this.waiting];
    this.streams.clear();
    this.waiting.length = 0;
    this.blocked.length = 0;
    if (this.acceptsStreams) {
      this.acceptsStreams = false;
      this.owner.onRetired(this, []);
    }
    for (const stream of streams) stream.onAbort(undefined, reason);
  }

  private stopProbe(): void {
    if (this.probeTimer === undefined) return;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.probePayload = undefined;
  }

  protected override onPingAck(buffer: Buffer, start: number): void {
    const payload = this.probePayload;
    if (payload !== undefined && buffer.compare(payload, 0, 8, start, start + 8) === 0) this.stopProbe();
  }

  protected protocolError(code: ErrorCode, what: string): void {
    this.fail(code, `the server at ${this.address} broke HTTP/2 (${errorCodeName(code)}): ${what}`);
  }

  /** A stream error (RFC 9113 §5.4.2): that stream is reset and told why; the connection goes on. */
  private streamError(stream: Http2Stream, code: ErrorCode, what: string): void {
    this.forget(stream);
    this.send(rstStreamFrame(stream.h2StreamId, code));
    stream.onAbort(
      undefined,
      `the server at ${this.address} broke HTTP/2 on stream ${stream.h2StreamId} (${errorCodeName(code)}): ${what}`,
    );
    this.afterStreamClosed();
  }

  protected onPushPromise(): void {
    this.protocolError(ErrorCode.ProtocolError, 'PUSH_PROMISE although we disabled push');
  }

  protected onDataFrame(
    buffer: Buffer,
    flags: number,
    streamId: number,
    start: number,
    dataEnd: number,
    length: number,
  ): void {
    const stream = this.streams.get(streamId);
    // DATA of a stream we reset (a deadline) may still arrive: the connection window counted it.
    if (stream === undefined) return;
    if (!stream.h2HeadersSeen) {
      this.streamError(stream, ErrorCode.ProtocolError, 'DATA before the response head');
      return;
    }
    if (dataEnd > start) stream.onData(buffer, start, dataEnd);
    if ((flags & FrameFlag.EndStream) !== 0) {
      this.endStream(stream);
      return;
    }
    stream.h2UnackedBytes += length;
    if (stream.h2UnackedBytes >= STREAM_WINDOW_BYTES / 2) {
      this.send(windowUpdateFrame(streamId, stream.h2UnackedBytes));
      stream.h2UnackedBytes = 0;
    }
  }

  protected onHeaderList(streamId: number, fields: string[], endStream: boolean): void {
    if (fields.length > MAX_HEADER_LIST_ENTRIES) {
      this.protocolError(
        ErrorCode.EnhanceYourCalm,
        `a header list of ${fields.length / 2} fields on stream ${streamId}`,
      );
      return;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    const first = !stream.h2HeadersSeen;
    if (first && isInformational(fields)) {
      // A 1xx head (RFC 9113 §8.1) comes before the response's own; it cannot end the stream.
      if (endStream)
        this.streamError(stream, ErrorCode.ProtocolError, 'an informational head ended the stream');
      return;
    }
    if (!first && !endStream) {
      // After the response head only trailers may come, and they end the stream (§8.1).
      this.streamError(stream, ErrorCode.ProtocolError, 'a second header block without END_STREAM');
      return;
    }
    stream.h2HeadersSeen = true;
    stream.onHeaders(fields, first, endStream);
    if (endStream) this.endStream(stream);
  }

  private endStream(stream: Http2Stream): void {
    const unsent = stream.h2SentBytes < stream.payloadBytes;
    this.forget(stream);
    // The server answered before taking the whole request: stop sending it.
    if (unsent) this.send(rstStreamFrame(stream.h2StreamId, ErrorCode.Cancel));
    stream.onEnd();
    this.afterStreamClosed();
  }

  protected onRstStream(buffer: Buffer, streamId: number, start: number, end: number): void {
    if (streamId === 0 || end - start !== 4) {
      this.protocolError(ErrorCode.FrameSizeError, 'RST_STREAM must have 4 octets on a stream');
      return;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    const code = buffer.readUInt32BE(start);
    this.forget(stream);
    stream.onAbort(code, `the server at ${this.address} reset the stream (${errorCodeName(code)})`);
    this.afterStreamClosed();
  }

  protected onPeerSetting(id: number, value: number): boolean {
    // ENABLE_PUSH, MAX_HEADER_LIST_SIZE (our header lists are small) and unknown settings are ignored.
    if (id === Setting.MaxConcurrentStreams) this.maxConcurrentStreams = value;
    return true;
  }

  protected onSettingsApplied(): void {
    this.afterStreamClosed();
    this.flushBlocked();
  }

  protected onGoAway(buffer: Buffer, streamId: number, start: number, end: number): void {
    if (streamId !== 0 || end - start < 8) {
      this.protocolError(ErrorCode.ProtocolError, 'GOAWAY must have at least 8 octets on stream 0');
      return;
    }
    const lastStreamId = buffer.readUInt32BE(start) & 0x7fffffff;
    const code = buffer.readUInt32BE(start + 4);
    const debug = buffer.toString('latin1', start + 8, end);
    const reason = `the server at ${this.address} went away (GOAWAY ${errorCodeName(code)}${debug === '' ? '' : `: ${debug}`})`;
    // Streams above lastStreamId were not processed (§6.8): like the ones waiting, which
    // never started, they go to the owner's next connection — a call sent while the server's
    // GOAWAY was on its way (an idle timeout) is not lost. One the server answered anyway
    // broke that promise and is aborted; so is every sent one after a GOAWAY with an error,
    // which may be about that call itself: sent again at once it could fail the same way, in
    // a loop (aborted, a Check is retried with back-off and a Report batch kept).
    const graceful = code === ErrorCode.NoError;
    const orphans = this.waiting.splice(0);
    const broken: Http2Stream[] = [];
    for (const stream of this.streams.values()) {
      if (stream.h2StreamId <= lastStreamId) continue;
      if (stream.h2HeadersSeen || !graceful) broken.push(stream);
      else orphans.push(stream);
    }
    for (const stream of orphans) {
      if (stream.h2StreamId === 0) continue;
      this.forget(stream);
      stream.h2StreamId = 0;
      stream.h2UnackedBytes = 0;
    }
    for (const stream of broken) this.forget(stream);
    this.acceptsStreams = false;
    this.owner.onRetired(this, orphans);
    for (const stream of broken) stream.onAbort(undefined, reason);
    this.afterStreamClosed();
  }

  protected onWindowUpdate(streamId: number, increment: number): void {
    if (increment === 0) {
      this.protocolError(ErrorCode.ProtocolError, `WINDOW_UPDATE of 0 on stream ${streamId}`);
      return;
    }
    if (streamId === 0) {
      if (!this.growSendWindow(increment)) return;
    } else {
      const stream = this.streams.get(streamId);
      if (stream === undefined) return;
      stream.h2SendWindow += increment;
      if (stream.h2SendWindow > MAX_WINDOW_SIZE) {
        this.streamError(stream, ErrorCode.FlowControlError, 'stream window above 2^31 - 1');
        return;
      }
    }
    this.flushBlocked();
  }
}

/** Whether a decoded header list (name, value, …) is a 1xx head: its `:status` is 100–199. */
function isInformational(fields: readonly string[]): boolean {
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === ':status') {
      const status = fields[i + 1]!;
      return status.length === 3 && status[0] === '1';
    }
  }
  return false;
}
