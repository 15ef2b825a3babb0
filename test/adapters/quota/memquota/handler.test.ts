import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { AdapterEnv, TimerHandle } from '../../../../adapters';
import { MEMQUOTA, MemquotaHandler } from '../../../../adapters/quota/memquota';
import { Duration, IpAddress, Timestamp, type AttributeValue } from '../../../../attributes';
import { OK_STATUS, StatusCode } from '../../../../templates';
import {
  CONTEXT,
  Harness,
  SILENT,
  instanceOf,
  memquotaHandlerParams,
  parseParams,
  readmeExample,
  REPO_ROOT,
} from './support';

const NAME = 'requestcount.instance.istio-system';

/** One quota on the instance above; `extra` adds fields to it. */
function oneQuota(maxAmount: number, validDuration: string, extra: Record<string, unknown> = {}): object {
  return { quotas: [{ name: NAME, maxAmount, validDuration, ...extra }] };
}

function exhausted(message: string, validDurationMs: number): object {
  return { status: { code: StatusCode.RESOURCE_EXHAUSTED, message }, grantedAmount: 0, validDurationMs };
}

function granted(amount: number, validDurationMs: number): object {
  return { status: OK_STATUS, grantedAmount: amount, validDurationMs };
}

describe('memquota: handler', () => {
  let harness: Harness | undefined;
  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });
  const start = (params: string | object, startMs?: number): Harness =>
    (harness = new Harness(params, startMs));

  describe('FIXED_WINDOW', () => {
    it('grants at most maxAmount in a window that opens with the first grant and ends validDuration later', () => {
      const h = start(oneQuota(3, '1s', { rateLimitAlgorithm: 'FIXED_WINDOW' }), 1_000_300);
      assert.deepEqual(h.ask(1), granted(1, 1000));
      h.advance(500);
      assert.deepEqual(h.ask(2), granted(2, 500));
      assert.deepEqual(
        h.ask(1),
        exhausted(`memquota: quota ${NAME} is exhausted: asked for 1, 0 left of 3 per 1s (quotas[0])`, 500),
      );
      h.advance(499);
      assert.deepEqual(h.ask(1).validDurationMs, 1, 'the last millisecond of the window is still in it');
      assert.equal(h.take(1), 0);
      h.advance(1);
      assert.deepEqual(h.ask(3), granted(3, 1000), 'a new window opens at the end of the last');
      assert.equal(h.take(1), 0);
    });

    it('does not open a window without a grant', () => {
      const h = start(oneQuota(2, '1s', { rateLimitAlgorithm: 'FIXED_WINDOW' }));
      assert.deepEqual(
        h.ask(3),
        exhausted(`memquota: quota ${NAME} is exhausted: asked for 3, 2 left of 2 per 1s (quotas[0])`, 1000),
        'an ask above maxAmount never fits: ask again after a whole window, if at all',
      );
      h.advance(700);
      assert.deepEqual(h.ask(2), granted(2, 1000));
    });
  });

  describe('ROLLING_WINDOW', () => {
    it('grants at most maxAmount in any validDuration of buckets, freeing each bucket as it leaves the window', () => {
      const h = start(oneQuota(4, '1s'), 1_000_050); // buckets of 100ms (the default); this is 50ms into one
      assert.deepEqual(h.ask(2), granted(2, 950), 'counts until its bucket leaves the window');
      h.at(1_000_550);
      assert.deepEqual(h.ask(2), granted(2, 950));
      h.at(1_000_999);
      assert.deepEqual(
        h.ask(1),
        exhausted(`memquota: quota ${NAME} is exhausted: asked for 1, 0 left of 4 per 1s (quotas[0])`, 1),
        'ask again when the first bucket leaves',
      );
      h.at(1_001_000);
      assert.deepEqual(
        h.ask(3),
        exhausted(`memquota: quota ${NAME} is exhausted: asked for 3, 2 left of 4 per 1s (quotas[0])`, 500),
        'only the first bucket left: unlike a fixed window, the window does not start over',
      );
      assert.deepEqual(h.ask(2), granted(2, 1000));
      assert.equal(h.take(1), 0);
      h.at(1_001_499);
      assert.equal(h.take(1), 0);
      h.at(1_001_500);
      assert.equal(h.take(3, { bestEffort: true }), 2, 'the bucket of 2 left; the latest 2 still count');
    });

    it('rolls by the configured bucketDuration', () => {
      const h = start(oneQuota(2, '1s', { bucketDuration: '500ms' }), 2_000_000);
      assert.equal(h.take(1), 1);
      h.at(2_000_499);
      assert.equal(h.take(1), 1);
      h.at(2_000_500);
      assert.equal(h.take(1), 0);
      h.at(2_000_999);
      assert.equal(h.take(1), 0);
      h.at(2_001_000);
      assert.deepEqual(h.ask(2), granted(2, 1000), 'both grants were in the bucket that left');
    });

    it('when asked for more than is left, tells how long until that much is free', () => {
      const h = start(oneQuota(10, '1s'), 3_000_000);
      assert.equal(h.take(4), 4); // bucket 0
      h.at(3_000_300);
      assert.equal(h.take(3), 3); // bucket 3
      h.at(3_000_600);
      assert.equal(h.take(3), 3); // bucket 6
      h.at(3_000_650);
      const denied = h.ask(5);
      assert.equal(denied.status.code, StatusCode.RESOURCE_EXHAUSTED);
      assert.equal(
        denied.validDurationMs,
        650,
        'the first bucket frees only 4: the second must leave too, at 1.3s',
      );
      assert.equal(h.ask(4).validDurationMs, 350, 'the first bucket frees 4, at 1s');
      assert.equal(h.ask(1, { bestEffort: true }).validDurationMs, 350);
    });
  });

  describe('all or nothing, best effort', () => {
    for (const algorithm of ['FIXED_WINDOW', 'ROLLING_WINDOW']) {
      it(`${algorithm}: grants all or nothing unless best effort, then what is left`, () => {
        const h = start(oneQuota(5, '1s', { rateLimitAlgorithm: algorithm }));
        assert.equal(h.take(3), 3);
        const denied = h.ask(4);
        assert.equal(denied.status.code, StatusCode.RESOURCE_EXHAUSTED);
        assert.equal(
          denied.status.message,
          `memquota: quota ${NAME} is exhausted: asked for 4, 2 left of 5 per 1s (quotas[0])`,
        );
        assert.equal(denied.grantedAmount, 0);
        assert.equal(h.take(2), 2, 'a denial charges nothing');
        assert.equal(h.take(1), 0);

        h.advance(1000);
        assert.equal(h.take(3), 3);
        const partial = h.ask(4, { bestEffort: true });
        assert.equal(partial.status, OK_STATUS);
        assert.equal(partial.grantedAmount, 2);
        const none = h.ask(1, { bestEffort: true });
        assert.equal(none.status.code, StatusCode.RESOURCE_EXHAUSTED);
        assert.equal(
          none.status.message,
          `memquota: quota ${NAME} is exhausted: asked for 1, 0 left of 5 per 1s (quotas[0])`,
        );
        assert.equal(none.grantedAmount, 0);
        assert.ok(none.validDurationMs > 0 && none.validDurationMs <= 1000);
      });
    }

    it('best effort above maxAmount grants maxAmount; all or nothing never', () => {
      const h = start(oneQuota(5, '1s'));
      assert.equal(h.ask(6).validDurationMs, 1000);
      assert.equal(h.take(6), 0);
      assert.equal(h.take(6, { bestEffort: true }), 5);
    });

    it('a maxAmount of 0 grants nothing', () => {
      const h = start(oneQuota(0, '1s'));
      assert.deepEqual(
        h.ask(1, { bestEffort: true }),
        exhausted(`memquota: quota ${NAME} is exhausted: asked for 1, 0 left of 0 per 1s (quotas[0])`, 1000),
      );
    });

    it('asking for nothing is granted nothing, with OK, as in Mixer', () => {
      const h = start(oneQuota(0, '1s'));
      assert.deepEqual(h.ask(0), granted(0, 0));
    });

    it('answers INVALID_ARGUMENT for an amount that is not a whole number >= 0', () => {
      const h = start(oneQuota(5, '1s'));
      for (const amount of [-1, 1.5, Number.NaN]) {
        assert.deepEqual(h.ask(amount), {
          status: {
            code: StatusCode.INVALID_ARGUMENT,
            message: `memquota: the amount asked of quota ${NAME} must be a whole number >= 0, got ${amount}`,
          },
          grantedAmount: 0,
          validDurationMs: 0,
        });
      }
      assert.equal(h.take(5), 5, 'nothing was charged');
    });
  });

  describe('counters', () => {
    it('counts each set of dimension values apart, whatever order they are listed in', () => {
      const h = start(oneQuota(1, '1s'));
      assert.equal(h.take(1, { dimensions: { source: 'a', destination: 'b' } }), 1);
      assert.equal(h.take(1, { dimensions: { destination: 'b', source: 'a' } }), 0);
      assert.equal(h.take(1, { dimensions: { source: 'a', destination: 'c' } }), 1);
      assert.equal(h.take(1, { dimensions: { source: 'a' } }), 1);
      assert.equal(h.take(1, { dimensions: { source: 'a', destination: 'b', extra: '' } }), 1);
      assert.equal(
        h.take(1, { dimensions: { source: 'a;destination=b' } }),
        1,
        'no value can forge another key',
      );
      assert.equal(h.take(1, { dimensions: { code: '10' } }), 1);
      assert.equal(h.take(1, { dimensions: { code: 10n } }), 1, 'the string "10" is not the integer 10');
      assert.equal(h.handler.stats().counters, 7);
    });
  });

  describe('quota names', () => {
    it('serves an instance by its full name, or by its short name in every namespace, counted apart', () => {
      const h = start({
        quotas: [
          { name: 'requestcount', maxAmount: 1, validDuration: '1s' },
          { name: 'requestcount.instance.special', maxAmount: 3, validDuration: '1s' },
        ],
      });
      assert.equal(h.take(5, { instance: 'requestcount.instance.ns1', bestEffort: true }), 1);
      assert.equal(h.take(5, { instance: 'requestcount.instance.ns2', bestEffort: true }), 1);
      assert.equal(
        h.take(5, { instance: 'requestcount.instance.special', bestEffort: true }),
        3,
        'full name first',
      );
    });

    it('fails, as a fault, for an instance no quota names', () => {
      const h = start(oneQuota(1, '1s'));
      assert.throws(() => h.ask(1, { instance: 'other.instance.istio-system' }), {
        message:
          'memquota handler quota.handler.istio-system: no quota is configured for instance other.instance.istio-system ' +
          `(configured: ${NAME}); add a quota named other.instance.istio-system or other to its params`,
      });
      assert.throws(() => h.ask(1, { instance: 'requestcount.instance.default' }), /no quota is configured/);
    });
  });

  describe('overrides', () => {
    const params = `
quotas:
- name: ${NAME}
  maxAmount: 10
  validDuration: 1s
  rateLimitAlgorithm: FIXED_WINDOW
  overrides:
  - dimensions: { destination: reviews, source: 10.0.0.1 }
    maxAmount: 1
  - dimensions: { destination: reviews }
    maxAmount: 2
    validDuration: 5s
`;

    it('applies the first override whose every dimension matches, else the quota', () => {
      const h = start(params);
      const ip = (text: string) => IpAddress.parse(text)!;
      assert.equal(
        h.take(9, { dimensions: { destination: 'reviews', source: ip('10.0.0.1') }, bestEffort: true }),
        1,
      );
      assert.equal(
        h.take(9, { dimensions: { destination: 'reviews', source: ip('10.0.0.2') }, bestEffort: true }),
        2,
      );
      assert.equal(
        h.take(9, { dimensions: { destination: 'reviews' }, bestEffort: true }),
        2,
        'extra dimensions do not matter; missing ones do',
      );
      assert.equal(h.take(99, { dimensions: { destination: 'ratings' }, bestEffort: true }), 10);
      const denied = h.ask(1, { dimensions: { destination: 'reviews', source: ip('10.0.0.2') } });
      assert.equal(
        denied.status.message,
        `memquota: quota ${NAME} is exhausted: asked for 1, 0 left of 2 per 5s (quotas[0].overrides[1])`,
      );
    });

    it("counts each override with its own validDuration, defaulting to the quota's", () => {
      const h = start(params);
      const reviews = { destination: 'reviews', source: 'x' };
      const sourceOne = { destination: 'reviews', source: '10.0.0.1' };
      const ratings = { destination: 'ratings' };
      assert.deepEqual(h.ask(2, { dimensions: reviews }), granted(2, 5000));
      assert.deepEqual(h.ask(1, { dimensions: sourceOne }), granted(1, 1000));
      assert.equal(h.take(10, { dimensions: ratings }), 10);
      h.advance(1000);
      assert.equal(h.take(1, { dimensions: reviews }), 0);
      assert.equal(h.take(1, { dimensions: sourceOne }), 1);
      assert.equal(h.take(10, { dimensions: ratings }), 10);
      h.advance(3999);
      assert.equal(h.take(1, { dimensions: reviews }), 0);
      h.advance(1);
      assert.equal(h.take(2, { dimensions: reviews }), 2);
    });

    it("compares values as Mixer did: the override's text read as the dimension's type", () => {
      const match = (text: string, value: unknown): boolean => {
        const h = new Harness({
          quotas: [
            {
              name: NAME,
              maxAmount: 5,
              validDuration: '1s',
              overrides: [{ dimensions: { d: text }, maxAmount: 1 }],
            },
          ],
        });
        try {
          const dimensions: Record<string, AttributeValue> =
            value === undefined ? {} : { d: value as AttributeValue };
          return h.take(5, { dimensions, bestEffort: true }) === 1;
        } finally {
          void h.close();
        }
      };
      const cases: [string, unknown, boolean][] = [
        ['reviews', 'reviews', true],
        ['reviews', 'Reviews', false],
        ['429', 429n, true],
        ['+0429', 429n, true],
        ['429', 430n, false],
        ['4_29', 429n, false],
        ['0.5', 0.5, true],
        ['5e-1', 0.5, true],
        ['inf', Infinity, true],
        ['NaN', Number.NaN, false],
        ['true', true, true],
        ['T', true, true],
        ['1', true, true],
        ['yes', true, false],
        ['false', false, true],
        ['1s', new Duration(1, 0), true],
        ['1000ms', new Duration(1, 0), true],
        ['2s', new Duration(1, 0), false],
        ['2017-01-01T00:00:00Z', Timestamp.parse('2017-01-01T00:00:00Z'), true],
        ['2017-01-01T01:00:00+01:00', Timestamp.parse('2017-01-01T00:00:00Z'), true],
        ['2017-01-01', Timestamp.parse('2017-01-01T00:00:00Z'), false],
        ['10.28.11.20', IpAddress.parse('10.28.11.20'), true],
        ['10.28.11.20', IpAddress.parse('::ffff:10.28.11.20'), true],
        ['2001:db8::1', IpAddress.parse('2001:0db8:0:0::1'), true],
        ['2001:0db8::1', IpAddress.parse('2001:db8::1'), false],
        ['10.28.11.20', Uint8Array.from([10, 28, 11, 20]), true],
        [
          'a=1&b=2',
          new Map([
            ['b', '2'],
            ['a', '1'],
          ]),
          true,
        ],
        [
          'a=1',
          new Map([
            ['a', '1'],
            ['b', '2'],
          ]),
          false,
        ],
        ['b=x', new Map([['a', '']]), false],
        ['', undefined, true],
        ['reviews', undefined, false],
        ['', 0n, false],
      ];
      for (const [text, value, expected] of cases) {
        assert.equal(match(text, value), expected, `${JSON.stringify(text)} against ${String(value)}`);
      }
    });
  });

  describe('deduplication', () => {
    it('answers a repeated id within minDeduplicationDuration with the first result, charging nothing; later, charges again', () => {
      const h = start(oneQuota(3, '10s', { rateLimitAlgorithm: 'FIXED_WINDOW' }));
      assert.deepEqual(h.ask(1, { deduplicationId: 'a' }), granted(1, 10_000));
      h.advance(999);
      assert.deepEqual(
        h.ask(1, { deduplicationId: 'a' }),
        granted(1, 9001),
        'what is left of the first grant',
      );
      assert.equal(h.take(1, { deduplicationId: 'b' }), 1);
      assert.equal(h.handler.stats().deduplicationIds, 2);
      h.advance(1);
      assert.equal(h.take(1, { deduplicationId: 'a' }), 1, 'the default minDeduplicationDuration is 1s');
      assert.equal(h.take(1, { deduplicationId: 'c' }), 0);
    });

    it('repeats a denial too, as Mixer did', () => {
      const h = start({
        ...oneQuota(1, '1s', { rateLimitAlgorithm: 'FIXED_WINDOW' }),
        minDeduplicationDuration: '3s',
      });
      assert.equal(h.take(1), 1);
      const denied = h.ask(1, { deduplicationId: 'x' });
      assert.equal(denied.status.code, StatusCode.RESOURCE_EXHAUSTED);
      h.advance(1000);
      assert.deepEqual(h.ask(1, { deduplicationId: 'x' }), { ...denied, validDurationMs: 0 });
      assert.equal(h.take(1, { deduplicationId: 'y' }), 1);
    });

    it('keeps ids apart per instance, and never deduplicates calls without an id', () => {
      const h = start({
        quotas: [
          { name: 'a', maxAmount: 5, validDuration: '1s' },
          { name: 'b', maxAmount: 5, validDuration: '1s' },
        ],
      });
      assert.equal(h.take(1, { instance: 'a.instance.ns', deduplicationId: 'id' }), 1);
      assert.equal(h.take(1, { instance: 'b.instance.ns', deduplicationId: 'id' }), 1);
      assert.equal(h.take(1, { instance: 'a.instance.ns', deduplicationId: 'id' }), 1);
      assert.equal(
        h.take(5, { instance: 'a.instance.ns', bestEffort: true }),
        4,
        'the repeat was not charged',
      );
      assert.equal(h.take(1, { instance: 'b.instance.ns' }), 1);
      assert.equal(h.take(1, { instance: 'b.instance.ns' }), 1);
      assert.equal(h.handler.stats().deduplicationIds, 2);
    });
  });

  describe('memory', () => {
    it('drops counters whose window ended, however many keys came', () => {
      for (const algorithm of ['FIXED_WINDOW', 'ROLLING_WINDOW']) {
        const h = new Harness(oneQuota(1, '1s', { rateLimitAlgorithm: algorithm }));
        try {
          for (let i = 0; i < 1000; i++) h.take(1, { dimensions: { source: `10.0.${i >> 8}.${i & 255}` } });
          assert.equal(h.handler.stats().counters, 1000, algorithm);
          h.advance(999);
          h.take(1, { dimensions: { source: 'new' } });
          assert.equal(h.handler.stats().counters, 1001, `${algorithm}: nothing has ended yet`);
          h.advance(1);
          h.take(1, { dimensions: { source: 'newer' } });
          assert.equal(h.handler.stats().counters, 2, `${algorithm}: a call sweeps what ended`);
        } finally {
          void h.close();
        }
      }
    });

    it('keeps a rolling counter while any of its buckets is in the window', () => {
      const h = start(oneQuota(5, '1s'), 5_000_000);
      h.take(1);
      h.at(5_000_900);
      h.take(1);
      h.at(5_001_100);
      h.handler.sweep();
      assert.equal(h.handler.stats().counters, 1);
      assert.equal(h.take(5, { bestEffort: true }), 4);
      h.at(5_002_100);
      h.handler.sweep();
      assert.equal(h.handler.stats().counters, 0);
    });

    it('forgets deduplication ids after minDeduplicationDuration, however many came', () => {
      const h = start(oneQuota(1_000_000, '1s'));
      for (let i = 0; i < 1000; i++) h.take(1, { deduplicationId: `id-${i}` });
      assert.equal(h.handler.stats().deduplicationIds, 1000);
      h.advance(1000);
      h.take(1, { deduplicationId: 'another' });
      assert.equal(h.handler.stats().deduplicationIds, 1);
    });

    it('sweeps on a timer of its environment, which close cancels', async () => {
      let nowMs = 0;
      const timers: { callback: () => void; intervalMs: number; cancelled: boolean }[] = [];
      const env: AdapterEnv = {
        handlerName: 'quota.handler.istio-system',
        logger: SILENT,
        dataDir: '/nonexistent/switchboard-memquota-keeps-nothing',
        findHandler: () => undefined,
        now: () => nowMs,
        schedule: () => assert.fail('memquota schedules no one-off timer'),
        every(callback, intervalMs): TimerHandle {
          const timer = { callback, intervalMs, cancelled: false };
          timers.push(timer);
          return { cancel: () => (timer.cancelled = true) };
        },
      };
      const handler = new MemquotaHandler(
        parseParams({ ...oneQuota(1, '5s'), minDeduplicationDuration: '2s' }),
        env,
      );
      assert.equal(timers.length, 1);
      assert.equal(timers[0]!.intervalMs, 2000, 'the shortest of the durations, at least 1s');
      handler.handleQuota(
        instanceOf(NAME, { a: '1' }),
        { amount: 1, bestEffort: false, deduplicationId: 'x' },
        CONTEXT,
      );
      assert.deepEqual(handler.stats(), { counters: 1, deduplicationIds: 1 });
      nowMs = 5000;
      timers[0]!.callback();
      assert.deepEqual(handler.stats(), { counters: 0, deduplicationIds: 0 });
      await handler.close();
      assert.equal(timers[0]!.cancelled, true);
    });
  });

  describe('lifecycle', () => {
    it('closes idempotently; calls afterwards fail fast', async () => {
      const h = start(oneQuota(1, '1s'));
      await h.handler.close();
      await h.handler.close();
      assert.throws(() => h.ask(1), {
        message: 'memquota handler quota.handler.istio-system is closed: it no longer serves quota calls',
      });
    });

    it('refuses to build from params that do not validate', () => {
      const env = { handlerName: 'bad.handler.ns', logger: SILENT, now: () => 0 } as AdapterEnv;
      assert.throws(() => MEMQUOTA.build({ quotas: [], minDeduplicationDuration: 1000 }, env), {
        message:
          'memquota handler bad.handler.ns: invalid params: quotas: must list at least one quota: ' +
          'a memquota handler without quotas cannot serve any instance',
      });
    });
  });

  describe('the README example', () => {
    it('limits reviews to 1 per 5s, productpage to 2 per second except from one address, the rest to 500', () => {
      const h = start(memquotaHandlerParams(readmeExample())[0] as object);
      const name = 'requestcountquota.instance.istio-system';
      const call = (destination: string, source = '10.0.0.9') =>
        h.take(1000, {
          instance: name,
          dimensions: { destination, source, destinationVersion: 'v1' },
          bestEffort: true,
        });
      assert.equal(call('reviews'), 1);
      assert.equal(call('productpage'), 2);
      assert.equal(call('productpage', '10.28.11.20'), 500);
      assert.equal(call('ratings'), 500);
      assert.equal(call('ratings', '10.0.0.10'), 500, 'each source counts on its own');
      h.advance(1000);
      assert.equal(call('reviews'), 0);
      assert.equal(call('productpage'), 2);
      const denied = h.ask(1, {
        instance: name,
        dimensions: { destination: 'reviews', source: '10.0.0.9', destinationVersion: 'v1' },
      });
      const quoted = /`(memquota: quota [^`]*)`/.exec(
        readFileSync(path.join(REPO_ROOT, 'adapters', 'quota', 'memquota', 'README.md'), 'utf8'),
      );
      assert.equal(denied.status.message, quoted?.[1], 'the message the README quotes');
      h.advance(4000);
      assert.equal(call('reviews'), 1);
    });
  });
});
