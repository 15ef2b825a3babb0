import { strict as assert } from 'node:assert';
import { parse as parseYaml } from 'yaml';
import { parseWithSchema } from '../../../../adapters';
import { REDISQUOTA, parseRedisEndpoint } from '../../../../adapters/quota/redis';
import { validateConfigTexts } from '../../../../policy-server';
import { problemsOf, readmeExample } from './support';

const QUOTA = `
quotas:
- name: requestcount.instance.istio-system
  maxAmount: 10
  validDuration: 1s
`;

describe('redisquota: configuration', () => {
  it('is the quota adapter named redisquota', () => {
    assert.equal(REDISQUOTA.name, 'redisquota');
    assert.deepEqual(REDISQUOTA.templates, ['quota']);
  });

  it("loads Mixer's parameters unchanged, with Mixer's defaults (FIXED_WINDOW, pool of 10)", () => {
    const outcome = parseWithSchema(
      REDISQUOTA.config,
      parseYaml(`
redisServerUrl: redis-release-master:6379
connectionPoolSize: 10
quotas:
- name: requestcountquota.instance.istio-system
  maxAmount: 500
  validDuration: 1s
  bucketDuration: 500ms
  rateLimitAlgorithm: ROLLING_WINDOW
  overrides:
  - dimensions:
      destination: reviews
    maxAmount: 1
  - dimensions:
      destination: productpage
    maxAmount: 2
- name: other
  maxAmount: 5
  validDuration: 2s
`),
    );
    assert.ok(outcome.ok);
    assert.deepEqual(REDISQUOTA.validate!(outcome.value), []);
    assert.deepEqual(outcome.value, {
      redisServerUrl: 'redis-release-master:6379',
      connectionPoolSize: 10,
      quotas: [
        {
          name: 'requestcountquota.instance.istio-system',
          maxAmount: 500,
          validDuration: 1000,
          bucketDuration: 500,
          rateLimitAlgorithm: 'ROLLING_WINDOW',
          shadowMode: false,
          onRedisFailure: 'FAIL_CLOSE',
          overrides: [
            { dimensions: { destination: 'reviews' }, maxAmount: 1 },
            { dimensions: { destination: 'productpage' }, maxAmount: 2 },
          ],
        },
        {
          name: 'other',
          maxAmount: 5,
          validDuration: 2000,
          bucketDuration: 100,
          rateLimitAlgorithm: 'FIXED_WINDOW',
          shadowMode: false,
          onRedisFailure: 'FAIL_CLOSE',
          overrides: [],
        },
      ],
      keyPrefix: 'switchboard:quota:',
      deduplicationWindow: 1000,
      timeout: 200,
      username: '',
      password: '',
      db: 0,
    });
  });

  it("accepts Mixer's snake_case names", () => {
    const outcome = parseWithSchema(
      REDISQUOTA.config,
      parseYaml(`
redis_server_url: 127.0.0.1:6379
connection_pool_size: 2
quotas:
- name: q
  max_amount: 3
  valid_duration: 1s
  rate_limit_algorithm: TOKEN_BUCKET
  burst_size: 2
`),
    );
    assert.ok(outcome.ok);
    assert.equal(outcome.value.connectionPoolSize, 2);
    assert.equal(outcome.value.quotas[0]?.burstSize, 2);
    assert.deepEqual(REDISQUOTA.validate!(outcome.value), []);
  });

  const refusals: [string, string, { path: string; message: string }[]][] = [
    [
      'no Redis given',
      QUOTA,
      [
        {
          path: 'redisServerUrl',
          message:
            'must say where Redis is: give redisServerUrl (e.g. 127.0.0.1:6379), or a sentinel or cluster section',
        },
      ],
    ],
    [
      'two places for Redis',
      `redisServerUrl: 127.0.0.1:6379\ncluster: { nodes: [127.0.0.1:7000] }\n${QUOTA}`,
      [
        {
          path: 'cluster',
          message: 'conflicts with redisServerUrl: give only one of redisServerUrl, sentinel, cluster',
        },
      ],
    ],
    [
      'a malformed URL',
      `redisServerUrl: http://x:1\n${QUOTA}`,
      [
        {
          path: 'redisServerUrl',
          message: 'must be host:port or a redis:// or rediss:// URL, e.g. 127.0.0.1:6379, got "http://x:1"',
        },
      ],
    ],
    [
      'a sentinel address without a port',
      `sentinel: { masterName: mymaster, addresses: [127.0.0.1] }\n${QUOTA}`,
      [
        {
          path: 'sentinel.addresses[0]',
          message: 'must be host:port with a port from 1 to 65535, e.g. 127.0.0.1:26379, got "127.0.0.1"',
        },
      ],
    ],
    [
      'a key prefix with braces',
      `redisServerUrl: 127.0.0.1:6379\nkeyPrefix: "a{b}"\n${QUOTA}`,
      [
        {
          path: 'keyPrefix',
          message:
            "must not contain { or }: the adapter puts each quota's name in braces as its cluster hash tag",
        },
      ],
    ],
    [
      'burstSize on a window',
      `redisServerUrl: 127.0.0.1:6379\n${QUOTA}  burstSize: 3\n`,
      [
        {
          path: 'quotas[0].burstSize',
          message: 'applies to TOKEN_BUCKET only; remove it or set rateLimitAlgorithm: TOKEN_BUCKET',
        },
      ],
    ],
    [
      'LOCAL_FALLBACK without a share',
      `redisServerUrl: 127.0.0.1:6379\n${QUOTA}  onRedisFailure: LOCAL_FALLBACK\n`,
      [
        {
          path: 'quotas[0].fallbackPercent',
          message:
            'is required with onRedisFailure: LOCAL_FALLBACK: the share of maxAmount each server grants alone, e.g. 34 for one of three replicas',
        },
      ],
    ],
    [
      'a share without LOCAL_FALLBACK',
      `redisServerUrl: 127.0.0.1:6379\n${QUOTA}  fallbackPercent: 50\n`,
      [
        {
          path: 'quotas[0].fallbackPercent',
          message: 'applies to onRedisFailure: LOCAL_FALLBACK only, got FAIL_CLOSE; remove it',
        },
      ],
    ],
    [
      'a rolling window not cut into whole buckets (the rule memquota shares)',
      `redisServerUrl: 127.0.0.1:6379\n${QUOTA}  rateLimitAlgorithm: ROLLING_WINDOW\n  bucketDuration: 300ms\n`,
      [
        {
          path: 'quotas[0].bucketDuration',
          message:
            'must divide validDuration (1s) into whole buckets for ROLLING_WINDOW, got 300ms; give a divisor of validDuration such as 250ms',
        },
      ],
    ],
    [
      'no quotas',
      'redisServerUrl: 127.0.0.1:6379\n',
      [
        {
          path: 'quotas',
          message:
            'must list at least one quota: a redisquota handler without quotas cannot serve any instance',
        },
      ],
    ],
    [
      'an unknown algorithm',
      `redisServerUrl: 127.0.0.1:6379\n${QUOTA}  rateLimitAlgorithm: LEAKY_BUCKET\n`,
      [
        {
          path: 'quotas[0].rateLimitAlgorithm',
          message: 'must be one of FIXED_WINDOW, ROLLING_WINDOW, TOKEN_BUCKET, got "LEAKY_BUCKET"',
        },
      ],
    ],
  ];
  for (const [problem, yaml, expected] of refusals) {
    it(`refuses ${problem}`, () => {
      assert.deepEqual(problemsOf(yaml), expected);
    });
  }

  it("loads the README's example as a whole configuration", () => {
    assert.deepEqual(validateConfigTexts({ 'quota.yaml': readmeExample() }), []);
  });

  it('reads host:port and redis URLs', () => {
    assert.deepEqual(parseRedisEndpoint('10.0.0.1:6380'), { host: '10.0.0.1', port: 6380, tls: false });
    assert.deepEqual(parseRedisEndpoint('[::1]:6379'), { host: '::1', port: 6379, tls: false });
    assert.deepEqual(parseRedisEndpoint('rediss://user:p%40ss@cache.example:6390/3'), {
      host: 'cache.example',
      port: 6390,
      tls: true,
      username: 'user',
      password: 'p@ss',
      db: 3,
    });
    assert.deepEqual(parseRedisEndpoint('redis://cache.example'), {
      host: 'cache.example',
      port: 6379,
      tls: false,
    });
    assert.equal(
      parseRedisEndpoint('redis://h:1/99'),
      'names database "99"; give a number from 0 to 15 after the slash',
    );
  });
});
