/**
 * The acceptance test of exactness across replicas: three `switchboard server` processes
 * share one Redis, many concurrent proxies' Checks ask for one quota through all three,
 * and the total granted equals the limit exactly.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Client, credentials } from '@grpc/grpc-js';
import { AttributeBag, encodeCheckRequest } from '../../../../attributes';
import { mixer } from '../../../../proto';
import { startCli, stopAllCli } from '../../../support/cli-process';
import { callUnary } from '../../../support/raw-grpc-client';
import { SingleRedis } from '../../../support/redis-servers';

const LIMIT = 50;
const SERVERS = 3;
const CLIENTS_PER_SERVER = 4;
const CHECKS = 600;
const IN_FLIGHT_PER_CLIENT = 4;

function config(redisUrl: string, keyPrefix: string): string {
  return `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: shared, namespace: istio-system }
spec:
  compiledAdapter: redisquota
  params:
    redisServerUrl: ${redisUrl}
    keyPrefix: "${keyPrefix}"
    connectionPoolSize: 4
    # 600 Checks at once on two shared cores: give Redis's answers time to be read.
    timeout: 5s
    quotas:
    - name: requestcount.instance.istio-system
      maxAmount: ${LIMIT}
      validDuration: 60s
      rateLimitAlgorithm: ROLLING_WINDOW
      bucketDuration: 1s
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: requestcount, namespace: istio-system }
spec:
  compiledTemplate: quota
  params:
    dimensions:
      destination: destination.service.host | "unknown"
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: quota, namespace: istio-system }
spec:
  actions:
  - handler: shared
    instances: [requestcount]
`;
}

describe('redisquota: three policy servers sharing one Redis', function () {
  this.timeout(90_000);
  let redis: SingleRedis | undefined;
  let dir: string | undefined;
  const clients: Client[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    stopAllCli();
    await redis?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it(`grants exactly ${LIMIT} of ${CHECKS} concurrent Checks between them`, async () => {
    redis = await SingleRedis.start();
    dir = mkdtempSync(path.join(tmpdir(), 'switchboard-replicas-'));
    writeFileSync(path.join(dir, 'quota.yaml'), config(redis.url, `replicas:${Date.now()}:`));
    const servers = Array.from({ length: SERVERS }, () =>
      startCli(['server', '--config', dir as string, '--address', '127.0.0.1:0']),
    );
    const addresses = await Promise.all(
      servers.map(
        async (server) => (await server.line('stdout', /listening on (127\.0\.0\.1:\d+)/))[1] as string,
      ),
    );
    for (const address of addresses) {
      for (let i = 0; i < CLIENTS_PER_SERVER; i++) {
        // Each client on its own connection, as separate proxies would be.
        clients.push(
          new Client(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }),
        );
      }
    }
    // Every client keeps a few Checks in flight, as a proxy with concurrent requests does:
    // 48 at once over the three servers, bounded so that a busy machine does not push
    // calls past the server's handler deadline.
    const check = (i: number): ReturnType<typeof callUnary<mixer.CheckResponse>> =>
      callUnary(
        clients[i % clients.length] as Client,
        '/istio.mixer.v1.Mixer/Check',
        encodeCheckRequest({
          attributes: new AttributeBag([['destination.service.host', 'ratings.default.svc.cluster.local']]),
          deduplicationId: `check-${i}`,
          quotas: new Map([['requestcount', { amount: 1n, bestEffort: false }]]),
        }),
        (b) => mixer.CheckResponse.decode(b),
      );
    const results: Awaited<ReturnType<typeof check>>[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: clients.length * IN_FLIGHT_PER_CLIENT }, async () => {
        while (next < CHECKS) results.push(await check(next++));
      }),
    );
    let granted = 0;
    const statuses = new Map<number, number>();
    for (const result of results) {
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      const quota = result.response.quotas['requestcount'];
      assert.ok(quota !== undefined);
      granted += Number(quota.grantedAmount);
      const code = quota.status?.code ?? 0;
      statuses.set(code, (statuses.get(code) ?? 0) + 1);
    }
    assert.equal(granted, LIMIT);
    assert.deepEqual(
      [...statuses].sort(([a], [b]) => a - b),
      [
        [0, LIMIT],
        [8, CHECKS - LIMIT],
      ],
    );
  });
});
