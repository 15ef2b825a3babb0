import { strict as assert } from 'node:assert';
import { createCluster, type Cluster, type ClusterEnvironment } from '../../../proxy/cluster';
import { assertProportion, clusterConfig, endpointById, ManualClock, seededRandom, tally } from './support';

const INTERNAL = { kind: 'response', status: 500 } as const;

describe('proxy/cluster: cluster', () => {
  let cluster: Cluster;
  afterEach(() => cluster.close());

  function start(yaml: string, environment?: Partial<ClusterEnvironment>): void {
    cluster = createCluster(clusterConfig(yaml), environment);
  }

  describe('panic mode', () => {
    it('balances across every endpoint when none is available, and counts those picks', () => {
      const clock = new ManualClock();
      start(
        `
name: b
loadBalancing: { policy: RANDOM }
endpoints: [{ host: 10.0.0.1, port: 80 }, { host: 10.0.0.2, port: 80, weight: 3 }]
outlierDetection: { consecutive5xx: 1, maxEjectionPercent: 100, baseEjectionTimeMs: 1000 }
`,
        { random: seededRandom(41), now: clock.now },
      );
      const first = endpointById(cluster, '10.0.0.1:80');
      const second = endpointById(cluster, '10.0.0.2:80');
      cluster.attemptFinished(first, INTERNAL);
      cluster.attemptFinished(second, INTERNAL);
      assert.deepEqual([cluster.stats().healthyEndpoints, cluster.stats().ejectedEndpoints], [0, 2]);
      const trials = 4000;
      const counts = tally(Array.from({ length: trials }, () => cluster.pick()!.id));
      // Still by the cluster's policy and weights.
      assertProportion(counts.get('10.0.0.2:80')!, trials, 0.75, 'weight 3 of 4 in panic');
      assert.equal(cluster.stats().panicPicks, trials);
      assert.notEqual(
        cluster.pick({ avoid: first })!.id,
        first.id,
        'a retry still avoids the failed endpoint',
      );
      clock.advance(1000);
      cluster.pick();
      assert.equal(cluster.stats().panicPicks, trials + 1, 'no panic once endpoints are back');
    });

    it('is not entered while one endpoint is available', () => {
      const clock = new ManualClock();
      start(
        `
name: b
endpoints: [{ host: 10.0.0.1, port: 80 }, { host: 10.0.0.2, port: 80 }]
outlierDetection: { consecutive5xx: 1, maxEjectionPercent: 50 }
`,
        { now: clock.now },
      );
      cluster.attemptFinished(endpointById(cluster, '10.0.0.1:80'), INTERNAL);
      const counts = tally(Array.from({ length: 20 }, () => cluster.pick()!.id));
      assert.deepEqual([...counts], [['10.0.0.2:80', 20]]);
      assert.equal(cluster.stats().panicPicks, 0);
    });
  });

  it('hands out frozen endpoints with their id, host, port and weight', () => {
    start('{name: b, endpoints: [{host: "fd00::1", port: 8443, weight: 2}]}');
    const endpoint = cluster.pick()!;
    assert.deepEqual(endpoint, { id: '[fd00::1]:8443', host: 'fd00::1', port: 8443, weight: 2 });
    assert.ok(Object.isFrozen(endpoint));
    assert.equal(cluster.pick(), endpoint, 'the same object every time: nothing allocated per pick');
    assert.equal(cluster.name, 'b');
  });

  it('ignores outcomes of endpoints it does not have', () => {
    start('{name: b, endpoints: [{host: 10.0.0.1, port: 80}], outlierDetection: {consecutive5xx: 1}}');
    const stranger = { id: '10.9.9.9:80', host: '10.9.9.9', port: 80, weight: 1 };
    cluster.attemptStarted(stranger);
    cluster.attemptFinished(stranger, INTERNAL);
    assert.equal(cluster.stats().ejections, 0);
    assert.equal(cluster.pick({ avoid: stranger })!.id, '10.0.0.1:80');
  });

  it('closes idempotently and still picks afterwards, for requests in flight across a reload', async () => {
    start('{name: b, endpoints: [{host: 10.0.0.1, port: 80}, {host: 10.0.0.2, port: 80}]}');
    const first = cluster.close();
    assert.equal(cluster.close(), first);
    await first;
    assert.ok(cluster.pick());
  });
});
