import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { OK_STATUS, StatusCode, type QuotaResult } from '../../../../templates';
import { Harness } from './support';

/** A limit as the model sees it: every window length a whole number of buckets. */
interface ModelLimit {
  readonly maxAmount: number;
  readonly validDurationMs: number;
}

interface Call {
  readonly stepMs: number;
  readonly key: number;
  readonly amount: number;
  readonly bestEffort: boolean;
  /** undefined: no deduplication id. */
  readonly id: number | undefined;
}

interface Grant {
  readonly atMs: number;
  readonly amount: number;
}

const KEYS = ['reviews', 'ratings', 'details'];

const scenario = fc.record({
  algorithm: fc.constantFrom('FIXED_WINDOW' as const, 'ROLLING_WINDOW' as const),
  bucketMs: fc.constantFrom(10, 50, 100),
  buckets: fc.integer({ min: 2, max: 6 }),
  overrideBuckets: fc.integer({ min: 2, max: 6 }),
  maxAmount: fc.integer({ min: 0, max: 8 }),
  overrideMaxAmount: fc.integer({ min: 0, max: 8 }),
  minDeduplicationMs: fc.oneof(fc.integer({ min: 1, max: 500 }), fc.constantFrom(10, 100, 200)),
  startMs: fc.oneof(
    fc.integer({ min: 0, max: 10_000_000 }),
    fc.integer({ min: 0, max: 100_000 }).map((t) => t * 100),
  ),
  calls: fc.array(
    fc.record({
      // Small steps, so that windows fill up; long ones, so that they end; multiples of 10ms,
      // so that calls land exactly on the edges of buckets and windows.
      stepMs: fc.oneof(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 30 }).map((tens) => tens * 10),
      ),
      key: fc.integer({ min: 0, max: KEYS.length - 1 }),
      amount: fc.integer({ min: 0, max: 10 }),
      bestEffort: fc.boolean(),
      id: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
    }),
    { maxLength: 80 },
  ),
});

describe('memquota: properties', () => {
  it('grants exactly what a naive count of past grants allows, never more than maxAmount in any window', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const validDurationMs = s.buckets * s.bucketMs;
        const overrideValidMs = s.overrideBuckets * s.bucketMs;
        // Key 0 (reviews) has an override with its own limit and window.
        const limits: ModelLimit[] = KEYS.map((_, key) =>
          key === 0
            ? { maxAmount: s.overrideMaxAmount, validDurationMs: overrideValidMs }
            : { maxAmount: s.maxAmount, validDurationMs },
        );
        const harness = new Harness(
          {
            minDeduplicationDuration: `${s.minDeduplicationMs}ms`,
            quotas: [
              {
                name: 'requestcount',
                maxAmount: s.maxAmount,
                validDuration: `${validDurationMs}ms`,
                rateLimitAlgorithm: s.algorithm,
                bucketDuration: `${s.bucketMs}ms`,
                overrides: [
                  {
                    dimensions: { destination: 'reviews' },
                    maxAmount: s.overrideMaxAmount,
                    validDuration: `${overrideValidMs}ms`,
                  },
                ],
              },
            ],
          },
          s.startMs,
        );
        const grants: Grant[][] = KEYS.map(() => []);
        const fixedWindowStart: (number | undefined)[] = KEYS.map(() => undefined);
        const remembered = new Map<number, { result: QuotaResult; atMs: number }>();
        try {
          for (const call of s.calls as Call[]) {
            harness.advance(call.stepMs);
            const now = harness.nowMs;
            const result = harness.ask(call.amount, {
              instance: 'requestcount.instance.istio-system',
              dimensions: { destination: KEYS[call.key]!, source: '10.0.0.1' },
              bestEffort: call.bestEffort,
              deduplicationId: call.id === undefined ? '' : `id-${call.id}`,
            });
            if (call.amount === 0) {
              assert.deepEqual(result, { status: OK_STATUS, grantedAmount: 0, validDurationMs: 0 });
              continue;
            }
            const earlier = call.id === undefined ? undefined : remembered.get(call.id);
            if (earlier !== undefined && now < earlier.atMs + s.minDeduplicationMs) {
              assert.deepEqual(result, {
                ...earlier.result,
                validDurationMs: Math.max(0, earlier.result.validDurationMs - (now - earlier.atMs)),
              });
              continue;
            }

            const limit = limits[call.key]!;
            const log = grants[call.key]!;
            let used: number;
            if (s.algorithm === 'ROLLING_WINDOW') {
              const firstBucket = Math.floor(now / s.bucketMs) - limit.validDurationMs / s.bucketMs + 1;
              used = sum(log.filter((g) => Math.floor(g.atMs / s.bucketMs) >= firstBucket));
            } else {
              const start = fixedWindowStart[call.key];
              const open = start !== undefined && now < start + limit.validDurationMs;
              used = open ? sum(log.filter((g) => g.atMs >= start)) : 0;
            }
            const available = limit.maxAmount - used;
            const expected = call.amount <= available ? call.amount : call.bestEffort ? available : 0;
            assert.equal(result.grantedAmount, expected, `granted at ${now} for ${KEYS[call.key]}`);
            assert.equal(result.status.code, expected > 0 ? StatusCode.OK : StatusCode.RESOURCE_EXHAUSTED);
            assert.ok(result.validDurationMs > 0 && result.validDurationMs <= limit.validDurationMs);
            if (expected > 0) {
              log.push({ atMs: now, amount: expected });
              const start = fixedWindowStart[call.key];
              if (start === undefined || now >= start + limit.validDurationMs)
                fixedWindowStart[call.key] = now;
            }
            if (call.id !== undefined) remembered.set(call.id, { result, atMs: now });
          }
        } finally {
          void harness.close();
        }

        // Independently of the model: no window holds more than its maxAmount.
        grants.forEach((log, key) => {
          const { maxAmount, validDurationMs: windowMs } = limits[key]!;
          for (const window of s.algorithm === 'ROLLING_WINDOW'
            ? rollingWindows(log, windowMs / s.bucketMs, s.bucketMs)
            : fixedWindows(log, windowMs)) {
            assert.ok(sum(window) <= maxAmount, `${sum(window)} granted in one window of ${KEYS[key]}`);
          }
        });
      }),
      { numRuns: 500 },
    );
  });
});

function sum(grants: readonly Grant[]): number {
  return grants.reduce((total, g) => total + g.amount, 0);
}

/** The grants of every run of `buckets` consecutive buckets that starts with a grant's bucket. */
function rollingWindows(log: readonly Grant[], buckets: number, bucketMs: number): Grant[][] {
  return log.map((first) => {
    const from = Math.floor(first.atMs / bucketMs);
    return log.filter((g) => {
      const bucket = Math.floor(g.atMs / bucketMs);
      return bucket >= from && bucket < from + buckets;
    });
  });
}

/** Fixed windows as they opened: at the first grant after the previous window ended. */
function fixedWindows(log: readonly Grant[], windowMs: number): Grant[][] {
  const windows: Grant[][] = [];
  let end = -Infinity;
  for (const grant of log) {
    if (grant.atMs >= end) {
      windows.push([]);
      end = grant.atMs + windowMs;
    }
    windows[windows.length - 1]!.push(grant);
  }
  return windows;
}
