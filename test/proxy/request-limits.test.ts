/**
 * A listener's `limits`: a request head over `requestHeadBytes` or with more than
 * `requestHeaders` fields is answered 431, a body over `requestBodyBytes` 413 — announced or
 * found out while it streams — on HTTP/1.1 and on h2c (both HTTP/2 servers); the upstream
 * sees no request refused before forwarding, and a refused body does not count against the
 * endpoint it was going to (attempt-accounting.test.ts for the count itself).
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import { REASON_HEADER } from '../../proxy';
import {
  closeAllHarnesses,
  clusterYaml,
  request,
  request2,
  startProxy,
  waitFor,
  type ProxyHarness,
} from './support/proxy-harness';
import { startHttpUpstream, type HttpUpstream } from './support/upstreams';

const TLS_DIR = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'proxy', 'tls');
const LIMITS = '{requestHeadBytes: 1KiB, requestHeaders: 10, requestBodyBytes: 100}';

/** Writes `text` on a fresh connection; resolves with the status line the proxy answers. */
function rawStatusLine(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let got = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      got += chunk;
      const end = got.indexOf('\r\n');
      if (end >= 0) {
        resolve(got.slice(0, end));
        socket.destroy();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(got));
  });
}

/** Attempts cluster `up` counts as under way (least-request's count). */
function activeRequests(proxy: ProxyHarness): number {
  return (proxy.proxy.stats().clusters['up'] as { activeRequests: number }).activeRequests;
}

/** Streams `total` bytes as a chunked (h1) or length-less (h2) body, then ends it, unless the answer came first. */
function chunks(total: number, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let sent = 0; sent < total; sent += size) out.push(Buffer.alloc(Math.min(size, total - sent), 0x61));
  return out;
}

describe('proxy request limits (listener limits)', function () {
  this.timeout(20_000);
  let upstream: HttpUpstream;

  before(async () => {
    upstream = await startHttpUpstream();
  });
  after(async () => {
    await upstream.close();
  });
  afterEach(async () => {
    await closeAllHarnesses();
  });

  const yaml = (limits: string): string => `
listeners:
  - {name: in, role: inbound, address: 127.0.0.1, port: 0${limits === '' ? '' : `, limits: ${limits}`}}
routes:
  - cluster: up
clusters:
${clusterYaml('up', [upstream.port])}`;

  it('HTTP/1.1: a head over requestHeadBytes or with too many fields gets 431, a body over requestBodyBytes 413', async () => {
    const proxy = await startProxy(yaml(LIMITS));
    const port = proxy.port();
    const seen = upstream.requests.length;
    const long = `GET / HTTP/1.1\r\nhost: a\r\nx-long: ${'v'.repeat(1100)}\r\n\r\n`;
    assert.match(await rawStatusLine(port, long), /^HTTP\/1\.1 431 /);
    let many = 'GET / HTTP/1.1\r\nhost: a\r\n';
    for (let i = 0; i < 11; i++) many += `x-f${i}: 1\r\n`;
    assert.match(await rawStatusLine(port, `${many}\r\n`), /^HTTP\/1\.1 431 /);
    const announced = 'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 101\r\n\r\n';
    assert.match(await rawStatusLine(port, announced), /^HTTP\/1\.1 413 /);
    assert.equal(upstream.requests.length, seen, 'nothing refused reached the upstream');
    // At the limit, all is well.
    const ok = await request(port, { method: 'POST', body: 'a'.repeat(100) });
    assert.equal(ok.status, 200);
    // A chunked body found too long as it streams.
    const streamed = await new Promise<number>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write('POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n');
        for (const chunk of chunks(300, 50))
          socket.write(`${chunk.length.toString(16)}\r\n${chunk.toString()}\r\n`);
      });
      let got = '';
      socket.setEncoding('latin1');
      socket.on('data', (c: string) => (got += c));
      socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(got)?.[1] ?? 0)));
      socket.on('error', reject);
    });
    assert.equal(streamed, 413);
  });

  for (const http2Server of ['own', 'node'] as const) {
    it(`h2c (${http2Server} server): a header list over requestHeadBytes or with too many fields gets 431 on its stream only`, async () => {
      const proxy = await startProxy(yaml(LIMITS), { http2Server });
      const session = http2.connect(`http://127.0.0.1:${proxy.port()}`);
      try {
        const seen = upstream.requests.length;
        const long = await request2(session, { ':method': 'GET', ':path': '/', 'x-long': 'v'.repeat(1100) });
        assert.equal(long.status, 431);
        const fields: http2.OutgoingHttpHeaders = { ':method': 'GET', ':path': '/' };
        for (let i = 0; i < 11; i++) fields[`x-f${i}`] = '1';
        assert.equal((await request2(session, fields)).status, 431);
        assert.equal(upstream.requests.length, seen, 'nothing refused reached the upstream');
        // Ten fields are allowed, and the connection carries on.
        delete fields['x-f10'];
        assert.equal((await request2(session, fields)).status, 200);
      } finally {
        session.close();
      }
    });
  }

  it('TLS: too many fields get 431 on HTTP/2 and on HTTP/1.1', async () => {
    const proxy = await startProxy(`
listeners:
  - name: in
    role: inbound
    address: 127.0.0.1
    port: 0
    tls: {certFile: ${path.join(TLS_DIR, 'cert.pem')}, keyFile: ${path.join(TLS_DIR, 'key.pem')}}
    limits: ${LIMITS}
routes:
  - cluster: up
clusters:
${clusterYaml('up', [upstream.port])}`);
    const ca = readFileSync(path.join(TLS_DIR, 'cert.pem'));
    const many: Record<string, string> = {};
    for (let i = 0; i < 11; i++) many[`x-f${i}`] = '1';
    const seen = upstream.requests.length;
    const session = http2.connect(`https://localhost:${proxy.port()}`, { ca });
    try {
      assert.equal((await request2(session, { ':method': 'GET', ':path': '/', ...many })).status, 431);
    } finally {
      session.close();
    }
    const viaH1 = await new Promise<number>((resolve, reject) => {
      https
        .get(
          {
            host: 'localhost',
            port: proxy.port(),
            path: '/',
            ca,
            agent: false,
            headers: many,
            ALPNProtocols: ['http/1.1'],
          } as https.RequestOptions,
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
        .on('error', reject);
    });
    assert.equal(viaH1, 431);
    assert.equal(upstream.requests.length, seen, 'nothing refused reached the upstream');
  });

  for (const http2Server of ['own', 'node'] as const) {
    it(`h2c (${http2Server} server): a body over requestBodyBytes gets 413, announced or streamed, and the endpoint is not charged`, async () => {
      const proxy = await startProxy(yaml(LIMITS), { http2Server });
      const session = http2.connect(`http://127.0.0.1:${proxy.port()}`);
      try {
        const seen = upstream.requests.length;
        const announced = await request2(
          session,
          { ':method': 'POST', ':path': '/', 'content-length': '101' },
          Buffer.alloc(101, 0x61),
        );
        assert.equal(announced.status, 413);
        assert.equal(announced.headers[REASON_HEADER], 'request-too-large');
        assert.equal(upstream.requests.length, seen, 'an announced long body is refused before forwarding');

        // No content-length: found out as it streams, after forwarding began.
        const streamed = await new Promise<{ status: number; headers: http2.IncomingHttpHeaders }>(
          (resolve, reject) => {
            const stream = session.request({ ':method': 'POST', ':path': '/' });
            stream.on('response', (headers) => resolve({ status: Number(headers[':status']), headers }));
            stream.on('error', reject);
            stream.resume();
            for (const chunk of chunks(300, 50)) stream.write(chunk);
          },
        );
        assert.equal(streamed.status, 413);
        assert.equal(streamed.headers[REASON_HEADER], 'request-too-large');

        const ok = await request2(session, { ':method': 'POST', ':path': '/' }, Buffer.alloc(100, 0x61));
        assert.equal(ok.status, 200);
        await waitFor('no attempt under way', () => activeRequests(proxy) === 0);
      } finally {
        session.close();
      }
    });
  }
});
