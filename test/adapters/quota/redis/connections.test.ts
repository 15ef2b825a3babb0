import { strict as assert } from 'node:assert';
import { StatusCode } from '../../../../templates';
import { SingleRedis } from '../../../support/redis-servers';
import { RedisHarness } from './support';

const QUOTAS = [{ name: 'requestcount.instance.istio-system', maxAmount: 2, validDuration: '60s' }];

describe('redisquota: connecting with a password and TLS', function () {
  this.timeout(30_000);

  it('authenticates with the password of a redis:// URL, and fails closed with the wrong one', async () => {
    const redis = await SingleRedis.start({ password: 's3cret' });
    const harnesses: RedisHarness[] = [];
    try {
      const right = await RedisHarness.build({
        redisServerUrl: `redis://:s3cret@${redis.url}`,
        quotas: QUOTAS,
      });
      harnesses.push(right);
      assert.deepEqual(await right.askMany(3), [1, 1, 0]);
      const wrong = await RedisHarness.build({ redisServerUrl: redis.url, password: 'nope', quotas: QUOTAS });
      harnesses.push(wrong);
      const answer = await wrong.ask(1);
      assert.equal(answer.status.code, StatusCode.UNAVAILABLE);
      assert.ok(
        wrong.logger.lines.some((line) => /^warn: .*Redis does not answer/.test(line)),
        wrong.logger.lines.join('\n'),
      );
    } finally {
      for (const h of harnesses) await h.close();
      await redis.stop();
    }
  });

  it('speaks TLS to a rediss:// server, checking its certificate against caFile', async () => {
    const redis = await SingleRedis.start({ tls: true, password: 'tls-pass' });
    const harnesses: RedisHarness[] = [];
    try {
      const h = await RedisHarness.build({
        redisServerUrl: `rediss://:tls-pass@${redis.url}`,
        tls: { caFile: redis.caFile },
        quotas: QUOTAS,
      });
      harnesses.push(h);
      assert.deepEqual(await h.askMany(3), [1, 1, 0]);
      // Without the CA, the self-signed certificate is refused: an outage, not a grant.
      const untrusted = await RedisHarness.build({
        redisServerUrl: `rediss://:tls-pass@${redis.url}`,
        quotas: QUOTAS,
      });
      harnesses.push(untrusted);
      assert.equal((await untrusted.ask(1)).status.code, StatusCode.UNAVAILABLE);
    } finally {
      for (const h of harnesses) await h.close();
      await redis.stop();
    }
  });
});
