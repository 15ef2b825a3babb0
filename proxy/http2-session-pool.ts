/**
 * HTTP/2 (prior knowledge, as gRPC needs) sessions to one endpoint of a cluster. Streams
 * are multiplexed on one session until it reaches the server's MAX_CONCURRENT_STREAMS;
 * then another session is opened, as the connection breaker allows. An attempt waiting for
 * a session (opening, or one with room) holds a `pendingRequests` slot; each open session
 * holds a `connections` slot. A session the server sends GOAWAY on takes no new streams.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { Cluster, Endpoint } from './cluster';
import { describeConnectError, type PoolFailure } from './http1-connection-pool';

/** An idle session is closed after this long without streams, in ms. */
export const HTTP2_IDLE_TIMEOUT_MS = 60_000;
/** Streams per session until the server's SETTINGS say otherwise (RFC 9113 recommends ≥ 100). */
const INITIAL_MAX_STREAMS = 100;

/** A session of the pool; attempts count their streams on it. */
export interface PooledSession {
  readonly session: http2.ClientHttp2Session;
  /** Call once per stream opened with the session, and {@link Http2SessionPool.streamClosed} when it closes. */
  streams: number;
}

/** An attempt waiting for a session. Exactly one of the two is called, once, unless cancelled. */
export interface SessionWaiter {
  onSession(session: PooledSession): void;
  onConnectionFailure(failure: PoolFailure): void;
}

interface SessionEntry {
  session: http2.ClientHttp2Session;
  streams: number;
  ready: boolean;
  usable: boolean;
  maxStreams: number;
  idleTimer: NodeJS.Timeout | undefined;
}

export class Http2SessionPool {
  private readonly entries = new Set<SessionEntry>();
  private readonly waiters: SessionWaiter[] = [];
  private closed = false;

  constructor(
    readonly endpoint: Endpoint,
    private readonly cluster: Cluster,
    private readonly connectTimeoutMs: number,
  ) {}

  acquire(waiter: SessionWaiter): void {
    if (this.closed) {
      waiter.onConnectionFailure({ kind: 'connectFailure', detail: 'the cluster was removed' });
      return;
    }
    const entry = this.withRoom();
    if (entry !== undefined) {
      this.give(entry, waiter);
      return;
    }
    if (!this.cluster.tryAcquire('pendingRequests')) {
      waiter.onConnectionFailure({ kind: 'overflow', breaker: 'maxPendingRequests' });
      return;
    }
    this.waiters.push(waiter);
    const opening = [...this.entries].some((e) => !e.ready && e.usable);
    if (opening) return;
    if (this.cluster.tryAcquire('connections')) {
      this.open();
    } else if (this.entries.size === 0) {
      this.waiters.pop();
      this.cluster.release('pendingRequests');
      waiter.onConnectionFailure({ kind: 'overflow', breaker: 'maxConnections' });
    }
    // Otherwise a stream of a full session will close and make room.
  }

  cancel(waiter: SessionWaiter): void {
    const i = this.waiters.indexOf(waiter);
    if (i < 0) return;
    this.waiters.splice(i, 1);
    this.cluster.release('pendingRequests');
  }

  /** A stream opened by an attempt on `pooled` closed. */
  streamClosed(pooled: PooledSession): void {
    const entry = pooled as SessionEntry;
    entry.streams--;
    this.serveWaiters(entry);
    if (entry.streams === 0 && this.entries.has(entry)) {
      entry.session.unref();
      clearTimeout(entry.idleTimer);
      entry.idleTimer = setTimeout(() => {
        if (entry.streams === 0) entry.session.close();
      }, HTTP2_IDLE_TIMEOUT_MS);
      entry.idleTimer.unref();
    }
  }

  stats(): { sessions: number; streams: number; waiting: number } {
    let streams = 0;
    for (const e of this.entries) streams += e.streams;
    return { sessions: this.entries.size, streams, waiting: this.waiters.length };
  }

  /** Closes sessions gracefully (their streams finish) and fails waiters. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) {
      this.cluster.release('pendingRequests');
      waiter.onConnectionFailure({ kind: 'connectFailure', detail: 'the cluster was removed' });
    }
    for (const entry of this.entries) {
      entry.usable = false;
      clearTimeout(entry.idleTimer);
      if (!entry.session.closed) entry.session.close();
    }
  }

  private withRoom(): SessionEntry | undefined {
    for (const e of this.entries) if (e.ready && e.usable && e.streams < e.maxStreams) return e;
    return undefined;
  }

  private give(entry: SessionEntry, waiter: SessionWaiter): void {
    entry.streams++;
    clearTimeout(entry.idleTimer);
    entry.session.ref();
    waiter.onSession(entry);
  }

  private serveWaiters(entry: SessionEntry): void {
    while (this.waiters.length > 0 && entry.ready && entry.usable && entry.streams < entry.maxStreams) {
      const waiter = this.waiters.shift()!;
      this.cluster.release('pendingRequests');
      this.give(entry, waiter);
    }
  }

  private failWaiters(detail: string): void {
    for (const waiter of this.waiters.splice(0)) {
      this.cluster.release('pendingRequests');
      waiter.onConnectionFailure({ kind: 'connectFailure', detail });
    }
  }

  private open(): void {
    const { host, port } = this.endpoint;
    const socket = net.connect({ host, port, noDelay: true });
    let entry: SessionEntry | undefined;
    const connectTimer = setTimeout(
      () => socket.destroy(new Error(`connect timeout after ${this.connectTimeoutMs} ms`)),
      this.connectTimeoutMs,
    );
    const placeholder: SessionEntry = {
      session: undefined as unknown as http2.ClientHttp2Session,
      streams: 0,
      ready: false,
      usable: true,
      maxStreams: INITIAL_MAX_STREAMS,
      idleTimer: undefined,
    };
    this.entries.add(placeholder);
    const failConnect = (error: Error): void => {
      clearTimeout(connectTimer);
      if (!this.entries.delete(placeholder)) return;
      this.cluster.release('connections');
      this.failWaiters(describeConnectError(error));
    };
    socket.once('error', failConnect);
    socket.once('connect', () => {
      clearTimeout(connectTimer);
      socket.off('error', failConnect);
      const authority = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
      const session = http2.connect(authority, {
        createConnection: () => socket,
        settings: { enablePush: false },
      });
      entry = placeholder;
      entry.session = session as http2.ClientHttp2Session;
      session.on('error', () => undefined); // streams see the failure; 'close' cleans up
      session.on('remoteSettings', (settings) => {
        entry!.maxStreams = settings.maxConcurrentStreams ?? INITIAL_MAX_STREAMS;
        this.serveWaiters(entry!);
      });
      session.once('connect', () => {
        entry!.ready = true;
        this.serveWaiters(entry!);
      });
      session.on('goaway', () => {
        entry!.usable = false;
      });
      session.once('close', () => {
        clearTimeout(entry!.idleTimer);
        if (this.entries.delete(entry!)) this.cluster.release('connections');
        if (!entry!.ready) this.failWaiters('the upstream closed the HTTP/2 connection before it was ready');
        else if (this.waiters.length > 0 && !this.closed && this.cluster.tryAcquire('connections'))
          this.open();
      });
    });
  }
}
