/**
 * Retry decisions: which outcomes of an attempt a route retries, how long to back off, and
 * whether the cluster's retry budget allows another retry now. The request path asks; this
 * module keeps no state of its own.
 */
import type { RetryPolicy } from './config-model';

/** How an attempt ended, as far as retrying is concerned. */
export type RetryableOutcome =
  | { readonly kind: 'response'; readonly status: number }
  | { readonly kind: 'connectFailure' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'timeout' };

/** RFC 9110 §9.2.2: a request with these methods may be repeated with the same effect. */
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT_METHODS.has(method);
}

/**
 * Whether `policy` retries an attempt that ended so. As in Envoy, `5xx` and `gateway-error`
 * include attempts that got no response at all (connect failure, reset, per-try timeout).
 */
export function isRetriable(policy: RetryPolicy, outcome: RetryableOutcome): boolean {
  const on = policy.retryOn;
  switch (outcome.kind) {
    case 'response': {
      const status = outcome.status;
      if (policy.retriableStatusCodes.has(status)) return true;
      if (status >= 500 && on.has('5xx')) return true;
      return (status === 502 || status === 503 || status === 504) && on.has('gateway-error');
    }
    case 'connectFailure':
      return on.has('connect-failure') || on.has('5xx') || on.has('gateway-error');
    case 'reset':
    case 'timeout':
      return on.has('reset') || on.has('5xx') || on.has('gateway-error');
  }
}

/**
 * Back-off before retry `retry` (1 for the first): uniformly random in
 * [0, min(base · 2^(retry-1), max)] milliseconds ("full jitter").
 */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number): number {
  const ceiling = Math.min(policy.backoffBaseMs * 2 ** (retry - 1), policy.backoffMaxMs);
  return random() * ceiling;
}

/** Requests and retries in flight on one cluster, for its retry budget. */
export interface RetryBudgetCounters {
  activeRequests: number;
  activeRetries: number;
}

/**
 * Whether one more retry fits the budget: active retries stay below `budgetPercent` of the
 * cluster's active requests, or below `minRetryConcurrency`, whichever is larger.
 */
export function withinRetryBudget(policy: RetryPolicy, counters: RetryBudgetCounters): boolean {
  const allowed = Math.max(
    policy.minRetryConcurrency,
    (policy.budgetPercent / 100) * counters.activeRequests,
  );
  return counters.activeRetries < allowed;
}
