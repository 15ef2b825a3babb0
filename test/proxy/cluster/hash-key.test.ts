import { strict as assert } from 'node:assert';
import { createCluster, type Cluster, type HashSource } from '../../../proxy/cluster';
import { clusterConfig } from './support';

function keyOf(hashOn: string, source: Partial<HashSource>): string | undefined {
  const cluster: Cluster = createCluster(
    clusterConfig(`
name: b
loadBalancing: { policy: RING_HASH, hashOn: ${hashOn} }
endpoints: [{ host: 10.0.0.1, port: 80 }]
`),
  );
  void cluster.close();
  return cluster.hashKey({ headers: {}, sourceIp: '', ...source });
}

describe('proxy/cluster: hash keys', () => {
  it('reads a header, joining repeated ones as HTTP combines them', () => {
    assert.equal(keyOf('{header: X-User}', { headers: { 'x-user': 'alice' } }), 'alice');
    assert.equal(keyOf('{header: x-user}', { headers: { 'x-user': ['a', 'b'] } }), 'a, b');
    assert.equal(keyOf('{header: x-user}', { headers: { 'x-user': '' } }), undefined);
    assert.equal(keyOf('{header: x-user}', { headers: { 'x-other': 'alice' } }), undefined);
  });

  it('reads the host from :authority when an HTTP/2 request has no host header', () => {
    assert.equal(keyOf('{header: host}', { headers: { host: 'a.example' } }), 'a.example');
    assert.equal(keyOf('{header: host}', { headers: { ':authority': 'b.example' } }), 'b.example');
  });

  it('finds a cookie among others in the Cookie header', () => {
    const cookie = (header: string | string[]): string | undefined =>
      keyOf('{cookie: session}', { headers: { cookie: header } });
    assert.equal(cookie('session=abc'), 'abc');
    assert.equal(cookie('theme=dark; session=abc; lang=en'), 'abc');
    assert.equal(cookie('theme=dark;session=abc'), 'abc');
    assert.equal(cookie('oldsession=x; session=abc'), 'abc', 'a name ending in the name is another cookie');
    assert.equal(
      cookie('session_id=x; session=abc'),
      'abc',
      'a name starting with the name is another cookie',
    );
    assert.equal(cookie('session="quoted value"'), 'quoted value');
    assert.equal(cookie('session=first; session=second'), 'first');
    assert.equal(cookie(['theme=dark', 'session=abc']), 'abc', 'HTTP/2 may send cookies as several fields');
    assert.equal(cookie('theme=dark; session='), undefined);
    assert.equal(cookie('theme=dark'), undefined);
    assert.equal(cookie('Session=abc'), undefined, 'cookie names are case-sensitive');
    assert.equal(keyOf('{cookie: session}', { headers: {} }), undefined);
  });

  it('reads the client address, an IPv4-mapped IPv6 address as the IPv4 one', () => {
    assert.equal(keyOf('{sourceIp: true}', { sourceIp: '10.1.2.3' }), '10.1.2.3');
    assert.equal(keyOf('{sourceIp: true}', { sourceIp: '::ffff:10.1.2.3' }), '10.1.2.3');
    assert.equal(keyOf('{sourceIp: true}', { sourceIp: 'fd00::7' }), 'fd00::7');
    assert.equal(keyOf('{sourceIp: true}', { sourceIp: '' }), undefined);
  });
});
