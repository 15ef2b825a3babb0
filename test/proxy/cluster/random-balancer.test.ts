import { strict as assert } from 'node:assert';
import { createCluster, type Cluster } from '../../../proxy/cluster';
import { assertProportion, clusterConfig, endpointById, seededRandom, tally } from './support';

const WEIGHTED = clusterConfig(`
name: b
loadBalancing: { policy: RANDOM }
endpoints:
  - { host: 10.0.0.1, port: 80, weight: 1 }
  - { host: 10.0.0.2, port: 80, weight: 2 }
  - { host: 10.0.0.3, port: 80, weight: 7 }
`);

describe('proxy/cluster: RANDOM', () => {
  let cluster: Cluster;
  afterEach(() => cluster.close());

  it('draws endpoints in proportion to their weights', () => {
    cluster = createCluster(WEIGHTED, { random: seededRandom(11) });
    const trials = 20_000;
    const counts = tally(Array.from({ length: trials }, () => cluster.pick()!.id));
    assertProportion(counts.get('10.0.0.1:80')!, trials, 0.1, 'weight 1 of 10');
    assertProportion(counts.get('10.0.0.2:80')!, trials, 0.2, 'weight 2 of 10');
    assertProportion(counts.get('10.0.0.3:80')!, trials, 0.7, 'weight 7 of 10');
  });

  it('draws equal endpoints uniformly', () => {
    cluster = createCluster(
      clusterConfig(`
name: b
loadBalancing: { policy: RANDOM }
endpoints: [{ host: 10.0.0.1, port: 80 }, { host: 10.0.0.2, port: 80 }, { host: 10.0.0.3, port: 80 }, { host: 10.0.0.4, port: 80 }]
`),
      { random: seededRandom(12) },
    );
    const trials = 20_000;
    const counts = tally(Array.from({ length: trials }, () => cluster.pick()!.id));
    assert.equal(counts.size, 4);
    for (const [id, count] of counts) assertProportion(count, trials, 0.25, id);
  });

  it('is the same sequence for the same seed', () => {
    const a = createCluster(WEIGHTED, { random: seededRandom(99) });
    cluster = createCluster(WEIGHTED, { random: seededRandom(99) });
    const first = Array.from({ length: 50 }, () => a.pick()!.id);
    const second = Array.from({ length: 50 }, () => cluster.pick()!.id);
    void a.close();
    assert.deepEqual(first, second);
    assert.ok(new Set(first).size > 1);
  });

  it('avoids the failed endpoint and splits the rest by their weights', () => {
    cluster = createCluster(WEIGHTED, { random: seededRandom(13) });
    const heavy = endpointById(cluster, '10.0.0.3:80');
    const trials = 9000;
    const counts = tally(Array.from({ length: trials }, () => cluster.pick({ avoid: heavy })!.id));
    assert.equal(counts.get('10.0.0.3:80'), undefined);
    assertProportion(counts.get('10.0.0.1:80')!, trials, 1 / 3, 'weight 1 of the remaining 3');
    assertProportion(counts.get('10.0.0.2:80')!, trials, 2 / 3, 'weight 2 of the remaining 3');
  });
});
