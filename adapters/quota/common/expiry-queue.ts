/**
 * Items in the order they expire, for sweeping what has expired in one step per item.
 *
 * Not a Map swept from its front: V8 leaves a hole in a Map for every deleted entry until
 * it rehashes, and iteration from the front walks those holes each time, so a sweep under
 * steady churn costs the churn, not what it drops.
 *
 * Items are pushed with non-decreasing times when the clock runs forward; should it step
 * back, an item waits behind the later ones before it, so nothing is lost and memory stays
 * bounded by what was pushed within the longest expiry.
 */
export class ExpiryQueue<T> {
  private readonly items: T[] = [];
  private readonly times: number[] = [];
  /** Items before `head` have been shifted and wait to be compacted away. */
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T, expiresAtMs: number): void {
    this.items.push(item);
    this.times.push(expiresAtMs);
  }

  /** Removes and returns the oldest item if it has expired by `nowMs`; undefined otherwise. */
  shiftExpired(nowMs: number): T | undefined {
    if (this.head === this.items.length || this.times[this.head]! > nowMs) return undefined;
    const item = this.items[this.head]!;
    this.items[this.head] = undefined as T; // let it be collected
    this.head++;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.times.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items.splice(0, this.head);
      this.times.splice(0, this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items.length = 0;
    this.times.length = 0;
    this.head = 0;
  }
}
