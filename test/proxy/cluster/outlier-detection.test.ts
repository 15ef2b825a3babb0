import { strict as assert } from 'node:assert';
import { createCluster, type AttemptOutcome, type Cluster, type Endpoint } from '../../../proxy/cluster';
import { clusterConfig, endpointById, ManualClock, seededRandom } from './support';

const OK: AttemptOutcome = { kind: 'response', status: 200 };
const NOT_FOUND: AttemptOutcome = { kind: 'response', status: 404 };
const INTERNAL: AttemptOutcome = { kind: 'response', status: 500 };
const BAD_GATEWAY: AttemptOutcome = { kind: 'response', status: 502 };
const UNAVAILABLE: AttemptOutcome = { kind: 'response', status: 503 };
const GATEWAY_TIMEOUT: AttemptOutcome = { kind: 'response', status: 504 };
const CONNECT_FAILURE: AttemptOutcome = { kind: 'connectFailure' };
const RESET: AttemptOutcome = { kind: 'reset' };
const TIMEOUT: AttemptOutcome = { kind: 'timeout' };

function hosts(count: number): string {
  return Array.from({ length: count }, (_, i) => `{ host: 10.0.0.${i + 1}, port: 80 }`).join(', ');
}

describe('proxy/cluster: outlier detection', () => {
  let clock: ManualClock;
  let cluster: Cluster;

  function start(outlierDetection: string, endpointCount = 3): void {
    clock = new ManualClock();
    cluster = createCluster(
      clusterConfig(`
name: b
endpoints: [${hosts(endpointCount)}]
outlierDetection: ${outlierDetection}
`),
      { random: seededRandom(31), now: clock.now },
    );
  }

  function finish(endpoint: Endpoint, outcome: AttemptOutcome, times = 1): void {
    for (let i = 0; i < times; i++) {
      cluster.attemptStarted(endpoint);
      cluster.attemptFinished(endpoint, outcome);
    }
  }

  function pickedIds(count = 60): Set<string> {
    return new Set(Array.from({ length: count }, () => cluster.pick()!.id));
  }

  afterEach(() => cluster.close());

  it('ejects an endpoint after consecutive5xx 5xx answers in a row, and picks around it', () => {
    start('{ consecutive5xx: 5, maxEjectionPercent: 50 }');
    const bad = endpointById(cluster, '10.0.0.2:80');
    finish(bad, INTERNAL, 4);
    assert.equal(cluster.stats().ejectedEndpoints, 0, 'four are not yet five');
    finish(bad, INTERNAL);
    assert.deepEqual(
      { ...cluster.stats(), breakerTrips: undefined },
      {
        healthyEndpoints: 2,
        ejectedEndpoints: 1,
        ejections: 1,
        ejectionsRefused: 0,
        panicPicks: 0,
        activeRequests: 0,
        breakerTrips: undefined,
      },
    );
    assert.deepEqual(pickedIds(), new Set(['10.0.0.1:80', '10.0.0.3:80']));
  });

  it('counts connect failures, resets and timeouts as 5xx, and 4xx as successes', () => {
    start('{ consecutive5xx: 3 }');
    const bad = endpointById(cluster, '10.0.0.1:80');
    finish(bad, CONNECT_FAILURE);
    finish(bad, RESET);
    finish(bad, NOT_FOUND);
    finish(bad, TIMEOUT);
    finish(bad, CONNECT_FAILURE);
    assert.equal(cluster.stats().ejectedEndpoints, 0, 'the 404 ended the streak');
    finish(bad, RESET);
    assert.equal(cluster.stats().ejectedEndpoints, 1);
  });

  it('starts the count again after a success', () => {
    start('{ consecutive5xx: 3 }');
    const endpoint = endpointById(cluster, '10.0.0.1:80');
    for (let i = 0; i < 10; i++) {
      finish(endpoint, UNAVAILABLE, 2);
      finish(endpoint, OK);
    }
    assert.equal(cluster.stats().ejections, 0);
  });

  it('ejects after consecutiveGatewayErrors gateway errors; another 5xx breaks that streak', () => {
    start('{ consecutive5xx: 100, consecutiveGatewayErrors: 3 }');
    const endpoint = endpointById(cluster, '10.0.0.1:80');
    finish(endpoint, BAD_GATEWAY);
    finish(endpoint, UNAVAILABLE);
    finish(endpoint, INTERNAL);
    finish(endpoint, GATEWAY_TIMEOUT);
    finish(endpoint, CONNECT_FAILURE);
    assert.equal(cluster.stats().ejections, 0, 'the 500 broke the gateway streak');
    finish(endpoint, TIMEOUT);
    assert.equal(cluster.stats().ejections, 1);
    const other = endpointById(cluster, '10.0.0.2:80');
    finish(other, RESET, 3);
    assert.equal(cluster.stats().ejections, 1, 'one of three, at the default 10%');
  });

  it('returns an ejected endpoint after baseEjectionTimeMs, with fresh counts', () => {
    start('{ consecutive5xx: 2, baseEjectionTimeMs: 30000 }');
    const endpoint = endpointById(cluster, '10.0.0.3:80');
    finish(endpoint, INTERNAL, 2);
    clock.advance(29_999);
    assert.equal(pickedIds().has('10.0.0.3:80'), false);
    assert.equal(cluster.stats().ejectedEndpoints, 1);
    clock.advance(1);
    assert.equal(pickedIds().has('10.0.0.3:80'), true);
    assert.deepEqual([cluster.stats().ejectedEndpoints, cluster.stats().healthyEndpoints], [0, 3]);
    finish(endpoint, INTERNAL);
    assert.equal(cluster.stats().ejectedEndpoints, 0, 'failures counted while it was out do not carry over');
  });

  it('ejects for baseEjectionTimeMs × n the n-th time, at most maxEjectionTimeMs', () => {
    start('{ consecutive5xx: 1, baseEjectionTimeMs: 1000, maxEjectionTimeMs: 2500 }');
    const endpoint = endpointById(cluster, '10.0.0.1:80');
    const ejectionLength = (): number => {
      finish(endpoint, INTERNAL);
      assert.equal(cluster.stats().ejectedEndpoints, 1);
      let elapsed = 0;
      while (cluster.stats().ejectedEndpoints === 1) {
        clock.advance(100);
        elapsed += 100;
      }
      return elapsed;
    };
    // Each right after the previous return, so the multiplier has no time to decay.
    assert.deepEqual(
      [ejectionLength(), ejectionLength(), ejectionLength(), ejectionLength()],
      [1000, 2000, 2500, 2500],
    );
  });

  it('shortens the next ejection by one base time for every base time the endpoint stayed in service', () => {
    start('{ consecutive5xx: 1, baseEjectionTimeMs: 1000, maxEjectionTimeMs: 10000 }');
    const endpoint = endpointById(cluster, '10.0.0.1:80');
    // Four ejections back to back: 1, 2, 3 and 4 base times.
    for (let n = 1; n <= 4; n++) {
      finish(endpoint, INTERNAL);
      clock.advance(n * 1000 - 1);
      assert.equal(cluster.stats().ejectedEndpoints, 1, `ejection ${n}`);
      clock.advance(1);
      assert.equal(cluster.stats().ejectedEndpoints, 0, `return ${n}`);
    }
    // Three base times in service take the multiplier from 4 to 1, so the next ejection is the second's length.
    clock.advance(3000);
    finish(endpoint, INTERNAL);
    clock.advance(1999);
    assert.equal(cluster.stats().ejectedEndpoints, 1);
    clock.advance(1);
    assert.equal(cluster.stats().ejectedEndpoints, 0);
  });

  it('does not lengthen an ejection for failures of attempts that were in flight', () => {
    start('{ consecutive5xx: 1, baseEjectionTimeMs: 1000 }');
    const endpoint = endpointById(cluster, '10.0.0.1:80');
    finish(endpoint, INTERNAL);
    clock.advance(500);
    finish(endpoint, INTERNAL, 3);
    clock.advance(500);
    assert.equal(cluster.stats().ejectedEndpoints, 0);
    assert.equal(cluster.stats().ejections, 1);
  });

  describe('maxEjectionPercent', () => {
    it('never ejects more than the share of the cluster, and counts the outliers left in', () => {
      start('{ consecutive5xx: 1, maxEjectionPercent: 20 }', 10);
      for (let i = 1; i <= 5; i++) finish(endpointById(cluster, `10.0.0.${i}:80`), INTERNAL);
      const stats = cluster.stats();
      assert.deepEqual([stats.ejectedEndpoints, stats.ejections, stats.ejectionsRefused], [2, 2, 3]);
      assert.equal(stats.healthyEndpoints, 8);
    });

    it('always allows one ejection, even when one endpoint is more than the share', () => {
      start('{ consecutive5xx: 1 }', 3);
      finish(endpointById(cluster, '10.0.0.1:80'), INTERNAL);
      finish(endpointById(cluster, '10.0.0.2:80'), INTERNAL);
      const stats = cluster.stats();
      assert.deepEqual([stats.ejectedEndpoints, stats.ejectionsRefused], [1, 1]);
    });

    it('ejects another once an ejected endpoint has returned', () => {
      start('{ consecutive5xx: 1, baseEjectionTimeMs: 1000 }', 3);
      finish(endpointById(cluster, '10.0.0.1:80'), INTERNAL);
      clock.advance(1000);
      finish(endpointById(cluster, '10.0.0.2:80'), INTERNAL);
      assert.deepEqual(pickedIds(), new Set(['10.0.0.1:80', '10.0.0.3:80']));
    });

    it('considers a refused outlier again only after another full streak', () => {
      start('{ consecutive5xx: 2, baseEjectionTimeMs: 1000 }', 3);
      finish(endpointById(cluster, '10.0.0.1:80'), INTERNAL, 2);
      const second = endpointById(cluster, '10.0.0.2:80');
      finish(second, INTERNAL, 2);
      assert.equal(cluster.stats().ejectionsRefused, 1);
      clock.advance(1000);
      finish(second, INTERNAL);
      assert.equal(cluster.stats().ejectedEndpoints, 0, 'one failure is not a new streak of two');
      finish(second, INTERNAL);
      assert.equal(cluster.stats().ejectedEndpoints, 1);
    });

    it('ejects nothing at 0', () => {
      start('{ consecutive5xx: 1, maxEjectionPercent: 0 }', 3);
      finish(endpointById(cluster, '10.0.0.1:80'), INTERNAL, 5);
      assert.deepEqual([cluster.stats().ejections, cluster.stats().ejectedEndpoints], [0, 0]);
    });
  });

  it('ejects nothing without outlierDetection', () => {
    clock = new ManualClock();
    cluster = createCluster(clusterConfig(`{name: b, endpoints: [${hosts(2)}]}`), { now: clock.now });
    finish(endpointById(cluster, '10.0.0.1:80'), INTERNAL, 100);
    assert.deepEqual([cluster.stats().ejections, cluster.stats().healthyEndpoints], [0, 2]);
  });
});
