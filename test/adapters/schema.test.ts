import { strict as assert } from 'node:assert';
import { parseWithSchema, s } from '../../adapters';

const QUOTAS = s.object({
  redisServerUrl: s.string(),
  connectionPoolSize: s.integer({ min: 1 }).default(10),
  quotas: s.list(
    s.object(
      {
        name: s.string(),
        maxAmount: s.integer({ min: 0 }),
        validDuration: s.duration({ positive: true }).default(1000),
        algorithm: s.enumeration(['FIXED_WINDOW', 'ROLLING_WINDOW']).default('FIXED_WINDOW'),
        dimensions: s.record(s.string()).optionalField(),
      },
      { aliases: { rateLimitAlgorithm: 'algorithm' } },
    ),
  ),
});

describe('adapters: configuration schemas', () => {
  it('applies defaults, accepts aliases, converts durations to milliseconds, and freezes', () => {
    const outcome = parseWithSchema(QUOTAS, {
      redisServerUrl: 'redis://127.0.0.1:6379',
      quotas: [{ name: 'rq', maxAmount: '500', validDuration: '1.5s', rateLimitAlgorithm: 'ROLLING_WINDOW' }],
    });
    assert.ok(outcome.ok);
    assert.deepEqual(outcome.value, {
      redisServerUrl: 'redis://127.0.0.1:6379',
      connectionPoolSize: 10,
      quotas: [{ name: 'rq', maxAmount: 500, validDuration: 1500, algorithm: 'ROLLING_WINDOW' }],
    });
    assert.ok(Object.isFrozen(outcome.value) && Object.isFrozen(outcome.value.quotas[0]));
  });

  it('returns every problem with its path', () => {
    const outcome = parseWithSchema(
      QUOTAS,
      {
        connectionPoolSize: 0,
        quotas: [
          { name: 'a', maxAmount: 1 },
          { name: 7, maxAmount: -1, validDuration: '0s', algorithm: 'TOKEN', dimension: {} },
        ],
      },
      'spec.params',
    );
    assert.ok(!outcome.ok);
    assert.deepEqual(outcome.problems, [
      { path: 'spec.params.redisServerUrl', message: 'is required: give a string' },
      { path: 'spec.params.connectionPoolSize', message: 'must be >= 1, got 0' },
      {
        path: 'spec.params.quotas[1].dimension',
        message: 'is not a known field; known fields: name, maxAmount, validDuration, algorithm, dimensions',
      },
      { path: 'spec.params.quotas[1].name', message: 'must be a string, got 7' },
      { path: 'spec.params.quotas[1].maxAmount', message: 'must be >= 0, got -1' },
      { path: 'spec.params.quotas[1].validDuration', message: 'must be > 0, got 0s' },
      {
        path: 'spec.params.quotas[1].algorithm',
        message: 'must be one of FIXED_WINDOW, ROLLING_WINDOW, got "TOKEN"',
      },
    ]);
  });

  it('names what it got when the shape is wrong', () => {
    const outcome = parseWithSchema(QUOTAS, { redisServerUrl: ['x'], quotas: { a: 1 } });
    assert.ok(!outcome.ok);
    assert.deepEqual(outcome.problems, [
      { path: 'redisServerUrl', message: 'must be a string, got a list' },
      { path: 'quotas', message: 'must be a list of mappings, got a mapping' },
    ]);
    const notDuration = parseWithSchema(s.object({ d: s.duration() }), { d: 10 });
    assert.ok(!notDuration.ok);
    assert.deepEqual(notDuration.problems, [
      { path: 'd', message: 'must be a duration such as "10s" or "100ms", got 10' },
    ]);
  });
});
