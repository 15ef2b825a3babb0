import { strict as assert } from 'node:assert';
import { StatusCode } from '../../../../templates';
import { RedisCluster, RedisSentinelSet, SingleRedis } from '../../../support/redis-servers';
import { RedisHarness, sum } from './support';

const INSTANCE = 'requestcount.instance.istio-system';

async function eventually(
  what: string,
  condition: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('redisquota: when Redis fails', function () {
  this.timeout(60_000);
  let redis: SingleRedis;
  const harnesses: RedisHarness[] = [];

  beforeEach(async () => {
    redis = await SingleRedis.start();
  });
  afterEach(async () => {
    for (const harness of harnesses.splice(0)) await harness.close();
    await redis?.stop();
  });

  async function harness(policy: object): Promise<RedisHarness> {
    const built = await RedisHarness.build({
      redisServerUrl: redis.url,
      connectionPoolSize: 2,
      timeout: '100ms',
      quotas: [{ name: INSTANCE, maxAmount: 10, validDuration: '10s', ...policy }],
    });
    harnesses.push(built);
    return built;
  }

  it('each policy answers while Redis is down, the outage is logged once, and Redis counts again once back', async () => {
    const open = await harness({ onRedisFailure: 'FAIL_OPEN' });
    const closed = await harness({ onRedisFailure: 'FAIL_CLOSE' });
    const local = await harness({ onRedisFailure: 'LOCAL_FALLBACK', fallbackPercent: 30 });
    assert.equal((await open.ask(1)).grantedAmount, 1);

    await redis.server.stop();
    const openAnswers = await Promise.all([1, 2, 3].map(() => open.ask(5)));
    assert.ok(openAnswers.every((r) => r.status.code === StatusCode.OK && r.grantedAmount === 5));
    assert.ok(openAnswers.every((r) => r.validDurationMs <= 1000));

    const closedAnswer = await closed.ask(1);
    assert.equal(closedAnswer.status.code, StatusCode.UNAVAILABLE);
    assert.match(
      closedAnswer.status.message,
      /^redisquota: Redis does not answer \(.+\); quota requestcount\.instance\.istio-system fails closed$/,
    );

    // 30% of 10, counted in this process alone.
    assert.deepEqual(await local.askMany(4), [1, 1, 1, 0]);
    const localDenied = await local.ask(1);
    assert.equal(localDenied.status.code, StatusCode.RESOURCE_EXHAUSTED);
    assert.match(localDenied.status.message, /counted locally while Redis does not answer/);

    for (const h of [open, closed, local]) {
      const warnings = h.logger.lines.filter((line) => line.startsWith('warn: '));
      assert.equal(warnings.length, 1, h.logger.lines.join('\n'));
      assert.match(
        warnings[0]!,
        /Redis does not answer \(.+\); each quota follows its onRedisFailure policy/,
      );
      assert.ok(h.handler.stats().redis.outageSince !== null);
    }
    assert.equal(open.handler.stats().quotas[0]!.counters.fallback, 3);
    assert.equal(local.handler.stats().quotas[0]!.counters.fallback, 5);

    await redis.restart();
    // The clients reconnect on their own; the first answer from Redis ends the outage.
    await eventually(
      'closed quota counted in Redis again',
      async () => (await closed.ask(1)).grantedAmount === 1,
    );
    assert.deepEqual(closed.handler.stats().redis.outageSince, null);
    assert.ok(
      closed.logger.lines.some((line) =>
        /^info: .*Redis answers again after .+; quotas are counted in Redis again$/.test(line),
      ),
    );
    // A fresh Redis: 10 per window again, counted there.
    assert.equal(sum(await closed.askMany(10)), 9);
  });

  it('under steady traffic, Redis stopped and restarted: every answer follows its policy, and Redis counts again', async () => {
    const policies = {
      FAIL_OPEN: await harness({ maxAmount: 1000, onRedisFailure: 'FAIL_OPEN' }),
      FAIL_CLOSE: await harness({ maxAmount: 1000, onRedisFailure: 'FAIL_CLOSE' }),
      // 1% of 1000: 10 per window, counted in this process alone.
      LOCAL_FALLBACK: await harness({
        maxAmount: 1000,
        onRedisFailure: 'LOCAL_FALLBACK',
        fallbackPercent: 1,
      }),
    };
    type Phase = 'up' | 'stopping' | 'down' | 'restarting' | 'back';
    let phase: Phase = 'up';
    let running = true;
    const answers: { policy: string; phase: Phase; code: number; granted: number; message: string }[] = [];
    const loops = Object.entries(policies).map(async ([policy, h]) => {
      while (running) {
        const sentIn = phase;
        const result = await h.ask(1);
        answers.push({
          policy,
          phase: sentIn,
          code: result.status.code,
          granted: result.grantedAmount,
          message: result.status.message,
        });
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    });
    const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
    await pause(200);
    phase = 'stopping';
    await redis.server.stop();
    phase = 'down';
    // Down until the local share (10) ran out: a loaded machine may need longer than a fixed wait.
    await eventually('the local share ran out while Redis is down', async () =>
      answers.some(
        (a) =>
          a.policy === 'LOCAL_FALLBACK' && a.phase === 'down' && a.code === StatusCode.RESOURCE_EXHAUSTED,
      ),
    );
    phase = 'restarting';
    await redis.restart();
    await eventually('every handler counting in Redis again', async () =>
      Object.values(policies).every((h) => h.handler.stats().redis.outageSince === null),
    );
    phase = 'back';
    await pause(200);
    running = false;
    await Promise.all(loops);

    const of = (policy: string, p: Phase): typeof answers =>
      answers.filter((a) => a.policy === policy && a.phase === p);
    for (const policy of Object.keys(policies)) {
      for (const p of ['up', 'down', 'back'] as const)
        assert.ok(of(policy, p).length > 0, `${policy} ${p}: no answers`);
      // Before and after, Redis decides: well under the limit, everything is granted.
      for (const a of [...of(policy, 'up'), ...of(policy, 'back')]) {
        assert.deepEqual([a.code, a.granted], [StatusCode.OK, 1], `${policy} ${a.phase}: ${a.message}`);
      }
    }
    assert.ok(of('FAIL_OPEN', 'down').every((a) => a.code === StatusCode.OK && a.granted === 1));
    assert.ok(of('FAIL_CLOSE', 'down').every((a) => a.code === StatusCode.UNAVAILABLE && a.granted === 0));
    const local = of('LOCAL_FALLBACK', 'down');
    assert.ok(local.every((a) => a.code === StatusCode.OK || /counted locally/.test(a.message)));
    assert.ok(sum(local.map((a) => a.granted)) <= 10, `local grants ${sum(local.map((a) => a.granted))}`);
    assert.ok(
      local.some((a) => a.code === StatusCode.RESOURCE_EXHAUSTED),
      'the local share ran out',
    );
    for (const [policy, h] of Object.entries(policies)) {
      assert.equal(
        h.logger.lines.filter((l) => l.startsWith('warn: ')).length,
        1,
        `${policy}: ${h.logger.lines.join('\n')}`,
      );
      assert.equal(h.logger.lines.filter((l) => /Redis answers again/.test(l)).length, 1, policy);
      assert.equal(h.handler.stats().redis.outages, 1);
    }
  });

  it('answers by its failure policy within the timeout when Redis hangs', async () => {
    const closed = await harness({ onRedisFailure: 'FAIL_CLOSE' });
    assert.equal((await closed.ask(1)).grantedAmount, 1);
    // A paused server accepts the command and never answers.
    process.kill(redis.server.pid, 'SIGSTOP');
    try {
      const started = Date.now();
      const answer = await closed.ask(1);
      assert.equal(answer.status.code, StatusCode.UNAVAILABLE);
      assert.ok(Date.now() - started < 2000, `answered after ${Date.now() - started} ms`);
    } finally {
      process.kill(redis.server.pid, 'SIGCONT');
    }
    await eventually('Redis answering again', async () => (await closed.ask(1)).grantedAmount === 1);
  });
});

describe('redisquota: Redis Cluster and Sentinel', function () {
  this.timeout(90_000);

  it('counts exactly on a three-primary Cluster, each quota with its keys in one slot', async () => {
    const cluster = await RedisCluster.start();
    const harnesses: RedisHarness[] = [];
    try {
      const quotas = ['a', 'b', 'c', 'd'].map((n) => ({
        name: `${n}.instance.istio-system`,
        maxAmount: 7,
        validDuration: '60s',
      }));
      const keyPrefix = `test:cluster:${Date.now()}:`;
      for (let i = 0; i < 2; i++) {
        harnesses.push(
          await RedisHarness.build({
            cluster: { nodes: cluster.nodes.map((n) => n.address) },
            connectionPoolSize: 1,
            keyPrefix,
            quotas,
          }),
        );
      }
      // Deduplication ids make each decision touch two keys: the hash tag keeps them in one slot.
      const asks = quotas.flatMap((q) =>
        Array.from({ length: 20 }, (_, i) =>
          harnesses[i % 2]!.ask(1, { instance: q.name, deduplicationId: `${q.name}-${i}` }),
        ),
      );
      const results = await Promise.all(asks);
      const byQuota = quotas.map((_, q) =>
        sum(results.slice(q * 20, q * 20 + 20).map((r) => r.grantedAmount)),
      );
      assert.deepEqual(byQuota, [7, 7, 7, 7]);
      assert.ok(
        results.every(
          (r) => r.status.code === StatusCode.OK || r.status.code === StatusCode.RESOURCE_EXHAUSTED,
        ),
      );
    } finally {
      for (const h of harnesses) await h.close();
      await cluster.stop();
    }
  });

  it('follows a Sentinel failover during traffic, and decides correctly after it', async () => {
    const set = await RedisSentinelSet.start();
    const harnesses: RedisHarness[] = [];
    try {
      const h = await RedisHarness.build({
        sentinel: { masterName: RedisSentinelSet.MASTER_NAME, addresses: [set.sentinel.address] },
        connectionPoolSize: 2,
        timeout: '200ms',
        quotas: [
          {
            name: 'during.instance.istio-system',
            maxAmount: 1_000_000,
            validDuration: '60s',
            onRedisFailure: 'FAIL_CLOSE',
          },
          { name: 'after.instance.istio-system', maxAmount: 5, validDuration: '60s' },
        ],
      });
      harnesses.push(h);
      let stop = false;
      const codes = new Map<number, number>();
      const traffic = (async () => {
        while (!stop) {
          const answer = await h.ask(1, { instance: 'during.instance.istio-system' });
          codes.set(answer.status.code, (codes.get(answer.status.code) ?? 0) + 1);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 200));
      await set.failover();
      // Decisions resume against the new primary.
      await eventually(
        'a decision from the new primary',
        async () => (await h.ask(1, { instance: 'during.instance.istio-system' })).grantedAmount === 1,
        30_000,
      );
      stop = true;
      await traffic;
      assert.ok((codes.get(StatusCode.OK) ?? 0) > 0, JSON.stringify([...codes]));
      // Only OK and, while the primary changed, UNAVAILABLE: never a wrong RESOURCE_EXHAUSTED.
      assert.deepEqual(
        [...codes.keys()].filter((c) => c !== StatusCode.OK && c !== StatusCode.UNAVAILABLE),
        [],
      );
      assert.deepEqual(
        await h.askMany(7, 1, { instance: 'after.instance.istio-system' }),
        [1, 1, 1, 1, 1, 0, 0],
      );
    } finally {
      for (const h of harnesses) await h.close();
      await set.stop();
    }
  });
});
