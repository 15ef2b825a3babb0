/**
 * HTTP/1.1 Upgrade (WebSocket) through the proxy. The handshake is routed like any
 * request; on a forwarding route the proxy opens a dedicated connection to an endpoint
 * (holding a `connections` breaker slot and a `requests` slot for the tunnel's life), sends
 * the handshake with its Upgrade and Connection headers, and relays the answer. A 101
 * joins the two connections into a byte tunnel with backpressure (pipe); an end or an error
 * on either side ends or destroys the other, so a close frame, a FIN or a reset reaches
 * the peer. Any other answer is relayed as a response and the connection closes.
 *
 * A tunnel with no byte in either direction for the route's stream idle timeout (its
 * `idleTimeout`, else the listener's `streamIdleTimeout`; none by default) is closed, both
 * sides, with the reason `stream-idle-timeout` (flag SI).
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { RequestAttributes } from './request-attributes';
import { decideFault } from './fault-injection';
import { plainAddress, upstreamRequestHeaders, type IncomingHeaders } from './forwarding-headers';
import { applyHeaderOperations, type OutgoingHeaders } from './header-operations';
import type { HttpExchangeContext } from './http-exchange';
import { OVERFLOW_HEADER, REASON_HEADER } from './local-reply';
import { ProxiedRequest } from './proxied-request';
import type { HttpRequestFacts, ProxyReason } from './traffic-facts';
import type { RequestVerdict } from './traffic-hook';
import type { UpstreamCluster } from './upstream-cluster';

/** The handshake request: what an HTTP/1.1 server parsed of it. */
export interface UpgradeRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHeaders;
}

/**
 * Takes over a connection whose request asked to switch protocols; `head` holds the bytes
 * that followed the request head.
 */
export function proxyUpgrade(
  context: HttpExchangeContext,
  req: UpgradeRequest,
  socket: net.Socket,
  head: Buffer,
  secure: boolean,
): void {
  new UpgradeExchange(context, req, socket, head, secure).start();
}

class UpgradeExchange extends ProxiedRequest implements HttpRequestFacts {
  responseHeaders: OutgoingHeaders | undefined;
  readonly grpcStatus = undefined;
  readonly grpcMessage = undefined;

  private readonly startNs = process.hrtime.bigint();
  private upstream: UpstreamCluster | undefined;
  private upstreamSocket: net.Socket | undefined;
  private holding = { requests: false, connections: false };
  /** The tunnel's idle timeout, in ms; 0: none. */
  private tunnelIdleMs = 0;
  private verdict: RequestVerdict | undefined;
  private bag: RequestAttributes | undefined;
  private finished = false;

  constructor(
    private readonly context: HttpExchangeContext,
    req: UpgradeRequest,
    private readonly socket: net.Socket,
    private readonly head: Buffer,
    secure: boolean,
  ) {
    super(
      context.listener,
      context.generation.config.node,
      context.services.environment.now(),
      {
        method: req.method,
        url: req.url,
        headers: req.headers,
        remoteAddress: socket.remoteAddress ?? '',
        remotePort: socket.remotePort ?? 0,
        localAddress: socket.localAddress ?? '',
        localPort: socket.localPort ?? 0,
      },
      { http2: false, secure },
    );
  }

  start(): void {
    this.context.generation.acquire();
    this.context.services.counters.httpRequests++;
    this.socket.on('error', () => undefined);
    this.socket.once('close', () => this.finish());
    const route = this.context.routes.match(this);
    if (route === undefined) {
      this.reject(404, 'no-route', `no route for ${this.method} ${this.authority}${this.urlPath}`);
      return;
    }
    this.routeName = route.name;
    const action = route.config.action;
    if (action.kind === 'forward')
      this.clusterName = route.pickCluster(action, this.context.services.environment.random);
    const fault =
      route.config.fault === undefined
        ? undefined
        : decideFault(route.config.fault, this.context.services.environment.random);
    const proceed = (): void => {
      if (fault !== undefined && fault.abortStatus > 0)
        this.reject(fault.abortStatus, 'fault-abort', `fault injected by route ${route.name}`);
      else this.check();
    };
    if (fault !== undefined && fault.delayMs > 0) setTimeout(proceed, fault.delayMs);
    else proceed();
  }

  private check(): void {
    if (this.finished) return;
    const hook = this.context.services.hook;
    if (hook.checkRequest === undefined) {
      this.act();
      return;
    }
    const onVerdict = (verdict: RequestVerdict): void => {
      if (this.finished) return;
      if (!verdict.allowed) {
        this.reject(verdict.status, 'denied', verdict.message, verdict.headers);
        return;
      }
      this.verdict = verdict;
      this.act();
    };
    try {
      this.bag = new RequestAttributes(this);
      const verdict = hook.checkRequest(this.bag);
      if (verdict instanceof Promise)
        verdict.then(onVerdict, () => this.reject(500, 'internal-error', 'the policy check failed'));
      else onVerdict(verdict);
    } catch (error) {
      this.context.services.logger.error(
        `traffic hook checkRequest threw: ${(error as Error).stack ?? String(error)}`,
      );
      this.act();
    }
  }

  private act(): void {
    const route = this.context.routes.routes.find((r) => r.name === this.routeName)!;
    const action = route.config.action;
    if (action.kind === 'directResponse') {
      this.respondRaw(action.status, { ...action.headers, connection: 'close' }, action.body);
      return;
    }
    if (action.kind === 'redirect') {
      this.respondRaw(
        action.status,
        {
          location: `${this.secure ? 'https' : 'http'}://${action.host ?? this.host}${action.path ?? this.urlPath}`,
          connection: 'close',
        },
        '',
      );
      return;
    }
    const upstream = this.context.generation.clusters.get(this.clusterName!)!;
    this.upstream = upstream;
    const cluster = upstream.cluster;
    if (!cluster.tryAcquire('requests')) {
      this.reject(503, 'overflow', `circuit breaker maxRequests of cluster ${upstream.name} is open`, {
        [OVERFLOW_HEADER]: 'maxRequests',
      });
      return;
    }
    this.holding.requests = true;
    const endpoint = cluster.pick({
      hashKey: cluster.hashKey({ headers: this.headers, sourceIp: plainAddress(this.remoteAddress) }),
    });
    if (endpoint === undefined) {
      this.reject(503, 'no-healthy-upstream', `no healthy endpoint in cluster ${upstream.name}`);
      return;
    }
    if (!cluster.tryAcquire('connections')) {
      this.reject(503, 'overflow', `circuit breaker maxConnections of cluster ${upstream.name} is open`, {
        [OVERFLOW_HEADER]: 'maxConnections',
      });
      return;
    }
    this.holding.connections = true;
    this.endpointId = endpoint.id;
    this.endpointHost = endpoint.host;
    this.endpointPort = endpoint.port;
    this.attempts = 1;
    cluster.attemptStarted(endpoint);
    const headers = upstreamRequestHeaders(
      this.headers,
      { remoteAddress: this.remoteAddress, secure: this.secure },
      this.ids,
      true,
    );
    if (route.config.requestHeaders !== undefined)
      applyHeaderOperations(headers, route.config.requestHeaders);
    this.tunnelIdleMs = action.idleTimeoutMs ?? this.context.listener.streamIdleTimeoutMs;
    if (this.verdict?.allowed === true && this.verdict.requestHeaders !== undefined)
      applyHeaderOperations(headers, this.verdict.requestHeaders);
    headers['host'] = action.hostRewrite ?? (headers['host'] as string | undefined) ?? this.authority;
    const path =
      action.prefixRewrite === undefined
        ? this.url
        : action.prefixRewrite + this.url.slice(route.matchedPrefixLength);

    const upstreamSocket = net.connect({ host: endpoint.host, port: endpoint.port, noDelay: true });
    this.upstreamSocket = upstreamSocket;
    const connectTimer = setTimeout(
      () => upstreamSocket.destroy(new Error(`connect timeout after ${upstream.config.connectTimeoutMs} ms`)),
      upstream.config.connectTimeoutMs,
    );
    upstreamSocket.once('close', () => {
      clearTimeout(connectTimer);
      if (this.holding.connections) {
        this.holding.connections = false;
        cluster.release('connections');
      }
    });
    let connected = false;
    upstreamSocket.once('error', (error: Error) => {
      if (connected) return;
      cluster.attemptFinished(endpoint, { kind: 'connectFailure' });
      this.reject(
        502,
        'upstream-connect-failure',
        `upstream connect error (${endpoint.id}): ${error.message}`,
      );
    });
    upstreamSocket.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      const request = http.request({
        method: this.method,
        path,
        headers,
        setHost: false,
        createConnection: () => upstreamSocket,
      });
      request.on('upgrade', (response, tunnel, upstreamHead) => {
        cluster.attemptFinished(endpoint, { kind: 'response', status: 101 });
        this.joinTunnel(response, tunnel, upstreamHead);
      });
      request.on('response', (response) => {
        cluster.attemptFinished(endpoint, { kind: 'response', status: response.statusCode ?? 502 });
        this.relayRefusal(response);
      });
      request.on('error', (error: Error) => {
        if (this.status !== 0) return;
        cluster.attemptFinished(endpoint, { kind: 'reset' });
        this.reject(502, 'upstream-reset', `upstream reset (${endpoint.id}): ${error.message}`);
      });
      request.end();
    });
  }

  /** The upstream switched protocols: relay its 101 and join the connections. */
  private joinTunnel(response: http.IncomingMessage, tunnel: net.Socket, upstreamHead: Buffer): void {
    const down = this.socket;
    if (down.destroyed) {
      tunnel.destroy();
      return;
    }
    this.status = 101;
    const lines = [`HTTP/1.1 101 ${response.statusMessage ?? 'Switching Protocols'}`];
    const headers: OutgoingHeaders = {};
    for (let i = 0; i < response.rawHeaders.length; i += 2) {
      const name = response.rawHeaders[i]!;
      const value = response.rawHeaders[i + 1]!;
      lines.push(`${name}: ${value}`);
      headers[name.toLowerCase()] = value;
    }
    this.responseHeaders = headers;
    down.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (upstreamHead.length > 0) {
      this.responseBytes += upstreamHead.length;
      down.write(upstreamHead);
    }
    if (this.head.length > 0) {
      this.requestBytes += this.head.length;
      tunnel.write(this.head);
    }
    tunnel.on('error', () => undefined);
    tunnel.on('data', (chunk: Buffer) => (this.responseBytes += chunk.length));
    down.on('data', (chunk: Buffer) => (this.requestBytes += chunk.length));
    // An abrupt close on one side resets the other; an orderly end is passed on by pipe.
    tunnel.once('close', () => down.destroy());
    down.once('close', () => tunnel.destroy());
    if (this.tunnelIdleMs > 0) {
      // A socket's timeout restarts on every read and write: the downstream one sees both directions.
      down.setTimeout(this.tunnelIdleMs, () => {
        this.reason = 'stream-idle-timeout';
        const reasons = this.context.services.counters.reasons;
        reasons[this.reason] = (reasons[this.reason] ?? 0) + 1;
        down.destroy();
        tunnel.destroy();
      });
    }
    tunnel.pipe(down);
    down.pipe(tunnel);
  }

  /** The upstream refused the upgrade: relay its answer as a response, then close. */
  private relayRefusal(response: http.IncomingMessage): void {
    const down = this.socket;
    const status = response.statusCode ?? 502;
    this.status = status;
    const lines = [`HTTP/1.1 ${status} ${response.statusMessage ?? ''}`];
    const headers: OutgoingHeaders = {};
    for (let i = 0; i < response.rawHeaders.length; i += 2) {
      const lower = response.rawHeaders[i]!.toLowerCase();
      if (lower === 'connection' || lower === 'keep-alive' || lower === 'transfer-encoding') continue;
      lines.push(`${response.rawHeaders[i]}: ${response.rawHeaders[i + 1]}`);
      headers[lower] = response.rawHeaders[i + 1]!;
    }
    lines.push('connection: close');
    this.responseHeaders = headers;
    const chunked = response.headers['content-length'] === undefined;
    if (chunked) lines.push('transfer-encoding: chunked');
    down.write(`${lines.join('\r\n')}\r\n\r\n`);
    response.on('data', (chunk: Buffer) => {
      this.responseBytes += chunk.length;
      if (chunked) down.write(`${chunk.length.toString(16)}\r\n`);
      if (!down.write(chunk)) {
        response.pause();
        down.once('drain', () => response.resume());
      }
      if (chunked) down.write('\r\n');
    });
    response.on('end', () => {
      if (chunked) down.end('0\r\n\r\n');
      else down.end();
      this.upstreamSocket?.destroy();
    });
  }

  private reject(
    status: number,
    reason: ProxyReason,
    message: string,
    extra?: Readonly<Record<string, string>>,
  ): void {
    if (this.status !== 0 || this.socket.destroyed) return;
    this.reason = reason;
    const reasons = this.context.services.counters.reasons;
    reasons[reason] = (reasons[reason] ?? 0) + 1;
    this.respondRaw(
      status,
      { ...extra, [REASON_HEADER]: reason, 'content-type': 'text/plain; charset=utf-8', connection: 'close' },
      `${message}\n`,
    );
  }

  private respondRaw(status: number, headers: OutgoingHeaders, body: string): void {
    this.status = status;
    headers['content-length'] = String(Buffer.byteLength(body));
    this.responseHeaders = headers;
    this.responseBytes = Buffer.byteLength(body);
    const lines = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${String(value)}`);
    this.socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
    this.upstreamSocket?.destroy();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.upstreamSocket?.destroy();
    if (this.holding.requests) {
      this.holding.requests = false;
      this.upstream!.cluster.release('requests');
    }
    if (this.status === 0) this.reason ??= 'downstream-disconnect';
    this.durationMs = Number(process.hrtime.bigint() - this.startNs) / 1e6;
    const { generation, services } = this.context;
    generation.accessLog?.logRequest(this);
    if (services.hook.requestCompleted !== undefined) {
      try {
        services.hook.requestCompleted(this, this.bag);
      } catch (error) {
        services.logger.error(
          `traffic hook requestCompleted threw: ${(error as Error).stack ?? String(error)}`,
        );
      }
    }
    generation.release();
  }
}
