/**
 * Accepted plaintext connections read with `onread` into one buffer their listener shares,
 * as the upstream connections are (http1-connection-pool.ts): no Buffer allocated per read,
 * no `Readable.push` / `'data'` event per read.
 *
 * `net.Server` has no `onread` option, so the listener accepts with `pauseOnConnect` (the
 * accepted socket never starts reading) and a second `net.Socket` is made on the same handle
 * with `onread` — the way Node's own TLS server wraps the handle of the socket it accepted.
 * The first socket is destroyed once the second one closes, which gives the server its
 * connection count back (the handle is already closed then: destroying it closes nothing).
 *
 * Bytes go to the reader's `receiver`; they are in the shared buffer, valid only during the
 * call — a receiver copies what it keeps. Without a receiver (an HTTP/2 session, a tunnel
 * after an upgrade) the bytes are pushed, copied, into the socket's own stream: `'data'`,
 * `pipe` and `unshift` work as on any socket.
 */
import * as net from 'node:net';

/** Size of a listener's shared read buffer: as much as Node reads at once. */
export const SHARED_READ_BUFFER_BYTES = 64 * 1024;

/** Takes the bytes of an accepted connection. */
export interface ReceivedBytesSink {
  /** `chunk` is in the shared buffer: valid only during the call. */
  onReceivedBytes(chunk: Buffer): void;
}

/** The reading half of an accepted connection. */
export class AcceptedSocket {
  /** The socket to use from now on (not the one the server accepted). */
  readonly socket: net.Socket;
  /** Where bytes go; undefined: into the socket's own stream, copied. */
  receiver: ReceivedBytesSink | undefined;

  /**
   * @param accepted a socket a server accepted with `pauseOnConnect` (not read from yet)
   * @param buffer the listener's read buffer, shared by its connections
   */
  constructor(accepted: net.Socket, buffer: Buffer, receiver: ReceivedBytesSink) {
    this.receiver = receiver;
    const handle = (accepted as unknown as { _handle: unknown })._handle;
    const socket = new net.Socket({
      handle,
      allowHalfOpen: accepted.allowHalfOpen,
      readable: true,
      writable: true,
      onread: { buffer, callback: (bytes: number, into: Uint8Array): boolean => this.onRead(bytes, into) },
    } as net.SocketConstructorOpts);
    this.socket = socket;
    socket.once('close', () => accepted.destroy());
  }

  private onRead(bytes: number, into: Uint8Array): boolean {
    const chunk = (into as Buffer).subarray(0, bytes);
    const receiver = this.receiver;
    if (receiver !== undefined) {
      receiver.onReceivedBytes(chunk);
      return true;
    }
    // false stops reading until the stream's consumer asks for more (pause, pipe backpressure).
    return this.socket.push(Buffer.from(chunk));
  }
}
