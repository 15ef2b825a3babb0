import { strict as assert } from 'node:assert';
import { DeduplicationCache } from '../../../../adapters/quota/memquota/deduplication';
import { FixedWindowLimit } from '../../../../adapters/quota/common/fixed-window';
import { RollingWindowLimit } from '../../../../adapters/quota/common/rolling-window';
import { OK_STATUS } from '../../../../templates';

// The handler sweeps before it charges; these check each piece on its own, unswept.
describe('memquota: windows and deduplication, unswept', () => {
  it('a fixed window ends at exactly validDuration, whether or not it was swept', () => {
    const limit = new FixedWindowLimit(2, 1000);
    assert.deepEqual(limit.charge('k', 5000, 2, false), { granted: 2, available: 2, validDurationMs: 1000 });
    assert.deepEqual(limit.charge('k', 5999, 1, false), { granted: 0, available: 0, validDurationMs: 1 });
    assert.deepEqual(limit.charge('k', 6000, 2, false), { granted: 2, available: 2, validDurationMs: 1000 });
    assert.equal(limit.counterCount, 1);
  });

  it('a rolling window frees a bucket at exactly its end, and sweeps counters left empty', () => {
    const limit = new RollingWindowLimit(3, 300, 100);
    assert.deepEqual(limit.charge('k', 1050, 2, false), { granted: 2, available: 3, validDurationMs: 250 });
    assert.deepEqual(limit.charge('k', 1299, 2, true), { granted: 1, available: 1, validDurationMs: 201 });
    assert.deepEqual(limit.charge('k', 1299, 1, false), { granted: 0, available: 0, validDurationMs: 1 });
    assert.deepEqual(limit.charge('k', 1300, 2, false), { granted: 2, available: 2, validDurationMs: 300 });
    limit.sweep(1499);
    assert.equal(limit.counterCount, 1);
    limit.sweep(1600);
    assert.equal(limit.counterCount, 0);
  });

  it('a sweep drops a window, counter or id only when the one it queued is still the current one', () => {
    const fixed = new FixedWindowLimit(2, 1000);
    fixed.charge('k', 5000, 2, false);
    fixed.charge('k', 6000, 2, false); // a new window, the old one unswept
    fixed.sweep(6000);
    assert.equal(fixed.charge('k', 6500, 1, false).granted, 0, 'the new window is kept');

    const rolling = new RollingWindowLimit(3, 300, 100);
    rolling.charge('k', 1000, 1, false);
    rolling.charge('k', 1100, 2, false);
    rolling.sweep(1300); // the 1.0s bucket has left; the 1.1s bucket has not
    assert.equal(rolling.counterCount, 1);
    assert.equal(rolling.charge('k', 1300, 3, true).granted, 1);

    const cache = new DeduplicationCache(1000);
    const result = { status: OK_STATUS, grantedAmount: 1, validDurationMs: 0 };
    cache.remember('k', 5000, result);
    assert.equal(cache.recall('k', 6000), undefined);
    cache.remember('k', 6000, result);
    cache.sweep(6000);
    assert.deepEqual(cache.recall('k', 6500), result, 'the id remembered anew is kept');
  });

  it('a rolling window never reopens when the clock steps back', () => {
    const limit = new RollingWindowLimit(2, 1000, 100);
    assert.equal(limit.charge('k', 10_000, 2, false).granted, 2);
    assert.deepEqual(
      limit.charge('k', 9_000, 1, false),
      { granted: 0, available: 0, validDurationMs: 2000 },
      'counted in the newest bucket seen, which leaves the window at 11s',
    );
    assert.equal(limit.charge('k', 11_000, 2, false).granted, 2);
  });

  it('a rolling counter counts a long run of grants exactly', () => {
    const limit = new RollingWindowLimit(1_000_000, 1000, 100);
    for (let t = 0; t < 100_000; t += 10) limit.charge('k', t, 1, false);
    // The window at 100s is buckets 99.1s to 100s: nine of them hold 10 grants each.
    assert.deepEqual(limit.charge('k', 100_000, 1_000_000, true), {
      granted: 999_910,
      available: 999_910,
      validDurationMs: 1000,
    });
  });

  it('a deduplication id expires at exactly minDeduplicationDuration, whether or not it was swept', () => {
    const cache = new DeduplicationCache(1000);
    const key = DeduplicationCache.key('rq.instance.ns', 'id');
    cache.remember(key, 5000, { status: OK_STATUS, grantedAmount: 3, validDurationMs: 400 });
    assert.deepEqual(cache.recall(key, 5300), { status: OK_STATUS, grantedAmount: 3, validDurationMs: 100 });
    assert.deepEqual(cache.recall(key, 5999), { status: OK_STATUS, grantedAmount: 3, validDurationMs: 0 });
    assert.equal(cache.recall(key, 6000), undefined);
    assert.equal(cache.size, 0);
  });

  it('keys ids by instance without ambiguity', () => {
    assert.notEqual(DeduplicationCache.key('a', 'bc'), DeduplicationCache.key('ab', 'c'));
  });
});
