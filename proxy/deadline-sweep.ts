/**
 * One timer for many deadlines: the exchanges of a listener (route, per-try and stream idle
 * timeouts) are linked into one list, and a single Node timer is armed for the earliest
 * deadline of the list. Watching, moving and dropping a deadline is a few field writes — no
 * `setTimeout`/`clearTimeout` per request, no Timeout object, no closure (measured in
 * bench/proxy/README.md: the per-request timers were among the costs of the request path).
 *
 * A deadline fires at the same time a `setTimeout` started at the same moment would, give or
 * take the timer's millisecond rounding: the timer is armed for the earliest deadline, and a
 * timer that fires early (libuv's clock lags `performance.now()` within a loop turn) is armed
 * again for what is left. Deadlines that move later (an idle timeout refreshed by traffic) or go
 * away are noticed when the timer fires: it then finds nothing due and arms for the next one.
 *
 * Times are `performance.now()` milliseconds (monotonic).
 */

/** Something with deadlines, linked into one {@link DeadlineSweep}. */
export interface DeadlineHolder {
  /** @internal list links, owned by the sweep */
  sweepPrev: DeadlineHolder | undefined;
  /** @internal */
  sweepNext: DeadlineHolder | undefined;
  /** @internal whether it is linked */
  sweepLinked: boolean;
  /** The holder's earliest deadline now, or Infinity when it has none left. */
  nextDeadlineMs(): number;
  /**
   * Called by the sweep when the earliest deadline is due (`nowMs` >= it): the holder acts on
   * each of its due deadlines. It stays linked; it calls `unwatch` when done with deadlines.
   */
  onDeadline(nowMs: number): void;
}

export class DeadlineSweep {
  private head: DeadlineHolder | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The deadline the timer is armed for; Infinity when it is not armed. */
  private armedMs = Number.POSITIVE_INFINITY;
  private closed = false;
  private readonly onTimer = (): void => this.sweep();

  /** The current time on the sweep's clock, in ms. */
  now(): number {
    return performance.now();
  }

  /**
   * Links `holder` (once; later calls only re-check the timer) and makes sure the timer fires
   * by `deadlineMs`, the holder's new earliest deadline.
   */
  watch(holder: DeadlineHolder, deadlineMs: number): void {
    if (!holder.sweepLinked) {
      holder.sweepLinked = true;
      holder.sweepPrev = undefined;
      const head = this.head;
      holder.sweepNext = head;
      if (head !== undefined) head.sweepPrev = holder;
      this.head = holder;
    }
    if (deadlineMs < this.armedMs) this.arm(deadlineMs);
  }

  /** Unlinks `holder`; nothing more is called on it. The timer stays armed (it finds nothing due). */
  unwatch(holder: DeadlineHolder): void {
    if (!holder.sweepLinked) return;
    holder.sweepLinked = false;
    const prev = holder.sweepPrev;
    const next = holder.sweepNext;
    if (prev === undefined) this.head = next;
    else prev.sweepNext = next;
    if (next !== undefined) next.sweepPrev = prev;
    holder.sweepPrev = undefined;
    holder.sweepNext = undefined;
  }

  /** Stops the timer; deadlines watched from now on do not fire. Idempotent. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedMs = Number.POSITIVE_INFINITY;
  }

  private arm(deadlineMs: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.armedMs = deadlineMs;
    const delay = Math.max(1, Math.ceil(deadlineMs - performance.now()));
    this.timer = setTimeout(this.onTimer, delay);
    // The sockets of the requests keep the process alive, not their deadlines.
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = undefined;
    this.armedMs = Number.POSITIVE_INFINITY;
    const now = performance.now();
    // Due holders are collected first: acting on one may link or unlink others.
    let due: DeadlineHolder[] | undefined;
    let earliest = Number.POSITIVE_INFINITY;
    for (let holder = this.head; holder !== undefined; holder = holder.sweepNext) {
      const deadline = holder.nextDeadlineMs();
      if (deadline <= now) (due ??= []).push(holder);
      else if (deadline < earliest) earliest = deadline;
    }
    if (earliest < this.armedMs) this.arm(earliest);
    if (due === undefined) return;
    for (const holder of due) {
      if (!holder.sweepLinked) continue;
      holder.onDeadline(now);
      if (holder.sweepLinked) {
        const next = holder.nextDeadlineMs();
        if (next < this.armedMs) this.arm(next);
      }
    }
  }
}
