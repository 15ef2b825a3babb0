/**
 * A raw HTTP/2 client for tests: a TCP client that writes whatever bytes a test gives it and
 * parses the frames that come back, to check what a server sends frame by frame (windows,
 * resets, GOAWAY) or to break the protocol on purpose.
 */
import * as net from 'node:net';
import {
  CLIENT_PREFACE,
  FRAME_HEADER_BYTES,
  FrameType,
  settingsFrame,
  writeFrameHeader,
  type HpackEncoder,
} from '../../http2';

export interface RawFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** A TCP client that writes whatever bytes a test gives it and parses the frames that come back. */
export class RawClient {
  readonly frames: RawFrame[] = [];
  readonly closed: Promise<void>;
  private readonly socket: net.Socket;
  private pending = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  /** `allowHalfOpen`: the client keeps its side open after the server closed its own. */
  constructor(port: number, allowHalfOpen = false) {
    this.socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen });
    this.socket.on('error', () => undefined);
    this.socket.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= FRAME_HEADER_BYTES) {
        const length = this.pending.readUIntBE(0, 3);
        if (this.pending.length < FRAME_HEADER_BYTES + length) break;
        this.frames.push({
          type: this.pending[3]!,
          flags: this.pending[4]!,
          streamId: this.pending.readUInt32BE(5) & 0x7fffffff,
          payload: this.pending.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length),
        });
        this.pending = this.pending.subarray(FRAME_HEADER_BYTES + length);
      }
      this.wake();
    });
    this.closed = new Promise((resolve) => this.socket.on('close', () => (this.wake(), resolve())));
  }

  /** The preface and an empty SETTINGS, as a well-behaved client starts. */
  start(): void {
    this.write(Buffer.concat([CLIENT_PREFACE, settingsFrame([])]));
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Waits for a frame matching `match`, failing after 5 s or when the connection closes without one. */
  async waitFor(match: (f: RawFrame) => boolean, what: string): Promise<RawFrame> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      if (this.socket.destroyed || Date.now() > deadline) {
        throw new Error(
          `no ${what}; got frames ${JSON.stringify(this.frames.map((f) => [f.type, f.flags, f.streamId]))}`,
        );
      }
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async goAwayCode(): Promise<number> {
    const goAway = await this.waitFor((f) => f.type === FrameType.GoAway, 'GOAWAY');
    return goAway.payload.readUInt32BE(4);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

export function rawFrame(type: FrameType, flags: number, streamId: number, payload: Buffer): Buffer {
  const out = Buffer.alloc(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(out, 0, payload.length, type, flags, streamId);
  payload.copy(out, FRAME_HEADER_BYTES);
  return out;
}

/** A gRPC length-prefixed message: the compressed flag, the length, the bytes. */
export function grpcMessage(message: Uint8Array, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** The header block of a gRPC call to `path` (POST, http, localhost), with `extra` fields after. */
export function grpcRequestBlock(
  encoder: HpackEncoder,
  path: string,
  extra: readonly (readonly [string, string])[] = [],
): Buffer {
  encoder.begin();
  for (const [name, value] of [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', 'localhost'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ...extra,
  ] as const) {
    encoder.header(name, value);
  }
  return Buffer.from(encoder.end());
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
