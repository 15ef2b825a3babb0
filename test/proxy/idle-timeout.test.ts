/**
 * The stream idle timeout (route `idleTimeout`, listener `streamIdleTimeout`): a silent
 * upstream is answered 408 before its response head, a response that stalls mid-body is cut,
 * and a slow stream that keeps moving is not touched.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { REASON_HEADER } from '../../proxy';
import {
  closeAllHarnesses,
  clusterYaml,
  request,
  startProxy,
  type ProxyHarness,
} from './support/proxy-harness';
import { startHttpUpstream, type HttpUpstream } from './support/upstreams';

/** GET through the proxy; resolves with the status, the body received, and whether it ended whole. */
function fetchPartial(
  port: number,
  path: string,
): Promise<{ status: number; body: string; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, complete: res.complete }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body, complete: false }));
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, body, complete: false }));
    });
    req.on('error', reject);
  });
}

describe('proxy stream idle timeout', () => {
  let upstream: HttpUpstream;
  const stalled: Array<() => void> = [];

  before(async () => {
    upstream = await startHttpUpstream();
  });
  after(async () => {
    await upstream.close();
  });
  afterEach(async () => {
    for (const release of stalled.splice(0)) release();
    await closeAllHarnesses();
  });

  async function proxyWith(listenerExtra: string, routeExtra: string): Promise<ProxyHarness> {
    return startProxy(`
listeners:
  - {name: in, role: inbound, address: 127.0.0.1, port: 0${listenerExtra}}
routes:
  - cluster: up
    timeout: 0s
${routeExtra}
clusters:
${clusterYaml('up', [upstream.port])}`);
  }

  it('answers 408 with its reason when the upstream says nothing for the route idleTimeout', async () => {
    upstream.handle((_req, res) => void stalled.push(() => res.end('too late')));
    const h = await proxyWith('', '    idleTimeout: 100ms');
    const answer = await request(h.port());
    assert.equal(answer.status, 408);
    assert.equal(answer.headers[REASON_HEADER], 'stream-idle-timeout');
    assert.equal(answer.body, 'no bytes in either direction for 100 ms (stream idle timeout)\n');
    assert.equal(h.proxy.stats().counters.reasons['stream-idle-timeout'], 1);
  });

  it('cuts a response that stalls after its head, by the listener streamIdleTimeout', async () => {
    upstream.handle((_req, res) => {
      res.writeHead(200, { 'content-length': '10' });
      res.write('12345');
      stalled.push(() => res.end('67890'));
    });
    const h = await proxyWith(', streamIdleTimeout: 100ms', '');
    const answer = await fetchPartial(h.port(), '/');
    assert.equal(answer.status, 200);
    assert.equal(answer.body, '12345');
    assert.equal(answer.complete, false);
    assert.equal(h.proxy.stats().counters.reasons['stream-idle-timeout'], 1);
  });

  it('lets a slow response through whole while bytes keep coming, the route overriding the listener', async () => {
    upstream.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      let sent = 0;
      const timer = setInterval(() => {
        res.write(`${sent}`);
        if (++sent === 6) {
          clearInterval(timer);
          res.end();
        }
      }, 40);
    });
    const h = await proxyWith(', streamIdleTimeout: 20ms', '    idleTimeout: 150ms');
    const answer = await fetchPartial(h.port(), '/');
    assert.deepEqual(answer, { status: 200, body: '012345', complete: true });
    assert.equal(h.proxy.stats().counters.reasons['stream-idle-timeout'], undefined);
  });
});
