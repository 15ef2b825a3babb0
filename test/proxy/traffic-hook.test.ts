/**
 * whilePolicyConfigured: a policy client's per-request methods are seen by the exchange only
 * while the configuration has a policy section; everything else passes through.
 */
import { strict as assert } from 'node:assert';
import { AttributeBag } from '../../attributes';
import { whilePolicyConfigured, type ProxyConfig, type RequestVerdict, type TrafficHook } from '../../proxy';
import { requestFacts } from './support/request-facts';

function configWith(policy: Record<string, unknown> | undefined): ProxyConfig {
  return { policy } as unknown as ProxyConfig;
}

describe('proxy traffic hook gate (whilePolicyConfigured)', () => {
  const calls: string[] = [];
  const inner: TrafficHook = {
    configurationApplied: (_config, generation) => void calls.push(`applied ${generation}`),
    checkRequest: (): RequestVerdict => {
      calls.push('check');
      return { allowed: true };
    },
    requestCompleted: () => void calls.push('completed'),
    close: async () => void calls.push('close'),
  };

  beforeEach(() => calls.splice(0));

  it('hides checkRequest and requestCompleted until a configuration with a policy section is applied', () => {
    const gated = whilePolicyConfigured(inner);
    assert.equal(gated.checkRequest, undefined);
    assert.equal(gated.requestCompleted, undefined);
    gated.configurationApplied!(configWith(undefined), 1);
    assert.equal(gated.checkRequest, undefined);
    assert.equal(gated.requestCompleted, undefined);
    assert.deepEqual(calls, ['applied 1']);
  });

  it('passes them on while the policy section is there, and hides them again when a reload removes it', () => {
    const gated = whilePolicyConfigured(inner);
    gated.configurationApplied!(configWith({ server: '127.0.0.1:9091' }), 1);
    assert.deepEqual(gated.checkRequest!(new AttributeBag()), { allowed: true });
    gated.requestCompleted!(requestFacts(), undefined);
    gated.configurationApplied!(configWith(undefined), 2);
    assert.equal(gated.checkRequest, undefined);
    assert.deepEqual(calls, ['applied 1', 'check', 'completed', 'applied 2']);
  });

  it('passes close on, and adds no method the hook does not have', async () => {
    const gated = whilePolicyConfigured(inner);
    await gated.close!();
    assert.deepEqual(calls, ['close']);
    assert.equal(gated.connectionOpened, undefined);
    assert.equal(gated.connectionClosed, undefined);
    const bare = whilePolicyConfigured({});
    bare.configurationApplied!(configWith({ server: '127.0.0.1:9091' }), 1);
    assert.equal(bare.checkRequest, undefined);
    assert.equal(bare.close, undefined);
  });
});
