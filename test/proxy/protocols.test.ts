/**
 * HTTP/1.1 and HTTP/2 through the proxy: keep-alive, chunked streaming both ways with
 * backpressure, 100-continue, trailers, HEAD, h2c downstream (by its preface) and upstream,
 * HTTP/2 and HTTP/1.1 over TLS by ALPN, and what happens when either side goes away.
 */
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as path from 'node:path';
import {
  clusterYaml,
  closeAllHarnesses,
  request,
  request2,
  startProxy,
  waitFor,
  type ProxyHarness,
} from './support/proxy-harness';
import {
  answerExpectContinue,
  answerWithTrailer,
  echoStreaming,
  listenOnLoopback,
  startHttp2Upstream,
  startHttpUpstream,
  type Http2Upstream,
  type HttpUpstream,
} from './support/upstreams';

const TLS_DIR = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'proxy', 'tls');

describe('proxy protocols', function () {
  this.timeout(20_000);
  let h1: HttpUpstream;
  let h2: Http2Upstream;
  let streaming: http.Server;
  let streamingPort: number;
  let harness: ProxyHarness;
  let port: number;
  let tlsPort: number;
  const upstreamEvents: string[] = [];

  before(async () => {
    h1 = await startHttpUpstream('h1');
    h2 = await startHttp2Upstream('h2');
    // Echoes each request chunk as it arrives; answers /trailers with a trailer; /expect-refused refuses 100-continue.
    streaming = http.createServer((req, res) => {
      if (req.url === '/trailers') {
        answerWithTrailer(res);
        return;
      }
      if (req.url === '/no-content') {
        res.writeHead(204, { 'x-empty': 'yes' });
        res.end();
        return;
      }
      if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': '1000000' });
        res.write('x'.repeat(1000));
        setImmediate(() => req.socket.destroy());
        return;
      }
      if (req.url === '/endless') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const timer = setInterval(() => res.write('tick'), 5);
        res.on('close', () => {
          clearInterval(timer);
          upstreamEvents.push('endless closed');
        });
        return;
      }
      echoStreaming(req, res);
    });
    answerExpectContinue(streaming);
    streamingPort = await listenOnLoopback(streaming);
    harness = await startProxy(`
listeners:
  - {name: plain, role: outbound, address: 127.0.0.1, port: 0}
  - name: secure
    role: inbound
    address: 127.0.0.1
    port: 0
    tls: {certFile: ${path.join(TLS_DIR, 'cert.pem')}, keyFile: ${path.join(TLS_DIR, 'key.pem')}}
routes:
  - match: {path: {prefix: /h2/}}
    cluster: h2
  - match: {path: {prefix: /stream/}}
    rewrite: {pathPrefix: /}
    cluster: streaming
  - cluster: h1
clusters:
${clusterYaml('h1', [h1.port])}  - name: h2
    protocol: http2
    endpoints: [{host: 127.0.0.1, port: ${h2.port}}]
${clusterYaml('streaming', [streamingPort])}`);
    port = harness.port('plain');
    tlsPort = harness.port('secure');
  });

  after(async () => {
    await closeAllHarnesses();
    await h1.close();
    await h2.close();
    await new Promise<void>((resolve) => streaming.close(() => resolve()));
  });

  it('keeps the downstream connection alive across requests', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ports = new Set<number>();
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/ka', agent }, (res) => {
          ports.add(res.socket.localPort!);
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
      });
    }
    agent.destroy();
    assert.equal(ports.size, 1, 'one client connection served all five');
  });

  it('streams a chunked request and its response both ways, chunk by chunk', async () => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/stream/echo', agent: false });
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', reject);
      req.flushHeaders();
    });
    assert.equal(response.headers['transfer-encoding'], 'chunked');
    const received: string[] = [];
    response.setEncoding('utf8');
    response.on('data', (c: string) => received.push(c));
    // Each chunk must come back before the next is sent: nothing waits for the whole body.
    for (let i = 0; i < 5; i++) {
      req.write(`chunk-${i};`);
      await waitFor(`echo of chunk ${i}`, () => received.join('').includes(`chunk-${i};`));
    }
    req.end();
    await new Promise((resolve) => response.on('end', resolve));
    assert.equal(received.join(''), 'chunk-0;chunk-1;chunk-2;chunk-3;chunk-4;');
  });

  it('passes a few megabytes through intact', async () => {
    const body = randomBytes(4 * 1024 * 1024);
    const digest = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method: 'PUT', path: '/stream/big', agent: false },
        (res) => {
          const hash = createHash('sha256');
          res.on('data', (c: Buffer) => hash.update(c));
          res.on('end', () => resolve(hash.digest('hex')));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(digest, createHash('sha256').update(body).digest('hex'));
  });

  it('relays 100-continue: the client sends its body only after the upstream asked for it', async () => {
    const outcome = await new Promise<{ continued: boolean; status: number; body: string }>(
      (resolve, reject) => {
        let continued = false;
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/stream/expect',
            agent: false,
            headers: { expect: '100-continue', 'content-length': '5' },
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve({ continued, status: res.statusCode ?? 0, body }));
          },
        );
        req.on('continue', () => {
          continued = true;
          req.end('hello');
        });
        req.on('error', reject);
        req.flushHeaders();
      },
    );
    assert.deepEqual(outcome, { continued: true, status: 200, body: 'hello' });
  });

  it('relays a refusal of 100-continue without the body ever being sent', async () => {
    const outcome = await new Promise<{ continued: boolean; status: number; body: string }>(
      (resolve, reject) => {
        let continued = false;
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/stream/expect-refused',
            agent: false,
            headers: { expect: '100-continue', 'content-length': '5' },
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve({ continued, status: res.statusCode ?? 0, body }));
          },
        );
        req.on('continue', () => {
          continued = true;
        });
        req.on('error', reject);
        req.flushHeaders();
      },
    );
    assert.deepEqual(outcome, { continued: false, status: 417, body: 'no thanks\n' });
  });

  it('forwards HTTP/1.1 trailers', async () => {
    const answer = await request(port, { path: '/stream/trailers', headers: { te: 'trailers' } });
    assert.equal(answer.body, 'body');
    assert.equal(answer.trailers['x-checksum'], 'abc123');
  });

  it('answers HEAD and 204 without a body', async () => {
    const head = await request(port, { method: 'HEAD', path: '/head' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    const empty = await request(port, { path: '/stream/no-content' });
    assert.equal(empty.status, 204);
    assert.equal(empty.headers['x-empty'], 'yes');
  });

  it('answers HEAD and 204 on h2c with a head that ends the stream', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const head = await request2(session, { ':method': 'HEAD', ':path': '/head' });
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      const empty = await request2(session, { ':method': 'GET', ':path': '/stream/no-content' });
      assert.equal(empty.status, 204);
      assert.equal(empty.headers['x-empty'], 'yes');
      assert.equal(empty.body, '');
    } finally {
      session.close();
    }
  });

  it('resets an h2c stream (INTERNAL_ERROR) when the upstream dies mid-body', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      const outcome = await new Promise<string>((resolve) => {
        const stream = session.request({ ':method': 'GET', ':path': '/stream/cut' });
        stream.on('data', () => undefined);
        stream.on('end', () => resolve('ended'));
        stream.on('close', () => resolve(`closed with ${stream.rstCode}`));
        stream.on('error', () => undefined);
      });
      assert.equal(outcome, `closed with ${http2.constants.NGHTTP2_INTERNAL_ERROR}`);
    } finally {
      session.close();
    }
  });

  it('speaks h2c to clients that start with the HTTP/2 preface, on the same port', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const answer = await request2(
        session,
        { ':method': 'POST', ':path': '/from-h2?x=1', 'x-test': 'h2c' },
        'payload',
      );
      assert.equal(answer.status, 200);
      const echo = JSON.parse(answer.body) as {
        upstream: string;
        url: string;
        headers: Record<string, string>;
        bodyLength: number;
      };
      assert.equal(echo.upstream, 'h1');
      assert.equal(echo.url, '/from-h2?x=1');
      assert.equal(echo.headers['host'], `127.0.0.1:${port}`);
      assert.equal(echo.headers['x-test'], 'h2c');
      assert.equal(echo.bodyLength, 7);
    } finally {
      session.close();
    }
  });

  it('speaks HTTP/2 upstream, multiplexing on one session, and forwards its trailers', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => request2(session, { ':method': 'GET', ':path': `/h2/${i}` })),
      );
      for (const answer of answers) {
        assert.equal(answer.status, 200);
        assert.equal(answer.trailers?.['x-trailer'], 'done');
      }
      assert.equal(h2.sessions, 1, 'one upstream session carried all ten');
      const fromH1 = await request(port, { path: '/h2/from-h1', headers: { te: 'trailers' } });
      assert.equal(JSON.parse(fromH1.body).upstream, 'h2');
      assert.equal(fromH1.trailers['x-trailer'], 'done');
    } finally {
      session.close();
    }
  });

  it('relays an HTTP/2 answer whose head ends the stream, to HTTP/1.1 and HTTP/2 clients', async () => {
    // Twice on one connection: the second is answered only if the first response really ended.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 2; i++) {
        const fromH1 = await request(port, { path: '/h2/empty', agent, timeoutMs: 3000 });
        assert.equal(fromH1.status, 204);
        assert.equal(fromH1.headers['x-upstream'], 'h2');
      }
    } finally {
      agent.destroy();
    }
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const fromH2 = await request2(session, { ':method': 'GET', ':path': '/h2/empty' });
      assert.equal(fromH2.status, 204);
      assert.equal(fromH2.body, '');
    } finally {
      session.close();
    }
  });

  it('offers HTTP/2 and HTTP/1.1 over TLS by ALPN', async () => {
    const ca = readFileSync(path.join(TLS_DIR, 'cert.pem'));
    const session = http2.connect(`https://localhost:${tlsPort}`, { ca });
    try {
      const answer = await request2(session, { ':method': 'GET', ':path': '/over-tls' });
      assert.equal(answer.status, 200);
      assert.equal(JSON.parse(answer.body).headers['x-forwarded-proto'], 'https');
      assert.equal(session.alpnProtocol, 'h2');
    } finally {
      session.close();
    }
    const viaH1 = await new Promise<{ protocol: string; body: string }>((resolve, reject) => {
      https
        .get(
          {
            host: 'localhost',
            port: tlsPort,
            path: '/over-tls-h1',
            ca,
            agent: false,
            ALPNProtocols: ['http/1.1'],
          } as https.RequestOptions,
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () =>
              resolve({ protocol: (res.socket as import('node:tls').TLSSocket).alpnProtocol || '', body }),
            );
          },
        )
        .on('error', reject);
    });
    assert.equal(viaH1.protocol, 'http/1.1');
    assert.equal(JSON.parse(viaH1.body).url, '/over-tls-h1');
  });

  it('cuts the downstream response when the upstream dies mid-body', async () => {
    const outcome = await new Promise<string>((resolve) => {
      http
        .get({ host: '127.0.0.1', port, path: '/stream/cut', agent: false }, (res) => {
          res.on('data', () => undefined);
          res.on('end', () => resolve('ended'));
          res.on('error', () => resolve('error'));
          res.on('aborted', () => resolve('aborted'));
        })
        .on('error', () => resolve('error'));
    });
    assert.notEqual(outcome, 'ended', 'a truncated body must not look complete');
    assert.equal(harness.proxy.stats().counters.reasons['upstream-reset'] !== undefined, true);
  });

  it('stops the upstream request when the client goes away', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/stream/endless', agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      setTimeout(() => reject(new Error('no data')), 5000).unref();
    });
    await waitFor('the upstream to see the request closed', () => upstreamEvents.includes('endless closed'));
    await waitFor(
      'the proxy to count the disconnect',
      () => (harness.proxy.stats().counters.reasons['downstream-disconnect'] ?? 0) >= 1,
    );
  });
});
