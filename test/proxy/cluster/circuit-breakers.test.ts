import { strict as assert } from 'node:assert';
import { createCluster, type BreakerResource, type Cluster } from '../../../proxy/cluster';
import { clusterConfig } from './support';

const LIMITS: Readonly<Record<BreakerResource, number>> = {
  connections: 3,
  pendingRequests: 2,
  requests: 4,
  retries: 1,
};

describe('proxy/cluster: circuit breakers', () => {
  let cluster: Cluster;
  beforeEach(() => {
    cluster = createCluster(
      clusterConfig(`
name: b
endpoints: [{ host: 10.0.0.1, port: 80 }]
circuitBreakers: { maxConnections: 3, maxPendingRequests: 2, maxRequests: 4, maxRetries: 1 }
`),
    );
  });
  afterEach(() => cluster.close());

  for (const resource of Object.keys(LIMITS) as BreakerResource[]) {
    it(`${resource}: trips at its limit, counts each trip, and admits again after a release`, () => {
      const limit = LIMITS[resource];
      for (let i = 0; i < limit; i++)
        assert.equal(cluster.tryAcquire(resource), true, `slot ${i + 1} of ${limit}`);
      assert.equal(cluster.tryAcquire(resource), false);
      assert.equal(cluster.tryAcquire(resource), false);
      const trips = cluster.stats().breakerTrips;
      for (const other of Object.keys(LIMITS) as BreakerResource[]) {
        assert.equal(trips[other], other === resource ? 2 : 0, `${other} trips`);
      }
      cluster.release(resource);
      assert.equal(cluster.tryAcquire(resource), true);
      assert.equal(cluster.tryAcquire(resource), false);
      assert.equal(cluster.stats().breakerTrips[resource], 3);
    });
  }

  it('ignores a release of a slot never taken instead of raising the limit', () => {
    cluster.release('retries');
    cluster.release('retries');
    assert.equal(cluster.tryAcquire('retries'), true);
    assert.equal(cluster.tryAcquire('retries'), false);
  });

  it("uses Envoy's limits by default: 1024 connections, pending requests and requests, 3 retries", () => {
    const defaults = createCluster(clusterConfig('{name: d, endpoints: [{host: 10.0.0.1, port: 80}]}'));
    const admitted = (resource: BreakerResource): number => {
      let count = 0;
      while (defaults.tryAcquire(resource)) count++;
      return count;
    };
    assert.deepEqual(
      [admitted('connections'), admitted('pendingRequests'), admitted('requests'), admitted('retries')],
      [1024, 1024, 1024, 3],
    );
    void defaults.close();
  });
});
