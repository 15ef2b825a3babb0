import { strict as assert } from 'node:assert';
import { StatusCode } from '../../../../templates';
import { rawCommand, SingleRedis } from '../../../support/redis-servers';
import { RedisHarness, sum, waitUntilWindowOffset } from './support';

const INSTANCE = 'requestcount.instance.istio-system';

describe('redisquota: decisions on a real Redis', function () {
  this.timeout(30_000);
  let redis: SingleRedis;
  const harnesses: RedisHarness[] = [];

  before(async () => {
    redis = await SingleRedis.start();
  });
  after(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    for (const harness of harnesses.splice(0)) await harness.close();
  });

  async function harness(quota: object, extra: object = {}): Promise<RedisHarness> {
    const built = await RedisHarness.build({
      redisServerUrl: redis.url,
      connectionPoolSize: 2,
      quotas: [{ name: INSTANCE, ...quota }],
      ...extra,
    });
    harnesses.push(built);
    return built;
  }

  it('FIXED_WINDOW: grants exactly maxAmount per window, refuses the next ask, and grants again in the next window', async () => {
    const h = await harness({ maxAmount: 5, validDuration: '1s' });
    await waitUntilWindowOffset(redis.server.port, 1000, 50);
    const first = await h.askMany(6);
    assert.deepEqual(first, [1, 1, 1, 1, 1, 0]);
    const refused = await h.ask(1);
    assert.equal(refused.status.code, StatusCode.RESOURCE_EXHAUSTED);
    assert.match(
      refused.status.message,
      /^redisquota: quota requestcount\.instance\.istio-system is exhausted: asked for 1, 0 left of 5 per 1s \(quotas\[0\]\)$/,
    );
    assert.ok(
      refused.validDurationMs > 0 && refused.validDurationMs <= 1000,
      `valid ${refused.validDurationMs}`,
    );
    await waitUntilWindowOffset(redis.server.port, 1000, 50);
    assert.deepEqual(await h.askMany(6), [1, 1, 1, 1, 1, 0]);
  });

  it('FIXED_WINDOW lets a double burst through at a window boundary; ROLLING_WINDOW does not', async () => {
    // 10 late in one window, 10 early in the next: 20 within a few hundred milliseconds. A
    // busy machine may miss the moments aimed at; the windows' validity says whether it did,
    // and then the scenario runs again on fresh counters.
    for (let attempt = 1; ; attempt++) {
      const fixed = await harness({ maxAmount: 10, validDuration: '1s', rateLimitAlgorithm: 'FIXED_WINDOW' });
      const rolling = await harness({
        maxAmount: 10,
        validDuration: '1s',
        rateLimitAlgorithm: 'ROLLING_WINDOW',
        bucketDuration: '100ms',
      });
      await waitUntilWindowOffset(redis.server.port, 1000, 750);
      const fixedLate = await fixed.ask(10);
      const rollingLate = await rolling.ask(10);
      await waitUntilWindowOffset(redis.server.port, 1000, 20);
      const fixedEarly = await fixed.ask(10);
      const rollingEarly = await rolling.ask(10);
      const onTime = fixedLate.validDurationMs <= 400 && fixedEarly.validDurationMs >= 600;
      if (!onTime && attempt < 3) continue;
      assert.ok(onTime, `missed the window boundary three times`);
      assert.deepEqual([fixedLate.grantedAmount, fixedEarly.grantedAmount], [10, 10]);
      assert.equal(rollingLate.grantedAmount, 10);
      assert.equal(rollingEarly.grantedAmount, 0);
      // The rolling window frees the first 10 when their bucket leaves it, 600 to 1000 ms on.
      assert.ok(
        rollingEarly.validDurationMs > 500 && rollingEarly.validDurationMs <= 1000,
        `valid ${rollingEarly.validDurationMs}`,
      );
      return;
    }
  });

  it('ROLLING_WINDOW: never more than maxAmount in any window, counted at bucket granularity', async () => {
    const h = await harness({
      maxAmount: 4,
      validDuration: '500ms',
      rateLimitAlgorithm: 'ROLLING_WINDOW',
      bucketDuration: '100ms',
    });
    // Ask steadily for 1.5 s: each grant is timed by Redis's clock, and any 5 consecutive
    // buckets hold at most 4.
    const grants: { sent: number; received: number; granted: number }[] = [];
    const start = Date.now();
    while (Date.now() - start < 1500) {
      const sent = Date.now();
      const result = await h.ask(1);
      grants.push({ sent, received: Date.now(), granted: result.grantedAmount });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const granted = grants.filter((g) => g.granted > 0);
    // Grants whose whole span, from sending the first to receiving the last, is under
    // 400 ms were decided within 5 consecutive buckets: at most 4 of them.
    for (const [i, first] of granted.entries()) {
      const within = granted.slice(i).filter((g) => g.received - first.sent < 400).length;
      assert.ok(within <= 4, `${within} grants within 400 ms from ${first.sent - start} ms`);
    }
    // n buckets hold at most 4 × ceil(n / 5); more than 4 in all shows the window rolled.
    const buckets = Math.ceil((grants[grants.length - 1]!.received - grants[0]!.sent) / 100) + 1;
    const most = 4 * Math.ceil(buckets / 5);
    assert.ok(granted.length > 4 && granted.length <= most, `granted ${granted.length}, at most ${most}`);
  });

  it('TOKEN_BUCKET: a burst, then one unit per interval', async () => {
    const h = await harness({
      maxAmount: 10,
      validDuration: '1s',
      rateLimitAlgorithm: 'TOKEN_BUCKET',
      burstSize: 3,
    });
    assert.deepEqual(await h.askMany(4), [1, 1, 1, 0]);
    const refused = await h.ask(1);
    assert.equal(refused.status.code, StatusCode.RESOURCE_EXHAUSTED);
    assert.match(refused.status.message, /0 left of 10 per 1s \(burst 3\)/);
    assert.ok(
      refused.validDurationMs >= 1 && refused.validDurationMs <= 100,
      `valid ${refused.validDurationMs}`,
    );
    await new Promise((resolve) => setTimeout(resolve, refused.validDurationMs + 5));
    assert.equal((await h.ask(1)).grantedAmount, 1);
    assert.equal((await h.ask(1)).grantedAmount, 0);
    // An ask larger than the burst can never fit.
    const tooLarge = await h.ask(4);
    assert.equal(tooLarge.grantedAmount, 0);
    assert.equal(tooLarge.validDurationMs, 1000);
  });

  it('best effort grants what is left; all-or-nothing grants nothing', async () => {
    const h = await harness({ maxAmount: 5, validDuration: '10s' });
    assert.equal((await h.ask(3)).grantedAmount, 3);
    assert.equal((await h.ask(3)).grantedAmount, 0);
    const partial = await h.ask(3, { bestEffort: true });
    assert.equal(partial.status.code, StatusCode.OK);
    assert.equal(partial.grantedAmount, 2);
    assert.equal((await h.ask(1, { bestEffort: true })).grantedAmount, 0);
  });

  it('answers a retried call with the same deduplication id without charging it again', async () => {
    const h = await harness({ maxAmount: 2, validDuration: '10s' });
    const first = await h.ask(1, { deduplicationId: 'req-1' });
    const retry = await h.ask(1, { deduplicationId: 'req-1' });
    assert.equal(first.grantedAmount, 1);
    assert.equal(retry.grantedAmount, 1);
    assert.equal((await h.ask(1, { deduplicationId: 'req-2' })).grantedAmount, 1);
    assert.equal((await h.ask(1, { deduplicationId: 'req-3' })).grantedAmount, 0);
    // The denial is remembered too.
    assert.equal((await h.ask(1, { deduplicationId: 'req-3' })).grantedAmount, 0);
    const stats = h.handler.stats().quotas[0]!.counters;
    assert.deepEqual(stats, { granted: 2, denied: 1, shadowDenied: 0, fallback: 0 });
  });

  it('chooses the first override whose dimensions all match, each counted apart', async () => {
    const h = await harness({
      maxAmount: 100,
      validDuration: '10s',
      overrides: [
        { dimensions: { destination: 'reviews', source: 'bad' }, maxAmount: 1 },
        { dimensions: { destination: 'reviews' }, maxAmount: 3 },
      ],
    });
    assert.deepEqual(
      await h.askMany(3, 1, { dimensions: { destination: 'reviews', source: 'bad' } }),
      [1, 0, 0],
    );
    assert.deepEqual(
      await h.askMany(4, 1, { dimensions: { destination: 'reviews', source: 'good' } }),
      [1, 1, 1, 0],
    );
    assert.equal(sum(await h.askMany(5, 1, { dimensions: { destination: 'ratings' } })), 5);
    const quota = h.handler.stats().quotas[0]!;
    assert.deepEqual(quota.counters, { granted: 5, denied: 0, shadowDenied: 0, fallback: 0 });
    assert.deepEqual(
      quota.overrides.map((o) => o.counters),
      [
        { granted: 1, denied: 2, shadowDenied: 0, fallback: 0 },
        { granted: 3, denied: 1, shadowDenied: 0, fallback: 0 },
      ],
    );
  });

  it('in shadow mode decides and counts but never denies', async () => {
    const h = await harness({ maxAmount: 2, validDuration: '10s', shadowMode: true });
    const results = await Promise.all([1, 2, 3, 4].map(() => h.ask(1)));
    assert.ok(results.every((r) => r.status.code === StatusCode.OK && r.grantedAmount === 1));
    assert.deepEqual(h.handler.stats().quotas[0]!.counters, {
      granted: 2,
      denied: 0,
      shadowDenied: 2,
      fallback: 0,
    });
  });

  it('loads its script again when Redis has forgotten it', async () => {
    const h = await harness({ maxAmount: 3, validDuration: '10s' });
    assert.equal((await h.ask(1)).grantedAmount, 1);
    assert.equal((await rawCommand(redis.server.port, 'SCRIPT FLUSH')).trim(), '+OK');
    assert.equal((await h.ask(1)).grantedAmount, 1);
    assert.equal((await h.ask(2)).grantedAmount, 0);
  });

  it('is exact under concurrent asks from several handlers (as from several servers)', async () => {
    const prefix = `test:${process.pid}:shared:${Date.now()}:`;
    const handlers = await Promise.all(
      [1, 2, 3].map(() =>
        RedisHarness.build({
          redisServerUrl: redis.url,
          keyPrefix: prefix,
          quotas: [
            {
              name: INSTANCE,
              maxAmount: 50,
              validDuration: '60s',
              rateLimitAlgorithm: 'ROLLING_WINDOW',
              bucketDuration: '1s',
            },
          ],
        }),
      ),
    );
    harnesses.push(...handlers);
    const asks = Array.from({ length: 300 }, (_, i) => handlers[i % 3]!.ask(1));
    const granted = sum((await Promise.all(asks)).map((r) => r.grantedAmount));
    assert.equal(granted, 50);
  });

  it('shows each quota and its counters in stats()', async () => {
    const h = await harness({
      maxAmount: 1,
      validDuration: '1s',
      rateLimitAlgorithm: 'TOKEN_BUCKET',
      onRedisFailure: 'LOCAL_FALLBACK',
      fallbackPercent: 50,
    });
    await h.askMany(2);
    const stats = h.handler.stats();
    assert.deepEqual(stats.redis, { connected: true, outageSince: null, outages: 0, failedCalls: 0 });
    assert.deepEqual(stats.quotas, [
      {
        name: INSTANCE,
        rateLimitAlgorithm: 'TOKEN_BUCKET',
        maxAmount: 1,
        validDurationMs: 1000,
        burstSize: 1,
        counters: { granted: 1, denied: 1, shadowDenied: 0, fallback: 0 },
        shadowMode: false,
        onRedisFailure: 'LOCAL_FALLBACK',
        fallbackPercent: 50,
        overrides: [],
      },
    ]);
  });
});
