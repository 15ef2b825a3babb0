/**
 * `SWITCHBOARD_HTTP2_SERVER`, read by the policy server and the proxy at start: which HTTP/2
 * server runs their plaintext HTTP/2.
 */
import { strict as assert } from 'node:assert';
import { http2ServerFromEnvironment } from '../../http2';

describe('http2: SWITCHBOARD_HTTP2_SERVER', () => {
  it('is our own server when unset, empty or own', () => {
    assert.equal(http2ServerFromEnvironment({}), 'own');
    assert.equal(http2ServerFromEnvironment({ SWITCHBOARD_HTTP2_SERVER: '' }), 'own');
    assert.equal(http2ServerFromEnvironment({ SWITCHBOARD_HTTP2_SERVER: 'own' }), 'own');
  });

  it('is node:http2 when node', () => {
    assert.equal(http2ServerFromEnvironment({ SWITCHBOARD_HTTP2_SERVER: 'node' }), 'node');
  });

  it('refuses any other value, naming the two that work', () => {
    assert.throws(
      () => http2ServerFromEnvironment({ SWITCHBOARD_HTTP2_SERVER: 'Node' }),
      /^Error: SWITCHBOARD_HTTP2_SERVER must be own or node, got "Node"$/,
    );
  });
});
