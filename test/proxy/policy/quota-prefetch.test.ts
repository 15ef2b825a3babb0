import { strict as assert } from 'node:assert';
import { AttributeBag, FlatStringMap } from '../../../attributes';
import { parsePolicySettings } from '../../../proxy/policy/policy-settings';
import { QuotaAllowance } from '../../../proxy/policy/quota-prefetch';

const OPTIONS = { minAmount: 5, predictWindowMs: 1000, closeWaitMs: 500 };

describe('proxy: a prefetched quota allowance', () => {
  it('spends only what was granted, asks for at least the minimum, and refills when half is spent', () => {
    const a = new QuotaAllowance(OPTIONS);
    assert.equal(a.take(1, 0), false, 'nothing granted yet');
    assert.equal(a.fetchAmount(1, 0), 5);
    a.granted(5, 5, 1000, 0);
    assert.equal(a.take(1, 10), true);
    assert.equal(a.take(1, 20), true);
    assert.equal(a.wantsRefill(20), false, '3 of 5 left');
    assert.equal(a.take(1, 30), true);
    assert.equal(a.wantsRefill(30), true, '2 of 5 left: half spent');
    a.refilling = true;
    assert.equal(a.wantsRefill(30), false, 'one refill at a time');
    assert.equal(a.take(1, 40), true);
    assert.equal(a.take(1, 50), true);
    assert.equal(a.take(1, 60), false, 'never more than granted');
    assert.equal(a.spentTotal, 5);
    assert.equal(a.grantedTotal, 5);
  });

  it('sizes a fetch from the last window, and expires units with their grant', () => {
    const a = new QuotaAllowance(OPTIONS);
    a.granted(100, 100, 1000, 0);
    for (let t = 0; t < 40; t++) assert.ok(a.take(1, t * 20));
    assert.equal(a.fetchAmount(1, 1100), 40, 'the last window spent 40');
    assert.equal(a.fetchAmount(1, 3500), 5, 'idle for two windows: back to the minimum');
    assert.equal(a.take(1, 1200), false, 'the grant expired after its valid duration');
  });

  it('closes after a partial grant: what it cannot cover is refused for closeWaitMs, then it asks again', () => {
    const a = new QuotaAllowance(OPTIONS);
    a.granted(10, 3, 1000, 0);
    assert.equal(a.closed(100), true);
    assert.equal(a.wantsRefill(100), false, 'no asking while closed');
    assert.ok(a.take(3, 100));
    assert.equal(a.take(1, 200), false);
    assert.equal(a.closed(499), true);
    assert.equal(a.closed(500), false);
  });
});

describe('proxy: quota specs in the policy section', () => {
  const needs = (quotas: unknown, bag: AttributeBag) => {
    const { settings, problems } = parsePolicySettings({ server: '127.0.0.1:1', quotas });
    assert.deepEqual(problems, []);
    return settings!.quotas.needsOf(bag);
  };
  const bag = new AttributeBag([
    ['request.path', '/api/items'],
    ['request.headers', new FlatStringMap(['x-user', 'bob'])],
    ['destination.service.host', 'catalog.shop.svc.cluster.local'],
  ]);

  it('matches clauses (any of them; every attribute of one), map keys, and adds charges of one quota', () => {
    assert.deepEqual(
      needs(
        {
          rules: [
            {
              match: [
                {
                  clause: {
                    'request.path': { prefix: '/api/' },
                    'request.headers[x-user]': { exact: 'bob' },
                  },
                },
              ],
              quotas: [{ quota: 'rq', charge: 2 }],
            },
            {
              match: [
                { clause: { 'request.path': { regex: '/nope' } } },
                { clause: { 'request.path': { regex: '/api/.*' } } },
              ],
              quotas: [{ quota: 'rq' }],
            },
            {
              match: [{ clause: { 'request.headers[x-user]': { exact: 'alice' } } }],
              quotas: [{ quota: 'other' }],
            },
          ],
          modes: { rq: 'prefetch' },
        },
        bag,
      ),
      [{ name: 'rq', charge: 3, mode: 'prefetch' }],
    );
  });

  it('binds QuotaSpecs to services by name or host', () => {
    const spec = {
      kind: 'QuotaSpec',
      metadata: { name: 'rc', namespace: 'shop' },
      spec: { rules: [{ quotas: [{ quota: 'rq' }] }] },
    };
    const binding = (service: string) => ({
      kind: 'QuotaSpecBinding',
      metadata: { name: 'b' },
      spec: { services: [{ name: service }], quotaSpecs: [{ name: 'rc', namespace: 'shop' }] },
    });
    assert.equal(needs({ specs: [spec], bindings: [binding('catalog')] }, bag).length, 1);
    assert.equal(needs({ specs: [spec], bindings: [binding('frontend')] }, bag).length, 0);
  });

  it('names every problem with its path', () => {
    const { problems } = parsePolicySettings({
      server: '127.0.0.1:1',
      quotas: {
        rules: [
          { match: [{ clause: { 'request.path': { glob: '/x' } } }], quotas: [{ quota: '', charge: 0 }] },
        ],
        bindings: [
          {
            kind: 'QuotaSpecBinding',
            metadata: { name: 'b' },
            spec: { services: [{ name: 'x' }], quotaSpecs: [{ name: 'missing' }] },
          },
        ],
        modes: { rq: 'sometimes' },
        extra: true,
      },
    });
    assert.deepEqual(problems, [
      { path: 'policy.quotas.extra', message: 'unknown key; known: rules, specs, bindings, modes' },
      {
        path: 'policy.quotas.rules[0].match[0].clause.request.path',
        message: 'must be one of {exact: text}, {prefix: text}, {regex: text}',
      },
      { path: 'policy.quotas.rules[0].quotas[0].quota', message: 'must name a quota' },
      { path: 'policy.quotas.rules[0].quotas[0].charge', message: 'must be a whole number >= 1, got 0' },
      {
        path: 'policy.quotas.bindings[0].spec.quotaSpecs[0]',
        message: 'names no QuotaSpec in policy.quotas.specs; known: none',
      },
      { path: 'policy.quotas.modes.rq', message: 'must be exact or prefetch, got "sometimes"' },
    ]);
  });
});
