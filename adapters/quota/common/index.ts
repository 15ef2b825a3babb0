/** What the quota adapters share: counter keys, override matching, and the rules of configured limits. */
export { counterKey } from './counter-key';
export {
  compileDimensionCondition,
  firstMatchingOverride,
  matchesDimension,
  type DimensionCondition,
} from './dimension-match';
export {
  checkWholeMilliseconds,
  DEFAULT_BUCKET_DURATION_MS,
  formatDurationMs,
  validateQuotaLimits,
  type OverrideLimitParams,
  type Problem,
  type QuotaLimitParams,
} from './quota-limits';
export { FixedWindowLimit } from './fixed-window';
export { RollingWindowLimit } from './rolling-window';
export type { Charge, WindowLimit } from './window-limit';
export { ExpiryQueue } from './expiry-queue';
export { QuotaLookup } from './quota-lookup';
