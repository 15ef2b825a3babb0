/**
 * One HTTP request through the proxy, from the downstream request to the end of the
 * response: routing, fault injection, the policy hook, then a direct answer, a redirect, or
 * forwarding with retries and timeouts.
 *
 * Bodies stream both ways with backpressure: the downstream request is read only while the
 * upstream attempt takes bytes, and the upstream response only while the downstream takes
 * them, so memory per request stays bounded — except the retry buffer: while a route has
 * retries, the first `bufferLimitBytes` of the request body are kept for a replay, and a
 * longer body is no longer retried.
 *
 * The exchange object is the handler of its upstream attempts and the facts record of the
 * request at once, so the request path allocates few objects of its own.
 */
import type { AttemptOutcome, Endpoint } from './cluster';
import type {
  ForwardAction,
  HeaderOperations,
  HttpListenerConfig,
  RedirectAction,
  RetryPolicy,
} from './config-model';
import { decideFault } from './fault-injection';
import {
  connectionTokens,
  downstreamResponseHeaders,
  forwardedTrailers,
  plainAddress,
  upstreamFieldLines,
  upstreamRequestHeaders,
  type IncomingHeaders,
} from './forwarding-headers';
import { applyHeaderOperations, type OutgoingHeaders } from './header-operations';
import type { Downstream, DownstreamHandler } from './http-exchange-types';
import type { Http1ConnectionPool } from './http1-connection-pool';
import type { Http2SessionPool } from './http2-session-pool';
import { OVERFLOW_HEADER, sendLocalReply, type LocalReply } from './local-reply';
import type { ProxyGeneration, ProxyServices } from './proxy-generation';
import {
  backoffMs,
  isIdempotent,
  isRetriable,
  withinRetryBudget,
  type RetryableOutcome,
} from './retry-policy';
import type { CompiledRoute, CompiledRouteTable } from './route-table';
import { RequestAttributes } from './request-attributes';
import type { RequestVerdict } from './traffic-hook';
import type { HttpRequestFacts, ProxyReason } from './traffic-facts';
import { ProxiedRequest } from './proxied-request';
import {
  Http1Call,
  Http2Call,
  type CallFailure,
  type UpstreamCall,
  type UpstreamCallHandler,
  type UpstreamRequestHead,
} from './upstream-call';
import type { UpstreamCluster } from './upstream-cluster';
import { CHUNKED, type ResponseHead } from './http1-response-parser';
import type { DeadlineHolder, DeadlineSweep } from './deadline-sweep';

/** What an exchange needs from its listener. */
export interface HttpExchangeContext {
  readonly generation: ProxyGeneration;
  readonly listener: HttpListenerConfig;
  readonly routes: CompiledRouteTable;
  readonly services: ProxyServices;
  /** Whether the listener is draining: HTTP/1.1 responses then close their connection. */
  readonly draining: () => boolean;
  /** The listener's timer for the exchanges' route, per-try and idle timeouts. */
  readonly deadlines: DeadlineSweep;
}

/** Options the listener passes per request. */
export interface ExchangeOrigin {
  readonly http2: boolean;
  readonly secure: boolean;
  /** The request carries `Expect: 100-continue` and no 100 was sent yet. */
  readonly expectContinue: boolean;
}

type Phase = 'routing' | 'forwarding' | 'responding' | 'done';

/** The headers object of an upstream head whose fields go as text (`fieldLines`). */
const NO_HEADERS: OutgoingHeaders = Object.freeze({});

export class HttpExchange
  extends ProxiedRequest
  implements UpstreamCallHandler, DownstreamHandler, HttpRequestFacts, DeadlineHolder
{
  // RouteRequest
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;

  /** The response head as sent, once built (see `responseHeaders`). */
  private sentHeaders: OutgoingHeaders | undefined;
  /**
   * A received HTTP/1.1 head forwarded as text: its parsed fields, from which the head as sent
   * is built only when read (by the access log or the traffic hook), with `receivedOps`
   * applied and `connection: close` when `receivedClose`.
   */
  private received: ResponseHead | undefined;
  private receivedOps: HeaderOperations | undefined;
  private receivedClose = false;

  private phase: Phase = 'routing';
  /** Monotonic start, in ms (performance.now: a double, where hrtime.bigint allocates). */
  private readonly startMonotonicMs = performance.now();
  private route: CompiledRoute | undefined;
  private action: ForwardAction | undefined;
  private upstream: UpstreamCluster | undefined;
  private retryPolicy: RetryPolicy | undefined;
  private verdict: RequestVerdict | undefined;
  private bag: RequestAttributes | undefined;
  // Upstream request
  private upstreamHead: UpstreamRequestHead | undefined;
  private readonly hasBody: boolean;
  private bodyComplete = false;
  private bodyListening = false;
  /** The request body goes to the current attempt (false once the proxy answered itself or the exchange ended). */
  private bodyToUpstream = false;
  /** The retry buffer: body chunks read so far, while they fit bufferLimitBytes; undefined once they do not. */
  private replay: Buffer[] | undefined;
  private replayBytes = 0;
  /** A chunk that arrived while no attempt could take it (should not happen: reading is paused then). */
  private held: Buffer[] = [];
  // Attempts
  private call: UpstreamCall | undefined;
  private callReady = false;
  /** The cluster counts the current attempt as under way (attemptStarted, no outcome yet). */
  private attemptCounted = false;
  private endpoint: Endpoint | undefined;
  private hashKey: string | undefined;
  private retries = 0;
  private holdingRetry = false;
  private staleReplayed = false;
  private continueSent = false;
  private retryOverflow: string | undefined;
  // Deadlines on the listener's sweep (performance.now() ms; Infinity when not running): no
  // timer per request. The waits (fault delay, retry back-off) are rare and keep a timer.
  private routeDeadlineMs = Number.POSITIVE_INFINITY;
  private tryDeadlineMs = Number.POSITIVE_INFINITY;
  /** The stream idle timeout, moved on by every byte either way; Infinity when there is none. */
  private idleDeadlineMs = Number.POSITIVE_INFINITY;
  private waitTimer: NodeJS.Timeout | undefined;
  private idleTimeoutMs = 0;
  // DeadlineHolder links, the sweep's
  sweepPrev: DeadlineHolder | undefined = undefined;
  sweepNext: DeadlineHolder | undefined = undefined;
  sweepLinked = false;
  private holdingRequestSlot = false;

  constructor(
    private readonly context: HttpExchangeContext,
    private readonly downstream: Downstream,
    private readonly origin: ExchangeOrigin,
  ) {
    super(
      context.listener,
      context.generation.config.node,
      context.services.environment.now(),
      downstream,
      origin,
    );
    this.hasBody = downstream.hasBody;
  }

  /** Routes the request and starts answering it. */
  start(): void {
    const { generation, services } = this.context;
    generation.acquire();
    services.counters.httpRequests++;
    this.downstream.attach(this);
    // Plaintext HTTP/1.1 heads announcing a longer body were refused by our server already;
    // HTTP/2 and TLS requests come from Node's servers or our HTTP/2 one, which do not know it.
    if ((this.origin.http2 || this.origin.secure) && this.hasBody && this.announcesLongBody()) {
      this.replyLocally({
        status: 413,
        reason: 'request-too-large',
        message: `content-length over the limit of ${this.context.listener.limits.maxBodyBytes} bytes`,
      });
      return;
    }
    const route = this.context.routes.match(this);
    if (route === undefined) {
      this.replyLocally({
        status: 404,
        reason: 'no-route',
        message: `no route for ${this.method} ${this.authority}${this.urlPath}`,
      });
      return;
    }
    this.route = route;
    this.routeName = route.name;
    const action = route.config.action;
    if (action.kind === 'forward') {
      this.action = action;
      this.clusterName = route.pickCluster(action, services.environment.random);
    }
    const fault = route.config.fault;
    if (fault !== undefined) {
      const decision = decideFault(fault, services.environment.random);
      if (decision.delayMs > 0) {
        this.waitTimer = setTimeout(() => {
          this.waitTimer = undefined;
          if (decision.abortStatus > 0) this.abortByFault(decision.abortStatus);
          else this.check();
        }, decision.delayMs);
        return;
      }
      if (decision.abortStatus > 0) {
        this.abortByFault(decision.abortStatus);
        return;
      }
    }
    this.check();
  }

  /** The request's content-length is over the listener's `requestBodyBytes`. */
  private announcesLongBody(): boolean {
    const limit = this.context.listener.limits.maxBodyBytes;
    if (limit === Number.POSITIVE_INFINITY) return false;
    const length = this.requestHeaders['content-length'];
    return typeof length === 'string' && Number(length) > limit;
  }

  private abortByFault(status: number): void {
    this.replyLocally({
      status,
      reason: 'fault-abort',
      message: `fault injected by route ${this.routeName}`,
    });
  }

  /** Asks the hook, when there is one that checks; then acts. */
  private check(): void {
    if (this.phase === 'done') return;
    const hook = this.context.services.hook;
    if (hook.checkRequest === undefined) {
      this.act();
      return;
    }
    let verdict: RequestVerdict | Promise<RequestVerdict>;
    try {
      this.bag = new RequestAttributes(this);
      verdict = hook.checkRequest(this.bag);
    } catch (error) {
      this.context.services.logger.error(
        `traffic hook checkRequest threw: ${(error as Error).stack ?? String(error)}`,
      );
      this.act();
      return;
    }
    if (verdict instanceof Promise) {
      verdict.then(
        (v) => this.onVerdict(v),
        (error: unknown) => {
          this.context.services.logger.error(
            `traffic hook checkRequest failed: ${(error as Error)?.stack ?? String(error)}`,
          );
          this.replyLocally({ status: 500, reason: 'internal-error', message: 'the policy check failed' });
        },
      );
    } else {
      this.onVerdict(verdict);
    }
  }

  private onVerdict(verdict: RequestVerdict): void {
    if (this.phase === 'done') return;
    if (!verdict.allowed) {
      this.replyLocally({
        status: verdict.status,
        reason: 'denied',
        message: verdict.message,
        headers: verdict.headers,
      });
      return;
    }
    this.verdict = verdict;
    this.act();
  }

  /** The route's action. */
  private act(): void {
    const action = this.route!.config.action;
    switch (action.kind) {
      case 'directResponse': {
        const headers: OutgoingHeaders = { ...action.headers };
        if (action.body !== '' && headers['content-type'] === undefined)
          headers['content-type'] = 'text/plain; charset=utf-8';
        this.respondDirectly(action.status, headers, action.body);
        return;
      }
      case 'redirect':
        this.respondDirectly(action.status, { location: this.redirectLocation(action) }, '');
        return;
      case 'forward':
        this.forward(action);
        return;
    }
  }

  private redirectLocation(r: RedirectAction): string {
    const scheme = r.scheme ?? (this.secure ? 'https' : 'http');
    let port: string | undefined;
    if (r.port !== undefined) port = String(r.port);
    else if (r.host === undefined && r.scheme === undefined) port = portOf(this.authority);
    if ((scheme === 'http' && port === '80') || (scheme === 'https' && port === '443')) port = undefined;
    const host = r.host ?? this.host;
    const path =
      r.path ??
      (r.prefixRewrite !== undefined
        ? r.prefixRewrite + this.urlPath.slice(this.route!.matchedPrefixLength)
        : this.urlPath);
    const query = r.stripQuery || this.query === undefined ? '' : `?${this.query}`;
    return `${scheme}://${host}${port === undefined ? '' : `:${port}`}${path}${query}`;
  }

  private respondDirectly(status: number, headers: OutgoingHeaders, body: string): void {
    if (this.route!.config.responseHeaders !== undefined)
      applyHeaderOperations(headers, this.route!.config.responseHeaders);
    if (this.verdict?.allowed === true && this.verdict.responseHeaders !== undefined)
      applyHeaderOperations(headers, this.verdict.responseHeaders);
    this.phase = 'responding';
    const downstream = this.downstream;
    if (downstream.destroyed) return;
    if (!this.origin.http2 && this.context.draining()) headers['connection'] = 'close';
    headers['content-length'] = String(Buffer.byteLength(body));
    this.status = status;
    this.responseHeaders = headers;
    this.responseBytes = this.method === 'HEAD' ? 0 : Buffer.byteLength(body);
    this.discardRequestBody();
    try {
      downstream.writeHead(status, headers, false);
    } catch {
      // A field this protocol refuses (a malformed value from the configuration or a policy
      // directive): the answer cannot go as written, so the stream or connection is cut.
      downstream.destroy();
      return;
    }
    downstream.end(body);
  }

  // ---- forwarding ---------------------------------------------------------------------

  private forward(action: ForwardAction): void {
    const upstream = this.context.generation.clusters.get(this.clusterName!)!;
    this.upstream = upstream;
    const cluster = upstream.cluster;
    if (!cluster.tryAcquire('requests')) {
      this.replyOverflow('maxRequests');
      return;
    }
    this.holdingRequestSlot = true;
    upstream.budget.activeRequests++;
    this.phase = 'forwarding';
    this.retryPolicy = action.retries;
    if (
      this.retryPolicy !== undefined &&
      this.retryPolicy.attempts > 0 &&
      this.hasBody &&
      this.retryPolicy.bufferLimitBytes > 0
    ) {
      this.replay = [];
    }
    const route = this.route!;
    const path =
      action.prefixRewrite === undefined
        ? this.url
        : action.prefixRewrite + this.url.slice(route.matchedPrefixLength);
    const verdictOps = this.verdict?.allowed === true ? this.verdict.requestHeaders : undefined;
    const receivedHead = this.downstream.receivedHead;
    if (
      receivedHead !== undefined &&
      upstream.config.protocol !== 'http2' &&
      route.config.requestHeaders === undefined &&
      verdictOps === undefined
    ) {
      // HTTP/1.1 both ways and no header operation: the received lines go on as text.
      this.upstreamHead = {
        method: this.method,
        path,
        authority: action.hostRewrite ?? this.authority,
        headers: NO_HEADERS,
        hasBody: this.hasBody,
        fieldLines: upstreamFieldLines(receivedHead, this.headers, this, this.ids),
      };
    } else {
      const headers = upstreamRequestHeaders(this.headers, this, this.ids, false);
      if (route.config.requestHeaders !== undefined)
        applyHeaderOperations(headers, route.config.requestHeaders);
      if (verdictOps !== undefined) applyHeaderOperations(headers, verdictOps);
      let authority = action.hostRewrite ?? this.authority;
      const hostHeader = headers['host'];
      if (typeof hostHeader === 'string') {
        // A header operation set the host: it wins, as the last word on the request.
        authority = hostHeader;
        delete headers['host'];
      }
      this.upstreamHead = { method: this.method, path, authority, headers, hasBody: this.hasBody };
    }
    const idleTimeoutMs = action.idleTimeoutMs ?? this.context.listener.streamIdleTimeoutMs;
    if (idleTimeoutMs > 0) {
      this.idleTimeoutMs = idleTimeoutMs;
      const deadlines = this.context.deadlines;
      this.idleDeadlineMs = deadlines.now() + idleTimeoutMs;
      deadlines.watch(this, this.idleDeadlineMs);
    }
    if (this.hasBody) {
      this.bodyListening = true;
      this.bodyToUpstream = true;
      this.downstream.readBody();
    } else {
      this.bodyComplete = true;
    }
    if (this.bodyComplete) this.startRouteTimer();
    this.startAttempt();
  }

  private startRouteTimer(): void {
    const timeoutMs = this.action!.timeoutMs;
    if (timeoutMs > 0 && this.routeDeadlineMs === Number.POSITIVE_INFINITY && this.phase === 'forwarding') {
      const deadlines = this.context.deadlines;
      this.routeDeadlineMs = deadlines.now() + timeoutMs;
      deadlines.watch(this, this.routeDeadlineMs);
    }
  }

  private startTryTimer(): void {
    const ms = this.retryPolicy?.perTryTimeoutMs ?? 0;
    if (
      ms > 0 &&
      this.tryDeadlineMs === Number.POSITIVE_INFINITY &&
      this.call !== undefined &&
      this.bodyComplete
    ) {
      const deadlines = this.context.deadlines;
      this.tryDeadlineMs = deadlines.now() + ms;
      deadlines.watch(this, this.tryDeadlineMs);
    }
  }

  /** The idle timeout starts again: a byte went one way or the other. */
  private touch(): void {
    if (this.idleTimeoutMs > 0 && this.idleDeadlineMs !== Number.POSITIVE_INFINITY)
      this.idleDeadlineMs = this.context.deadlines.now() + this.idleTimeoutMs;
  }

  /** DeadlineHolder: the earliest of the running deadlines. */
  nextDeadlineMs(): number {
    return Math.min(this.routeDeadlineMs, this.tryDeadlineMs, this.idleDeadlineMs);
  }

  /** DeadlineHolder: a deadline is due. Each fires once; in the order a timer per deadline would. */
  onDeadline(nowMs: number): void {
    if (this.idleDeadlineMs <= nowMs) {
      this.idleDeadlineMs = Number.POSITIVE_INFINITY;
      this.onIdleTimeout();
    }
    if (this.tryDeadlineMs <= nowMs) {
      this.tryDeadlineMs = Number.POSITIVE_INFINITY;
      this.onTryTimeout();
    }
    if (this.routeDeadlineMs <= nowMs) {
      this.routeDeadlineMs = Number.POSITIVE_INFINITY;
      this.onRouteTimeout();
    }
  }

  private startAttempt(): void {
    if (this.phase !== 'forwarding') return;
    const upstream = this.upstream!;
    const cluster = upstream.cluster;
    // Once per request: a retry hashes to the same place, and avoids the endpoint that failed.
    if (this.attempts === 0) {
      this.hashKey = cluster.hashKey(this); // a HashSource: headers, sourceIp
    }
    const endpoint = cluster.pick({ hashKey: this.hashKey, avoid: this.endpoint });
    if (endpoint === undefined) {
      this.releaseRetry();
      this.replyLocally({
        status: 503,
        reason: 'no-healthy-upstream',
        message: `no healthy endpoint in cluster ${upstream.name}`,
      });
      return;
    }
    this.endpoint = endpoint;
    this.endpointId = endpoint.id;
    this.endpointHost = endpoint.host;
    this.endpointPort = endpoint.port;
    this.attempts++;
    const pool = upstream.poolFor(endpoint);
    // Calls do not change the head: every attempt sends the same one.
    const attemptHead = this.upstreamHead!;
    const call =
      upstream.config.protocol === 'http2'
        ? new Http2Call(pool as Http2SessionPool, attemptHead, this, 'http')
        : new Http1Call(pool as Http1ConnectionPool, attemptHead, this);
    this.call = call;
    this.callReady = false;
    this.startTryTimer();
    call.start();
    // A breaker that overflows answers synchronously, before any attempt on the endpoint.
    if (this.call === call) {
      cluster.attemptStarted(endpoint);
      this.attemptCounted = true;
    }
  }

  onReady(call: UpstreamCall): void {
    if (call !== this.call) return;
    this.callReady = true;
    if (!this.hasBody) return;
    let writable = true;
    if (this.attempts > 1 && this.replay !== undefined) {
      // Held chunks are in the retry buffer too.
      this.held = [];
      for (const chunk of this.replay) writable = call.write(chunk) && writable;
    }
    for (const chunk of this.held.splice(0)) writable = call.write(chunk) && writable;
    if (this.bodyComplete) call.end();
    else if (writable) this.downstream.resumeBody();
  }

  onRequestData(chunk: Buffer): void {
    this.requestBytes += chunk.length;
    this.touch();
    if (!this.bodyToUpstream) return; // answered already: the rest is read and dropped
    if (this.requestBytes > this.context.listener.limits.maxBodyBytes) {
      this.refuseLongBody();
      return;
    }
    if (this.replay !== undefined) {
      if (this.replayBytes + chunk.length <= this.retryPolicy!.bufferLimitBytes) {
        this.replay.push(chunk);
        this.replayBytes += chunk.length;
      } else {
        // Too long to keep: this attempt is the last one.
        this.replay = undefined;
      }
    }
    const call = this.call;
    if (call !== undefined && this.callReady) {
      if (!call.write(chunk)) this.downstream.pauseBody();
    } else {
      this.held.push(chunk);
      this.downstream.pauseBody();
    }
  }

  onRequestEnd(): void {
    this.bodyComplete = true;
    if (!this.bodyToUpstream) return;
    if (this.call !== undefined && this.callReady) this.call.end();
    this.startRouteTimer();
    this.startTryTimer();
  }

  onDrain(call: UpstreamCall): void {
    // Also while the response streams: a request body may still be on its way (full duplex).
    if (call === this.call && !this.bodyComplete && this.bodyToUpstream) this.downstream.resumeBody();
  }

  onContinue(call: UpstreamCall): void {
    if (call !== this.call || !this.origin.expectContinue || this.continueSent) return;
    this.continueSent = true;
    this.downstream.writeContinue();
  }

  /** Whether the request may go again: it is replayable, the policy wants it, the budget and breaker allow. */
  private mayRetry(outcome: RetryableOutcome): boolean {
    const policy = this.retryPolicy;
    if (policy === undefined || this.retries >= policy.attempts || !this.replayable()) return false;
    if (!policy.retryNonIdempotent && !isIdempotent(this.method)) return false;
    if (!isRetriable(policy, outcome)) return false;
    const upstream = this.upstream!;
    if (!withinRetryBudget(policy, upstream.budget)) {
      this.retryOverflow = 'retryBudget';
      return false;
    }
    if (!upstream.cluster.tryAcquire('retries')) {
      this.retryOverflow = 'maxRetries';
      return false;
    }
    return true;
  }

  /** Every body byte read so far can be sent again. */
  private replayable(): boolean {
    return this.requestBytes === 0 || this.replay !== undefined;
  }

  /** Schedules the next attempt after a back-off; the retry slot was taken by mayRetry. */
  private retry(): void {
    this.retries++;
    this.holdingRetry = true;
    this.upstream!.budget.activeRetries++;
    this.context.services.counters.retries++;
    this.detachCall();
    const delay = backoffMs(this.retryPolicy!, this.retries, this.context.services.environment.random);
    this.waitTimer = setTimeout(() => {
      this.waitTimer = undefined;
      this.startAttempt();
    }, delay);
  }

  private detachCall(): void {
    this.tryDeadlineMs = Number.POSITIVE_INFINITY;
    this.call = undefined;
    this.callReady = false;
    if (this.bodyListening && !this.bodyComplete) this.downstream.pauseBody();
  }

  /** The current attempt ended so: the cluster hears it once (outlier detection, least-request). */
  private attemptEnded(outcome: AttemptOutcome): void {
    if (!this.attemptCounted) return;
    this.attemptCounted = false;
    this.upstream!.cluster.attemptFinished(this.endpoint!, outcome);
  }

  /** The current attempt was given up before an outcome: least-request stops counting it. */
  private abandonCountedAttempt(): void {
    if (!this.attemptCounted) return;
    this.attemptCounted = false;
    this.upstream!.cluster.attemptAbandoned(this.endpoint!);
  }

  /** A retry attempt ended (answered or failed): its breaker slot and budget share come back. */
  private releaseRetry(): void {
    if (!this.holdingRetry) return;
    this.holdingRetry = false;
    this.upstream!.budget.activeRetries--;
    this.upstream!.cluster.release('retries');
  }

  /** The client's address in plain form: what RING_HASH hashes on (HashSource, read only then). */
  get sourceIp(): string {
    return plainAddress(this.remoteAddress);
  }

  /** The response head as sent downstream (what the access log and the traffic hook see). */
  get responseHeaders(): OutgoingHeaders | undefined {
    const received = this.received;
    if (this.sentHeaders === undefined && received !== undefined) {
      const out = downstreamResponseHeaders(received.headers);
      if (this.receivedOps !== undefined) applyHeaderOperations(out, this.receivedOps);
      if (this.receivedClose) out['connection'] = 'close';
      this.sentHeaders = out;
    }
    return this.sentHeaders;
  }

  set responseHeaders(headers: OutgoingHeaders | undefined) {
    this.sentHeaders = headers;
    this.received = undefined;
  }

  override get receivedRequestHead(): string | undefined {
    return this.downstream.receivedHead;
  }

  override get forwardedResponseHead(): string | undefined {
    return this.received?.text;
  }

  override get forwardedResponseOps(): HeaderOperations | undefined {
    return this.received === undefined ? undefined : this.receivedOps;
  }

  override get forwardedResponseClose(): boolean {
    return this.received !== undefined && this.receivedClose;
  }

  onResponse(
    call: UpstreamCall,
    status: number,
    given: IncomingHeaders | undefined,
    endsStream: boolean,
    received?: ResponseHead,
  ): void {
    if (call !== this.call || this.phase !== 'forwarding') return;
    this.touch();
    this.tryDeadlineMs = Number.POSITIVE_INFINITY;
    const outcome = { kind: 'response', status } as const;
    this.attemptEnded(outcome);
    this.releaseRetry();
    if (this.mayRetry(outcome)) {
      call.abort();
      this.retry();
      return;
    }
    this.routeDeadlineMs = Number.POSITIVE_INFINITY;
    this.phase = 'responding';
    // No retry from here on: the replay buffer is not needed any more.
    this.replay = undefined;
    const route = this.route!.config;
    const downstream = this.downstream;
    if (
      received !== undefined &&
      downstream.writeReceivedHead !== undefined &&
      this.retryOverflow === undefined &&
      !(this.verdict?.allowed === true && this.verdict.responseHeaders !== undefined)
    ) {
      this.forwardReceivedHead(call, status, received, route.responseHeaders);
      return;
    }
    const headers = given ?? received!.headers;
    const out = downstreamResponseHeaders(headers);
    if (route.responseHeaders !== undefined) applyHeaderOperations(out, route.responseHeaders);
    if (this.verdict?.allowed === true && this.verdict.responseHeaders !== undefined)
      applyHeaderOperations(out, this.verdict.responseHeaders);
    if (this.retryOverflow !== undefined) out[OVERFLOW_HEADER] = this.retryOverflow;
    if (!this.origin.http2 && this.context.draining()) out['connection'] = 'close';
    const grpcStatus = headers['grpc-status'];
    if (typeof grpcStatus === 'string') {
      this.grpcStatus = grpcStatus;
      this.grpcMessage = headers['grpc-message'] as string | undefined;
    }
    this.status = status;
    this.responseHeaders = out;
    if (downstream.destroyed) return;
    if (endsStream && this.origin.http2) {
      // A trailers-only answer (gRPC errors): forward it as one, the stream ending with the head.
      downstream.respondTrailersOnly({ ...out, ':status': String(status) });
      this.call = undefined;
      this.finish();
      return;
    }
    try {
      // An HTTP/1.1 upstream's response has trailers only when chunked.
      downstream.writeHead(status, out, received === undefined || received.framing === CHUNKED);
    } catch (error) {
      // A header Node refuses for this protocol (say, a malformed value from upstream).
      this.headNotForwardable(call, error as Error);
      return;
    }
    // A streamed response's head goes out now (a client may act on it before any body
    // byte); one with a length goes with its first bytes, in one packet.
    if (
      this.origin.http2 ||
      out['content-length'] === undefined ||
      status === 204 ||
      status === 304 ||
      this.method === 'HEAD'
    )
      downstream.flushHead();
  }

  /**
   * The HTTP/1.1 fast path: the received head goes on as text, minus its hop-by-hop lines and
   * with the route's header operations applied to it; no header object is built unless the
   * access log or the traffic hook reads `responseHeaders`.
   */
  private forwardReceivedHead(
    call: UpstreamCall,
    status: number,
    received: ResponseHead,
    ops: HeaderOperations | undefined,
  ): void {
    const close = this.context.draining();
    const grpcStatus = received.grpcStatus;
    if (grpcStatus !== undefined) {
      this.grpcStatus = grpcStatus;
      this.grpcMessage = received.grpcMessage;
    }
    this.status = status;
    this.sentHeaders = undefined;
    this.received = received;
    this.receivedOps = ops;
    this.receivedClose = close;
    const downstream = this.downstream;
    if (downstream.destroyed) return;
    try {
      downstream.writeReceivedHead!(status, received.text, connectionTokens(received.connection), ops, close);
    } catch (error) {
      this.headNotForwardable(call, error as Error);
      return;
    }
    // As in onResponse: a streamed response's head goes out now.
    if (!received.hasContentLength || status === 204 || status === 304 || this.method === 'HEAD')
      downstream.flushHead();
  }

  /** The response head could not be written downstream: the client gets a 502 instead. */
  private headNotForwardable(call: UpstreamCall, error: Error): void {
    this.context.services.logger.error(
      `response head from ${this.endpointId} not forwardable: ${error.message}`,
    );
    call.abort();
    this.phase = 'forwarding';
    this.status = 0;
    this.responseHeaders = undefined;
    this.replyLocally({
      status: 502,
      reason: 'upstream-reset',
      message: 'the upstream response head could not be forwarded',
    });
  }

  onData(call: UpstreamCall, chunk: Buffer): void {
    if (call !== this.call || this.phase !== 'responding') return;
    this.responseBytes += chunk.length;
    this.touch();
    const downstream = this.downstream;
    // An HTTP/1.1 call's chunk is in the connection's read buffer, reused for its next read
    // unless something still points into it. A downstream that cannot tell (Node's HTTP/2 and
    // TLS servers, which queue what they are given) gets a copy: small bodies cost a small copy
    // rather than a new read buffer per read.
    const bytes =
      downstream.holdsWrittenBytes === undefined && call instanceof Http1Call ? Buffer.from(chunk) : chunk;
    if (!downstream.write(bytes)) call.pause();
  }

  holdsResponseBytes(): boolean {
    // Only asked by HTTP/1.1 calls; without holdsWrittenBytes, onData wrote a copy.
    const downstream = this.downstream;
    return downstream.holdsWrittenBytes !== undefined && downstream.holdsWrittenBytes();
  }

  onResponseDrain(): void {
    // The client took bytes: the stream is not idle, only slower than the upstream.
    this.touch();
    this.call?.resume();
  }

  onEnd(call: UpstreamCall, trailers: IncomingHeaders | undefined): void {
    if (call !== this.call || this.phase !== 'responding') return;
    let forwarded: OutgoingHeaders | undefined;
    if (trailers !== undefined) {
      const grpcStatus = trailers['grpc-status'];
      if (typeof grpcStatus === 'string') {
        this.grpcStatus = grpcStatus;
        this.grpcMessage = trailers['grpc-message'] as string | undefined;
      }
      forwarded = forwardedTrailers(trailers);
    }
    this.call = undefined;
    // The upstream is done: any request body still arriving has nowhere to go.
    this.bodyToUpstream = false;
    if (this.bodyListening && !this.bodyComplete) this.downstream.resumeBody();
    if (!this.downstream.destroyed) this.downstream.end(undefined, forwarded);
  }

  onFailure(call: UpstreamCall, failure: CallFailure): void {
    if (call !== this.call) return;
    if (failure.kind === 'overflow') {
      this.detachCall();
      this.releaseRetry();
      this.replyOverflow(failure.breaker);
      return;
    }
    const outcome: RetryableOutcome =
      failure.kind === 'connectFailure' ? { kind: 'connectFailure' } : { kind: 'reset' };
    if (this.phase === 'responding') {
      // The response started: the only honest thing left is to cut the downstream stream too.
      this.upstream!.cluster.responseFailed(this.endpoint!, outcome);
      this.call = undefined;
      this.cut('upstream-reset');
      return;
    }
    if (this.phase !== 'forwarding') return;
    const stale = failure.kind === 'reset' && failure.stale && !this.staleReplayed && this.replayable();
    // A reused connection the server closed as we sent (an idle close, a GOAWAY crossing the
    // request): not a failure of the endpoint, which outlier detection must not count.
    if (stale) this.abandonCountedAttempt();
    else this.attemptEnded(outcome);
    this.releaseRetry();
    if (stale) {
      this.staleReplayed = true;
      this.detachCall();
      this.startAttempt();
      return;
    }
    if (this.mayRetry(outcome)) {
      this.retry();
      return;
    }
    this.detachCall();
    const connect = failure.kind === 'connectFailure';
    this.replyLocally({
      status: 502,
      reason: connect ? 'upstream-connect-failure' : 'upstream-reset',
      message: `${connect ? 'upstream connect error' : 'upstream reset'} (${this.endpointId}): ${failure.detail}`,
    });
  }

  private onTryTimeout(): void {
    if (this.phase !== 'forwarding' || this.call === undefined) return;
    const outcome = { kind: 'timeout' } as const;
    this.call.abort();
    this.attemptEnded(outcome);
    this.releaseRetry();
    if (this.mayRetry(outcome)) {
      this.retry();
      return;
    }
    this.detachCall();
    this.replyLocally({
      status: 504,
      reason: 'upstream-per-try-timeout',
      message: `upstream ${this.endpointId} did not answer within ${this.retryPolicy!.perTryTimeoutMs} ms`,
    });
  }

  /**
   * The request body went past the listener's `requestBodyBytes`: 413 while the upstream has
   * not answered, a cut once its answer is under way. The attempt is given up, not failed.
   */
  private refuseLongBody(): void {
    if (this.phase === 'responding') {
      this.cut('request-too-large');
      return;
    }
    clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    if (this.call !== undefined) this.call.abort();
    this.abandonCountedAttempt();
    this.detachCall();
    this.releaseRetry();
    this.replyLocally({
      status: 413,
      reason: 'request-too-large',
      message: `request body over the limit of ${this.context.listener.limits.maxBodyBytes} bytes`,
    });
  }

  /** A timeout ends the attempt in flight (counted as a timeout) and any wait before the next. */
  private abandonAttempt(): void {
    clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    if (this.call !== undefined) {
      this.call.abort();
      this.attemptEnded({ kind: 'timeout' });
    }
    this.detachCall();
    this.releaseRetry();
  }

  private onRouteTimeout(): void {
    if (this.phase !== 'forwarding') return;
    this.abandonAttempt();
    this.replyLocally({
      status: 504,
      reason: 'upstream-timeout',
      message: `upstream request timeout after ${this.action!.timeoutMs} ms (cluster ${this.clusterName})`,
    });
  }

  /** No byte either way for the idle timeout: 408 before the response head, a cut after it. */
  private onIdleTimeout(): void {
    if (this.phase === 'responding' && this.status !== 0 && this.reason === undefined) {
      this.cut('stream-idle-timeout');
      return;
    }
    if (this.phase !== 'forwarding') return;
    this.abandonAttempt();
    this.replyLocally({
      status: 408,
      reason: 'stream-idle-timeout',
      message: `no bytes in either direction for ${this.idleTimeoutMs} ms (stream idle timeout)`,
    });
  }

  private replyOverflow(breaker: string): void {
    this.replyLocally({
      status: 503,
      reason: 'overflow',
      message: `circuit breaker ${breaker} of cluster ${this.clusterName} is open`,
      headers: { [OVERFLOW_HEADER]: breaker },
    });
  }

  // ---- endings ----------------------------------------------------------------------------

  /** Answers from the proxy itself (when no response has started). */
  private replyLocally(reply: LocalReply): void {
    if (this.phase === 'done' || this.phase === 'responding') return;
    this.phase = 'responding';
    this.reason = reply.reason;
    if (reply.reason !== undefined) {
      const reasons = this.context.services.counters.reasons;
      reasons[reply.reason] = (reasons[reply.reason] ?? 0) + 1;
    }
    this.discardRequestBody();
    const grpc = this.protocol === 'grpc';
    const sent = sendLocalReply(this.downstream, reply, grpc, !this.origin.http2 && this.context.draining());
    if (sent !== undefined) {
      this.status = grpc ? 200 : reply.status;
      this.responseHeaders = sent;
      if (grpc) {
        this.grpcStatus = sent['grpc-status'] as string;
        this.grpcMessage = reply.message;
      } else {
        this.responseBytes = this.method === 'HEAD' ? 0 : Buffer.byteLength(reply.message) + 1;
      }
    }
    // HTTP/2 streams answered by respond() end without the compat response finishing.
    if (this.origin.http2 && grpc) this.finish();
  }

  /** Cuts the downstream exchange after its response started (the upstream failed mid-body). */
  private cut(reason: ProxyReason): void {
    this.reason = reason;
    const reasons = this.context.services.counters.reasons;
    reasons[reason] = (reasons[reason] ?? 0) + 1;
    this.downstream.destroy();
    this.finish();
  }

  /** No more body is wanted: let it flow and drop it, so an HTTP/1.1 connection stays usable. */
  private discardRequestBody(): void {
    this.bodyToUpstream = false;
    this.replay = undefined;
    this.held = [];
    this.downstream.resumeBody();
  }

  onRefusedByServer(status: number, reason: ProxyReason): void {
    if (this.phase === 'done') return;
    this.status = status;
    this.reason = reason;
    const reasons = this.context.services.counters.reasons;
    reasons[reason] = (reasons[reason] ?? 0) + 1;
    // finish() (at the close that follows) aborts the attempt and gives it up uncharged.
  }

  onDownstreamClose(): void {
    if (this.phase === 'done') return;
    if (!this.downstream.finished && this.reason === undefined) {
      this.reason = 'downstream-disconnect';
      const reasons = this.context.services.counters.reasons;
      reasons['downstream-disconnect'] = (reasons['downstream-disconnect'] ?? 0) + 1;
      this.status = this.downstream.headersSent ? this.status : 0;
    }
    this.finish();
  }

  /** Releases everything the exchange holds and records it. Once. */
  private finish(): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.routeDeadlineMs = Number.POSITIVE_INFINITY;
    this.tryDeadlineMs = Number.POSITIVE_INFINITY;
    this.idleDeadlineMs = Number.POSITIVE_INFINITY;
    this.context.deadlines.unwatch(this);
    clearTimeout(this.waitTimer);
    if (this.call !== undefined) {
      this.call.abort();
      this.call = undefined;
    }
    // Given up without an outcome (the client left): not the endpoint's doing.
    this.abandonCountedAttempt();
    this.releaseRetry();
    if (this.holdingRequestSlot) {
      this.holdingRequestSlot = false;
      this.upstream!.budget.activeRequests--;
      this.upstream!.cluster.release('requests');
    }
    if (this.bodyListening && !this.bodyComplete) this.downstream.resumeBody();
    this.durationMs = performance.now() - this.startMonotonicMs;
    const { generation, services } = this.context;
    generation.accessLog?.logRequest(this);
    const hook = services.hook;
    if (hook.requestCompleted !== undefined) {
      try {
        hook.requestCompleted(this, this.bag);
      } catch (error) {
        services.logger.error(
          `traffic hook requestCompleted threw: ${(error as Error).stack ?? String(error)}`,
        );
      }
    }
    this.bag = undefined;
    generation.release();
  }
}

function portOf(authority: string): string | undefined {
  const m = /:(\d+)$/.exec(authority);
  return m === null ? undefined : m[1];
}
