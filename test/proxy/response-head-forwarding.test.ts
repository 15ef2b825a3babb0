/**
 * HTTP/1.1 to HTTP/1.1, the upstream's response head goes on as text (`writeReceivedHead`):
 * its lines as received (spacing, case, repeats), hop-by-hop lines and those named by its
 * `Connection` cut, one Content-Length kept of equal repeats, the route's response header
 * operations applied, our own status line, date and persistence. The traffic hook still sees
 * the head as a header object, as before.
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import type { AttributeBag } from '../../attributes';
import type { TrafficHook } from '../../proxy';
import { completedRequestAttributes } from '../../proxy/request-attributes';
import { closeAllHarnesses, clusterYaml, startProxy } from './support/proxy-harness';
import { startRawUpstream, type RawUpstream } from './support/upstreams';

/** Sends `request` on a fresh connection and reads until the proxy closes it. */
function exchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => (received += text));
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
    socket.write(request, 'latin1');
  });
}

describe('proxy HTTP/1.1 response heads forwarded as received', () => {
  let upstream: RawUpstream;

  before(async () => {
    upstream = await startRawUpstream();
  });
  after(() => upstream.close());
  afterEach(closeAllHarnesses);

  const route = `{cluster: raw, responseHeaders: {set: {x-set: new}, add: {vary: c, x-added: 'yes'}, remove: [x-remove]}}`;

  it('keeps lines as received, cuts hop-by-hop ones and applies the route operations', async () => {
    upstream.answer =
      'HTTP/1.1 200 Fine\r\n' +
      'X-Odd:   spaced  value  \r\n' +
      'Connection: keep-alive, X-Private\r\n' +
      'Keep-Alive: timeout=5\r\n' +
      'x-private: secret\r\n' +
      'Set-Cookie: a=1\r\n' +
      'Set-Cookie: b=2\r\n' +
      'Vary: a\r\n' +
      'Vary:b\r\n' +
      'Content-Length: 2\r\n' +
      'content-length: 2\r\n' +
      'TE: trailers\r\n' +
      'Proxy-Connection: keep-alive\r\n' +
      'X-Remove: gone\r\n' +
      'X-Set: old\r\n' +
      'Date: Tue, 01 Jan 2030 00:00:00 GMT\r\n' +
      '\r\nok';
    const completed: AttributeBag[] = [];
    const hook: TrafficHook = {
      requestCompleted: (facts, checked) => void completed.push(completedRequestAttributes(facts, checked)),
    };
    const harness = await startProxy(
      `
listeners: [{name: out, role: outbound, address: 127.0.0.1, port: 0}]
routes: [${route}]
clusters:
${clusterYaml('raw', [upstream.port])}`,
      { hook },
    );
    const got = await exchange(harness.port(), 'GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n');
    const [head, body] = got.split('\r\n\r\n');
    assert.equal(body, 'ok');
    assert.deepEqual(head!.split('\r\n'), [
      'HTTP/1.1 200 OK',
      'X-Odd:   spaced  value  ',
      'Set-Cookie: a=1',
      'Set-Cookie: b=2',
      'Vary: a',
      'Vary:b',
      'Content-Length: 2',
      'Date: Tue, 01 Jan 2030 00:00:00 GMT',
      'x-set: new',
      'vary: c',
      'x-added: yes',
      'connection: close',
    ]);
    // What the hook sees is built from the parsed head, as on the object path.
    const headers = completed[0]?.get('response.headers') as { get(key: string): string | undefined };
    assert.equal(headers.get('x-odd'), 'spaced  value');
    assert.equal(headers.get('vary'), 'a, b, c');
    assert.equal(headers.get('x-set'), 'new');
    assert.equal(headers.get('x-remove'), undefined);
    assert.equal(headers.get('x-private'), undefined);
    assert.equal(headers.get('keep-alive'), undefined);
    assert.equal(headers.get('connection'), undefined);
  });

  it('adds a date when the upstream sent none, and cuts a last hop-by-hop line', async () => {
    upstream.answer = 'HTTP/1.1 204 No Content\r\nX-A: 1\r\nConnection: keep-alive\r\n\r\n';
    const harness = await startProxy(`
listeners: [{name: out, role: outbound, address: 127.0.0.1, port: 0}]
routes: [{cluster: raw}]
clusters:
${clusterYaml('raw', [upstream.port])}`);
    const got = await exchange(harness.port(), 'GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n');
    const lines = got.split('\r\n');
    assert.equal(lines[0], 'HTTP/1.1 204 No Content');
    assert.equal(lines[1], 'X-A: 1');
    assert.match(lines[2]!, /^date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
    assert.deepEqual(lines.slice(3), ['connection: close', '', '']);
  });

  it('still answers 502 for an obsolete line folding', async () => {
    upstream.answer = 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\ncontent-length: 2\r\n\r\nok';
    const harness = await startProxy(`
listeners: [{name: out, role: outbound, address: 127.0.0.1, port: 0}]
routes: [{cluster: raw}]
clusters:
${clusterYaml('raw', [upstream.port])}`);
    const got = await exchange(harness.port(), 'GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n');
    assert.match(got, /^HTTP\/1\.1 502 /);
    assert.match(got, /obsolete line folding/);
  });

  it('answers 502 when a route operation value cannot be written', async () => {
    upstream.answer = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';
    const harness = await startProxy(`
listeners: [{name: out, role: outbound, address: 127.0.0.1, port: 0}]
routes: [{cluster: raw, responseHeaders: {set: {x-bad: "a\\u0001b"}}}]
clusters:
${clusterYaml('raw', [upstream.port])}`);
    const got = await exchange(harness.port(), 'GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n');
    assert.match(got, /^HTTP\/1\.1 502 /);
    assert.match(got, /could not be forwarded/);
  });
});
