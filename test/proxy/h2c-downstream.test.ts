/**
 * Plaintext h2c clients, on both servers the listener can put behind the Downstream seam:
 * our own HTTP/2 server (http2-server-downstream.ts, the default) and Node's core HTTP/2
 * streams (http2-stream-downstream.ts, `SWITCHBOARD_HTTP2_SERVER=node`). What Node's
 * compatibility layer used to do for us — 100-continue, expectations and CONNECT, trailers,
 * the client's address, request bodies with backpressure — and what must not bring the
 * process down: a client that resets its stream mid-body, a response field HTTP/2 cannot
 * carry.
 */
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { TrafficHook } from '../../proxy';
import type { HttpRequestFacts } from '../../proxy/traffic-facts';
import {
  closeAllHarnesses,
  clusterYaml,
  request2,
  startProxy,
  waitFor,
  type ProxyHarness,
} from './support/proxy-harness';
import {
  answerDigest,
  answerExpectContinue,
  answerWithTrailer,
  echoStreaming,
  listenOnLoopback,
} from './support/upstreams';

/** What an h2c client saw of one request. */
interface Seen {
  continued: boolean;
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

/** Sends a head and waits for the response; `onStream` drives the request body. */
function exchange2(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  onStream: (stream: http2.ClientHttp2Stream, seen: Seen) => void,
): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const seen: Seen = { continued: false, status: 0, headers: {}, body: '' };
    const stream = session.request(headers, { endStream: false });
    stream.setEncoding('utf8');
    stream.on('continue', () => (seen.continued = true));
    stream.on('response', (h) => {
      seen.headers = h;
      seen.status = Number(h[':status']);
    });
    stream.on('data', (c: string) => (seen.body += c));
    stream.on('end', () => {
      resolve(seen);
      if (!stream.closed) stream.close();
    });
    stream.on('error', reject);
    onStream(stream, seen);
  });
}

for (const http2Server of ['own', 'node'] as const) describeH2cDownstream(http2Server);

function describeH2cDownstream(http2Server: 'own' | 'node'): void {
  describe(`proxy h2c downstream (${http2Server === 'own' ? 'own HTTP/2 server' : 'node:http2 core streams'})`, function () {
    this.timeout(20_000);
    let upstream: http.Server;
    let upstreamPort: number;
    const upstreamEvents: string[] = [];
    const completed: HttpRequestFacts[] = [];
    let harness: ProxyHarness;
    let port: number;
    let session: http2.ClientHttp2Session;
    let badResponseField = false;

    before(async () => {
      upstream = http.createServer((req, res) => {
        if (req.url === '/trailers') {
          answerWithTrailer(res);
          return;
        }
        if (req.url === '/digest') {
          answerDigest(req, res);
          return;
        }
        if (req.url === '/sink') {
          req.once('data', () => upstreamEvents.push('sink got data'));
          res.on('close', () => upstreamEvents.push('sink closed'));
          req.resume();
          return;
        }
        echoStreaming(req, res);
      });
      answerExpectContinue(upstream);
      upstreamPort = await listenOnLoopback(upstream);
      const hook: TrafficHook = {
        // A policy may set any response field: here one HTTP/2 cannot carry, when asked to.
        checkRequest: () =>
          badResponseField
            ? {
                allowed: true,
                responseHeaders: {
                  set: [
                    ['transfer-encoding', 'chunked'],
                    ['connection', 'close'],
                    ['x-policy', 'yes'],
                  ],
                  add: [],
                  remove: [],
                },
              }
            : { allowed: true },
        requestCompleted: (facts) => void completed.push(facts),
      };
      harness = await startProxy(
        `
listeners: [{name: plain, role: outbound, address: 127.0.0.1, port: 0}]
routes:
  - {match: {path: {exact: /direct}}, directResponse: {status: 200, body: direct, headers: {x-direct: yes}}}
  - {cluster: streaming}
clusters:
${clusterYaml('streaming', [upstreamPort])}`,
        { hook, http2Server },
      );
      port = harness.port('plain');
    });

    beforeEach(() => {
      session = http2.connect(`http://127.0.0.1:${port}`);
    });

    afterEach(() => {
      session.close();
    });

    after(async () => {
      await closeAllHarnesses();
      await new Promise<void>((resolve) => upstream.close(() => resolve()));
    });

    it('relays 100-continue: the body leaves only after the upstream asked for it', async () => {
      const seen = await exchange2(
        session,
        { ':method': 'POST', ':path': '/expect', expect: '100-continue', 'content-length': '5' },
        (stream) => stream.once('continue', () => stream.end('hello')),
      );
      assert.deepEqual(
        { continued: seen.continued, status: seen.status, body: seen.body },
        { continued: true, status: 200, body: 'hello' },
      );
    });

    it('relays a refusal of 100-continue, no 100 sent', async () => {
      const seen = await exchange2(
        session,
        { ':method': 'POST', ':path': '/expect-refused', expect: '100-continue', 'content-length': '5' },
        () => undefined,
      );
      assert.deepEqual(
        { continued: seen.continued, status: seen.status, body: seen.body },
        { continued: false, status: 417, body: 'no thanks\n' },
      );
    });

    it('answers 417 to another expectation and 405 to CONNECT, as Node did, counting both as refused', async () => {
      const refusedBefore = harness.proxy.stats().counters.refusedRequests;
      const completedBefore = completed.length;
      const other = await exchange2(
        session,
        { ':method': 'POST', ':path': '/echo', expect: 'something-else' },
        () => undefined,
      );
      assert.equal(other.status, 417);
      const connect = await exchange2(
        session,
        { ':method': 'CONNECT', ':authority': 'a.example:443' },
        () => undefined,
      );
      assert.equal(connect.status, 405);
      // Answered before any exchange: counted (and logged) as refused, never seen by the hook.
      assert.equal(harness.proxy.stats().counters.refusedRequests, refusedBefore + 2);
      assert.equal(completed.length, completedBefore);
    });

    it("forwards an HTTP/1.1 upstream's trailers", async () => {
      const answer = await request2(session, { ':method': 'GET', ':path': '/trailers', te: 'trailers' });
      assert.equal(answer.status, 200);
      assert.equal(answer.body, 'body');
      assert.equal(answer.trailers?.['x-checksum'], 'abc123');
    });

    it("gives the exchange the request's pseudo-headers and the client's address and port", async () => {
      completed.length = 0;
      const answer = await request2(
        session,
        { ':method': 'POST', ':path': '/echo?x=1', 'x-test': 'h2c' },
        'abc',
      );
      assert.equal(answer.body, 'abc');
      await waitFor('the request to be recorded', () => completed.length === 1);
      const facts = completed[0]!;
      assert.equal(facts.method, 'POST');
      assert.equal(facts.url, '/echo?x=1');
      assert.equal(facts.authority, `127.0.0.1:${port}`);
      assert.equal(facts.protocol, 'http2');
      assert.equal(facts.requestHeaders['x-test'], 'h2c');
      assert.equal(facts.requestHeaders[':path'], '/echo?x=1');
      assert.equal(facts.requestBytes, 3);
      assert.equal(facts.remoteAddress, '127.0.0.1');
      assert.equal(facts.remotePort, session.socket.localPort);
      assert.equal(facts.localPort, port);
    });

    it('takes request trailers and drops them, as it did on node:http2', async () => {
      completed.length = 0;
      const stream = session.request({ ':method': 'POST', ':path': '/echo' }, { waitForTrailers: true });
      stream.setEncoding('utf8');
      let body = '';
      stream.on('data', (c: string) => (body += c));
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-request-trailer': 'dropped' }));
      const ended = new Promise<void>((resolve, reject) => {
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      stream.end('body then trailers');
      await ended;
      assert.equal(body, 'body then trailers');
      await waitFor('the request to be recorded', () => completed.length === 1);
      assert.equal(completed[0]!.requestHeaders['x-request-trailer'], undefined);
      assert.equal(completed[0]!.requestBytes, 'body then trailers'.length);
    });

    it('passes a large upload through intact, with backpressure', async () => {
      const body = randomBytes(6 * 1024 * 1024);
      const answer = await request2(session, { ':method': 'POST', ':path': '/digest' }, body);
      assert.equal(answer.body, `${body.length} ${createHash('sha256').update(body).digest('hex')}`);
    });

    it('ends the exchange, not the process, when the client resets its stream mid-body', async () => {
      const before = harness.proxy.stats().counters.reasons['downstream-disconnect'] ?? 0;
      const stream = session.request({ ':method': 'POST', ':path': '/sink' }, { endStream: false });
      stream.on('error', () => undefined);
      stream.write('part of a body');
      await waitFor('the upstream to get the first bytes', () => upstreamEvents.includes('sink got data'));
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await waitFor('the upstream request to be closed', () => upstreamEvents.includes('sink closed'));
      await waitFor(
        'the proxy to count the disconnect',
        () => (harness.proxy.stats().counters.reasons['downstream-disconnect'] ?? 0) === before + 1,
      );
      const next = await request2(session, { ':method': 'POST', ':path': '/echo' }, 'still here');
      assert.equal(next.body, 'still here');
    });

    it('leaves out the fields HTTP/2 forbids when a policy sets them, and answers', async () => {
      badResponseField = true;
      const answer = await request2(session, { ':method': 'POST', ':path': '/echo' }, 'x').finally(
        () => (badResponseField = false),
      );
      assert.equal(answer.status, 200);
      assert.equal(answer.body, 'x');
      assert.equal(answer.headers['transfer-encoding'], undefined);
      assert.equal(answer.headers['connection'], undefined);
      assert.equal(answer.headers['x-policy'], 'yes');
    });

    it('answers a direct response with its configured fields (connection cannot be one: the configuration refuses it)', async () => {
      const answer = await request2(session, { ':method': 'GET', ':path': '/direct' });
      assert.equal(answer.status, 200);
      assert.equal(answer.body, 'direct');
      assert.equal(answer.headers['connection'], undefined);
      assert.equal(answer.headers['x-direct'], 'yes');
    });

    it('counts whole responses as whole: direct, and forwarded with a length, after a body or none', async () => {
      const reasons = (): Record<string, number> => ({ ...harness.proxy.stats().counters.reasons });
      const before = reasons();
      for (let i = 0; i < 5; i++) {
        assert.equal(
          (await request2(session, { ':method': 'POST', ':path': '/echo' }, `body ${i}`)).body,
          `body ${i}`,
        );
        assert.equal((await request2(session, { ':method': 'GET', ':path': '/direct' })).body, 'direct');
        assert.equal(
          (await request2(session, { ':method': 'POST', ':path': '/direct' }, 'ignored')).body,
          'direct',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(reasons(), before, 'no exchange ended with a reason');
    });
  });
}
