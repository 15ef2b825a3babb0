/**
 * Deduplication: a call that repeats an earlier one's deduplication id within
 * minDeduplicationDuration gets the earlier result and charges nothing — proxies retry a
 * Check whose answer they lost, and the retry must not be counted twice.
 *
 * Ids are remembered per instance: Mixer made them so by appending the quota's name to
 * the request's id (`DeduplicationID: req.DeduplicationId + name` in
 * mixer/pkg/api/grpcServer.go); we key by instance name and id, which holds whatever the
 * caller passes. Like Mixer's memquota we remember every result, denials too; unlike it we
 * remember none for an empty id (as Mixer's redisquota), which would otherwise make every
 * call without an id a repeat of the first.
 *
 * Entries expire exactly minDeduplicationDuration after the call that made them, and are
 * queued in the order they expire in, so dropping the expired ones costs one step per entry
 * dropped: memory follows the ids of the last minDeduplicationDuration, however many ids
 * arrive.
 */
import type { QuotaResult } from '../../../templates';
import { ExpiryQueue } from '../common';

interface Remembered {
  readonly key: string;
  readonly result: QuotaResult;
  /** Until when a repeat gets the result. */
  readonly expiresAtMs: number;
  /** When what the result granted stops counting, so a repeat is told how long is left of it. */
  readonly grantEndsAtMs: number;
}

export class DeduplicationCache {
  private readonly entries = new Map<string, Remembered>();
  private readonly expiries = new ExpiryQueue<Remembered>();

  constructor(readonly durationMs: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** The key of a call: its instance and its id. */
  static key(instanceName: string, deduplicationId: string): string {
    return `${instanceName.length}:${instanceName}${deduplicationId}`;
  }

  /** The earlier result for `key`, with its validity counted down to `nowMs`; undefined when there is none. */
  recall(key: string, nowMs: number): QuotaResult | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (nowMs >= entry.expiresAtMs) {
      this.entries.delete(key);
      return undefined;
    }
    return {
      status: entry.result.status,
      grantedAmount: entry.result.grantedAmount,
      validDurationMs: Math.max(0, entry.grantEndsAtMs - nowMs),
    };
  }

  remember(key: string, nowMs: number, result: QuotaResult): void {
    const entry: Remembered = {
      key,
      result,
      expiresAtMs: nowMs + this.durationMs,
      grantEndsAtMs: nowMs + result.validDurationMs,
    };
    this.entries.set(key, entry);
    this.expiries.push(entry, entry.expiresAtMs);
  }

  /** Drops the entries expired by `nowMs`. */
  sweep(nowMs: number): void {
    for (
      let entry = this.expiries.shiftExpired(nowMs);
      entry !== undefined;
      entry = this.expiries.shiftExpired(nowMs)
    ) {
      // The id may have been remembered anew since: only the entry queued here goes.
      if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
    }
  }

  clear(): void {
    this.entries.clear();
    this.expiries.clear();
  }
}
