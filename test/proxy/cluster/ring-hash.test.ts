import { strict as assert } from 'node:assert';
import { createCluster, type Cluster, type ClusterEnvironment } from '../../../proxy/cluster';
import { assertProportion, clusterConfig, endpointById, ManualClock, seededRandom, tally } from './support';

const HOSTS = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'];

function ringCluster(
  hosts: readonly string[],
  environment?: Partial<ClusterEnvironment>,
  extra = '',
): Cluster {
  return createCluster(
    clusterConfig(`
name: b
loadBalancing: { policy: RING_HASH, hashOn: { header: x-user } }
endpoints: [${hosts.map((host) => `{ host: ${host}, port: 80 }`).join(', ')}]
${extra}
`),
    environment,
  );
}

const KEYS = Array.from({ length: 5000 }, (_, i) => `user-${i}`);

/** Where each key goes. */
function placement(cluster: Cluster): string[] {
  return KEYS.map((hashKey) => cluster.pick({ hashKey })!.id);
}

describe('proxy/cluster: RING_HASH', () => {
  const clusters: Cluster[] = [];
  const track = (cluster: Cluster): Cluster => {
    clusters.push(cluster);
    return cluster;
  };
  afterEach(async () => {
    await Promise.all(clusters.map((c) => c.close()));
    clusters.length = 0;
  });

  it('sends the same key to the same endpoint, every time and in every proxy', () => {
    const first = placement(track(ringCluster(HOSTS, { random: seededRandom(1) })));
    const again = placement(track(ringCluster(HOSTS, { random: seededRandom(2) })));
    assert.deepEqual(again, first);
    assert.equal(new Set(first).size, HOSTS.length, 'keys reach every endpoint');
  });

  it('spreads keys evenly over equal endpoints', () => {
    const counts = tally(placement(track(ringCluster(HOSTS))));
    for (const [id, count] of counts) {
      assert.ok(Math.abs(count / KEYS.length - 0.2) <= 0.04, `${id}: ${count} of ${KEYS.length} keys`);
    }
  });

  it('gives an endpoint keys in proportion to its weight', () => {
    const cluster = track(
      createCluster(
        clusterConfig(`
name: b
loadBalancing: { policy: RING_HASH, hashOn: { cookie: session } }
endpoints: [{ host: 10.0.0.1, port: 80, weight: 3 }, { host: 10.0.0.2, port: 80 }]
`),
      ),
    );
    const counts = tally(placement(cluster));
    const share = counts.get('10.0.0.1:80')! / KEYS.length;
    assert.ok(Math.abs(share - 0.75) <= 0.04, `weight 3 of 4 got ${share}`);
  });

  it('moves only the keys of an endpoint removed from the configuration', () => {
    const before = placement(track(ringCluster(HOSTS)));
    const after = placement(track(ringCluster(HOSTS.filter((host) => host !== '10.0.0.3'))));
    let moved = 0;
    before.forEach((id, i) => {
      if (id === '10.0.0.3:80') {
        assert.notEqual(after[i], id);
        moved++;
      } else {
        assert.equal(after[i], id, `key ${KEYS[i]} moved from ${id} to ${after[i]}`);
      }
    });
    assert.ok(moved > 0);
  });

  it('moves only the keys of an ejected endpoint, to the next owner along the ring, and back on its return', () => {
    const clock = new ManualClock();
    const cluster = track(
      ringCluster(
        HOSTS,
        { now: clock.now },
        'outlierDetection: { consecutive5xx: 1, baseEjectionTimeMs: 1000 }',
      ),
    );
    const before = placement(cluster);
    cluster.attemptFinished(endpointById(cluster, '10.0.0.3:80'), { kind: 'response', status: 503 });
    assert.equal(cluster.stats().ejectedEndpoints, 1);
    const during = placement(cluster);
    // Walking past the unavailable endpoint's points is the same as a ring without it.
    const without = placement(track(ringCluster(HOSTS.filter((host) => host !== '10.0.0.3'))));
    assert.deepEqual(during, without);
    before.forEach((id, i) => {
      if (id !== '10.0.0.3:80') assert.equal(during[i], id);
    });
    clock.advance(1000);
    assert.deepEqual(placement(cluster), before);
  });

  it('moves only keys to a new endpoint when one is added', () => {
    const before = placement(track(ringCluster(HOSTS)));
    const after = placement(track(ringCluster([...HOSTS, '10.0.0.6'])));
    before.forEach((id, i) => assert.ok(after[i] === id || after[i] === '10.0.0.6:80'));
    assertProportion(
      after.filter((id) => id === '10.0.0.6:80').length,
      KEYS.length,
      1 / 6,
      'keys of the new one',
    );
  });

  it('sends a retry to the next endpoint along the ring, the same one whatever the first attempt was', () => {
    const cluster = track(ringCluster(HOSTS));
    const without3 = track(ringCluster(HOSTS.filter((host) => host !== '10.0.0.3')));
    for (const hashKey of KEYS.slice(0, 500)) {
      const first = cluster.pick({ hashKey })!;
      const retry = cluster.pick({ hashKey, avoid: first })!;
      assert.notEqual(retry.id, first.id);
      if (first.id === '10.0.0.3:80') assert.equal(retry.id, without3.pick({ hashKey })!.id);
    }
  });

  it('balances requests without a key at random', () => {
    const cluster = track(ringCluster(HOSTS, { random: seededRandom(5) }));
    const trials = 10_000;
    const counts = tally(Array.from({ length: trials }, () => cluster.pick()!.id));
    for (const [id, count] of counts) assertProportion(count, trials, 0.2, id);
    assert.equal(counts.size, HOSTS.length);
  });

  it('takes the key from the configured source', () => {
    const cluster = track(ringCluster(HOSTS));
    assert.equal(cluster.hashKey({ headers: { 'x-user': 'alice' }, sourceIp: '10.1.1.1' }), 'alice');
    assert.equal(cluster.hashKey({ headers: {}, sourceIp: '10.1.1.1' }), undefined);
    const roundRobin = track(
      createCluster(clusterConfig('{name: b, endpoints: [{host: 10.0.0.1, port: 80}]}')),
    );
    assert.equal(roundRobin.hashKey({ headers: { 'x-user': 'alice' }, sourceIp: '10.1.1.1' }), undefined);
  });
});
