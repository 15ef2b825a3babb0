/**
 * One server HTTP/2 connection (RFC 9113) over cleartext TCP with prior knowledge (h2c), on a
 * bare `net.Socket`: what the policy server's gRPC transport and the proxy's h2c listener
 * need, on the codec the proxy's client uses. It replaces `node:http2`, whose machinery was
 * ~70% of the policy server's CPU per call.
 *
 * A request is an {@link Http2ServerStream} the owner makes when its header block arrives; the
 * body arrives as calls on it. A unary answer's header block, payload and trailers are written
 * as ONE buffer when the client's flow-control windows allow (otherwise what fits, the rest on
 * WINDOW_UPDATE), and the buffers of one turn of the event loop leave in one system call.
 *
 * What a proxy needs on top: the request body's window is given back only while the stream's
 * consumer takes it (`pauseReceiving` / `resumeReceiving`), so a paused upload holds at most
 * one stream window; `write` answers false past a high-water mark of bytes queued on the
 * stream or buffered in the socket, and `onDrain` follows; 1xx heads (`informational`),
 * END_STREAM on the last DATA, and `reset`.
 *
 * Faults of the client end only its connection: a GOAWAY with the error code, every stream on
 * it cancelled; nothing throws. Stream-level faults reset only the stream. A request header
 * list above the limit announced in SETTINGS (MAX_HEADER_LIST_SIZE) is answered 431 on its
 * stream; only a header block several times that large ends the connection.
 *
 * A connection without an open stream for `idleTimeoutMs` goes away (GOAWAY NO_ERROR, then
 * the socket closes). Its timer is armed when the last stream leaves and is not touched when
 * one opens: when it fires on a busy connection it only lapses, so a connection whose streams
 * come and go arms at most one timer per timeout, and no frame moves a timer.
 */
import type * as net from 'node:net';
import {
  CLIENT_PREFACE,
  DEFAULT_INITIAL_WINDOW_SIZE,
  ErrorCode,
  FRAME_HEADER_BYTES,
  FrameFlag,
  FrameType,
  MAX_WINDOW_SIZE,
  Setting,
  errorCodeName,
  goAwayFrame,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
  writeFrameHeader,
} from './http2-frames';
import { Http2Connection, CONNECTION_WINDOW_BYTES, STREAM_WINDOW_BYTES } from './http2-connection';
import { IdleTimer } from './idle-timer';

/**
 * The default of {@link ServerConnectionOptions.maxHeaderListBytes}: node:http2's default
 * MAX_HEADER_LIST_SIZE (65535, what the proxy's h2c and the policy server took before this
 * server), and the HTTP/1.1 listener's head limit.
 */
export const DEFAULT_MAX_HEADER_LIST_BYTES = 64 * 1024;
/**
 * The largest header block (all its fragments) we hold, whatever the list limit: larger ends
 * the connection. A block is smaller than its list as §6.5.2 counts it (a field's encoding
 * adds a few octets of prefixes to its name and value, the list 32; encoders use Huffman
 * codes only where they are shorter), so only a client that ignores our MAX_HEADER_LIST_SIZE
 * several times over gets here.
 */
const MAX_HEADER_BLOCK_BYTES = 256 * 1024;
/** What a request whose header list is above the limit gets (RFC 6585 §5; RFC 9113 §10.5.1). */
const TOO_LARGE_FIELDS: HeaderFields = [':status', '431'];
/** How long after our last frame a closing connection waits for the client to close its side. */
const CLOSE_GRACE_MS = 1000;
/** How many stream ids we reset and remember, to drop the frames still in flight on them. */
const REMEMBERED_RESETS = 1024;
/**
 * Past this many octets queued on a stream (its send window exhausted), `write` answers false.
 * As much as the client's initial window usually lets through: a slow reader holds this much
 * of a response in the proxy, not more.
 */
export const STREAM_HIGH_WATER_BYTES = 64 * 1024;
/** Past this many octets buffered in the socket (a client not reading), `write` answers false. */
export const SOCKET_HIGH_WATER_BYTES = 128 * 1024;

/** Request headers: lower-case names, pseudo-headers included, repeated ones joined with `, `. */
export type RequestHeaders = Record<string, string | undefined>;

/** Header fields to send, flat: name, value, name, value… (names lower-case). */
export type HeaderFields = readonly string[];

/**
 * A request on a connection, made by the owner. The `h2…` fields are the connection's
 * bookkeeping.
 */
export abstract class Http2ServerStream {
  /** @internal */
  h2Id = 0;
  /** @internal what the client lets us send on this stream */
  h2SendWindow = 0;
  /** @internal DATA octets received and not yet given back */
  h2Unacked = 0;
  /** @internal the client sent END_STREAM */
  h2RemoteClosed = false;
  /** @internal we sent (or queued) END_STREAM */
  h2LocalClosed = false;
  /** @internal the stream left the connection (closed, reset, or the connection ended) */
  h2Gone = false;
  /** @internal payload waiting for the windows */
  h2Queue: Buffer[] = [];
  /** @internal octets in h2Queue */
  h2QueuedBytes = 0;
  /** @internal trailers to send once the queue is sent */
  h2QueuedTrailers: HeaderFields | undefined;
  /** @internal END_STREAM goes on the last queued DATA frame (an end without trailers) */
  h2EndQueued = false;
  /** @internal the owner holds the receive window back (pauseReceiving) */
  h2Paused = false;
  /** @internal a write answered false: onDrain is owed */
  h2WantsDrain = false;
  /** @internal whether our response header block went out */
  h2HeadersSent = false;
  /** @internal the request's content-length, or -1 */
  h2ContentLength = -1;
  /** @internal DATA payload octets received */
  h2Received = 0;
  /** @internal the connection the stream is on */
  h2Connection: Http2ServerConnection | undefined;

  /** The stream is on its connection and can answer: called once, before any other call. */
  onStart(): void {}
  /** DATA arrived: octets `start`…`end` of `buffer` (a view: copy what is kept past the call). */
  abstract onData(buffer: Buffer, start: number, end: number): void;
  /** The client sent the whole request (END_STREAM). */
  abstract onEnd(): void;
  /** The client reset the stream, or the connection ended before our answer did. */
  abstract onCancel(): void;
  /** A write answered false, and the stream can take more now. */
  onDrain(): void {}
  /**
   * The stream left the connection, whole (END_STREAM both ways) or not (reset by either side,
   * connection gone; then after or before `onCancel`). Called once; nothing follows it.
   */
  onClose(): void {}

  /** Whether our END_STREAM went to the socket (not only queued behind the windows). */
  get endSent(): boolean {
    return this.h2LocalClosed && this.h2QueuedTrailers === undefined && !this.h2EndQueued;
  }

  /** Whether an answer can still be sent: headers not sent, stream still there. */
  get canRespond(): boolean {
    return !this.h2HeadersSent && !this.h2Gone;
  }

  /** Whether the stream can still carry response messages. */
  get writable(): boolean {
    return !this.h2Gone && !this.h2LocalClosed;
  }

  /**
   * Sends the response headers, then `payload` (when given) and `trailers` (when given: the
   * stream ends); with neither, only the headers. Ignored when the stream is gone.
   */
  respond(headers: HeaderFields, payload?: Buffer, trailers?: HeaderFields): void {
    this.h2Connection?.respond(this, headers, payload, trailers);
  }

  /**
   * Sends `payload` as DATA on a stream whose headers went out; `endStream` puts END_STREAM on
   * its last frame (an empty payload: an empty frame). The bytes are copied into frames at
   * once, or queued (a view, held) when the windows are exhausted. False: more than a
   * high-water mark is queued on the stream or buffered in the socket; `onDrain` follows when
   * it can take more (never after an `endStream` write).
   */
  writeData(payload: Buffer, endStream = false): boolean {
    return this.h2Connection?.write(this, payload, endStream) ?? true;
  }

  /** Ends a stream whose headers went out with `trailers`, or, without, with an empty DATA frame. */
  endResponse(trailers?: HeaderFields): void {
    if (trailers === undefined) this.h2Connection?.write(this, EMPTY, true);
    else this.h2Connection?.end(this, trailers);
  }

  /** Sends an informational (1xx) head before the response's: `headers` has its `:status`. */
  informational(headers: HeaderFields): void {
    this.h2Connection?.informational(this, headers);
  }

  /** Resets the stream with `code` (RST_STREAM); `onCancel` and `onClose` follow at once. */
  reset(code: ErrorCode): void {
    this.h2Connection?.reset(this, code);
  }

  /**
   * From now on DATA received is not given back to the client's window: it may send at most
   * one window more. Starts a stream paused when called from the owner's `onStream`.
   */
  pauseReceiving(): void {
    this.h2Paused = true;
  }

  /** The consumer took what it was given: the window is given back again. */
  resumeReceiving(): void {
    this.h2Paused = false;
    this.h2Connection?.giveBackWindow(this);
  }

  /** Whether bytes given to `write` are still queued (referenced) on the stream. */
  get holdsQueuedBytes(): boolean {
    return this.h2QueuedBytes > 0;
  }
}

const EMPTY = Buffer.alloc(0);

/** What a connection asks of its owner. */
export interface ServerConnectionOwner {
  /**
   * A request's header block arrived on a new stream: answers the stream that takes it.
   * `fields` is the validated header list (name, value, …; valid during the call only; see
   * {@link requestHeadersOf}); `endStream`: the request has no body (its onEnd follows
   * `onStart` at once).
   */
  onStream(fields: readonly string[], endStream: boolean): Http2ServerStream;
  /** The connection ended (its socket closed). */
  onClose(connection: Http2ServerConnection): void;
  /** A request was answered by the connection itself (431: its header list over the limits). */
  onRefused?(status: number): void;
}

export interface ServerConnectionOptions {
  /** Streams a client may have open at once. */
  readonly maxConcurrentStreams: number;
  /**
   * How long, in ms, the connection may have no open stream before it goes away: GOAWAY
   * (NO_ERROR, the last stream id it took) and the socket closes, as {@link
   * Http2ServerConnection.shutdown} does. Counted from the connection's start and from the end
   * of its last stream; frames without a stream (PING, SETTINGS) do not count. 0, the
   * default: never.
   */
  readonly idleTimeoutMs?: number;
  /**
   * The largest request header list taken, in octets as RFC 9113 §6.5.2 counts them (name,
   * value and 32 per field), announced as SETTINGS_MAX_HEADER_LIST_SIZE; a larger one is
   * answered 431 on its stream (RST_STREAM NO_ERROR follows when the request has a body).
   * Default {@link DEFAULT_MAX_HEADER_LIST_BYTES}.
   */
  readonly maxHeaderListBytes?: number;
  /** The most header fields (pseudo-headers not counted) a request may have; more: 431 as above. Default: no limit. */
  readonly maxHeaderCount?: number;
  /**
   * Whether the connection reads its socket itself (`'data'`), the default; false when the
   * owner feeds it with `receive` instead.
   */
  readonly readsSocket?: boolean;
}

export class Http2ServerConnection extends Http2Connection<Http2ServerStream> {
  private readonly resetIds = new Set<number>();
  private readonly blocked: Http2ServerStream[] = [];
  /** Streams whose write answered false, until they can take more. */
  private readonly drainWaiters: Http2ServerStream[] = [];
  /** Octets of the client preface read so far. */
  private prefaceBytes = 0;
  /** The highest stream id the client opened. */
  private lastStreamId = 0;
  /** GOAWAY sent: no new streams; the connection ends when the last one does. */
  private goingAway = false;
  private readonly maxHeaderListBytes: number;
  private readonly maxHeaderCount: number;
  /** Without an idle timeout (0), none. */
  private readonly idleTimer: IdleTimer | undefined;

  constructor(
    socket: net.Socket,
    private readonly owner: ServerConnectionOwner,
    private readonly options: ServerConnectionOptions,
  ) {
    const maxHeaderListBytes = options.maxHeaderListBytes ?? DEFAULT_MAX_HEADER_LIST_BYTES;
    super(socket, Math.max(MAX_HEADER_BLOCK_BYTES, maxHeaderListBytes));
    this.maxHeaderListBytes = maxHeaderListBytes;
    this.maxHeaderCount = options.maxHeaderCount ?? Number.POSITIVE_INFINITY;
    socket.setNoDelay(true);
    if (options.readsSocket !== false) socket.on('data', (chunk: Buffer) => this.receive(chunk));
    else this.readBufferShared = true;
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
    socket.on('drain', () => this.notifyDrained());
    this.send(
      Buffer.concat([
        settingsFrame([
          [Setting.MaxConcurrentStreams, options.maxConcurrentStreams],
          [Setting.InitialWindowSize, STREAM_WINDOW_BYTES],
          [Setting.MaxHeaderListSize, maxHeaderListBytes],
        ]),
        windowUpdateFrame(0, CONNECTION_WINDOW_BYTES - DEFAULT_INITIAL_WINDOW_SIZE),
      ]),
    );
    const idleTimeoutMs = options.idleTimeoutMs ?? 0;
    if (idleTimeoutMs > 0) {
      this.idleTimer = new IdleTimer(
        idleTimeoutMs,
        () => this.streams.size > 0 || this.goingAway || this.ended,
        () => this.goAway(`idle for ${idleTimeoutMs} ms`),
      );
    }
  }

  /**
   * Octets read from the socket. With `readsSocket: false`, the owner's to call: `chunk` may
   * be a view of a reused read buffer (only what is kept past the call is copied).
   */
  receive(chunk: Buffer): void {
    if (this.ended) return;
    try {
      this.onSocketData(chunk);
    } catch (error) {
      // A bug of ours, not the client's: it ends this connection, never the process.
      this.protocolError(ErrorCode.InternalError, `internal error: ${String(error)}`);
    }
  }

  /** Open streams (for tests and shutdown). */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Graceful: GOAWAY NO_ERROR; streams open finish, then the connection closes. Idempotent. */
  shutdown(): void {
    this.goAway('');
  }

  /** Forced: closes the socket now; every stream is cancelled. */
  destroy(): void {
    this.socket.destroy();
    this.close();
  }

  /** @internal see {@link Http2ServerStream.respond} */
  respond(stream: Http2ServerStream, headers: HeaderFields, payload?: Buffer, trailers?: HeaderFields): void {
    if (stream.h2Gone || stream.h2HeadersSent || this.ended) return;
    stream.h2HeadersSent = true;
    const encoder = this.encoder;
    encoder.begin();
    for (let i = 0; i < headers.length; i += 2) encoder.header(headers[i]!, headers[i + 1]!);
    const headerBlock = encoder.end();
    const headersOnly = payload === undefined && trailers !== undefined;
    if (headersOnly) {
      // A trailers-only response: the headers end the stream.
      for (let i = 0; i < trailers.length; i += 2) encoder.header(trailers[i]!, trailers[i + 1]!);
      const block = encoder.end();
      stream.h2LocalClosed = true;
      this.send(this.headerFrames(stream.h2Id, block, true));
      this.afterLocalEnd(stream);
      return;
    }
    const payloadBytes = payload === undefined ? 0 : payload.length;
    const sendable = Math.min(payloadBytes, Math.max(0, Math.min(this.sendWindow, stream.h2SendWindow)));
    const whole = sendable === payloadBytes && trailers !== undefined;
    const maxFrame = this.maxFrameSize;
    // The trailers are encoded after the headers are written (the header block is a view of
    // the encoder's buffer): room for them is their largest encoding.
    const size =
      this.headerFramesBytes(headerBlock.length) +
      Math.ceil(sendable / maxFrame) * FRAME_HEADER_BYTES +
      sendable +
      (whole ? this.headerFramesBytes(largestBlockBytes(trailers)) : 0);
    const buffer = Buffer.allocUnsafe(size);
    let pos = this.writeHeaderFrames(buffer, 0, stream.h2Id, headerBlock, false);
    if (sendable > 0) pos = this.writeData(buffer, pos, stream, payload!, 0, sendable, false);
    if (whole) {
      encoder.begin();
      for (let i = 0; i < trailers.length; i += 2) encoder.header(trailers[i]!, trailers[i + 1]!);
      stream.h2LocalClosed = true;
      pos = this.writeHeaderFrames(buffer, pos, stream.h2Id, encoder.end(), true);
    }
    const out = pos === size ? buffer : buffer.subarray(0, pos);
    this.send(out);
    if (whole) {
      this.afterLocalEnd(stream);
      return;
    }
    if (payload !== undefined && sendable < payloadBytes) {
      stream.h2Queue.push(payload.subarray(sendable));
      stream.h2QueuedBytes += payloadBytes - sendable;
    }
    if (trailers !== undefined) {
      stream.h2LocalClosed = true;
      stream.h2QueuedTrailers = trailers;
    }
    if (stream.h2Queue.length > 0 || stream.h2QueuedTrailers !== undefined) this.block(stream);
  }

  /** @internal see {@link Http2ServerStream.writeData} */
  write(stream: Http2ServerStream, payload: Buffer, endStream: boolean): boolean {
    if (stream.h2Gone || stream.h2LocalClosed || this.ended) return true;
    if (payload.length === 0 && !endStream) return true;
    if (endStream) stream.h2LocalClosed = true;
    if (stream.h2Queue.length > 0) {
      if (payload.length > 0) {
        stream.h2Queue.push(payload);
        stream.h2QueuedBytes += payload.length;
      }
      if (endStream) stream.h2EndQueued = true;
      return endStream || this.canTakeMore(stream);
    }
    const sendable = Math.min(payload.length, Math.max(0, Math.min(this.sendWindow, stream.h2SendWindow)));
    const whole = sendable === payload.length;
    if (sendable > 0 || (whole && endStream)) {
      const frames = Math.max(1, Math.ceil(sendable / this.maxFrameSize));
      const out = Buffer.allocUnsafe(frames * FRAME_HEADER_BYTES + sendable);
      this.writeData(out, 0, stream, payload, 0, sendable, whole && endStream);
      this.send(out);
    }
    if (!whole) {
      stream.h2Queue.push(payload.subarray(sendable));
      stream.h2QueuedBytes += payload.length - sendable;
      if (endStream) stream.h2EndQueued = true;
      this.block(stream);
    } else if (endStream) {
      this.afterLocalEnd(stream);
    }
    return endStream || this.canTakeMore(stream);
  }

  /** Whether `stream` can take more bytes; if not, it waits for `onDrain`. */
  private canTakeMore(stream: Http2ServerStream): boolean {
    if (
      stream.h2QueuedBytes <= STREAM_HIGH_WATER_BYTES &&
      this.socket.writableLength <= SOCKET_HIGH_WATER_BYTES
    ) {
      return true;
    }
    // Over the socket's mark, a write of the socket answered false: its 'drain' comes.
    if (!stream.h2WantsDrain) {
      stream.h2WantsDrain = true;
      this.drainWaiters.push(stream);
    }
    return false;
  }

  /** Tells the streams waiting to write that can take more now. */
  private notifyDrained(): void {
    const waiters = this.drainWaiters;
    if (waiters.length === 0 || this.socket.writableLength > SOCKET_HIGH_WATER_BYTES) return;
    const ready: Http2ServerStream[] = [];
    let kept = 0;
    for (const stream of waiters) {
      if (!stream.h2Gone && stream.h2QueuedBytes > STREAM_HIGH_WATER_BYTES) {
        waiters[kept++] = stream;
        continue;
      }
      stream.h2WantsDrain = false;
      if (!stream.h2Gone) ready.push(stream);
    }
    waiters.length = kept;
    for (const stream of ready) if (!stream.h2Gone) stream.onDrain();
  }

  /** @internal see {@link Http2ServerStream.informational} */
  informational(stream: Http2ServerStream, headers: HeaderFields): void {
    if (stream.h2Gone || stream.h2HeadersSent || this.ended) return;
    const encoder = this.encoder;
    encoder.begin();
    for (let i = 0; i < headers.length; i += 2) encoder.header(headers[i]!, headers[i + 1]!);
    this.send(this.headerFrames(stream.h2Id, encoder.end(), false));
  }

  /** @internal see {@link Http2ServerStream.reset} */
  reset(stream: Http2ServerStream, code: ErrorCode): void {
    if (stream.h2Gone || this.ended) return;
    this.resetStream(stream.h2Id, code);
  }

  /** @internal see {@link Http2ServerStream.resumeReceiving}: the window goes back once half is used. */
  giveBackWindow(stream: Http2ServerStream): void {
    if (stream.h2Gone || stream.h2RemoteClosed || this.ended) return;
    if (stream.h2Unacked >= STREAM_WINDOW_BYTES / 2) {
      this.send(windowUpdateFrame(stream.h2Id, stream.h2Unacked));
      stream.h2Unacked = 0;
    }
  }

  /** @internal see {@link Http2ServerStream.endResponse} */
  end(stream: Http2ServerStream, trailers: HeaderFields): void {
    if (stream.h2Gone || stream.h2LocalClosed || this.ended) return;
    stream.h2LocalClosed = true;
    if (stream.h2Queue.length > 0) {
      stream.h2QueuedTrailers = trailers;
      return;
    }
    this.sendTrailers(stream, trailers);
  }

  private sendTrailers(stream: Http2ServerStream, trailers: HeaderFields): void {
    const encoder = this.encoder;
    encoder.begin();
    for (let i = 0; i < trailers.length; i += 2) encoder.header(trailers[i]!, trailers[i + 1]!);
    this.send(this.headerFrames(stream.h2Id, encoder.end(), true));
    this.afterLocalEnd(stream);
  }

  /** We ended our side: the stream closes, or, if the client is still sending, is reset (NO_ERROR, §8.1). */
  private afterLocalEnd(stream: Http2ServerStream): void {
    if (!stream.h2RemoteClosed) {
      this.send(rstStreamFrame(stream.h2Id, ErrorCode.NoError));
      this.rememberReset(stream.h2Id);
    }
    this.forget(stream);
  }

  private block(stream: Http2ServerStream): void {
    if (!this.blocked.includes(stream)) this.blocked.push(stream);
  }

  /** Sends what the windows now allow of the streams waiting for them. */
  private flushBlocked(): void {
    for (let i = 0; i < this.blocked.length && !this.ended; i++) {
      const stream = this.blocked[i]!;
      while (stream.h2Queue.length > 0) {
        const window = Math.min(this.sendWindow, stream.h2SendWindow);
        if (window <= 0) break;
        const head = stream.h2Queue[0]!;
        const amount = Math.min(window, head.length);
        const last = amount === head.length && stream.h2Queue.length === 1;
        const endStream = last && stream.h2EndQueued;
        const out = Buffer.allocUnsafe(Math.ceil(amount / this.maxFrameSize) * FRAME_HEADER_BYTES + amount);
        this.writeData(out, 0, stream, head, 0, amount, endStream);
        this.send(out);
        stream.h2QueuedBytes -= amount;
        if (amount === head.length) stream.h2Queue.shift();
        else stream.h2Queue[0] = head.subarray(amount);
      }
      if (stream.h2Queue.length === 0) {
        this.blocked.splice(i--, 1);
        const trailers = stream.h2QueuedTrailers;
        if (trailers !== undefined) {
          stream.h2QueuedTrailers = undefined;
          this.sendTrailers(stream, trailers);
        } else if (stream.h2EndQueued) {
          stream.h2EndQueued = false;
          this.afterLocalEnd(stream);
        }
      }
    }
    this.notifyDrained();
  }

  private headerFrames(streamId: number, block: Buffer, endStream: boolean): Buffer {
    const out = Buffer.allocUnsafe(this.headerFramesBytes(block.length));
    this.writeHeaderFrames(out, 0, streamId, block, endStream);
    return out;
  }

  /** Writes octets `from`…`to` of `payload` as DATA frames into `out` at `pos`, and counts them against the windows. */
  private writeData(
    out: Buffer,
    pos: number,
    stream: Http2ServerStream,
    payload: Buffer,
    from: number,
    to: number,
    endStream: boolean,
  ): number {
    const maxFrame = this.maxFrameSize;
    if (from === to) {
      // An empty frame that only ends the stream.
      return writeFrameHeader(out, pos, 0, FrameType.Data, endStream ? FrameFlag.EndStream : 0, stream.h2Id);
    }
    for (let at = from; at < to;) {
      const next = Math.min(to, at + maxFrame);
      pos = writeFrameHeader(
        out,
        pos,
        next - at,
        FrameType.Data,
        endStream && next === to ? FrameFlag.EndStream : 0,
        stream.h2Id,
      );
      pos += payload.copy(out, pos, at, next);
      at = next;
    }
    stream.h2SendWindow -= to - from;
    this.sendWindow -= to - from;
    return pos;
  }

  private forget(stream: Http2ServerStream): void {
    if (stream.h2Gone) return;
    stream.h2Gone = true;
    this.streams.delete(stream.h2Id);
    const at = this.blocked.indexOf(stream);
    if (at >= 0) this.blocked.splice(at, 1);
    if (this.streams.size === 0) this.idleTimer?.becameIdle();
    this.endIfIdle();
    stream.onClose();
  }

  /** GOAWAY NO_ERROR with `debug`: streams open finish, then the connection closes. Idempotent. */
  private goAway(debug: string): void {
    if (this.goingAway || this.ended) return;
    this.goingAway = true;
    this.send(goAwayFrame(this.lastStreamId, ErrorCode.NoError, debug));
    this.endIfIdle();
  }

  private endIfIdle(): void {
    if (this.goingAway && this.streams.size === 0 && !this.ended) {
      this.uncorkNow();
      this.ended = true;
      this.socket.end();
      // A client that never closes its side must not hold a graceful shutdown forever.
      setTimeout(destroySocket, CLOSE_GRACE_MS, this.socket).unref();
    }
  }

  private rememberReset(id: number): void {
    this.resetIds.add(id);
    if (this.resetIds.size > REMEMBERED_RESETS) {
      const oldest = this.resetIds.values().next().value as number;
      this.resetIds.delete(oldest);
    }
  }

  /** Resets one stream with `code` (a stream error, §5.4.2). */
  private resetStream(id: number, code: ErrorCode): void {
    this.send(rstStreamFrame(id, code));
    this.rememberReset(id);
    const stream = this.streams.get(id);
    if (stream !== undefined) {
      this.forget(stream);
      stream.onCancel();
    }
  }

  /** The socket closed: every stream left is cancelled. */
  private close(): void {
    const wasEnded = this.ended;
    this.ended = true;
    this.idleTimer?.stop();
    if (!wasEnded && !this.socket.destroyed) this.socket.destroy();
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.blocked.length = 0;
    this.drainWaiters.length = 0;
    for (const stream of streams) {
      stream.h2Gone = true;
      stream.onCancel();
      stream.onClose();
    }
    if (!this.closeReported) {
      this.closeReported = true;
      this.owner.onClose(this);
    }
  }

  private closeReported = false;

  /** A connection error (§5.4.1): GOAWAY with `code`, then the connection closes. */
  protected protocolError(code: ErrorCode, what: string): void {
    if (this.ended) return;
    const frame = goAwayFrame(this.lastStreamId, code, `${errorCodeName(code)}: ${what}`.slice(0, 256));
    this.uncorkNow();
    this.ended = true;
    this.socket.end(frame);
    this.socket.destroySoon();
    this.close();
  }

  /** Past the client preface (§3.4), checked octet by octet as it arrives. */
  protected override framesStart(buffer: Buffer): number {
    if (this.prefaceBytes >= CLIENT_PREFACE.length) return 0;
    const wanted = CLIENT_PREFACE.length - this.prefaceBytes;
    const have = Math.min(wanted, buffer.length);
    if (buffer.compare(CLIENT_PREFACE, this.prefaceBytes, this.prefaceBytes + have, 0, have) !== 0) {
      this.protocolError(
        ErrorCode.ProtocolError,
        'the connection does not start with the HTTP/2 client preface',
      );
      return -1;
    }
    this.prefaceBytes += have;
    return have;
  }

  protected override onPriority(buffer: Buffer, streamId: number, start: number, end: number): void {
    if (streamId === 0) this.protocolError(ErrorCode.ProtocolError, 'PRIORITY on stream 0');
    else if (end - start !== 5) this.resetStream(streamId, ErrorCode.FrameSizeError);
    else if ((buffer.readUInt32BE(start) & 0x7fffffff) === streamId) {
      // §5.3.1: a stream cannot depend on itself.
      if (streamId > this.lastStreamId) this.lastStreamId = streamId;
      this.resetStream(streamId, ErrorCode.ProtocolError);
    }
  }

  protected onPushPromise(): void {
    this.protocolError(ErrorCode.ProtocolError, 'PUSH_PROMISE from a client');
  }

  protected onGoAway(_buffer: Buffer, streamId: number): void {
    if (streamId !== 0) {
      this.protocolError(ErrorCode.ProtocolError, 'GOAWAY on a stream');
      return;
    }
    // The client leaves: the streams it opened finish, then the connection ends.
    this.goingAway = true;
    this.endIfIdle();
  }

  /** A frame on stream `id` that is not open: a connection error for an idle stream, dropped for one we reset. */
  private notOpen(id: number, what: string): void {
    if (id > this.lastStreamId) {
      this.protocolError(ErrorCode.ProtocolError, `${what} on idle stream ${id}`);
    } else if (!this.resetIds.has(id)) {
      this.protocolError(ErrorCode.StreamClosed, `${what} on closed stream ${id}`);
    }
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
    if (stream === undefined) {
      this.notOpen(streamId, 'DATA');
      return;
    }
    if (stream.h2RemoteClosed) {
      this.resetStream(streamId, ErrorCode.StreamClosed);
      return;
    }
    stream.h2Unacked += length;
    if (stream.h2Unacked > STREAM_WINDOW_BYTES) {
      this.resetStream(streamId, ErrorCode.FlowControlError);
      return;
    }
    stream.h2Received += dataEnd - start;
    const endStream = (flags & FrameFlag.EndStream) !== 0;
    if (
      stream.h2ContentLength >= 0 &&
      (stream.h2Received > stream.h2ContentLength ||
        (endStream && stream.h2Received !== stream.h2ContentLength))
    ) {
      // §8.1.1: a body that is not its content-length is malformed.
      this.resetStream(streamId, ErrorCode.ProtocolError);
      return;
    }
    if (dataEnd > start) stream.onData(buffer, start, dataEnd);
    if (stream.h2Gone) return;
    if (endStream) {
      stream.h2RemoteClosed = true;
      stream.onEnd();
      if (stream.endSent) this.forget(stream);
      return;
    }
    // The owner took the octets (or dropped them): give the window back once half is used —
    // unless it holds them, paused (it gives the window back when it resumes).
    if (!stream.h2Paused && stream.h2Unacked >= STREAM_WINDOW_BYTES / 2) {
      this.send(windowUpdateFrame(streamId, stream.h2Unacked));
      stream.h2Unacked = 0;
    }
  }

  /** A stream whose HEADERS depend on itself (§5.3.1): reset once its block is decoded. */
  private resetAfterBlock = 0;

  protected override onSelfDependency(streamId: number): void {
    this.resetAfterBlock = streamId;
  }

  protected onHeaderList(streamId: number, fields: string[], endStream: boolean): void {
    if (this.resetAfterBlock === streamId) {
      this.resetAfterBlock = 0;
      if (streamId > this.lastStreamId) this.lastStreamId = streamId;
      this.resetStream(streamId, ErrorCode.ProtocolError);
      return;
    }
    const existing = this.streams.get(streamId);
    if (existing !== undefined) {
      // Trailers: they must end the request and carry no pseudo-header; we take none of their fields.
      if (existing.h2RemoteClosed || !endStream || hasPseudoHeader(fields)) {
        this.resetStream(
          streamId,
          existing.h2RemoteClosed ? ErrorCode.StreamClosed : ErrorCode.ProtocolError,
        );
        return;
      }
      if (existing.h2ContentLength >= 0 && existing.h2Received !== existing.h2ContentLength) {
        this.resetStream(streamId, ErrorCode.ProtocolError);
        return;
      }
      existing.h2RemoteClosed = true;
      existing.onEnd();
      if (existing.endSent) this.forget(existing);
      return;
    }
    if ((streamId & 1) === 0) {
      this.protocolError(
        ErrorCode.ProtocolError,
        `HEADERS on even stream ${streamId}, which a client cannot open`,
      );
      return;
    }
    if (streamId <= this.lastStreamId) {
      if (!this.resetIds.has(streamId)) {
        this.protocolError(ErrorCode.StreamClosed, `HEADERS on closed stream ${streamId}`);
      }
      return;
    }
    this.lastStreamId = streamId;
    if (this.goingAway) {
      // Opened after our GOAWAY: not processed; the client may retry it elsewhere.
      this.resetStream(streamId, ErrorCode.RefusedStream);
      return;
    }
    if (this.streams.size >= this.options.maxConcurrentStreams) {
      this.resetStream(streamId, ErrorCode.RefusedStream);
      return;
    }
    const contentLength = checkRequestFields(fields, this.maxHeaderListBytes, this.maxHeaderCount);
    if (contentLength === TOO_LARGE) {
      this.refuseTooLarge(streamId, endStream);
      return;
    }
    if (contentLength === MALFORMED || (endStream && contentLength > 0)) {
      this.resetStream(streamId, ErrorCode.ProtocolError);
      return;
    }
    const stream = this.owner.onStream(fields, endStream);
    stream.h2Id = streamId;
    stream.h2SendWindow = this.initialWindowSize;
    stream.h2Connection = this;
    stream.h2ContentLength = contentLength;
    this.streams.set(streamId, stream);
    // Set before onStart: an answer given there must not reset a request that is complete.
    if (endStream) stream.h2RemoteClosed = true;
    stream.onStart();
    if (stream.h2Gone || !endStream) return;
    stream.onEnd();
    if (stream.endSent && !stream.h2Gone) this.forget(stream);
  }

  /**
   * A request whose header list is above our limit: answered 431 without its owner (§10.5.1),
   * and, while the client may still send its body, reset NO_ERROR (§8.1).
   */
  private refuseTooLarge(streamId: number, endStream: boolean): void {
    const encoder = this.encoder;
    encoder.begin();
    encoder.header(TOO_LARGE_FIELDS[0]!, TOO_LARGE_FIELDS[1]!);
    this.send(this.headerFrames(streamId, encoder.end(), true));
    if (!endStream) this.resetStream(streamId, ErrorCode.NoError);
    this.owner.onRefused?.(431);
  }

  protected onRstStream(_buffer: Buffer, streamId: number, start: number, end: number): void {
    if (end - start !== 4) {
      this.protocolError(ErrorCode.FrameSizeError, `RST_STREAM of ${end - start} octets, not 4`);
      return;
    }
    if (streamId === 0) {
      this.protocolError(ErrorCode.ProtocolError, 'RST_STREAM on stream 0');
      return;
    }
    if (streamId > this.lastStreamId) {
      this.protocolError(ErrorCode.ProtocolError, `RST_STREAM on idle stream ${streamId}`);
      return;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    this.forget(stream);
    stream.onCancel();
  }

  protected onPeerSetting(id: number, value: number): boolean {
    if (id === Setting.EnablePush && value > 1) {
      this.protocolError(ErrorCode.ProtocolError, `ENABLE_PUSH ${value}, not 0 or 1`);
      return false;
    }
    // MAX_CONCURRENT_STREAMS (we push nothing), MAX_HEADER_LIST_SIZE (ours are small), unknown ones.
    return true;
  }

  protected onSettingsApplied(): void {
    this.flushBlocked();
  }

  protected onWindowUpdate(streamId: number, increment: number): void {
    if (streamId === 0) {
      if (increment === 0) {
        this.protocolError(ErrorCode.ProtocolError, 'WINDOW_UPDATE of 0 on the connection');
        return;
      }
      if (!this.growSendWindow(increment)) return;
    } else {
      const stream = this.streams.get(streamId);
      if (stream === undefined) {
        if (streamId > this.lastStreamId) {
          this.protocolError(ErrorCode.ProtocolError, `WINDOW_UPDATE on idle stream ${streamId}`);
        }
        return;
      }
      if (increment === 0) {
        this.resetStream(streamId, ErrorCode.ProtocolError);
        return;
      }
      stream.h2SendWindow += increment;
      if (stream.h2SendWindow > MAX_WINDOW_SIZE) {
        this.resetStream(streamId, ErrorCode.FlowControlError);
        return;
      }
    }
    this.flushBlocked();
  }
}

/**
 * The most octets `fields` can take in a header block: each a literal with a new name (an
 * integer of at most 5 octets per length) plus two dynamic table size updates.
 */
function largestBlockBytes(fields: HeaderFields): number {
  let bytes = 12;
  for (let i = 0; i < fields.length; i += 2) bytes += 11 + fields[i]!.length + fields[i + 1]!.length;
  return bytes;
}

function destroySocket(socket: net.Socket): void {
  socket.destroy();
}

function hasPseudoHeader(fields: readonly string[]): boolean {
  for (let i = 0; i < fields.length; i += 2) if (fields[i]!.charCodeAt(0) === 0x3a) return true;
  return false;
}

/** What {@link checkRequestFields} answers for a malformed request. */
const MALFORMED = -2;
/** What {@link checkRequestFields} answers for a header list above the limit. */
const TOO_LARGE = -3;

/**
 * Checks a decoded block as a request (§8.2, §8.3): answers its content-length (-1 without
 * one), or MALFORMED for upper-case names, pseudo-headers after regular ones, unknown or
 * repeated, a connection-specific header, :method, :scheme or :path missing (a CONNECT: with
 * :scheme or :path, or without :authority), or a content-length that is not one number; or
 * TOO_LARGE when the list is above `maxListBytes` (§6.5.2: name, value and 32 octets a field;
 * the decoder's strings are latin1, a character an octet) or has more than `maxFields` fields
 * besides the pseudo-headers.
 */
function checkRequestFields(fields: readonly string[], maxListBytes: number, maxFields: number): number {
  let listBytes = 0;
  let regularFields = 0;
  let regularSeen = false;
  let method: string | undefined;
  let path: string | undefined;
  let scheme = false;
  let authority = false;
  let contentLength = -1;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    listBytes += name.length + value.length + 32;
    if (name.charCodeAt(0) === 0x3a) {
      if (regularSeen) return MALFORMED;
      if (name === ':method') {
        if (method !== undefined) return MALFORMED;
        method = value;
      } else if (name === ':path') {
        if (path !== undefined) return MALFORMED;
        path = value;
      } else if (name === ':scheme') {
        if (scheme) return MALFORMED;
        scheme = true;
      } else if (name === ':authority') {
        if (authority) return MALFORMED;
        authority = true;
      } else {
        return MALFORMED;
      }
      continue;
    }
    regularSeen = true;
    regularFields++;
    if (hasUpperCase(name)) return MALFORMED;
    if (
      name === 'connection' ||
      name === 'keep-alive' ||
      name === 'proxy-connection' ||
      name === 'transfer-encoding' ||
      name === 'upgrade'
    ) {
      return MALFORMED;
    }
    if (name === 'te' && value !== 'trailers') return MALFORMED;
    if (name === 'content-length') {
      // Repeated, it must repeat the same number (RFC 9110 §8.6).
      const length = /^\d{1,15}$/.test(value) ? Number(value) : MALFORMED;
      if (length === MALFORMED || (contentLength >= 0 && contentLength !== length)) return MALFORMED;
      contentLength = length;
    }
  }
  if (listBytes > maxListBytes || regularFields > maxFields) return TOO_LARGE;
  if (method === 'CONNECT') {
    // §8.5: a CONNECT names its authority only.
    return authority && !scheme && path === undefined ? contentLength : MALFORMED;
  }
  if (method === undefined || path === undefined || path === '' || !scheme) return MALFORMED;
  return contentLength;
}

/**
 * The request headers of a block {@link checkRequestFields} accepted, as the policy server
 * reads them: pseudo-headers included, repeated fields joined with `, `.
 */
export function requestHeadersOf(fields: readonly string[]): RequestHeaders {
  const headers: RequestHeaders = Object.create(null) as RequestHeaders;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    const previous = headers[name];
    headers[name] = previous === undefined ? value : `${previous}, ${value}`;
  }
  return headers;
}

function hasUpperCase(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code >= 0x41 && code <= 0x5a) return true;
  }
  return false;
}
