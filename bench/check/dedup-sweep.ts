/**
 * A hot-path measurement found while building `npm run bench:check`: what memquota's
 * deduplication cache costs per quota call when every call brings a new id (as proxies'
 * Checks do), at a given request rate, against a reference that sweeps from a FIFO queue.
 *
 *   node dist/bench/check/dedup-sweep.js [RATE ...]     (default 7000 70000 calls/s)
 *
 * The cache is driven exactly as MemquotaHandler.handleQuota drives it (sweep, recall,
 * remember on every call) with a simulated clock advancing 1 ms per RATE/1000 calls, a
 * 1 s window (Mixer's default minDeduplicationDuration); the first 2 simulated seconds
 * fill it, the next 4 are timed. h2load repeats one request, so bench:check cannot show it.
 */
import { DeduplicationCache } from '../../adapters/quota/memquota/deduplication';
import type { QuotaResult } from '../../templates';

/** The reference: the same Map for lookups, expiry order kept in arrays swept from a head index. */
class FifoDeduplicationCache {
  private readonly entries = new Map<string, { result: QuotaResult; expiresAtMs: number }>();
  private keys: string[] = [];
  private expiries: number[] = [];
  private head = 0;

  constructor(readonly durationMs: number) {}

  get size(): number {
    return this.entries.size;
  }

  recall(key: string, nowMs: number): QuotaResult | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || nowMs >= entry.expiresAtMs) return undefined;
    return entry.result;
  }

  remember(key: string, nowMs: number, result: QuotaResult): void {
    this.entries.set(key, { result, expiresAtMs: nowMs + this.durationMs });
    this.keys.push(key);
    this.expiries.push(nowMs + this.durationMs);
  }

  sweep(nowMs: number): void {
    let head = this.head;
    while (head < this.keys.length && this.expiries[head]! <= nowMs) {
      const key = this.keys[head]!;
      if ((this.entries.get(key)?.expiresAtMs ?? Infinity) <= nowMs) this.entries.delete(key);
      head++;
    }
    if (head > 1024 && head * 2 > this.keys.length) {
      this.keys = this.keys.slice(head);
      this.expiries = this.expiries.slice(head);
      head = 0;
    }
    this.head = head;
  }
}

interface Cache {
  readonly size: number;
  recall(key: string, nowMs: number): QuotaResult | undefined;
  remember(key: string, nowMs: number, result: QuotaResult): void;
  sweep(nowMs: number): void;
}

const RESULT: QuotaResult = { status: { code: 0, message: '' }, grantedAmount: 1, validDurationMs: 1000 };

function run(cache: Cache, rate: number): number {
  const perMs = Math.max(1, Math.round(rate / 1000));
  const fill = rate * 2;
  const total = rate * 6;
  let nowMs = 0;
  let start = 0n;
  for (let i = 0; i < total; i++) {
    if (i === fill) start = process.hrtime.bigint();
    if (i % perMs === 0) nowMs++;
    cache.sweep(nowMs);
    const key = DeduplicationCache.key('requestcount.instance.istio-system', `id-${i}requestcount`);
    if (cache.recall(key, nowMs) === undefined) cache.remember(key, nowMs, RESULT);
  }
  return Number(process.hrtime.bigint() - start) / (total - fill);
}

const rates = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [7000, 70000];
console.log(
  'memquota deduplication, a new id per call, 1 s window: ns per quota call (sweep + recall + remember)',
);
for (const rate of rates) {
  const current = run(new DeduplicationCache(1000), rate);
  const fifo = run(new FifoDeduplicationCache(1000), rate);
  console.log(
    `${String(rate).padStart(7)} calls/s  DeduplicationCache ${current.toFixed(0).padStart(7)} ns` +
      `   FIFO reference ${fifo.toFixed(0).padStart(6)} ns   (${rate} ids live)`,
  );
}
