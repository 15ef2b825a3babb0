import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseWithSchema, type ConfigProblem } from '../../../../adapters';
import { MEMQUOTA } from '../../../../adapters/quota/memquota';
import { REPO_ROOT, memquotaHandlerParams, readmeExample } from './support';

/** Every problem the configuration store would report for these params: the schema's, else validate's. */
function problemsOf(yaml: string): ConfigProblem[] {
  const outcome = parseWithSchema(MEMQUOTA.config, parseYaml(yaml));
  if (!outcome.ok) return outcome.problems;
  return MEMQUOTA.validate!(outcome.value);
}

describe('memquota: configuration', () => {
  it('is the quota adapter named memquota', () => {
    assert.equal(MEMQUOTA.name, 'memquota');
    assert.deepEqual(MEMQUOTA.templates, ['quota']);
  });

  it("applies Mixer's defaults: rolling windows of 100ms buckets, overrides inheriting validDuration, 1s deduplication", () => {
    const outcome = parseWithSchema(
      MEMQUOTA.config,
      parseYaml(`
quotas:
- name: requestcount.instance.istio-system
  maxAmount: 500
  validDuration: 1s
  overrides:
  - dimensions: { destination: reviews }
    maxAmount: 50
`),
    );
    assert.ok(outcome.ok);
    assert.deepEqual(outcome.value, {
      quotas: [
        {
          name: 'requestcount.instance.istio-system',
          maxAmount: 500,
          validDuration: 1000,
          rateLimitAlgorithm: 'ROLLING_WINDOW',
          bucketDuration: 100,
          overrides: [{ dimensions: { destination: 'reviews' }, maxAmount: 50 }],
        },
      ],
      minDeduplicationDuration: 1000,
    });
    assert.deepEqual(MEMQUOTA.validate!(outcome.value), []);
  });

  it("accepts Mixer's snake_case field names", () => {
    const outcome = parseWithSchema(
      MEMQUOTA.config,
      parseYaml(`
min_deduplication_duration: 5s
quotas:
- name: requestcount
  max_amount: 10
  valid_duration: 2s
  rate_limit_algorithm: FIXED_WINDOW
  bucket_duration: 500ms
  overrides:
  - dimensions: { destination: reviews }
    max_amount: 1
    valid_duration: 4s
`),
    );
    assert.ok(outcome.ok);
    assert.deepEqual(outcome.value, {
      quotas: [
        {
          name: 'requestcount',
          maxAmount: 10,
          validDuration: 2000,
          rateLimitAlgorithm: 'FIXED_WINDOW',
          bucketDuration: 500,
          overrides: [{ dimensions: { destination: 'reviews' }, maxAmount: 1, validDuration: 4000 }],
        },
      ],
      minDeduplicationDuration: 5000,
    });
  });

  it('accepts the example in its README and the one in examples/config', () => {
    const examples = {
      'README.md': readmeExample(),
      'examples/config/request-quota.yaml': readFileSync(
        path.join(REPO_ROOT, 'examples', 'config', 'request-quota.yaml'),
        'utf8',
      ),
    };
    for (const [file, yaml] of Object.entries(examples)) {
      const all = memquotaHandlerParams(yaml);
      assert.equal(all.length, 1, file);
      const outcome = parseWithSchema(MEMQUOTA.config, all[0]);
      assert.ok(outcome.ok, `${file}: ${JSON.stringify(!outcome.ok && outcome.problems)}`);
      assert.deepEqual(MEMQUOTA.validate!(outcome.value), [], file);
    }
  });

  describe('refuses each bad configuration with its path and what would be right', () => {
    const cases: { problem: string; yaml: string; expected: ConfigProblem[] }[] = [
      {
        problem: 'no quotas',
        yaml: 'minDeduplicationDuration: 1s',
        expected: [
          {
            path: 'quotas',
            message:
              'must list at least one quota: a memquota handler without quotas cannot serve any instance',
          },
        ],
      },
      {
        problem: 'a negative maxAmount',
        yaml: 'quotas: [{ name: rq, maxAmount: -1, validDuration: 1s }]',
        expected: [{ path: 'quotas[0].maxAmount', message: 'must be >= 0, got -1' }],
      },
      {
        problem: "a negative override's maxAmount",
        yaml: `
quotas:
- name: rq
  maxAmount: 10
  validDuration: 1s
  overrides:
  - { dimensions: { destination: a }, maxAmount: 1 }
  - { dimensions: { destination: b }, maxAmount: -5 }`,
        expected: [{ path: 'quotas[0].overrides[1].maxAmount', message: 'must be >= 0, got -5' }],
      },
      {
        problem: 'a zero validDuration',
        yaml: 'quotas: [{ name: rq, maxAmount: 1, validDuration: 0s }]',
        expected: [{ path: 'quotas[0].validDuration', message: 'must be > 0, got 0s' }],
      },
      {
        problem: 'no validDuration',
        yaml: 'quotas: [{ name: rq, maxAmount: 1 }]',
        expected: [
          {
            path: 'quotas[0].validDuration',
            message: 'is required: give a duration such as "10s" or "100ms"',
          },
        ],
      },
      {
        problem: 'a validDuration below a millisecond',
        yaml: 'quotas: [{ name: rq, maxAmount: 1, validDuration: 1500us, rateLimitAlgorithm: FIXED_WINDOW }]',
        expected: [
          { path: 'quotas[0].validDuration', message: 'must be a whole number of milliseconds, got 1.5ms' },
        ],
      },
      {
        problem: 'a zero bucketDuration',
        yaml: 'quotas: [{ name: rq, maxAmount: 1, validDuration: 1s, bucketDuration: 0s }]',
        expected: [{ path: 'quotas[0].bucketDuration', message: 'must be > 0, got 0s' }],
      },
      {
        problem: 'a bucket as long as the rolling window',
        yaml: 'quotas: [{ name: rq, maxAmount: 1, validDuration: 1s, bucketDuration: 1s }]',
        expected: [
          {
            path: 'quotas[0].bucketDuration',
            message:
              'must be shorter than validDuration (1s) for ROLLING_WINDOW, got 1s; ' +
              'give a divisor of validDuration such as 100ms, or use FIXED_WINDOW',
          },
        ],
      },
      {
        problem: 'a rolling window of 1ms, which no bucket can divide',
        yaml: 'quotas: [{ name: rq, maxAmount: 1, validDuration: 1ms, bucketDuration: 1ms }]',
        expected: [
          {
            path: 'quotas[0].bucketDuration',
            message: 'must be shorter than validDuration (1ms) for ROLLING_WINDOW, got 1ms; use FIXED_WINDOW',
          },
        ],
      },
      {
        problem: 'a bucket that does not divide the rolling window',
        yaml: 'quotas: [{ name: rq, maxAmount: 1, validDuration: 1s, bucketDuration: 300ms }]',
        expected: [
          {
            path: 'quotas[0].bucketDuration',
            message:
              'must divide validDuration (1s) into whole buckets for ROLLING_WINDOW, got 300ms; ' +
              'give a divisor of validDuration such as 250ms',
          },
        ],
      },
      {
        problem: 'the default bucket not dividing the rolling window',
        yaml: 'quotas: [{ name: rq, maxAmount: 1, validDuration: 150ms }]',
        expected: [
          {
            path: 'quotas[0].bucketDuration',
            message:
              'must divide validDuration (150ms) into whole buckets for ROLLING_WINDOW, got 100ms (the default when not given); ' +
              'give a divisor of validDuration such as 75ms',
          },
        ],
      },
      {
        problem: "an override's rolling window that is not a whole number of buckets",
        yaml: `
quotas:
- name: rq
  maxAmount: 10
  validDuration: 900ms
  bucketDuration: 300ms
  overrides: [{ dimensions: { destination: a }, maxAmount: 1, validDuration: 1s }]`,
        expected: [
          {
            path: 'quotas[0].overrides[0].validDuration',
            message:
              'must be a whole number of buckets for ROLLING_WINDOW (quotas[0].bucketDuration is 300ms), got 1s; ' +
              'give a multiple of the bucket such as 900ms or 1.2s',
          },
        ],
      },
      {
        problem: "an override's rolling window of one bucket",
        yaml: `
quotas:
- name: rq
  maxAmount: 10
  validDuration: 1s
  overrides: [{ dimensions: { destination: a }, maxAmount: 1, validDuration: 100ms }]`,
        expected: [
          {
            path: 'quotas[0].overrides[0].validDuration',
            message:
              'must be longer than the bucket for ROLLING_WINDOW (quotas[0].bucketDuration is 100ms), got 100ms; ' +
              'give a multiple of it such as 200ms',
          },
        ],
      },
      {
        problem: 'an empty quota name',
        yaml: `quotas: [{ name: '', maxAmount: 1, validDuration: 1s }]`,
        expected: [
          {
            path: 'quotas[0].name',
            message:
              'must not be empty: give the name of the quota instance it limits, such as requestcount.instance.istio-system',
          },
        ],
      },
      {
        problem: 'two quotas with one name',
        yaml: `
quotas:
- { name: requestcount, maxAmount: 1, validDuration: 1s }
- { name: other, maxAmount: 1, validDuration: 1s }
- { name: requestcount, maxAmount: 2, validDuration: 1s }`,
        expected: [
          {
            path: 'quotas[2].name',
            message:
              'duplicates quotas[0].name "requestcount": each quota needs its own name; merge the two or rename one',
          },
        ],
      },
      {
        problem: 'an override without dimensions',
        yaml: 'quotas: [{ name: rq, maxAmount: 10, validDuration: 1s, overrides: [{ dimensions: {}, maxAmount: 1 }] }]',
        expected: [
          {
            path: 'quotas[0].overrides[0].dimensions',
            message:
              "must name at least one dimension: an override without dimensions would apply to every instance; change the quota's own maxAmount instead",
          },
        ],
      },
      {
        problem: 'an override that an earlier, broader one hides',
        yaml: `
quotas:
- name: rq
  maxAmount: 10
  validDuration: 1s
  overrides:
  - { dimensions: { destination: productpage }, maxAmount: 2 }
  - { dimensions: { destination: productpage, source: 10.28.11.20 }, maxAmount: 500 }`,
        expected: [
          {
            path: 'quotas[0].overrides[1]',
            message:
              'can never apply: quotas[0].overrides[0] comes first and matches every instance this one matches ' +
              '(destination="productpage"); move this override before it',
          },
        ],
      },
      {
        problem: 'a zero minDeduplicationDuration (as Mixer refused)',
        yaml: 'minDeduplicationDuration: 0s\nquotas: [{ name: rq, maxAmount: 1, validDuration: 1s }]',
        expected: [{ path: 'minDeduplicationDuration', message: 'must be > 0, got 0s' }],
      },
      {
        problem: 'an unknown algorithm',
        yaml: 'quotas: [{ name: rq, maxAmount: 1, validDuration: 1s, rateLimitAlgorithm: TOKEN_BUCKET }]',
        expected: [
          {
            path: 'quotas[0].rateLimitAlgorithm',
            message: 'must be one of FIXED_WINDOW, ROLLING_WINDOW, got "TOKEN_BUCKET"',
          },
        ],
      },
      {
        problem: 'a dimension value that is not text',
        yaml: 'quotas: [{ name: rq, maxAmount: 1, validDuration: 1s, overrides: [{ dimensions: { code: 429 }, maxAmount: 0 }] }]',
        expected: [{ path: 'quotas[0].overrides[0].dimensions.code', message: 'must be a string, got 429' }],
      },
      {
        problem: 'a misspelt field',
        yaml: 'quotas: [{ name: rq, maxAmmount: 1, validDuration: 1s }]',
        expected: [
          {
            path: 'quotas[0].maxAmmount',
            message:
              'is not a known field; known fields: name, maxAmount, validDuration, rateLimitAlgorithm, bucketDuration, overrides',
          },
          { path: 'quotas[0].maxAmount', message: 'is required: give an integer' },
        ],
      },
    ];
    for (const { problem, yaml, expected } of cases) {
      it(problem, () => assert.deepEqual(problemsOf(yaml), expected));
    }

    it('every problem at once, each at its own path', () => {
      const problems = problemsOf(`
quotas:
- name: a
  maxAmount: 5
  validDuration: 1s
  bucketDuration: 400ms
  overrides:
  - { dimensions: {}, maxAmount: 1 }
- name: a
  maxAmount: 5
  validDuration: 2s
  rateLimitAlgorithm: FIXED_WINDOW
  bucketDuration: 400ms
`);
      assert.deepEqual(
        problems.map((p) => p.path),
        ['quotas[0].bucketDuration', 'quotas[0].overrides[0].dimensions', 'quotas[1].name'],
      );
    });
  });
});
