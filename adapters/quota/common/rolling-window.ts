/**
 * ROLLING_WINDOW: time is cut into buckets of bucketDuration, counted from the epoch, and a
 * key's window is the current bucket and the ones before it, validDuration in all. Grants
 * in any run of that many consecutive buckets add up to at most maxAmount; a grant stops
 * counting when its bucket leaves the window. Mixer's memquota counted the same way, with
 * 100 ms buckets (`rollingWindow` in rollingWindow.go).
 *
 * A counter keeps only the buckets that hold grants, oldest first, so its live entries are
 * never more than the buckets in the window or the units in maxAmount, whichever is fewer.
 */
import { ExpiryQueue } from './expiry-queue';
import { grantable, neededAmount, type Charge, type WindowLimit } from './window-limit';

/** The buckets of one key that hold grants, oldest first, with their total. */
class RollingCounter {
  private readonly buckets: number[] = [];
  private readonly amounts: number[] = [];
  /** Entries before `head` have left the window and wait to be compacted away. */
  private head = 0;
  used = 0;

  constructor(
    readonly key: string,
    public lastBucket: number,
  ) {}

  /** Forgets the buckets at or before `bucket`. */
  dropThrough(bucket: number): void {
    while (this.head < this.buckets.length && this.buckets[this.head]! <= bucket) {
      this.used -= this.amounts[this.head]!;
      this.head++;
    }
    if (this.head === this.buckets.length) {
      this.buckets.length = 0;
      this.amounts.length = 0;
      this.head = 0;
    } else if (this.head >= 32 && this.head * 2 >= this.buckets.length) {
      this.buckets.splice(0, this.head);
      this.amounts.splice(0, this.head);
      this.head = 0;
    }
  }

  add(bucket: number, amount: number): void {
    const last = this.buckets.length - 1;
    if (last >= this.head && this.buckets[last] === bucket) this.amounts[last]! += amount;
    else {
      this.buckets.push(bucket);
      this.amounts.push(amount);
    }
    this.lastBucket = bucket;
    this.used += amount;
  }

  /** The first bucket whose leaving the window frees enough for `needed`, given `available` now. */
  bucketFreeing(needed: number, available: number): number {
    let freed = available;
    for (let i = this.head; i < this.buckets.length; i++) {
      freed += this.amounts[i]!;
      if (freed >= needed) return this.buckets[i]!;
    }
    return this.lastBucket;
  }
}

export class RollingWindowLimit implements WindowLimit {
  private readonly counters = new Map<string, RollingCounter>();
  /** Each counter, queued again whenever it is charged in a new bucket, for when that bucket leaves the window. */
  private readonly emptyings = new ExpiryQueue<RollingCounter>();
  private readonly bucketsPerWindow: number;

  /** @param validDurationMs a whole multiple of bucketDurationMs (validation sees to it) */
  constructor(
    readonly maxAmount: number,
    readonly validDurationMs: number,
    readonly bucketDurationMs: number,
  ) {
    this.bucketsPerWindow = Math.round(validDurationMs / bucketDurationMs);
  }

  get counterCount(): number {
    return this.counters.size;
  }

  charge(key: string, nowMs: number, amount: number, bestEffort: boolean): Charge {
    const n = this.bucketsPerWindow;
    let bucket = Math.floor(nowMs / this.bucketDurationMs);
    let counter = this.counters.get(key);
    if (counter !== undefined) {
      // Should the clock step back, count in the newest bucket seen: a window never reopens.
      if (bucket < counter.lastBucket) bucket = counter.lastBucket;
      counter.dropThrough(bucket - n);
      if (counter.used === 0) {
        this.counters.delete(key);
        counter = undefined;
      }
    }
    const available = this.maxAmount - (counter?.used ?? 0);
    const granted = grantable(amount, available, bestEffort);
    if (granted > 0) {
      if (counter === undefined) {
        counter = new RollingCounter(key, bucket);
        this.counters.set(key, counter);
        this.emptyings.push(counter, this.bucketEndMs(bucket));
      } else if (counter.lastBucket !== bucket) {
        this.emptyings.push(counter, this.bucketEndMs(bucket));
      }
      counter.add(bucket, granted);
      return { granted, available, validDurationMs: this.bucketEndMs(bucket) - nowMs };
    }
    const needed = neededAmount(amount, bestEffort);
    if (counter === undefined || needed > this.maxAmount) {
      return { granted: 0, available, validDurationMs: this.validDurationMs };
    }
    const freeing = counter.bucketFreeing(needed, available);
    return { granted: 0, available, validDurationMs: this.bucketEndMs(freeing) - nowMs };
  }

  sweep(nowMs: number): void {
    const bucket = Math.floor(nowMs / this.bucketDurationMs);
    for (
      let counter = this.emptyings.shiftExpired(nowMs);
      counter !== undefined;
      counter = this.emptyings.shiftExpired(nowMs)
    ) {
      // Charged in a later bucket since, it is queued again for then; dropped already, it is gone.
      if (
        counter.lastBucket <= bucket - this.bucketsPerWindow &&
        this.counters.get(counter.key) === counter
      ) {
        this.counters.delete(counter.key);
      }
    }
  }

  clear(): void {
    this.counters.clear();
    this.emptyings.clear();
  }

  /** When grants made in `bucket` leave the window. */
  private bucketEndMs(bucket: number): number {
    return (bucket + this.bucketsPerWindow) * this.bucketDurationMs;
  }
}
