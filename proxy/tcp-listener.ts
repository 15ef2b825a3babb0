/**
 * A TCP listener: every connection is joined to a connection to one endpoint of the
 * listener's cluster (picked by the cluster, hashing on the source IP for RING_HASH), bytes
 * relayed both ways with backpressure (pipe) and half-closes passed on. Each connection
 * holds a `connections` breaker slot of the cluster; when the breaker is full, or no
 * endpoint is healthy, or the connect fails, the downstream connection is closed.
 */
import { randomUUID } from 'node:crypto';
import * as net from 'node:net';
import { buildConnectionAttributes } from './attribute-builder';
import type { NodeIdentity, TcpListenerConfig } from './config-model';
import { plainAddress } from './forwarding-headers';
import type { BoundAddress } from './http-listener';
import type { ProxyGeneration, ProxyServices } from './proxy-generation';
import type { ProxyReason, TcpConnectionFacts } from './traffic-facts';

/** What a TCP listener needs from its generation. */
export interface TcpListenerContext {
  readonly generation: ProxyGeneration;
  readonly listener: TcpListenerConfig;
  readonly services: ProxyServices;
}

export class TcpListener {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private onSocketClosed: (() => void) | undefined;

  constructor(
    private config: TcpListenerConfig,
    private context: TcpListenerContext,
  ) {
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.onSocketClosed?.();
      });
      new TcpConnection(this.context, socket).start();
    });
    // listen() reports bind errors; later ones (EMFILE on accept, …) are an operator's business.
    this.server.on('error', (error: Error) => {
      if (this.server.listening)
        this.context.services.logger.error(`listener ${this.config.name}: ${error.message}`);
    });
  }

  get name(): string {
    return this.config.name;
  }

  get connections(): number {
    return this.sockets.size;
  }

  listen(): Promise<BoundAddress> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen({ host: this.config.address, port: this.config.port }, () => {
        this.server.off('error', onError);
        const bound = this.server.address() as net.AddressInfo;
        resolve({ address: bound.address, port: bound.port });
      });
    });
  }

  update(config: TcpListenerConfig, context: TcpListenerContext): void {
    this.config = config;
    this.context = context;
  }

  /** Stops accepting; open connections may go on for `timeoutMs`, then are closed. */
  async drain(timeoutMs: number): Promise<void> {
    this.server.close();
    if (this.sockets.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const socket of this.sockets) socket.destroy();
      }, timeoutMs);
      timer.unref();
      this.onSocketClosed = () => {
        if (this.sockets.size > 0) return;
        clearTimeout(timer);
        resolve();
      };
    });
  }

  destroy(): void {
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
  }
}

class TcpConnection implements TcpConnectionFacts {
  readonly listenerName: string;
  readonly role: 'inbound' | 'outbound';
  readonly node: NodeIdentity;
  readonly connectionId = randomUUID();
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly startTimeMs: number;
  readonly clusterName: string;
  receivedBytes = 0;
  sentBytes = 0;
  durationMs = 0;
  endpointId: string | undefined;
  endpointHost: string | undefined;
  endpointPort: number | undefined;
  reason: ProxyReason | undefined;
  private readonly startNs = process.hrtime.bigint();
  private upstreamSocket: net.Socket | undefined;
  private opened = false;
  private finished = false;

  constructor(
    private readonly context: TcpListenerContext,
    private readonly socket: net.Socket,
  ) {
    this.listenerName = context.listener.name;
    this.role = context.listener.role;
    this.node = context.generation.config.node;
    this.clusterName = context.listener.cluster;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? '';
    this.localPort = socket.localPort ?? 0;
    this.startTimeMs = context.services.environment.now();
  }

  start(): void {
    const { generation, services } = this.context;
    generation.acquire();
    services.counters.tcpConnections++;
    const down = this.socket;
    down.on('error', () => undefined);
    down.once('close', () => this.finish());
    down.pause();
    const upstream = generation.clusters.get(this.clusterName)!;
    const cluster = upstream.cluster;
    const endpoint = cluster.pick({
      hashKey: cluster.hashKey({ headers: {}, sourceIp: plainAddress(this.remoteAddress) }),
    });
    if (endpoint === undefined) {
      this.close('no-healthy-upstream');
      return;
    }
    if (!cluster.tryAcquire('connections')) {
      this.close('overflow');
      return;
    }
    this.endpointId = endpoint.id;
    this.endpointHost = endpoint.host;
    this.endpointPort = endpoint.port;
    cluster.attemptStarted(endpoint);
    const up = net.connect({ host: endpoint.host, port: endpoint.port, allowHalfOpen: true, noDelay: true });
    this.upstreamSocket = up;
    const connectTimer = setTimeout(
      () => up.destroy(new Error('connect timeout')),
      upstream.config.connectTimeoutMs,
    );
    let connected = false;
    up.once('close', () => {
      clearTimeout(connectTimer);
      cluster.release('connections');
      if (!connected) {
        cluster.attemptFinished(endpoint, { kind: 'connectFailure' });
        this.close('upstream-connect-failure');
        return;
      }
      // An abrupt close (a reset) of one side resets the other; an orderly one was passed on.
      if (!down.destroyed) down.destroySoon();
    });
    up.on('error', () => undefined);
    up.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      // A TCP connection that got through counts as a successful attempt for outlier detection.
      cluster.attemptFinished(endpoint, { kind: 'response', status: 200 });
      this.opened = true;
      const hook = services.hook;
      if (hook.connectionOpened !== undefined) {
        try {
          hook.connectionOpened(buildConnectionAttributes(this, 'open'), () => {
            this.measure();
            return buildConnectionAttributes(this, 'continue');
          });
        } catch (error) {
          services.logger.error(
            `traffic hook connectionOpened threw: ${(error as Error).stack ?? String(error)}`,
          );
        }
      }
      down.once('close', () => {
        if (!up.destroyed) up.destroySoon();
      });
      const idleTimeoutMs = this.context.listener.idleTimeoutMs;
      if (idleTimeoutMs > 0) {
        // A socket's timeout restarts on every read and write: the downstream one sees both directions.
        down.setTimeout(idleTimeoutMs, () => {
          this.close('stream-idle-timeout');
          up.destroy();
        });
      }
      up.pipe(down);
      down.pipe(up);
      down.resume();
    });
  }

  private close(reason: ProxyReason): void {
    this.reason = reason;
    const reasons = this.context.services.counters.reasons;
    reasons[reason] = (reasons[reason] ?? 0) + 1;
    this.socket.destroy();
  }

  /** Byte counts and duration so far. */
  private measure(): void {
    this.receivedBytes = this.socket.bytesRead;
    this.sentBytes = this.socket.bytesWritten;
    this.durationMs = Number(process.hrtime.bigint() - this.startNs) / 1e6;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.upstreamSocket?.destroySoon();
    this.measure();
    const { generation, services } = this.context;
    generation.accessLog?.logConnection(this);
    const hook = services.hook;
    if (this.opened && hook.connectionClosed !== undefined) {
      try {
        hook.connectionClosed(buildConnectionAttributes(this, 'close'));
      } catch (error) {
        services.logger.error(
          `traffic hook connectionClosed threw: ${(error as Error).stack ?? String(error)}`,
        );
      }
    }
    generation.release();
  }
}
