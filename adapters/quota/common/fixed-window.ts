/**
 * FIXED_WINDOW: a key's window opens with the first grant after its previous window ended
 * and lasts validDuration; grants within one window add up to at most maxAmount. This is
 * how Mixer's redisquota counted a fixed window (a window expiring validDuration after it
 * was opened, in fixed_window.go).
 */
import { ExpiryQueue } from './expiry-queue';
import { grantable, neededAmount, type Charge, type WindowLimit } from './window-limit';

interface FixedWindow {
  readonly key: string;
  readonly endMs: number;
  used: number;
}

export class FixedWindowLimit implements WindowLimit {
  private readonly windows = new Map<string, FixedWindow>();
  private readonly ends = new ExpiryQueue<FixedWindow>();

  constructor(
    readonly maxAmount: number,
    readonly validDurationMs: number,
  ) {}

  get counterCount(): number {
    return this.windows.size;
  }

  charge(key: string, nowMs: number, amount: number, bestEffort: boolean): Charge {
    let window = this.windows.get(key);
    if (window !== undefined && nowMs >= window.endMs) window = undefined;
    const available = this.maxAmount - (window?.used ?? 0);
    const granted = grantable(amount, available, bestEffort);
    if (granted > 0) {
      if (window === undefined) {
        window = { key, endMs: nowMs + this.validDurationMs, used: 0 };
        this.windows.set(key, window);
        this.ends.push(window, window.endMs);
      }
      window.used += granted;
      return { granted, available, validDurationMs: window.endMs - nowMs };
    }
    // Without a window, nothing is used: the ask exceeds maxAmount and never fits.
    const never = window === undefined || neededAmount(amount, bestEffort) > this.maxAmount;
    return { granted: 0, available, validDurationMs: never ? this.validDurationMs : window!.endMs - nowMs };
  }

  sweep(nowMs: number): void {
    for (
      let window = this.ends.shiftExpired(nowMs);
      window !== undefined;
      window = this.ends.shiftExpired(nowMs)
    ) {
      // A later window of the same key may have replaced it: only the window queued here goes.
      if (this.windows.get(window.key) === window) this.windows.delete(window.key);
    }
  }

  clear(): void {
    this.windows.clear();
    this.ends.clear();
  }
}
