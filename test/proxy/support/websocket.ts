/**
 * Just enough WebSocket (RFC 6455) for the proxy tests, over raw sockets: the opening
 * handshake, and text, binary and close frames (client frames masked, as required). No ws
 * package is installed, and the point is to see the proxy pass real frames through.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export const OPCODE = { text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface Frame {
  readonly opcode: number;
  readonly payload: Buffer;
}

/** The Sec-WebSocket-Accept value for a key. */
export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

/** Encodes one final frame; `mask` for frames a client sends. */
export function encodeFrame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const length = payload.length;
  const header: number[] = [0x80 | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (length < 126) header.push(maskBit | length);
  else if (length < 65536) header.push(maskBit | 126, length >> 8, length & 0xff);
  else {
    header.push(maskBit | 127, 0, 0, 0, 0);
    header.push((length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
  }
  if (!mask) return Buffer.concat([Buffer.from(header), payload]);
  const key = randomBytes(4);
  const masked = Buffer.alloc(length);
  for (let i = 0; i < length; i++) masked[i] = payload[i]! ^ key[i % 4]!;
  return Buffer.concat([Buffer.from(header), key, masked]);
}

/** Reads frames from a byte stream as they complete. */
export class FrameReader {
  private buffer = Buffer.alloc(0);

  /** Adds bytes; returns the frames completed by them. */
  push(chunk: Buffer): Frame[] {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      const b = this.buffer;
      if (b.length < 2) break;
      const opcode = b[0]! & 0x0f;
      const masked = (b[1]! & 0x80) !== 0;
      let length = b[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) break;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) break;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      const maskLength = masked ? 4 : 0;
      if (b.length < offset + maskLength + length) break;
      let payload = b.subarray(offset + maskLength, offset + maskLength + length);
      if (masked) {
        const key = b.subarray(offset, offset + 4);
        const clear = Buffer.alloc(length);
        for (let i = 0; i < length; i++) clear[i] = payload[i]! ^ key[i % 4]!;
        payload = clear;
      } else {
        payload = Buffer.from(payload);
      }
      frames.push({ opcode, payload });
      this.buffer = b.subarray(offset + maskLength + length);
    }
    return frames;
  }
}

/** A WebSocket echo server: answers each text or binary frame with the same frame; answers close with close. */
export interface WebSocketEchoServer {
  readonly port: number;
  /** Handshakes accepted. */
  readonly handshakes: number;
  /** Close frames received from clients. */
  readonly closesReceived: number;
  /** Sockets of accepted connections, for tests that cut them. */
  readonly sockets: Set<net.Socket>;
  close(): Promise<void>;
}

export async function startWebSocketEchoServer(
  options: { refuseWith?: number } = {},
): Promise<WebSocketEchoServer> {
  const server = http.createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('upgrade required\n');
  });
  const state = { handshakes: 0, closesReceived: 0 };
  const sockets = new Set<net.Socket>();
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    if (options.refuseWith !== undefined) {
      const body = 'not here\n';
      socket.end(
        `HTTP/1.1 ${options.refuseWith} Refused\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string' || req.headers['upgrade']?.toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    state.handshakes++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    // The HTTP server's sockets allow half-open connections: a client's FIN must end ours too.
    socket.on('end', () => socket.end());
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${acceptKey(key)}\r\nx-echo-path: ${req.url}\r\n\r\n`,
    );
    const reader = new FrameReader();
    const onBytes = (chunk: Buffer): void => {
      for (const frame of reader.push(chunk)) {
        if (frame.opcode === OPCODE.close) {
          state.closesReceived++;
          socket.end(encodeFrame(OPCODE.close, frame.payload, false));
          return;
        }
        if (frame.opcode === OPCODE.text || frame.opcode === OPCODE.binary) {
          socket.write(encodeFrame(frame.opcode, frame.payload, false));
        }
      }
    };
    if (head.length > 0) onBytes(head);
    socket.on('data', onBytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get handshakes() {
      return state.handshakes;
    },
    get closesReceived() {
      return state.closesReceived;
    },
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A connected WebSocket client. */
export interface WebSocketClient {
  /** The 101 answer's headers, lower-case names. */
  readonly responseHeaders: Readonly<Record<string, string>>;
  send(opcode: number, payload: Buffer | string): void;
  /** The next frame from the server (bounded wait). */
  nextFrame(timeoutMs?: number): Promise<Frame>;
  /** Resolves when the connection closes. */
  readonly closed: Promise<void>;
  readonly socket: net.Socket;
}

/**
 * Opens a WebSocket to `host:port` at `path`; rejects with the status line and body when the
 * server does not switch protocols.
 */
export function connectWebSocket(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<WebSocketClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const key = randomBytes(16).toString('base64');
    let handshake = Buffer.alloc(0);
    const reader = new FrameReader();
    const frames: Frame[] = [];
    const waiting: Array<(frame: Frame) => void> = [];
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', (error) => reject(error));
    const deliver = (frame: Frame): void => {
      const wake = waiting.shift();
      if (wake !== undefined) wake(frame);
      else frames.push(frame);
    };
    const onData = (chunk: Buffer): void => {
      handshake = Buffer.concat([handshake, chunk]);
      const end = handshake.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = handshake.subarray(0, end).toString('latin1').split('\r\n');
      const rest = handshake.subarray(end + 4);
      if (!/^HTTP\/1\.1 101 /.test(head[0]!)) {
        socket.off('data', onData);
        let body = rest.toString();
        socket.on('data', (c: Buffer) => (body += c.toString()));
        socket.on('end', () => reject(new Error(`${head[0]}\n${head.slice(1).join('\n')}\n\n${body}`)));
        return;
      }
      const responseHeaders: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':');
        responseHeaders[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      if (responseHeaders['sec-websocket-accept'] !== acceptKey(key)) {
        reject(new Error('bad Sec-WebSocket-Accept'));
        socket.destroy();
        return;
      }
      socket.off('data', onData);
      socket.on('data', (c: Buffer) => reader.push(c).forEach(deliver));
      reader.push(rest).forEach(deliver);
      resolve({
        responseHeaders,
        socket,
        closed,
        send(opcode, payload) {
          socket.write(encodeFrame(opcode, Buffer.isBuffer(payload) ? payload : Buffer.from(payload), true));
        },
        nextFrame(timeoutMs = 5_000) {
          const ready = frames.shift();
          if (ready !== undefined) return Promise.resolve(ready);
          return new Promise<Frame>((done, fail) => {
            const timer = setTimeout(
              () => fail(new Error(`no WebSocket frame within ${timeoutMs} ms`)),
              timeoutMs,
            );
            waiting.push((frame) => {
              clearTimeout(timer);
              done(frame);
            });
          });
        },
      });
    };
    socket.on('data', onData);
    const extra = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
    );
  });
}
