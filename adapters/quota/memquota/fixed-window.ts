/**
 * FIXED_WINDOW: a key's window opens with the first grant after its previous window ended
 * and lasts validDuration; grants within one window add up to at most maxAmount. This is
 * how Mixer's redisquota counted a fixed window (a window expiring validDuration after it
 * was opened, in fixed_window.go).
 */
import { grantable, neededAmount, type Charge, type WindowLimit } from './window-limit';

interface FixedWindow {
  readonly endMs: number;
  used: number;
}

export class FixedWindowLimit implements WindowLimit {
  /** In the order the windows opened, which is the order they end in: sweeping stops at the first live one. */
  private readonly windows = new Map<string, FixedWindow>();

  constructor(
    readonly maxAmount: number,
    readonly validDurationMs: number,
  ) {}

  get counterCount(): number {
    return this.windows.size;
  }

  charge(key: string, nowMs: number, amount: number, bestEffort: boolean): Charge {
    let window = this.windows.get(key);
    if (window !== undefined && nowMs >= window.endMs) {
      this.windows.delete(key);
      window = undefined;
    }
    const available = this.maxAmount - (window?.used ?? 0);
    const granted = grantable(amount, available, bestEffort);
    if (granted > 0) {
      if (window === undefined) {
        window = { endMs: nowMs + this.validDurationMs, used: 0 };
        this.windows.set(key, window);
      }
      window.used += granted;
      return { granted, available, validDurationMs: window.endMs - nowMs };
    }
    // Without a window, nothing is used: the ask exceeds maxAmount and never fits.
    const never = window === undefined || neededAmount(amount, bestEffort) > this.maxAmount;
    return { granted: 0, available, validDurationMs: never ? this.validDurationMs : window!.endMs - nowMs };
  }

  sweep(nowMs: number): void {
    for (const [key, window] of this.windows) {
      if (nowMs < window.endMs) return;
      this.windows.delete(key);
    }
  }

  clear(): void {
    this.windows.clear();
  }
}
