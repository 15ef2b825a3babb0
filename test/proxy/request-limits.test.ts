/**
 * A listener's `limits`: a request head over `requestHeadBytes` or with more than
 * `requestHeaders` fields is answered 431, a body over `requestBodyBytes` 413 — announced or
 * found out while it streams — on HTTP/1.1 and on h2c (both HTTP/2 servers); the upstream
 * sees no request refused before forwarding, and a refused body does not count against the
 * endpoint it was going to (attempt-accounting.test.ts for the count itself).
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import { REASON_HEADER } from '../../proxy';
import {
  closeAllHarnesses,
  clusterStats,
  clusterYaml,
  request,
  request2,
  reasons,
  startProxy,
  waitFor,
} from './support/proxy-harness';
import { listenOnLoopback, startHttpUpstream, type HttpUpstream } from './support/upstreams';

const TLS_DIR = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'proxy', 'tls');
const LIMITS = '{requestHeadBytes: 1KiB, requestHeaders: 10, requestBodyBytes: 100}';
/** Outlier detection that ejects on one failure: an attempt wrongly charged would show. */
const OUTLIERS =
  '    outlierDetection: {consecutiveGatewayErrors: 1, consecutive5xx: 1, maxEjectionPercent: 100}\n';

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

/** A GET over TLS and HTTP/1.1 (ALPN); resolves with its status. */
function tlsGet(port: number, ca: Buffer, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const options = {
      host: 'localhost',
      port,
      path: '/',
      ca,
      agent: false,
      headers,
      ALPNProtocols: ['http/1.1'],
    };
    https
      .get(options as https.RequestOptions, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

/** The access log's lines for requests answered before any exchange (no attempt, no route). */
function refusalLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => entry['attempts'] === 0 && entry['route'] === undefined);
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
  let logDir: string;
  let accessLog: string;

  before(async () => {
    upstream = await startHttpUpstream();
    logDir = mkdtempSync(path.join(tmpdir(), 'switchboard-limits-'));
  });
  after(async () => {
    await upstream.close();
    rmSync(logDir, { recursive: true, force: true });
  });
  let tests = 0;
  beforeEach(() => {
    accessLog = path.join(logDir, `access-${++tests}.log`);
  });
  afterEach(async () => {
    await closeAllHarnesses();
  });

  const yaml = (limits: string, clusterExtra = ''): string => `
accessLog: {path: ${accessLog}}
listeners:
  - {name: in, role: inbound, address: 127.0.0.1, port: 0${limits === '' ? '' : `, limits: ${limits}`}}
routes:
  - cluster: up
clusters:
${clusterYaml('up', [upstream.port], clusterExtra)}`;

  it('HTTP/1.1: a head over requestHeadBytes or with too many fields gets 431, a body over requestBodyBytes 413', async () => {
    const proxy = await startProxy(yaml(LIMITS));
    const port = proxy.port();
    const seen = upstream.heads;
    const long = `GET / HTTP/1.1\r\nhost: a\r\nx-long: ${'v'.repeat(1100)}\r\n\r\n`;
    assert.match(await rawStatusLine(port, long), /^HTTP\/1\.1 431 /);
    let many = 'GET / HTTP/1.1\r\nhost: a\r\n';
    for (let i = 0; i < 11; i++) many += `x-f${i}: 1\r\n`;
    assert.match(await rawStatusLine(port, `${many}\r\n`), /^HTTP\/1\.1 431 /);
    const announced = 'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 101\r\n\r\n';
    assert.match(await rawStatusLine(port, announced), /^HTTP\/1\.1 413 /);
    assert.equal(upstream.heads, seen, 'nothing refused reached the upstream');
    assert.equal(proxy.proxy.stats().counters.refusedRequests, 3, 'each refusal counted');
    const malformed = 'GET / HTTP/1.1\r\nhost: a\r\nbad header\r\n\r\n';
    assert.match(await rawStatusLine(port, malformed), /^HTTP\/1\.1 400 /);
    // Each refusal is in the access log too, as Envoy logs such requests (flagged DPE).
    await waitFor('four refusals logged', () => refusalLines(accessLog).length === 4);
    assert.deepEqual(
      refusalLines(accessLog).map((e) => [
        e['listener'],
        e['protocol'],
        e['status'],
        e['reason'],
        e['source'],
      ]),
      [
        ['in', 'http', 431, 'request-too-large', '127.0.0.1'],
        ['in', 'http', 431, 'request-too-large', '127.0.0.1'],
        ['in', 'http', 413, 'request-too-large', '127.0.0.1'],
        ['in', 'http', 400, 'downstream-protocol-error', '127.0.0.1'],
      ],
    );
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
    await waitFor('the refusal is recorded', () => reasons(proxy)['request-too-large'] === 1);
    assert.equal(reasons(proxy)['downstream-disconnect'], undefined, 'a refusal, not a client gone');
    // HTTP/1.1 counts Host among the fields: with nine more, ten in all, the head is taken.
    let ten = 'GET / HTTP/1.1\r\nhost: a\r\n';
    for (let i = 0; i < 9; i++) ten += `x-f${i}: 1\r\n`;
    assert.match(await rawStatusLine(port, `${ten}\r\n`), /^HTTP\/1\.1 200 /);
  });

  for (const http2Server of ['own', 'node'] as const) {
    it(`h2c (${http2Server} server): a header list over requestHeadBytes or with too many fields gets 431 on its stream only`, async () => {
      const proxy = await startProxy(yaml(LIMITS), { http2Server });
      const session = http2.connect(`http://127.0.0.1:${proxy.port()}`);
      try {
        // A settled session first: Node holds a client to its SETTINGS once they are acknowledged.
        assert.equal((await request2(session, { ':method': 'GET', ':path': '/' })).status, 200);
        const seen = upstream.heads;
        const long = await request2(session, { ':method': 'GET', ':path': '/', 'x-long': 'v'.repeat(1100) });
        assert.equal(long.status, 431);
        const fields: http2.OutgoingHttpHeaders = { ':method': 'GET', ':path': '/' };
        for (let i = 0; i < 12; i++) fields[`x-f${i}`] = '1';
        assert.equal((await request2(session, fields)).status, 431, 'two over');
        delete fields['x-f11'];
        assert.equal((await request2(session, fields)).status, 431, 'one over');
        assert.equal(upstream.heads, seen, 'nothing refused reached the upstream');
        assert.equal(proxy.proxy.stats().counters.refusedRequests, 3, 'each refusal counted');
        await waitFor('three refusals logged', () => refusalLines(accessLog).length === 3);
        for (const entry of refusalLines(accessLog)) {
          assert.deepEqual(
            [entry['protocol'], entry['status'], entry['reason'], entry['source']],
            ['http2', 431, 'request-too-large', '127.0.0.1'],
          );
          // Node's server has decoded the fields; ours refuses the list before taking it.
          if (http2Server === 'node') assert.deepEqual([entry['method'], entry['path']], ['GET', '/']);
        }
        // Ten fields are allowed, and the connection carries on.
        delete fields['x-f10'];
        assert.equal((await request2(session, fields)).status, 200);
      } finally {
        session.close();
      }
    });
  }

  it('TLS: too many fields get 431 on HTTP/2 and on HTTP/1.1, an announced long body 413 before forwarding', async () => {
    const proxy = await startProxy(`
accessLog: {path: ${accessLog}}
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
    const seen = upstream.heads;
    const session = http2.connect(`https://localhost:${proxy.port()}`, { ca });
    try {
      assert.equal((await request2(session, { ':method': 'GET', ':path': '/', ...many })).status, 431);
    } finally {
      session.close();
    }
    const viaH1 = await tlsGet(proxy.port(), ca, many);
    assert.equal(upstream.heads, seen, 'nothing refused reached the upstream');
    assert.equal(viaH1, 431);
    assert.equal(proxy.proxy.stats().counters.refusedRequests, 2, 'both refusals counted');
    await waitFor('both refusals logged', () => refusalLines(accessLog).length === 2);
    assert.deepEqual(
      refusalLines(accessLog).map((e) => [
        e['protocol'],
        e['status'],
        e['method'],
        e['path'],
        e['authority'],
      ]),
      [
        ['http2', 431, 'GET', '/', `localhost:${proxy.port()}`],
        ['http', 431, 'GET', '/', `localhost:${proxy.port()}`],
      ],
    );
    // HTTP/1.1 over TLS is read by Node's server: the exchange refuses the announced length
    // before forwarding. The pool is warm (the head would leave at once) and the body is held
    // back: forwarded, the head would reach the upstream first.
    assert.equal(await tlsGet(proxy.port(), ca, {}), 200);
    const warmSeen = upstream.heads;
    let longBody = 0;
    const req = https.request(
      {
        host: 'localhost',
        port: proxy.port(),
        method: 'POST',
        path: '/',
        ca,
        agent: false,
        headers: { 'content-length': '300' },
        ALPNProtocols: ['http/1.1'],
      } as https.RequestOptions,
      (res) => {
        res.resume();
        longBody = res.statusCode ?? 0;
      },
    );
    req.on('error', () => undefined);
    req.flushHeaders();
    await waitFor('an answer, or the head upstream', () => longBody !== 0 || upstream.heads > warmSeen);
    req.destroy();
    assert.equal(longBody, 413);
    assert.equal(upstream.heads, warmSeen, 'the long body was not forwarded');
  });

  for (const http2Server of ['own', 'node'] as const) {
    it(`h2c (${http2Server} server): a body over requestBodyBytes gets 413, announced or streamed, and the endpoint is not charged`, async () => {
      const proxy = await startProxy(yaml(LIMITS, OUTLIERS), { http2Server });
      const session = http2.connect(`http://127.0.0.1:${proxy.port()}`);
      try {
        const seen = upstream.heads;
        const announced = await request2(
          session,
          { ':method': 'POST', ':path': '/', 'content-length': '101' },
          Buffer.alloc(101, 0x61),
        );
        assert.equal(announced.status, 413);
        assert.equal(announced.headers[REASON_HEADER], 'request-too-large');
        assert.equal(upstream.heads, seen, 'an announced long body is refused before forwarding');

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
        await waitFor('no attempt under way', () => clusterStats(proxy).activeRequests === 0);
        assert.equal(clusterStats(proxy).ejections, 0, 'a refused body is no failure of the endpoint');
      } finally {
        session.close();
      }
    });
  }

  it('h2c: a body that goes over requestBodyBytes once the upstream is answering cuts the stream', async () => {
    // An upstream that answers at once and reads the body as it comes.
    const early = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('started');
      req.resume();
      req.on('end', () => res.end());
    });
    const earlyPort = await listenOnLoopback(early);
    try {
      const proxy = await startProxy(`
listeners:
  - {name: in, role: inbound, address: 127.0.0.1, port: 0, limits: ${LIMITS}}
routes:
  - cluster: early
clusters:
${clusterYaml('early', [earlyPort])}`);
      const session = http2.connect(`http://127.0.0.1:${proxy.port()}`);
      session.on('error', () => undefined);
      try {
        const outcome = await new Promise<{ status: number; ended: boolean; rstCode: number }>((resolve) => {
          const stream = session.request({ ':method': 'POST', ':path': '/' });
          let status = 0;
          let ended = false;
          stream.on('response', (headers) => {
            status = Number(headers[':status']);
            stream.write(Buffer.alloc(200, 0x61)); // past the limit, after the answer began
          });
          stream.on('end', () => (ended = true));
          stream.on('error', () => undefined);
          stream.on('close', () => resolve({ status, ended, rstCode: stream.rstCode ?? 0 }));
          stream.resume();
          stream.write(Buffer.alloc(50, 0x61));
        });
        assert.equal(outcome.status, 200);
        assert.notEqual(outcome.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'the stream is reset, not ended');
        await waitFor('the cut is recorded', () => reasons(proxy)['request-too-large'] === 1);
      } finally {
        session.destroy();
      }
    } finally {
      early.closeAllConnections();
      await new Promise<void>((resolve) => early.close(() => resolve()));
    }
  });

  it('a reload changes the limits for the requests after it, on the same listener', async () => {
    const proxy = await startProxy(yaml(LIMITS));
    const port = proxy.port();
    const body = Buffer.alloc(500, 0x61);
    assert.equal((await request(port, { method: 'POST', body })).status, 413);
    proxy.rewrite(yaml('{requestBodyBytes: 1KiB}'));
    const outcome = await proxy.proxy.reload();
    assert.ok(outcome.applied, JSON.stringify(outcome));
    assert.equal(proxy.port(), port, 'the listener is kept');
    assert.equal((await request(port, { method: 'POST', body })).status, 200);
  });
});
