import { strict as assert } from 'node:assert';
import { createCluster, type Cluster, type Endpoint } from '../../../proxy/cluster';
import { assertProportion, clusterConfig, endpointById, seededRandom, tally } from './support';

const OK = { kind: 'response', status: 200 } as const;

describe('proxy/cluster: LEAST_REQUEST', () => {
  let cluster: Cluster;
  afterEach(() => cluster.close());

  it('balances an idle cluster by weight', () => {
    cluster = createCluster(
      clusterConfig(`
name: b
loadBalancing: { policy: LEAST_REQUEST }
endpoints: [{ host: 10.0.0.1, port: 80, weight: 1 }, { host: 10.0.0.2, port: 80, weight: 3 }]
`),
      { random: seededRandom(21) },
    );
    const trials = 10_000;
    const picked: string[] = [];
    for (let i = 0; i < trials; i++) {
      const endpoint = cluster.pick()!;
      cluster.attemptStarted(endpoint);
      cluster.attemptFinished(endpoint, OK);
      picked.push(endpoint.id);
    }
    assertProportion(tally(picked).get('10.0.0.1:80')!, trials, 0.25, 'weight 1 of 4');
  });

  it('prefers the endpoint with fewer active requests of two drawn', () => {
    cluster = createCluster(
      clusterConfig(`
name: b
loadBalancing: { policy: LEAST_REQUEST }
endpoints: [{ host: 10.0.0.1, port: 80 }, { host: 10.0.0.2, port: 80 }, { host: 10.0.0.3, port: 80 }]
`),
      { random: seededRandom(22) },
    );
    const busy = endpointById(cluster, '10.0.0.1:80');
    for (let i = 0; i < 10; i++) cluster.attemptStarted(busy);
    const trials = 9000;
    let busyPicks = 0;
    for (let i = 0; i < trials; i++) {
      const endpoint = cluster.pick()!;
      if (endpoint.id === busy.id) busyPicks++;
    }
    // The busy endpoint wins only when both draws are it: 1/3 × 1/3.
    assertProportion(busyPicks, trials, 1 / 9, 'picks of the busy endpoint');
  });

  it('spreads requests held open in proportion to the weights', () => {
    cluster = createCluster(
      clusterConfig(`
name: b
loadBalancing: { policy: LEAST_REQUEST }
endpoints:
  - { host: 10.0.0.1, port: 80, weight: 1 }
  - { host: 10.0.0.2, port: 80, weight: 2 }
  - { host: 10.0.0.3, port: 80, weight: 5 }
`),
      { random: seededRandom(23) },
    );
    const held: Endpoint[] = [];
    for (let i = 0; i < 800; i++) {
      const endpoint = cluster.pick()!;
      cluster.attemptStarted(endpoint);
      held.push(endpoint);
    }
    const active = tally(held.map((e) => e.id));
    // Two choices keep each endpoint's load per unit of weight within a few requests of the others'.
    for (const [id, weight] of [
      ['10.0.0.1:80', 1],
      ['10.0.0.2:80', 2],
      ['10.0.0.3:80', 5],
    ] as const) {
      const share = active.get(id)! / weight;
      assert.ok(Math.abs(share - 100) <= 5, `${id}: ${active.get(id)} active for weight ${weight}`);
    }
    // Finishing them leaves the cluster idle again: counts never go below zero.
    for (const endpoint of held) cluster.attemptFinished(endpoint, OK);
    cluster.attemptFinished(held[0]!, OK);
    const busy = endpointById(cluster, '10.0.0.1:80');
    for (let i = 0; i < 3; i++) cluster.attemptStarted(busy);
    const trials = 3000;
    const picks = tally(Array.from({ length: trials }, () => cluster.pick()!.id));
    assert.ok((picks.get('10.0.0.1:80') ?? 0) < trials * 0.05, 'the one busy endpoint is rarely chosen');
  });

  it('avoids the failed endpoint when another is available', () => {
    cluster = createCluster(
      clusterConfig(`
name: b
loadBalancing: { policy: LEAST_REQUEST }
endpoints: [{ host: 10.0.0.1, port: 80 }, { host: 10.0.0.2, port: 80 }]
`),
      { random: seededRandom(24) },
    );
    const failed = endpointById(cluster, '10.0.0.2:80');
    for (let i = 0; i < 200; i++) assert.equal(cluster.pick({ avoid: failed })!.id, '10.0.0.1:80');
  });
});
