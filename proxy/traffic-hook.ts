/**
 * The seam between the data path and policy: what a policy client (Check before a
 * request, Report after it — issue 5) implements. The proxy calls it with attribute bags
 * of the Istio vocabulary (see attribute-builder.ts). Without a hook nothing is built: no
 * bag, no promise, no extra tick per request.
 */
import type { AttributeBag } from '../attributes';
import type { HeaderOperations, ProxyConfig } from './config-model';
import type { CheckAttributes } from './request-attributes';
import type { HttpRequestFacts } from './traffic-facts';

/** What a check decides for one request. */
export type RequestVerdict =
  | {
      readonly allowed: true;
      /** Header changes to the request sent upstream (Mixer's RouteDirective). */
      readonly requestHeaders?: HeaderOperations;
      /** Header changes to the response sent downstream. */
      readonly responseHeaders?: HeaderOperations;
    }
  | {
      readonly allowed: false;
      /** HTTP status of the local answer, e.g. 403, 401, 429. */
      readonly status: number;
      /** Body of the local answer (a line of text, the status message). */
      readonly message: string;
      /** Extra response headers, lower-case names (e.g. retry-after). */
      readonly headers?: Readonly<Record<string, string>>;
    };

/**
 * A policy client, or anything else that wants to see traffic. Every method is optional;
 * the proxy tests once, at configuration time, which are there. Methods are called on the
 * request path and must not throw (a throw is logged and treated as "no opinion" for
 * checks, and ignored for reports); slow work belongs off the request path.
 */
export interface TrafficHook {
  /**
   * A configuration generation starts serving (at start, and after each applied reload),
   * before any request of it reaches the other methods. The policy client reads its
   * settings from `config.policy` here. Must not throw; a throw is logged.
   */
  configurationApplied?(config: ProxyConfig, generation: number): void;
  /**
   * After routing and fault injection, before the request goes upstream (redirects and
   * direct responses included, as Envoy runs its filters before the router). `attributes`
   * holds request, source, destination and context attributes — read from the request as
   * they are asked for (request-attributes.ts); the check may add to them. A promise delays the
   * request until it settles; a rejected promise is answered with 500.
   */
  checkRequest?(attributes: CheckAttributes): RequestVerdict | Promise<RequestVerdict>;
  /**
   * Once per HTTP request, when its response has been sent (or the exchange failed). `facts`
   * are the request's, to be read during this call only; `checked` is the bag given to
   * checkRequest when there was a check, with what the check added to it — the hook's from
   * now on. completedRequestAttributes (request-attributes.ts) makes the request's whole bag
   * of them; the policy client writes its Report from the facts instead.
   */
  requestCompleted?(facts: HttpRequestFacts, checked: CheckAttributes | undefined): void;
  /**
   * A TCP connection was accepted and connected upstream (`connection.event` = open).
   * `progress` builds the connection's attributes so far (`connection.event` = continue,
   * byte counts and duration up to now) whenever called while it is open, for periodic reports.
   */
  connectionOpened?(attributes: AttributeBag, progress?: () => AttributeBag): void;
  /** A TCP connection closed (`connection.event` = close), with its byte counts and duration. */
  connectionClosed?(attributes: AttributeBag): void;
  /** Called once when the proxy stops, after traffic has drained; flush here. */
  close?(): Promise<void>;
}

/** The hook used when none is given: nothing is called, nothing is built. */
export const NO_HOOK: TrafficHook = Object.freeze({});

/**
 * `hook` with its per-request methods (checkRequest, requestCompleted) exposed only while
 * the applied configuration has a `policy` section. Without one a policy client has nothing
 * to ask or tell, and the exchange, seeing no method, builds no attribute bag — a few µs
 * and a dozen allocations per request. The other methods pass through as they are.
 */
export function whilePolicyConfigured(hook: TrafficHook): TrafficHook {
  return new PolicyGatedHook(hook);
}

class PolicyGatedHook implements TrafficHook {
  checkRequest?: (attributes: CheckAttributes) => RequestVerdict | Promise<RequestVerdict>;
  requestCompleted?: (facts: HttpRequestFacts, checked: CheckAttributes | undefined) => void;
  readonly connectionOpened?: (attributes: AttributeBag) => void;
  readonly connectionClosed?: (attributes: AttributeBag) => void;
  readonly close?: () => Promise<void>;

  constructor(private readonly inner: TrafficHook) {
    if (inner.connectionOpened !== undefined) this.connectionOpened = (a) => inner.connectionOpened!(a);
    if (inner.connectionClosed !== undefined) this.connectionClosed = (a) => inner.connectionClosed!(a);
    if (inner.close !== undefined) this.close = () => inner.close!();
  }

  configurationApplied(config: ProxyConfig, generation: number): void {
    const inner = this.inner;
    inner.configurationApplied?.(config, generation);
    const active = config.policy !== undefined;
    this.checkRequest =
      active && inner.checkRequest !== undefined ? (a) => inner.checkRequest!(a) : undefined;
    this.requestCompleted =
      active && inner.requestCompleted !== undefined ? (f, c) => inner.requestCompleted!(f, c) : undefined;
  }
}
