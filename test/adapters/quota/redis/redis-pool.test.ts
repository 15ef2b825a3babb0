/**
 * The redisquota handler's pool of Redis connections against a real Redis: a call goes to a
 * connected client when there is one. After an outage the clients reconnect one by one, each
 * on its own back-off; a call sent to one still reconnecting would fail while Redis answers,
 * and start a false outage (the flapping seen after a Redis restart).
 */
import { strict as assert } from 'node:assert';
import { RedisPool } from '../../../../adapters/quota/redis/redis-pool';
import { SingleRedis } from '../../../support/redis-servers';
import { parseParams } from './support';

describe('redisquota: the connection pool', function () {
  this.timeout(30_000);

  it('sends every call to a connected client while another is reconnecting', async () => {
    const redis = await SingleRedis.start();
    const errors: Error[] = [];
    const params = parseParams({
      redisServerUrl: redis.url,
      connectionPoolSize: 3,
      quotas: [{ name: 'requestcount.instance.istio-system', maxAmount: 100, validDuration: '60s' }],
    });
    const pool = await RedisPool.open(params, (error) => errors.push(error)).catch(async (error: unknown) => {
      await redis.stop();
      throw error;
    });
    try {
      // Two of the three clients lose their connection and wait out their reconnect back-off.
      const clients = (
        pool as unknown as { clients: { status: string; disconnect(reconnect: boolean): void }[] }
      ).clients;
      clients[0]!.disconnect(true);
      clients[2]!.disconnect(true);
      // The status leaves 'ready' once the socket has closed.
      const deadline = Date.now() + 5000;
      while (clients[0]!.status === 'ready' || clients[2]!.status === 'ready') {
        if (Date.now() > deadline) throw new Error('the two clients did not lose their connection');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assert.ok(pool.connected, 'one client is still connected');
      const key = `test:${process.pid}:pool:${Date.now()}`;
      for (let i = 0; i < 12; i++) {
        // The quota script, as the handler runs it: fixed window (F), 100 per minute, one at a time.
        const reply = await pool.runQuotaScript([key], ['F', 100, 60_000, 0, 1, 0, 0]);
        assert.deepEqual((reply as number[])[0], 1, `call ${i}: granted 1`);
      }
    } finally {
      await pool.close({ warn: () => undefined, info: () => undefined, error: () => undefined } as never);
      await redis.stop();
    }
  });
});
