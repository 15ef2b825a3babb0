/**
 * A prefetched quota allowance (Mixer's prefetch design, as Istio's proxy ran it): the
 * proxy holds units the server granted ahead of need and spends them locally, so most
 * requests of a busy quota never wait for the server.
 *
 * - **Sized from the recent rate**: a fetch asks for as many units as were spent in the
 *   last prediction window (default 1 s), at least `minAmount` and at least the charge
 *   that needs them; it asks best effort, so the server grants what it has.
 * - **Refilled when half spent**: once fewer than half of the last fetch's units are left,
 *   the next request starts a refill in the background (one at a time) and does not wait.
 * - **Back-off after a partial grant**: a grant smaller than asked means the server is near
 *   its limit; for `closeWaitMs` the allowance then refuses locally what it cannot cover,
 *   without asking the server again.
 * - **Never more than granted**: every unit spent locally was granted by the server; units
 *   expire with the grant's valid duration (extended by a refill), so an allowance never
 *   outlives the server's window by more than one grant.
 */

/** Options of prefetched quotas (the `policy` section's prefetch settings). */
export interface PrefetchOptions {
  /** Fewest units a fetch asks for. */
  readonly minAmount: number;
  /** The window whose spending predicts the next, in ms. */
  readonly predictWindowMs: number;
  /** How long a partial grant closes the allowance to further asks, in ms. */
  readonly closeWaitMs: number;
}

export class QuotaAllowance {
  private available = 0;
  private expiresAtMs = 0;
  private lastFetched = 0;
  private closedUntilMs = 0;
  private windowStartMs = 0;
  private spentThisWindow = 0;
  private spentLastWindow = 0;
  /** A fetch is on its way: no second one starts. */
  refilling = false;
  /** Units granted by the server to this allowance, in total (for tests and stats). */
  grantedTotal = 0;
  /** Units spent from it, in total. */
  spentTotal = 0;

  constructor(private readonly options: PrefetchOptions) {}

  /** Spends `amount` locally when the allowance covers it; false otherwise. */
  take(amount: number, nowMs: number): boolean {
    this.expire(nowMs);
    this.countSpending(amount, nowMs);
    if (this.available < amount) return false;
    this.available -= amount;
    this.spentTotal += amount;
    return true;
  }

  /** Gives back units taken for a request that was then refused for another reason. */
  giveBack(amount: number): void {
    this.available += amount;
    this.spentTotal -= amount;
  }

  /** True while a partial grant's back-off lasts: what the allowance cannot cover is refused. */
  closed(nowMs: number): boolean {
    return nowMs < this.closedUntilMs;
  }

  /** Whether a background refill should start now: half the last fetch is spent. */
  wantsRefill(nowMs: number): boolean {
    return !this.refilling && !this.closed(nowMs) && this.available * 2 < Math.max(1, this.lastFetched);
  }

  /** How much a fetch should ask for, for a request charging `charge`. */
  fetchAmount(charge: number, nowMs: number): number {
    this.countSpending(0, nowMs);
    return Math.max(this.options.minAmount, charge, this.spentLastWindow, this.spentThisWindow);
  }

  /** Adds a grant: `granted` of `asked` units, valid `validDurationMs`. */
  granted(asked: number, granted: number, validDurationMs: number, nowMs: number): void {
    this.expire(nowMs);
    this.lastFetched = asked;
    this.grantedTotal += granted;
    if (granted > 0) {
      this.available += granted;
      this.expiresAtMs = nowMs + Math.max(1, validDurationMs);
    }
    if (granted < asked) this.closedUntilMs = nowMs + this.options.closeWaitMs;
  }

  private expire(nowMs: number): void {
    if (this.available > 0 && nowMs >= this.expiresAtMs) this.available = 0;
  }

  private countSpending(amount: number, nowMs: number): void {
    const window = this.options.predictWindowMs;
    if (nowMs - this.windowStartMs >= window) {
      // One window later the last one's spending predicts; more than one: nothing was spent.
      this.spentLastWindow = nowMs - this.windowStartMs < 2 * window ? this.spentThisWindow : 0;
      this.spentThisWindow = 0;
      this.windowStartMs = nowMs;
    }
    this.spentThisWindow += amount;
  }
}
