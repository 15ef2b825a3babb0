/**
 * The JSON access log: one line per HTTP request and per closed TCP connection, to stdout
 * or appended to a file. Writing never blocks traffic: lines queue while the output is
 * slow, up to {@link MAX_QUEUED_BYTES}; beyond that they are dropped and counted.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { HttpRequestFacts, ProxyReason, TcpConnectionFacts } from './traffic-facts';

/** Bytes of log lines that may wait for a slow output before lines are dropped. */
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

export interface AccessLogStats {
  readonly written: number;
  /** Lines dropped because the output could not keep up. */
  readonly dropped: number;
}

/**
 * A request a server answered itself before any exchange: a malformed head, or one over the
 * listener's limits. What the server had read of it, when it had.
 */
export interface RefusedRequest {
  readonly startTimeMs: number;
  readonly listenerName: string;
  readonly protocol: 'http' | 'http2';
  readonly status: number;
  readonly reason: ProxyReason;
  readonly remoteAddress: string;
  readonly method?: string | undefined;
  readonly authority?: string | undefined;
  readonly path?: string | undefined;
}

export class AccessLog {
  private readonly output: NodeJS.WritableStream;
  private readonly ownsOutput: boolean;
  private written = 0;
  private dropped = 0;
  private closed = false;

  /** `path` is `stdout` or a file, opened for appending (created when missing). */
  constructor(readonly path: string) {
    if (path === 'stdout') {
      this.output = process.stdout;
      this.ownsOutput = false;
    } else {
      const file: WriteStream = createWriteStream(path, { flags: 'a' });
      // An unwritable file is an operator problem, not a traffic one: drop and count.
      file.on('error', () => {
        this.closed = true;
      });
      this.output = file;
      this.ownsOutput = true;
    }
  }

  logRequest(facts: HttpRequestFacts): void {
    this.write({
      time: new Date(facts.startTimeMs).toISOString(),
      listener: facts.listenerName,
      protocol: facts.protocol,
      method: facts.method,
      authority: facts.authority,
      path: facts.url,
      status: facts.status,
      reason: facts.reason,
      requestBytes: facts.requestBytes,
      responseBytes: facts.responseBytes,
      durationMs: Math.round(facts.durationMs * 1000) / 1000,
      route: facts.routeName,
      cluster: facts.clusterName,
      endpoint: facts.endpointId,
      attempts: facts.attempts,
      grpcStatus: facts.grpcStatus,
      requestId: facts.requestId,
      traceparent: facts.traceparent,
      source: facts.remoteAddress,
      userAgent: facts.requestHeaders['user-agent'],
    });
  }

  /** A line as logRequest's, with what is known of the request (no route, no upstream). */
  logRefused(request: RefusedRequest): void {
    this.write({
      time: new Date(request.startTimeMs).toISOString(),
      listener: request.listenerName,
      protocol: request.protocol,
      method: request.method,
      authority: request.authority,
      path: request.path,
      status: request.status,
      reason: request.reason,
      attempts: 0,
      source: request.remoteAddress,
    });
  }

  logConnection(facts: TcpConnectionFacts): void {
    this.write({
      time: new Date(facts.startTimeMs).toISOString(),
      listener: facts.listenerName,
      protocol: 'tcp',
      connectionId: facts.connectionId,
      reason: facts.reason,
      receivedBytes: facts.receivedBytes,
      sentBytes: facts.sentBytes,
      durationMs: Math.round(facts.durationMs * 1000) / 1000,
      cluster: facts.clusterName,
      endpoint: facts.endpointId,
      source: facts.remoteAddress,
    });
  }

  stats(): AccessLogStats {
    return { written: this.written, dropped: this.dropped };
  }

  /** Flushes what is queued and closes a file output (stdout stays open). Idempotent. */
  async close(): Promise<void> {
    if (this.closed && !this.ownsOutput) return;
    this.closed = true;
    if (!this.ownsOutput) return;
    const file = this.output as WriteStream;
    if (file.closed) return;
    await new Promise<void>((resolve) => file.end(resolve));
  }

  private write(record: Record<string, unknown>): void {
    const output = this.output as NodeJS.WritableStream & { writableLength?: number };
    if (this.closed || (output.writableLength ?? 0) > MAX_QUEUED_BYTES) {
      this.dropped++;
      return;
    }
    output.write(`${JSON.stringify(record)}\n`);
    this.written++;
  }
}
