import { strict as assert } from 'node:assert';
import { createCluster, type Cluster } from '../../../proxy/cluster';
import { clusterConfig, endpointById, ManualClock, seededRandom, tally } from './support';

function picks(cluster: Cluster, count: number): string[] {
  return Array.from({ length: count }, () => cluster.pick()!.id);
}

function longestRun(sequence: readonly string[], id: string): number {
  let longest = 0;
  let run = 0;
  for (const item of sequence) {
    run = item === id ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest;
}

describe('proxy/cluster: ROUND_ROBIN', () => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it('takes equal endpoints in turn: every window of three picks holds each once', () => {
    cluster = createCluster(
      clusterConfig(`
name: b
endpoints: [{ host: 10.0.0.1, port: 80 }, { host: 10.0.0.2, port: 80 }, { host: 10.0.0.3, port: 80 }]
`),
      { random: seededRandom(7) },
    );
    const sequence = picks(cluster, 300);
    for (let i = 0; i + 3 <= sequence.length; i++) {
      assert.equal(
        new Set(sequence.slice(i, i + 3)).size,
        3,
        `picks ${i}..${i + 2}: ${sequence.slice(i, i + 3)}`,
      );
    }
  });

  it('starts at a random endpoint, so proxies started together do not all hit the first one', () => {
    const config = clusterConfig(`
name: b
endpoints: [{ host: 10.0.0.1, port: 80 }, { host: 10.0.0.2, port: 80 }, { host: 10.0.0.3, port: 80 }]
`);
    const firsts = new Set<string>();
    for (let seed = 1; seed <= 30; seed++) {
      const c = createCluster(config, { random: seededRandom(seed) });
      firsts.add(c.pick()!.id);
      void c.close();
    }
    assert.equal(firsts.size, 3);
  });

  it('interleaves unequal weights smoothly: 5:1:1 as a a b a c a a, never five of a in a row', () => {
    cluster = createCluster(
      clusterConfig(`
name: b
endpoints:
  - { host: a, port: 80, weight: 5 }
  - { host: b, port: 80 }
  - { host: c, port: 80 }
`),
      { random: seededRandom(1) },
    );
    const sequence = picks(cluster, 700);
    assert.deepEqual(
      sequence.slice(0, 7).map((id) => id[0]),
      ['a', 'a', 'b', 'a', 'c', 'a', 'a'],
    );
    // Every 7 consecutive picks hold exactly the weights, wherever the window starts.
    for (let i = 0; i + 7 <= sequence.length; i++) {
      const counts = tally(sequence.slice(i, i + 7));
      assert.deepEqual(
        [counts.get('a:80'), counts.get('b:80'), counts.get('c:80')],
        [5, 1, 1],
        `window at ${i}`,
      );
    }
    // A plain weighted round robin sends a's five in one burst.
    assert.ok(longestRun(sequence, 'a:80') < 5);
  });

  it('gives each endpoint exactly its share of the weight', () => {
    cluster = createCluster(
      clusterConfig(`
name: b
endpoints:
  - { host: 10.0.0.1, port: 80, weight: 2 }
  - { host: 10.0.0.2, port: 80, weight: 3 }
  - { host: 10.0.0.3, port: 80, weight: 5 }
`),
    );
    const counts = tally(picks(cluster, 1000));
    assert.deepEqual(
      [counts.get('10.0.0.1:80'), counts.get('10.0.0.2:80'), counts.get('10.0.0.3:80')],
      [200, 300, 500],
    );
  });

  it('avoids the endpoint of the failed attempt when another is available', () => {
    for (const weights of ['1, 1, 1', '1, 2, 3']) {
      const [w1, w2, w3] = weights.split(', ');
      const c = createCluster(
        clusterConfig(`
name: b
endpoints:
  - { host: 10.0.0.1, port: 80, weight: ${w1} }
  - { host: 10.0.0.2, port: 80, weight: ${w2} }
  - { host: 10.0.0.3, port: 80, weight: ${w3} }
`),
        { random: seededRandom(3) },
      );
      for (let i = 0; i < 100; i++) {
        const failed = c.pick()!;
        const retry = c.pick({ avoid: failed })!;
        assert.notEqual(retry.id, failed.id, `weights ${weights}, pick ${i}`);
      }
      void c.close();
    }
    cluster = createCluster(clusterConfig('{name: b, endpoints: [{host: 10.0.0.1, port: 80}]}'));
    const only = cluster.pick()!;
    assert.equal(cluster.pick({ avoid: only }), only, 'the only endpoint is picked even when avoided');
  });

  it('skips ejected endpoints and takes them back in turn when they return', () => {
    const clock = new ManualClock();
    cluster = createCluster(
      clusterConfig(`
name: b
endpoints: [{ host: 10.0.0.1, port: 80 }, { host: 10.0.0.2, port: 80 }, { host: 10.0.0.3, port: 80 }]
outlierDetection: { consecutive5xx: 1, baseEjectionTimeMs: 1000, maxEjectionPercent: 50 }
`),
      { random: seededRandom(5), now: clock.now },
    );
    cluster.attemptFinished(endpointById(cluster, '10.0.0.2:80'), { kind: 'response', status: 500 });
    const during = tally(picks(cluster, 100));
    assert.deepEqual(
      [during.get('10.0.0.1:80'), during.get('10.0.0.2:80'), during.get('10.0.0.3:80')],
      [50, undefined, 50],
    );
    clock.advance(1000);
    const after = tally(picks(cluster, 99));
    assert.deepEqual(
      [after.get('10.0.0.1:80'), after.get('10.0.0.2:80'), after.get('10.0.0.3:80')],
      [33, 33, 33],
    );
  });
});
