/**
 * A limit counted in memory: one counter per key (instance and dimensions), each granting
 * at most `maxAmount` per window. Two algorithms implement it: fixed-window.ts and
 * rolling-window.ts. Counters whose window has ended hold nothing and are dropped, so
 * memory follows the keys in use, not every key ever seen.
 */

/** What a charge did. */
export interface Charge {
  /** How much was granted: all of the amount, part of it (best effort), or 0. */
  readonly granted: number;
  /** How much was left before this charge. */
  readonly available: number;
  /**
   * Milliseconds until what was granted stops counting against the limit. When nothing was
   * granted: until the same ask could be granted if nothing else is charged meanwhile, or
   * the window's length when it never could (an all-or-nothing ask above maxAmount).
   */
  readonly validDurationMs: number;
}

export interface WindowLimit {
  readonly maxAmount: number;
  readonly validDurationMs: number;
  /**
   * Grants `amount` (> 0) under `key` at `nowMs` if it fits; when it does not, grants
   * what is left if `bestEffort`, else nothing.
   */
  charge(key: string, nowMs: number, amount: number, bestEffort: boolean): Charge;
  /**
   * Drops counters whose window has ended by `nowMs`. Costs one step per expiry passed
   * since the last sweep, plus one.
   */
  sweep(nowMs: number): void;
  /** How many counters are held. */
  readonly counterCount: number;
  clear(): void;
}

/** What an ask needs to be granted anything: all of it, or (best effort) one unit. */
export function neededAmount(amount: number, bestEffort: boolean): number {
  return bestEffort ? 1 : amount;
}

/** How much of `amount` a counter with `available` left grants. */
export function grantable(amount: number, available: number, bestEffort: boolean): number {
  if (amount <= available) return amount;
  return bestEffort ? Math.max(available, 0) : 0;
}
