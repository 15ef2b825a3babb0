/**
 * The proxy configuration after validation: defaults applied, regular expressions compiled,
 * cross-references (route → cluster, listener → route table) checked, everything frozen.
 * The YAML form is documented in proxy/README.md; config-parser.ts produces these.
 */
import type { ClusterConfig } from './cluster';

/** The whole configuration of one proxy process. */
export interface ProxyConfig {
  /** The file it was read from, as given (for messages and the admin view). */
  readonly file: string;
  /** Who this proxy speaks for: the workload its `source.*` / `destination.*` attributes describe. */
  readonly node: NodeIdentity;
  readonly listeners: readonly ListenerConfig[];
  readonly clusters: readonly ClusterConfig[];
  readonly accessLog: AccessLogConfig | undefined;
  /** How long connections of a retired listener may finish their requests, in ms. Default 30000. */
  readonly drainTimeoutMs: number;
  /**
   * The `policy` section, kept as written (deeply frozen) and not interpreted yet: the
   * policy client (Check/Report, issue 5) defines and validates it.
   */
  readonly policy: Readonly<Record<string, unknown>> | undefined;
}

/** The workload identity; every field is optional. */
export interface NodeIdentity {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly serviceAccount?: string;
  readonly labels: Readonly<Record<string, string>>;
}

export type ListenerRole = 'inbound' | 'outbound';

interface ListenerBase {
  readonly name: string;
  /**
   * `inbound`: traffic to the workload (it is the destination); `outbound`: traffic from it
   * (it is the source). Decides `context.reporter.kind` and which side `node` describes.
   */
  readonly role: ListenerRole;
  /** IP address or host name to bind. */
  readonly address: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
}

export interface HttpListenerConfig extends ListenerBase {
  readonly protocol: 'http';
  /** With TLS, HTTP/2 and HTTP/1.1 are offered by ALPN; without, h2c is told apart by its preface. */
  readonly tls: TlsConfig | undefined;
  /** The route table this listener serves: its own, a named one, or the top-level one. */
  readonly routeTable: RouteTable;
  /**
   * Stream idle timeout of forwarded requests, in ms; 0 means none (the default). A route's
   * `idleTimeout` overrides it. See ForwardAction.idleTimeoutMs.
   */
  readonly streamIdleTimeoutMs: number;
  /** What one request may bring: the YAML's `limits`, defaults applied. */
  readonly limits: RequestLimits;
}

/**
 * What one request may bring, on every protocol of a listener. Defaults: 64 KiB of head,
 * 200 fields, no body limit (bodies stream; nothing holds them whole).
 */
export interface RequestLimits {
  /**
   * The request head: on HTTP/1.1 its bytes, the final CRLFCRLF included; on HTTP/2 the
   * header list as RFC 9113 counts it (each field's name and value plus 32). Over it: 431.
   */
  readonly maxHeadBytes: number;
  /** Header fields in a request; more: 431. */
  readonly maxHeaderCount: number;
  /** Body bytes of a request; more: 413 (or the stream cut once the answer has begun). */
  readonly maxBodyBytes: number;
}

/** The largest `requestHeadBytes` a listener may set (Envoy's cap on its head limit is 8 MiB). */
export const MAX_REQUEST_HEAD_BYTES = 1024 * 1024;
/** The most `requestHeaders` a listener may set. */
export const MAX_REQUEST_HEADERS = 1000;

export const DEFAULT_REQUEST_LIMITS: RequestLimits = Object.freeze({
  maxHeadBytes: 64 * 1024,
  maxHeaderCount: 200,
  maxBodyBytes: Number.POSITIVE_INFINITY,
});

export interface TcpListenerConfig extends ListenerBase {
  readonly protocol: 'tcp';
  /** Every connection is proxied to an endpoint of this cluster. */
  readonly cluster: string;
  /**
   * A connection with no byte in either direction for this long is closed, both sides
   * (reason `stream-idle-timeout`); 0 means never. Default one hour, as Envoy's TCP proxy.
   */
  readonly idleTimeoutMs: number;
}

export type ListenerConfig = HttpListenerConfig | TcpListenerConfig;

export interface TlsConfig {
  /** PEM files, resolved against the configuration file's directory; read when the listener starts. */
  readonly certFile: string;
  readonly keyFile: string;
}

export interface AccessLogConfig {
  /** `stdout`, or a file path (appended to), resolved against the configuration file's directory. */
  readonly path: string;
}

/** Routes in the order they are tried; the first that matches wins. */
export interface RouteTable {
  /** `default` for the top-level `routes`, the key for `routeTables`, `listeners[i]` for inline ones. */
  readonly name: string;
  readonly routes: readonly RouteConfig[];
}

export interface RouteConfig {
  /** As configured, or `route-N` (its position, from 0). */
  readonly name: string;
  readonly match: RouteMatch;
  readonly action: RouteAction;
  readonly requestHeaders: HeaderOperations | undefined;
  readonly responseHeaders: HeaderOperations | undefined;
  readonly fault: FaultConfig | undefined;
}

/** How a string is matched; regular expressions must match the whole value (RE2 syntax). */
export type StringMatch =
  | { readonly exact: string }
  | { readonly prefix: string }
  | { readonly suffix: string }
  | { readonly regex: RegExp };

/** Conditions that must all hold; an absent one always holds. */
export interface RouteMatch {
  /** Compared with the request's host, lower-cased and without the port. */
  readonly authority: StringMatch | undefined;
  /** Compared with the path without the query string. */
  readonly path: StringMatch | undefined;
  /** Upper-case method names; the request's method must be one of them. */
  readonly methods: readonly string[] | undefined;
  readonly headers: readonly ValueMatch[];
  readonly query: readonly ValueMatch[];
}

/** A condition on a named header (lower-case name) or query parameter. */
export type ValueMatch =
  | { readonly name: string; readonly kind: 'present' }
  | { readonly name: string; readonly kind: 'absent' }
  | { readonly name: string; readonly kind: 'value'; readonly match: StringMatch };

export type RouteAction = ForwardAction | RedirectAction | DirectResponseAction;

export interface WeightedDestination {
  readonly cluster: string;
  /** Relative share, a whole number ≥ 0. */
  readonly weight: number;
}

export interface ForwardAction {
  readonly kind: 'forward';
  /** One or more; a request goes to one of them with probability weight / total. */
  readonly destinations: readonly WeightedDestination[];
  /**
   * Time from the end of the downstream request until the upstream's response headers,
   * across all attempts, in ms; 0 means none. Default 15000.
   */
  readonly timeoutMs: number;
  /**
   * Stream idle timeout, in ms: once forwarding starts, the longest time without a byte in
   * either direction (request body, response head or body). Before the response head it is
   * answered 408 `stream-idle-timeout`, after it the downstream stream is cut. 0 means none;
   * undefined means the listener's `streamIdleTimeout`.
   */
  readonly idleTimeoutMs: number | undefined;
  readonly retries: RetryPolicy | undefined;
  /** Replaces the matched path prefix (the route must match `path: {prefix}`). */
  readonly prefixRewrite: string | undefined;
  /** Replaces the Host / :authority sent upstream. */
  readonly hostRewrite: string | undefined;
}

/** Which failures of an attempt are retried. */
export type RetryOn = '5xx' | 'gateway-error' | 'connect-failure' | 'reset';

export interface RetryPolicy {
  /** Retries after the first attempt (so at most attempts + 1 tries). */
  readonly attempts: number;
  /** Time from an attempt's start (or the end of the request, if later) to its response headers, in ms; 0 means none. */
  readonly perTryTimeoutMs: number;
  readonly retryOn: ReadonlySet<RetryOn>;
  /** Status codes retried as well. */
  readonly retriableStatusCodes: ReadonlySet<number>;
  /** Back-off before retry n: uniformly random in [0, min(base · 2^(n-1), max)] ms. Defaults 25 and 250. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Retry methods that are not idempotent (POST, PATCH, …) too. Default false. */
  readonly retryNonIdempotent: boolean;
  /** Active retries of a cluster may be at most this share (%) of its active requests … Default 20. */
  readonly budgetPercent: number;
  /** … or this many, whichever is larger. Default 3. */
  readonly minRetryConcurrency: number;
  /** Request bodies up to this size are kept for replay; a longer body is not retried. Default 65536. */
  readonly bufferLimitBytes: number;
}

export interface RedirectAction {
  readonly kind: 'redirect';
  readonly scheme: string | undefined;
  readonly host: string | undefined;
  readonly port: number | undefined;
  /** Replaces the whole path. */
  readonly path: string | undefined;
  /** Replaces the matched prefix (the route must match `path: {prefix}`). */
  readonly prefixRewrite: string | undefined;
  /** 301, 302, 303, 307 or 308. Default 301. */
  readonly status: number;
  readonly stripQuery: boolean;
}

export interface DirectResponseAction {
  readonly kind: 'directResponse';
  readonly status: number;
  readonly body: string;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
}

/** Header changes; names lower-case. Applied in the order remove, set, add. */
export interface HeaderOperations {
  readonly set: ReadonlyArray<readonly [string, string]>;
  readonly add: ReadonlyArray<readonly [string, string]>;
  readonly remove: readonly string[];
}

export interface FaultConfig {
  readonly delay: { readonly fixedMs: number; readonly percent: number } | undefined;
  readonly abort: { readonly status: number; readonly percent: number } | undefined;
}
