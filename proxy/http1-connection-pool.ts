/**
 * Keep-alive HTTP/1.1 connections to one endpoint of a cluster. An attempt asks for a
 * connection and gets an idle one (most recently used first, so that surplus ones time
 * out), a new one, or — when the cluster's connection breaker is full — waits for one of
 * this endpoint's to come free. The cluster counts the breaker slots: one `connections`
 * slot per open connection, one `pendingRequests` slot per attempt waiting for one.
 *
 * Idle connections close after the server's announced keep-alive timeout (`Keep-Alive:
 * timeout=N`, less a second, so that the proxy closes first) or {@link DEFAULT_IDLE_TIMEOUT_MS}.
 */
import * as net from 'node:net';
import type { Cluster, Endpoint } from './cluster';

/** How long an idle connection is kept when the server announces no keep-alive timeout, in ms. */
export const DEFAULT_IDLE_TIMEOUT_MS = 15_000;

/** Why no connection was given. */
export type PoolFailure =
  | { readonly kind: 'connectFailure'; readonly detail: string }
  | { readonly kind: 'overflow'; readonly breaker: 'maxConnections' | 'maxPendingRequests' };

/** An attempt waiting for a connection. Exactly one of the two is called, once, unless cancelled. */
export interface ConnectionWaiter {
  /** `reused`: the connection served a request before (a reset may then be a stale connection). */
  onConnection(socket: net.Socket, reused: boolean): void;
  onConnectionFailure(failure: PoolFailure): void;
}

export interface Http1PoolStats {
  readonly open: number;
  readonly idle: number;
  readonly waiting: number;
}

interface SocketState {
  idle: boolean;
  idleTimeoutMs: number;
  served: number;
}

export class Http1ConnectionPool {
  private readonly idle: net.Socket[] = [];
  private readonly waiters: ConnectionWaiter[] = [];
  /** Waiters that hold a pendingRequests slot (all queued ones, and those whose connection is opening). */
  private readonly pending = new Set<ConnectionWaiter>();
  private readonly states = new Map<net.Socket, SocketState>();
  private closed = false;

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
    const socket = this.idle.pop();
    if (socket !== undefined) {
      this.take(socket, waiter);
      return;
    }
    if (!this.cluster.tryAcquire('pendingRequests')) {
      waiter.onConnectionFailure({ kind: 'overflow', breaker: 'maxPendingRequests' });
      return;
    }
    this.pending.add(waiter);
    if (this.cluster.tryAcquire('connections')) {
      this.open(waiter);
    } else if (this.states.size > 0) {
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
  noteKeepAliveTimeout(socket: net.Socket, seconds: number): void {
    const state = this.states.get(socket);
    if (state !== undefined) state.idleTimeoutMs = Math.min(DEFAULT_IDLE_TIMEOUT_MS, seconds * 1000 - 1000);
  }

  stats(): Http1PoolStats {
    return { open: this.states.size, idle: this.idle.length, waiting: this.waiters.length };
  }

  /** Closes idle connections now and busy ones when their request ends; fails waiters. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const socket of this.idle.splice(0)) socket.destroy();
    for (const waiter of this.waiters.splice(0)) {
      this.cancel(waiter);
      waiter.onConnectionFailure({ kind: 'connectFailure', detail: 'the cluster was removed' });
    }
  }

  private open(waiter: ConnectionWaiter): void {
    const socket = net.connect({ host: this.endpoint.host, port: this.endpoint.port, noDelay: true });
    const state: SocketState = { idle: false, idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS, served: 0 };
    this.states.set(socket, state);
    let connected = false;
    const connectTimer = setTimeout(() => {
      socket.destroy(new Error(`connect timeout after ${this.connectTimeoutMs} ms`));
    }, this.connectTimeoutMs);
    socket.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      if (this.pending.delete(waiter)) {
        this.cluster.release('pendingRequests');
        this.take(socket, waiter);
      } else {
        // The waiter went away while connecting: the connection serves the next one.
        this.release(socket);
      }
    });
    socket.on('error', (error: Error) => {
      if (connected) return; // the request using the socket sees it, or 'close' handles an idle one
      clearTimeout(connectTimer);
      if (this.pending.delete(waiter)) {
        this.cluster.release('pendingRequests');
        waiter.onConnectionFailure({ kind: 'connectFailure', detail: describeConnectError(error) });
      }
    });
    socket.on('close', () => {
      clearTimeout(connectTimer);
      this.states.delete(socket);
      const i = this.idle.indexOf(socket);
      if (i >= 0) this.idle.splice(i, 1);
      this.cluster.release('connections');
      // A slot came free: open a connection for the longest waiter.
      const next = this.waiters[0];
      if (next !== undefined && !this.closed && this.cluster.tryAcquire('connections')) {
        this.waiters.shift();
        this.open(next);
      }
    });
    // The HTTP client emits 'free' once a keep-alive response is complete and the request was sent.
    socket.on('free', () => this.release(socket));
    socket.on('timeout', () => {
      if (state.idle) socket.destroy();
    });
  }

  private take(socket: net.Socket, waiter: ConnectionWaiter): void {
    const state = this.states.get(socket)!;
    state.idle = false;
    socket.setTimeout(0);
    socket.ref();
    const reused = state.served > 0;
    state.served++;
    waiter.onConnection(socket, reused);
  }

  private release(socket: net.Socket): void {
    const state = this.states.get(socket);
    if (
      state === undefined ||
      socket.destroyed ||
      !socket.writable ||
      this.closed ||
      state.idleTimeoutMs <= 0
    ) {
      socket.destroy();
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      this.pending.delete(waiter);
      this.cluster.release('pendingRequests');
      this.take(socket, waiter);
      return;
    }
    state.idle = true;
    socket.setTimeout(state.idleTimeoutMs);
    // An idle connection alone does not keep the process alive.
    socket.unref();
    this.idle.push(socket);
  }
}

/** What a failed connect says, e.g. `connect ECONNREFUSED 127.0.0.1:8080`. */
export function describeConnectError(error: Error): string {
  return error.message;
}
