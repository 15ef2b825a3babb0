/**
 * What handlers answer: outcomes as data. A denial or an exhausted quota is a result,
 * not an exception; an exception (or a missed deadline) is a fault, which the dispatcher
 * answers according to the rule's failure policy.
 */
import type { Bag } from '../attributes';

/** gRPC / google.rpc status codes used in results. */
export const StatusCode = Object.freeze({
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const);

/** A status: a code and, when not OK, why. */
export interface Status {
  readonly code: number;
  readonly message: string;
}

export const OK_STATUS: Status = Object.freeze({ code: StatusCode.OK, message: '' });

/** A header operation for the proxy to apply (Mixer's `RouteDirective.HeaderOperation`). */
export interface HeaderOperation {
  readonly name: string;
  /** The value to set or append; '' for REMOVE. */
  readonly value: string;
  readonly operation: 'REPLACE' | 'REMOVE' | 'APPEND';
}

/** A check handler's answer for one instance. */
export interface CheckResult {
  readonly status: Status;
  /** How long the proxy may reuse the answer, in milliseconds. */
  readonly validDurationMs: number;
  /** How many requests the proxy may answer with it. */
  readonly validUseCount: number;
  /**
   * Header operations the handler asks the proxy to apply to the request it lets through
   * (Mixer's adapters could return a RouteDirective too). Optional; the dispatcher puts them
   * after the operations the rules configure, in rule order.
   */
  readonly requestHeaderOperations?: readonly HeaderOperation[];
  /** The same, for the response. */
  readonly responseHeaderOperations?: readonly HeaderOperation[];
}

/** The quota asked for, as a quota handler receives it beside the instance. */
export interface QuotaArgs {
  /** Identifies the request across retries; a retry with the same id must not be charged twice. */
  readonly deduplicationId: string;
  /** How much is asked for. */
  readonly amount: number;
  /** Whether less than `amount` may be granted. */
  readonly bestEffort: boolean;
}

/** A quota handler's answer. */
export interface QuotaResult {
  /** OK, or why nothing was granted (RESOURCE_EXHAUSTED when the quota is used up). */
  readonly status: Status;
  readonly grantedAmount: number;
  /** How long the grant may be used, in milliseconds. */
  readonly validDurationMs: number;
}

/** Per-call information for handlers. */
export interface CallContext {
  /** Aborted when the call's deadline passes; a handler doing I/O should stop then. */
  readonly signal: AbortSignal;
  /**
   * The request's attributes, on Check calls only. Every attribute (and string-map key)
   * read through it becomes a referenced attribute of the decision, as reads by instance
   * expressions do, so a handler that decides on the whole request (opa's `checknothing`,
   * which passes every attribute to the policy) keeps the proxy's cache exact. Handlers that
   * decide on their instance alone should not read it.
   */
  readonly attributes?: Bag;
  /**
   * On Report calls: an id of this call's instances that is the same when the client sends
   * the same Report again (after a lost answer), so a handler can give each instance a stable
   * id (`<deduplicationId>#<index>`: the export adapters' record ids). Made from the client's
   * `x-switchboard-report-id` metadata with the handler and template; absent when the client
   * sent none.
   */
  readonly deduplicationId?: string;
}
