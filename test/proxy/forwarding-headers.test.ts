/**
 * proxy/forwarding-headers.ts in process: the ids the proxy gives requests that come without
 * them (version 4 UUIDs for x-request-id, valid sampled W3C traceparents, all distinct) and the
 * hop-by-hop test of the hot path. No network.
 */
import { strict as assert } from 'node:assert';
import {
  HOP_BY_HOP,
  isHopByHop,
  isValidTraceparent,
  newRequestId,
  newTraceparent,
} from '../../proxy/forwarding-headers';

describe('proxy forwarding headers', () => {
  it('tells hop-by-hop names as the HOP_BY_HOP set does', () => {
    for (const name of HOP_BY_HOP) assert.equal(isHopByHop(name), true, name);
    for (const name of ['content-length', 'date', 'x-te', 'hosts', 'Connection', ''])
      assert.equal(isHopByHop(name), false, name);
  });

  it('makes version 4 UUIDs, each new', () => {
    const seen = new Set<string>();
    // Over several refills of the entropy batch.
    for (let i = 0; i < 1000; i++) {
      const id = newRequestId();
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(id);
    }
    assert.equal(seen.size, 1000);
  });

  it('makes valid sampled traceparents, each new', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const traceparent = newTraceparent();
      assert.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      assert.ok(isValidTraceparent(traceparent));
      seen.add(traceparent);
    }
    assert.equal(seen.size, 1000);
  });
});
