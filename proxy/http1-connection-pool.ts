/**
 * Keep-alive HTTP/1.1 connections to one endpoint of a cluster. An attempt asks for a
 * connection and gets an idle one (most recently used first, so that surplus ones time
 * out), a new one, or — when the cluster's connection breaker is full — waits for one of
 * this endpoint's to come free. The cluster counts the breaker slots: one `connections`
 * slot per open connection, one `pendingRequests` slot per attempt waiting for one.
 *
 * Idle connections close after the server's announced keep-alive timeout (`Keep-Alive:
 * timeout=N`, less a second, so that the proxy closes first) or {@link DEFAULT_IDLE_TIMEOUT_MS}:
 * one timer per pool, armed for the first idle connection due, finds them (no socket timeout
 * set and cleared per request).
 */
import * as net from 'node:net';
import type { Cluster, Endpoint } from './cluster';

/**
 * The read buffer of each connection, in bytes: responses are read into it with `onread` and
 * handed on as slices, and it is reused while nothing still points into the bytes — no new
 * Buffer per read, nor the stream machinery of 'data' events. As much as Node reads at once.
 */
const READ_BUFFER_BYTES = 64 * 1024;

/** How long an idle connection is kept when the server announces no keep-alive timeout, in ms. */
export const DEFAULT_IDLE_TIMEOUT_MS = 15_000;

/** Why no connection was given. */
export type PoolFailure =
  | { readonly kind: 'connectFailure'; readonly detail: string }
  | { readonly kind: 'overflow'; readonly breaker: 'maxConnections' | 'maxPendingRequests' };

/** An attempt waiting for a connection. Exactly one of the two is called, once, unless cancelled. */
export interface ConnectionWaiter {
  /** `reused`: the connection served a request before (a reset may then be a stale connection). */
  onConnection(connection: Http1Connection, reused: boolean): void;
  onConnectionFailure(failure: PoolFailure): void;
}

/** What uses a connection for one exchange; told of its bytes, drain and close. */
export interface ConnectionUser {
  /** Bytes from the server; `chunk` is in the connection's read buffer, reused for the next read
   * unless {@link holdsReceivedBytes} says otherwise: copy what must outlive the call. */
  onSocketData(chunk: Buffer): void;
  /** Asked after each `onSocketData`: whether something still points into the chunk. */
  holdsReceivedBytes(): boolean;
  onSocketDrain(): void;
  /** The connection closed while in use; `detail` says why. */
  onSocketClose(detail: string): void;
}

export interface Http1PoolStats {
  readonly open: number;
  readonly idle: number;
  readonly waiting: number;
}

/**
 * One upstream connection. Its listeners are bound once and act for whichever exchange uses
 * it ({@link user}); while idle, any byte or close from the server ends it.
 */
export class Http1Connection {
  readonly socket: net.Socket;
  user: ConnectionUser | undefined;
  idle = false;
  /** turn-corks.ts's */
  corkedForTurn = false;
  idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS;
  served = 0;
  /** When it last became idle (performance.now() ms). */
  idleSinceMs = 0;
  connected = false;
  /** The attempt the connection is being opened for (until it connects or fails). */
  opener: ConnectionWaiter | undefined;
  connectTimer: NodeJS.Timeout | undefined;
  private lastError = '';
  private readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  /** The buffer the next read goes into (net calls it after each read). */
  private readonly nextReadBuffer = (): Buffer => this.readBuffer;
  private readonly onRead = (bytes: number, buffer: Uint8Array): boolean => {
    const user = this.user;
    if (user === undefined) {
      this.socket.destroy(); // bytes from an idle connection: it is out of step
      return false;
    }
    user.onSocketData((buffer as Buffer).subarray(0, bytes));
    // Still pointed at (a downstream write not yet done): the next read goes into new memory.
    if (user.holdsReceivedBytes()) this.readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    return true;
  };

  constructor(
    private readonly pool: Http1ConnectionPool,
    endpoint: Endpoint,
    opener: ConnectionWaiter,
    connectTimeoutMs: number,
  ) {
    this.opener = opener;
    const socket = net.connect({
      host: endpoint.host,
      port: endpoint.port,
      noDelay: true,
      onread: { buffer: this.nextReadBuffer, callback: this.onRead },
    });
    this.socket = socket;
    this.connectTimer = setTimeout(() => this.onConnectTimeout(connectTimeoutMs), connectTimeoutMs);
    socket.once('connect', () => this.pool.onConnected(this));
    socket.on('drain', () => this.user?.onSocketDrain());
    socket.on('error', (error: Error) => {
      this.lastError = error.message;
      if (!this.connected) this.pool.onConnectFailed(this, error);
    });
    socket.on('close', () => {
      this.pool.onClosed(this);
      const user = this.user;
      if (user === undefined) return;
      this.user = undefined;
      user.onSocketClose(this.lastError === '' ? 'the upstream closed the connection' : this.lastError);
    });
  }

  private onConnectTimeout(ms: number): void {
    this.connectTimer = undefined;
    this.socket.destroy(new Error(`connect timeout after ${ms} ms`));
  }

  /** The exchange is over and the connection may carry the next one. */
  release(): void {
    this.user = undefined;
    this.pool.release(this);
  }

  /** The exchange is over and left the connection unusable. */
  discard(): void {
    this.user = undefined;
    this.socket.destroy();
  }
}

export class Http1ConnectionPool {
  private readonly idle: Http1Connection[] = [];
  private readonly waiters: ConnectionWaiter[] = [];
  /** Waiters that hold a pendingRequests slot (all queued ones, and those whose connection is opening). */
  private readonly pending = new Set<ConnectionWaiter>();
  private readonly connections = new Set<Http1Connection>();
  private closed = false;
  /** Closes idle connections that are due; armed while some connection is idle. */
  private idleTimer: NodeJS.Timeout | undefined;
  /** When the idle timer fires (performance.now() ms). */
  private idleTimerDueMs = Number.POSITIVE_INFINITY;
  private readonly onIdleTimer = (): void => this.closeIdleDue();

  constructor(
    readonly endpoint: Endpoint,
    private readonly cluster: Cluster,
    private readonly connectTimeoutMs: number,
  ) {}

  /** Finds or opens a connection for `waiter`; it is told synchronously when an idle one is free. */
  acquire(waiter: ConnectionWaiter): void {
    if (this.closed) {
      waiter.onConnectionFailure({ kind: 'connectFailure', detail: 'the cluster was removed' });
      return;
    }
    const connection = this.idle.pop();
    if (connection !== undefined) {
      this.take(connection, waiter);
      return;
    }
    if (!this.cluster.tryAcquire('pendingRequests')) {
      waiter.onConnectionFailure({ kind: 'overflow', breaker: 'maxPendingRequests' });
      return;
    }
    this.pending.add(waiter);
    if (this.cluster.tryAcquire('connections')) {
      this.open(waiter);
    } else if (this.connections.size > 0) {
      // Every connection the breaker allows is busy; one of this endpoint's will come free.
      this.waiters.push(waiter);
    } else {
      this.pending.delete(waiter);
      this.cluster.release('pendingRequests');
      waiter.onConnectionFailure({ kind: 'overflow', breaker: 'maxConnections' });
    }
  }

  /** `waiter` no longer wants a connection (its request ended); a connection opening for it is kept. */
  cancel(waiter: ConnectionWaiter): void {
    if (!this.pending.delete(waiter)) return;
    this.cluster.release('pendingRequests');
    const i = this.waiters.indexOf(waiter);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  /**
   * The server announced how long it keeps an idle connection (`Keep-Alive: timeout=N`, in
   * seconds); the pool closes it a second earlier, or at once when that leaves nothing.
   */
  noteKeepAliveTimeout(connection: Http1Connection, seconds: number): void {
    connection.idleTimeoutMs = Math.min(DEFAULT_IDLE_TIMEOUT_MS, seconds * 1000 - 1000);
  }

  stats(): Http1PoolStats {
    return { open: this.connections.size, idle: this.idle.length, waiting: this.waiters.length };
  }

  /** Closes idle connections now and busy ones when their request ends; fails waiters. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.idleTimerDueMs = Number.POSITIVE_INFINITY;
    for (const connection of this.idle.splice(0)) connection.socket.destroy();
    for (const waiter of this.waiters.splice(0)) {
      this.cancel(waiter);
      waiter.onConnectionFailure({ kind: 'connectFailure', detail: 'the cluster was removed' });
    }
  }

  private open(waiter: ConnectionWaiter): void {
    this.connections.add(new Http1Connection(this, this.endpoint, waiter, this.connectTimeoutMs));
  }

  /** @internal */
  onConnected(connection: Http1Connection): void {
    connection.connected = true;
    clearTimeout(connection.connectTimer);
    connection.connectTimer = undefined;
    const waiter = connection.opener!;
    connection.opener = undefined;
    if (this.pending.delete(waiter)) {
      this.cluster.release('pendingRequests');
      this.take(connection, waiter);
    } else {
      // The waiter went away while connecting: the connection serves the next one.
      this.release(connection);
    }
  }

  /** @internal */
  onConnectFailed(connection: Http1Connection, error: Error): void {
    clearTimeout(connection.connectTimer);
    connection.connectTimer = undefined;
    const waiter = connection.opener;
    connection.opener = undefined;
    if (waiter !== undefined && this.pending.delete(waiter)) {
      this.cluster.release('pendingRequests');
      waiter.onConnectionFailure({ kind: 'connectFailure', detail: describeConnectError(error) });
    }
  }

  /** @internal */
  onClosed(connection: Http1Connection): void {
    clearTimeout(connection.connectTimer);
    connection.connectTimer = undefined;
    if (!this.connections.delete(connection)) return;
    if (connection.idle) {
      const i = this.idle.lastIndexOf(connection);
      if (i >= 0) this.idle.splice(i, 1);
    }
    this.cluster.release('connections');
    // A slot came free: open a connection for the longest waiter.
    const next = this.waiters[0];
    if (next !== undefined && !this.closed && this.cluster.tryAcquire('connections')) {
      this.waiters.shift();
      this.open(next);
    }
  }

  private take(connection: Http1Connection, waiter: ConnectionWaiter): void {
    connection.idle = false;
    const socket = connection.socket;
    socket.ref();
    const reused = connection.served > 0;
    connection.served++;
    waiter.onConnection(connection, reused);
  }

  /** @internal A connection done with its exchange (or opened for a waiter that left). */
  release(connection: Http1Connection): void {
    const socket = connection.socket;
    if (
      !this.connections.has(connection) ||
      socket.destroyed ||
      !socket.writable ||
      this.closed ||
      connection.idleTimeoutMs <= 0
    ) {
      socket.destroy();
      return;
    }
    if (socket.isPaused()) socket.resume();
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      this.pending.delete(waiter);
      this.cluster.release('pendingRequests');
      this.take(connection, waiter);
      return;
    }
    connection.idle = true;
    const now = performance.now();
    connection.idleSinceMs = now;
    // An idle connection alone does not keep the process alive.
    socket.unref();
    this.idle.push(connection);
    const due = now + connection.idleTimeoutMs;
    if (due < this.idleTimerDueMs) this.armIdleTimer(due, now);
  }

  private armIdleTimer(dueMs: number, nowMs: number): void {
    clearTimeout(this.idleTimer);
    this.idleTimerDueMs = dueMs;
    this.idleTimer = setTimeout(this.onIdleTimer, Math.max(1, Math.ceil(dueMs - nowMs)));
    this.idleTimer.unref();
  }

  /** Closes the idle connections whose idle timeout passed; arms for the next one due. */
  private closeIdleDue(): void {
    this.idleTimer = undefined;
    this.idleTimerDueMs = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    // Copied: a destroyed socket leaves the list when its 'close' comes, not now.
    for (const connection of this.idle.slice()) {
      const due = connection.idleSinceMs + connection.idleTimeoutMs;
      if (due <= now) connection.socket.destroy();
      else if (due < next) next = due;
    }
    if (next !== Number.POSITIVE_INFINITY && !this.closed) this.armIdleTimer(next, now);
  }
}

/** What a failed connect says, e.g. `connect ECONNREFUSED 127.0.0.1:8080`. */
export function describeConnectError(error: Error): string {
  return error.message;
}
