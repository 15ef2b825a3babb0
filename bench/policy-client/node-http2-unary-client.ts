/**
 * The policy client's unary gRPC client as it was before it had its own HTTP/2 (commit 2cde3a1,
 * on node:http2), kept only as the baseline of bench/policy-client.ts.
 */
import * as http2 from 'node:http2';

/** How a call ended. `code` 0 is OK; 4 DEADLINE_EXCEEDED and 14 UNAVAILABLE come from here. */
export interface UnaryResult {
  readonly code: number;
  readonly message: string;
  /** The response message, on OK. */
  readonly body?: Buffer;
  /** The response headers (gRPC metadata), when the server answered. */
  readonly headers?: http2.IncomingHttpHeaders;
}

const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;

export class NodeHttp2UnaryClient {
  private session: http2.ClientHttp2Session | undefined;
  private closed = false;

  /** `address` is `host:port` of a server speaking gRPC over h2c. */
  constructor(private readonly address: string) {}

  /**
   * Calls `path` with `message`; answers within `deadlineMs` (DEADLINE_EXCEEDED otherwise).
   * `metadata` adds request headers (gRPC metadata; lower-case names, ASCII values).
   */
  call(
    path: string,
    message: Uint8Array,
    deadlineMs: number,
    metadata?: Readonly<Record<string, string>>,
  ): Promise<UnaryResult> {
    if (this.closed) return Promise.resolve({ code: UNAVAILABLE, message: 'the policy client is closed' });
    return new Promise((resolve) => {
      let settled = false;
      const finish = (result: UnaryResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.connection().request({
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': `${Math.max(1, Math.ceil(deadlineMs))}m`,
          ...metadata,
        });
      } catch (error) {
        finish({
          code: UNAVAILABLE,
          message: `cannot reach the policy server at ${this.address}: ${String(error)}`,
        });
        return;
      }
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        finish({
          code: DEADLINE_EXCEEDED,
          message: `no answer from the policy server within ${deadlineMs} ms`,
        });
      }, deadlineMs);
      let headers: http2.IncomingHttpHeaders | undefined;
      let trailers: http2.IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      stream.on('response', (h) => (headers = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (error) =>
        finish({
          code: UNAVAILABLE,
          message: `the policy server at ${this.address} failed the call: ${error.message}`,
        }),
      );
      stream.on('close', () => {
        if (settled) return;
        const status = trailers?.['grpc-status'] ?? headers?.['grpc-status'];
        if (status === undefined) {
          finish({
            code: UNAVAILABLE,
            message: `the policy server at ${this.address} closed the call without a status`,
          });
          return;
        }
        const code = Number(status);
        const text = decodeURIComponent(
          String(trailers?.['grpc-message'] ?? headers?.['grpc-message'] ?? ''),
        );
        if (code !== 0) {
          finish({ code, message: text, ...(headers === undefined ? {} : { headers }) });
          return;
        }
        const body = Buffer.concat(chunks);
        if (body.length < 5 || body.length !== 5 + body.readUInt32BE(1) || body[0] !== 0) {
          finish({ code: 13, message: 'the policy server answered a malformed message' });
          return;
        }
        finish({
          code: 0,
          message: '',
          body: body.subarray(5),
          ...(headers === undefined ? {} : { headers }),
        });
      });
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(message.length, 1);
      stream.end(Buffer.concat([prefix, message]));
    });
  }

  /** Closes the connection; later calls answer UNAVAILABLE. */
  close(): void {
    this.closed = true;
    this.session?.close();
    this.session = undefined;
  }

  private connection(): http2.ClientHttp2Session {
    if (this.session !== undefined && !this.session.closed && !this.session.destroyed) return this.session;
    const session = http2.connect(`http://${this.address}`);
    // Errors end up in the calls; the next call opens a new connection.
    session.on('error', () => undefined);
    session.on('close', () => {
      if (this.session === session) this.session = undefined;
    });
    session.unref();
    this.session = session;
    return session;
  }
}
