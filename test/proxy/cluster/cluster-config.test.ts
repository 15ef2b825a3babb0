import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  DEFAULT_CIRCUIT_BREAKERS,
  parseClusterConfig,
  type ClusterConfig,
  type ConfigProblem,
} from '../../../proxy/cluster';
import { clusterConfig } from './support';

// Compiled to dist/test/proxy/cluster/; fixtures and the README stay in the source tree.
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..', '..');
const BAD_CONFIGS = path.join(REPO_ROOT, 'test', 'proxy', 'cluster', 'fixtures', 'bad-config');

function isDeeplyFrozen(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  return Object.isFrozen(value) && Object.values(value).every(isDeeplyFrozen);
}

describe('proxy/cluster: configuration', () => {
  it('accepts the minimal form {name, endpoints: [{host, port}]} and applies every default', () => {
    const config = clusterConfig(`
name: backend
endpoints: [{ host: 127.0.0.1, port: 8080 }]
`);
    assert.deepEqual(config, {
      name: 'backend',
      protocol: 'http1',
      endpoints: [{ host: '127.0.0.1', port: 8080, weight: 1 }],
      loadBalancing: { policy: 'ROUND_ROBIN' },
      connectTimeoutMs: 5000,
      circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
    });
    assert.equal('healthCheck' in config, false, 'no health checks unless configured');
    assert.equal('outlierDetection' in config, false, 'no outlier detection unless configured');
  });

  it('reads every field', () => {
    const config = clusterConfig(`
name: reviews
protocol: http2
endpoints:
  - { host: 10.0.0.1, port: 9080, weight: 3 }
  - { host: reviews-v2.default.svc.cluster.local, port: 9080 }
  - { host: "fd00::1", port: 9080 }
loadBalancing: { policy: RING_HASH, hashOn: { header: X-User-Id } }
connectTimeoutMs: 250
healthCheck:
  intervalMs: 2000
  timeoutMs: 500
  unhealthyThreshold: 2
  healthyThreshold: 1
  http: { path: /healthz?full=1, expectedStatuses: [200, 204] }
outlierDetection:
  consecutive5xx: 3
  consecutiveGatewayErrors: 2
  baseEjectionTimeMs: 10000
  maxEjectionTimeMs: 60000
  maxEjectionPercent: 50
circuitBreakers: { maxConnections: 10, maxPendingRequests: 20, maxRequests: 30, maxRetries: 4 }
`);
    assert.deepEqual(config, {
      name: 'reviews',
      protocol: 'http2',
      endpoints: [
        { host: '10.0.0.1', port: 9080, weight: 3 },
        { host: 'reviews-v2.default.svc.cluster.local', port: 9080, weight: 1 },
        { host: 'fd00::1', port: 9080, weight: 1 },
      ],
      // Header names are matched as Node gives them: lower case.
      loadBalancing: { policy: 'RING_HASH', hashOn: { header: 'x-user-id' } },
      connectTimeoutMs: 250,
      healthCheck: {
        intervalMs: 2000,
        timeoutMs: 500,
        unhealthyThreshold: 2,
        healthyThreshold: 1,
        http: { path: '/healthz?full=1', expectedStatuses: [200, 204] },
      },
      outlierDetection: {
        consecutive5xx: 3,
        consecutiveGatewayErrors: 2,
        baseEjectionTimeMs: 10000,
        maxEjectionTimeMs: 60000,
        maxEjectionPercent: 50,
      },
      circuitBreakers: { maxConnections: 10, maxPendingRequests: 20, maxRequests: 30, maxRetries: 4 },
    });
    assert.ok(isDeeplyFrozen(config), 'the parsed config is frozen throughout');
  });

  it('gives empty sections their documented defaults: a TCP check, Envoy-like outlier detection and breakers', () => {
    const config = clusterConfig(`
name: backend
endpoints: [{ host: 127.0.0.1, port: 8080 }]
loadBalancing: {}
healthCheck: {}
outlierDetection: {}
circuitBreakers: {}
`);
    assert.deepEqual(config.loadBalancing, { policy: 'ROUND_ROBIN' });
    assert.deepEqual(config.healthCheck, {
      intervalMs: 5000,
      timeoutMs: 1000,
      unhealthyThreshold: 3,
      healthyThreshold: 2,
    });
    assert.equal(config.healthCheck!.http, undefined, 'no http section means a TCP connect check');
    assert.deepEqual(config.outlierDetection, {
      consecutive5xx: 5,
      consecutiveGatewayErrors: 0,
      baseEjectionTimeMs: 30000,
      maxEjectionTimeMs: 300000,
      maxEjectionPercent: 10,
    });
    assert.deepEqual(config.circuitBreakers, DEFAULT_CIRCUIT_BREAKERS);
    assert.ok(isDeeplyFrozen(config));
  });

  it('expects 200 from an HTTP check unless told otherwise', () => {
    const config = clusterConfig(`
name: backend
endpoints: [{ host: 127.0.0.1, port: 8080 }]
healthCheck: { http: { path: /ready } }
`);
    assert.deepEqual(config.healthCheck!.http, { path: '/ready', expectedStatuses: [200] });
  });

  it('raises the default ejection cap to the base ejection time when the base is longer than 300 s', () => {
    const config = clusterConfig(`
name: backend
endpoints: [{ host: 127.0.0.1, port: 8080 }]
outlierDetection: { baseEjectionTimeMs: 600000 }
`);
    assert.equal(config.outlierDetection!.maxEjectionTimeMs, 600000);
  });

  it('accepts each hash source', () => {
    const hashOn = (source: string): unknown =>
      clusterConfig(`
name: b
endpoints: [{ host: 127.0.0.1, port: 8080 }]
loadBalancing: { policy: RING_HASH, hashOn: ${source} }
`).loadBalancing.hashOn;
    assert.deepEqual(hashOn('{ header: x-user }'), { header: 'x-user' });
    assert.deepEqual(hashOn('{ header: ":authority" }'), { header: ':authority' });
    assert.deepEqual(hashOn('{ cookie: Session-ID }'), { cookie: 'Session-ID' });
    assert.deepEqual(hashOn('{ sourceIp: true }'), { sourceIp: true });
  });

  it('adds its problems after the ones already found in the file', () => {
    const problems: ConfigProblem[] = [{ path: 'listeners[0].port', message: 'earlier problem' }];
    const result = parseClusterConfig({ name: 'b', endpoints: [] }, 'clusters[3]', problems);
    assert.equal(result, undefined);
    assert.deepEqual(
      problems.map((p) => p.path),
      ['listeners[0].port', 'clusters[3].endpoints'],
    );
  });

  it('accepts the example of its README', () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'proxy', 'cluster', 'README.md'), 'utf8');
    const block = /```yaml\n([\s\S]*?)```/.exec(readme);
    assert.ok(block, 'README.md has a yaml block');
    const document = parseYaml(block[1]!) as { clusters: unknown[] };
    const problems: ConfigProblem[] = [];
    const configs = document.clusters.map((raw, i) => parseClusterConfig(raw, `clusters[${i}]`, problems));
    assert.deepEqual(problems, []);
    assert.ok(configs.length >= 2 && configs.every((c): c is ClusterConfig => c !== undefined));
  });

  describe('refuses each bad configuration with its exact path and message', () => {
    const fixtures = readdirSync(BAD_CONFIGS)
      .filter((file) => file.endsWith('.yaml'))
      .sort();

    it('has the fixtures it was written with', () => {
      // A fixture deleted by mistake must not silently shrink what is tested.
      assert.equal(fixtures.length, 50);
    });

    for (const file of fixtures) {
      it(file.replace(/\.yaml$/, ''), () => {
        const fixture = parseYaml(readFileSync(path.join(BAD_CONFIGS, file), 'utf8')) as {
          clusters: unknown[];
          problems: ConfigProblem[];
        };
        const problems: ConfigProblem[] = [];
        const results = fixture.clusters.map((raw, i) => parseClusterConfig(raw, `clusters[${i}]`, problems));
        assert.deepEqual(problems, fixture.problems);
        // The cluster with problems yields nothing; a good one beside it still parses.
        const bad = new Set(fixture.problems.map((p) => Number(/^clusters\[(\d+)\]/.exec(p.path)![1])));
        results.forEach((result, i) => assert.equal(result === undefined, bad.has(i), `clusters[${i}]`));
      });
    }
  });
});
