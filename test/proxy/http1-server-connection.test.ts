/**
 * The downstream HTTP/1.1 server on node:net, with a small application behind its seam and
 * raw client sockets in front: keep-alive, pipelined requests answered in order and one at a
 * time, bodies by length and chunked (split anywhere, extensions, trailers), unread bodies
 * skipped, 100-continue, upgrade hand-off, half-closed clients, HEAD and chunked responses,
 * and malformed or oversized requests answered with a precise status before the close.
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import type { DownstreamHandler } from '../../proxy/http-exchange-types';
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from '../../proxy/config-model';
import {
  Http1ServerConnection,
  type Http1RequestSink,
  type Http1ServerRequest,
} from '../../proxy/http1-server-connection';
import { AcceptedSocket } from '../../proxy/accepted-socket';
import { request, startProxy, closeAllHarnesses, clusterYaml } from './support/proxy-harness';
import { startHttpUpstream, type HttpUpstream } from './support/upstreams';

/** What the application saw. */
interface Seen {
  readonly method: string;
  readonly url: string;
  /** Kept as given (the exchange may keep body chunks until it can write them), read at the end. */
  readonly chunks: Buffer[];
  ended: boolean;
}

function bodyOf(seen: Seen): string {
  return Buffer.concat(seen.chunks).toString('latin1');
}

/**
 * The application: answers `METHOD URL BODY` once the body is read; `/early` answers at once
 * without reading the body; `/later` answers after 30 ms; `/stream` answers without a length
 * (chunked), in two writes and with a trailer; `/continue` sends 100 Continue first.
 */
class App implements Http1RequestSink {
  readonly seen: Seen[] = [];
  readonly upgraded: Array<{ url: string; rest: string }> = [];
  /** Statuses the server answered itself, before any request reached the app. */
  readonly refused: number[] = [];

  onRefused(status: number): void {
    this.refused.push(status);
  }

  onRequest(request: Http1ServerRequest): void {
    const seen: Seen = { method: request.method, url: request.url, chunks: [], ended: !request.hasBody };
    this.seen.push(seen);
    const answer = (): void => {
      const text = `${seen.method} ${seen.url} ${bodyOf(seen)}`;
      request.writeHead(200, { 'content-length': String(Buffer.byteLength(text)) });
      request.end(text);
    };
    const handler: DownstreamHandler = {
      onRequestData: (chunk) => void seen.chunks.push(chunk),
      onRequestEnd: () => {
        seen.ended = true;
        if (request.url !== '/early') answer();
      },
      onResponseDrain: () => undefined,
      onDownstreamClose: () => undefined,
      onRefusedByServer: () => undefined,
    };
    request.attach(handler);
    if (request.url === '/early') {
      request.writeHead(200, { 'content-length': '5' });
      request.end('early');
      request.resumeBody();
      return;
    }
    if (request.url === '/stream') {
      request.writeHead(200, {});
      request.flushHead();
      request.write(Buffer.from('hello '));
      request.write(Buffer.from('world'));
      request.end(undefined, { 'x-done': 'yes' });
      request.resumeBody();
      return;
    }
    if (request.url === '/continue') request.writeContinue();
    if (request.url === '/later') {
      setTimeout(() => {
        if (!request.hasBody) answer();
      }, 30);
      if (!request.hasBody) return;
    }
    if (!request.hasBody) {
      answer();
      return;
    }
    request.readBody();
    request.resumeBody();
  }

  onUpgrade(request: Http1ServerRequest, socket: net.Socket, rest: Buffer): void {
    this.upgraded.push({ url: request.url, rest: rest.toString('latin1') });
    socket.resume();
    socket.end('HTTP/1.1 101 Switching Protocols\r\nupgrade: test\r\nconnection: upgrade\r\n\r\nswitched');
  }
}

let server: net.Server | undefined;
let app: App;

/**
 * How the server's sockets are read: 'data' events, or `onread` into a buffer shared by the
 * connections (as the proxy's listener does), made tiny so that every head and body arrives
 * split in many reads, each overwriting the last.
 */
let sharedReadBufferBytes: number | undefined;

async function startServer(limits: RequestLimits = DEFAULT_REQUEST_LIMITS): Promise<number> {
  app = new App();
  const shared = sharedReadBufferBytes === undefined ? undefined : Buffer.alloc(sharedReadBufferBytes);
  server = net.createServer({ allowHalfOpen: true, pauseOnConnect: shared !== undefined }, (accepted) => {
    if (shared === undefined) {
      accepted.on('error', () => undefined);
      new Http1ServerConnection(accepted, app, limits);
      return;
    }
    const reader = new AcceptedSocket(accepted, shared, { onReceivedBytes: () => undefined });
    reader.socket.on('error', () => undefined);
    new Http1ServerConnection(reader.socket, app, limits, undefined, undefined, reader);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

/**
 * Sends `parts` (with `gapMs` between them) on one connection, half-closing after the last
 * when `endAfter`, and resolves with everything received once the server closes or after
 * `settleMs` of silence.
 */
function exchange(
  port: number,
  parts: readonly string[],
  options: { endAfter?: boolean; settleMs?: number; gapMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    let timer: NodeJS.Timeout | undefined;
    const settle = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        socket.destroy();
        resolve(received);
      }, options.settleMs ?? 300);
    };
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      settle();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('error', reject);
    socket.on('connect', async () => {
      for (const part of parts) {
        socket.write(part, 'latin1');
        if (options.gapMs !== undefined) await new Promise((r) => setTimeout(r, options.gapMs));
      }
      if (options.endAfter === true) socket.end();
      settle();
    });
  });
}

/** The status lines and bodies of the responses in `text`, in order (Content-Length or chunked). */
function responses(text: string): Array<{ status: number; body: string; head: string }> {
  const out: Array<{ status: number; body: string; head: string }> = [];
  let rest = text;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = rest.slice(0, end);
    const status = Number(head.slice(9, 12));
    rest = rest.slice(end + 4);
    let body = '';
    if (/transfer-encoding: chunked/i.test(head)) {
      for (;;) {
        const lineEnd = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, lineEnd), 16);
        rest = rest.slice(lineEnd + 2);
        if (size === 0) {
          // Trailer lines, then the empty line.
          rest = rest.slice(rest.indexOf('\r\n') === 0 ? 2 : rest.indexOf('\r\n\r\n') + 4);
          break;
        }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
    } else {
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      body = rest.slice(0, length);
      rest = rest.slice(length);
    }
    out.push({ status, head, body });
  }
  return out;
}

for (const [reading, bufferBytes] of [
  ['data events', undefined],
  ['a 16-byte shared read buffer', 16],
] as const)
  describe(`proxy HTTP/1.1 server connection, reading with ${reading}`, () => {
    before(() => {
      sharedReadBufferBytes = bufferBytes;
    });
    after(() => {
      sharedReadBufferBytes = undefined;
    });
    afterEach(async () => {
      await new Promise<void>((resolve) =>
        server === undefined ? resolve() : server.close(() => resolve()),
      );
      server = undefined;
    });

    it('answers keep-alive requests on one connection, with a date and no connection header', async () => {
      const port = await startServer();
      const text = await exchange(
        port,
        ['GET /a HTTP/1.1\r\nhost: x\r\n\r\n', 'GET /b HTTP/1.1\r\nhost: x\r\n\r\n'],
        {
          gapMs: 20,
        },
      );
      const answers = responses(text);
      assert.deepEqual(
        answers.map((a) => a.body),
        ['GET /a ', 'GET /b '],
      );
      assert.match(answers[0]!.head, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(answers[0]!.head, /\r\ndate: .+ GMT/);
      assert.doesNotMatch(answers[0]!.head, /connection:/i);
    });

    it('answers pipelined requests in order, reading each only after the previous response', async () => {
      const port = await startServer();
      const text = await exchange(port, [
        'GET /later HTTP/1.1\r\nhost: x\r\n\r\n' +
          'POST /p HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc' +
          'POST /q HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n' +
          '\r\nGET /last HTTP/1.1\r\nhost: x\r\n\r\n',
      ]);
      assert.deepEqual(
        responses(text).map((a) => a.body),
        ['GET /later ', 'POST /p abc', 'POST /q de', 'GET /last '],
      );
    });

    it('reads a chunked body split anywhere, with extensions and trailers', async () => {
      const port = await startServer();
      const body = '5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n';
      const head = 'POST /c HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n';
      const whole = head + body + 'GET /after HTTP/1.1\r\nhost: x\r\n\r\n';
      const parts: string[] = [];
      for (let i = 0; i < whole.length; i += 3) parts.push(whole.slice(i, i + 3));
      const text = await exchange(port, parts, { gapMs: 1 });
      assert.deepEqual(
        responses(text).map((a) => a.body),
        ['POST /c hello 0123456789', 'GET /after '],
      );
    });

    it('skips the unread body of a request answered early and serves the next one', async () => {
      const port = await startServer();
      const text = await exchange(
        port,
        [
          'POST /early HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n01234',
          '56789GET /next HTTP/1.1\r\nhost: x\r\n\r\n',
        ],
        { gapMs: 20 },
      );
      assert.deepEqual(
        responses(text).map((a) => a.body),
        ['early', 'GET /next '],
      );
    });

    it('sends 100 Continue when asked to, and closes after an answer that refused the body unread', async () => {
      const port = await startServer();
      const text = await exchange(
        port,
        ['PUT /continue HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n', 'ok'],
        { gapMs: 20 },
      );
      assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
      assert.match(text, /PUT \/continue ok$/);
      const refused = await exchange(port, [
        'PUT /early HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n',
      ]);
      assert.match(refused, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(refused, /connection: close\r\n/);
    });

    it('answers a client that half-closed after its request, then closes', async () => {
      const port = await startServer();
      const text = await exchange(port, ['GET /later HTTP/1.1\r\nhost: x\r\n\r\n'], {
        endAfter: true,
        settleMs: 2000,
      });
      const answers = responses(text);
      assert.equal(answers.length, 1);
      assert.equal(answers[0]!.body, 'GET /later ');
      assert.match(answers[0]!.head, /connection: close/);
    });

    it('closes after an HTTP/1.0 request and after Connection: close', async () => {
      const port = await startServer();
      for (const request of [
        'GET /old HTTP/1.0\r\n\r\n',
        'GET /c HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
      ]) {
        const text = await exchange(port, [request, 'GET /ignored HTTP/1.1\r\nhost: x\r\n\r\n'], {
          settleMs: 2000,
        });
        const answers = responses(text);
        assert.equal(answers.length, 1, text);
        assert.match(answers[0]!.head, /connection: close/);
      }
    });

    it('chunk-encodes a response without a length, with its trailers; HEAD gets no body', async () => {
      const port = await startServer();
      const text = await exchange(port, ['GET /stream HTTP/1.1\r\nhost: x\r\n\r\n']);
      assert.match(text, /transfer-encoding: chunked\r\n/);
      assert.ok(
        text.endsWith('\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\nx-done: yes\r\n\r\n'),
        JSON.stringify(text),
      );
      const headText = await exchange(port, [
        'HEAD /h HTTP/1.1\r\nhost: x\r\n\r\nGET /g HTTP/1.1\r\nhost: x\r\n\r\n',
      ]);
      assert.match(
        headText,
        /^HTTP\/1\.1 200 OK\r\ncontent-length: 8\r\ndate: [^\r]+\r\n\r\nHTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nGET \/g $/,
      );
    });

    it('hands an upgrade request over with the bytes that followed its head', async () => {
      const port = await startServer();
      const text = await exchange(port, [
        'GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: test\r\n\r\nearly-bytes',
      ]);
      assert.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
      assert.deepEqual(app.upgraded, [{ url: '/ws', rest: 'early-bytes' }]);
    });

    const malformed: Array<[string, string, number, string]> = [
      ['a request line that is not one', 'HELLO\r\n\r\n', 400, 'malformed request line'],
      ['HTTP/1.1 without host', 'GET / HTTP/1.1\r\n\r\n', 400, 'HTTP/1.1 request without host'],
      [
        'both framings',
        'POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n',
        400,
        'both transfer-encoding and content-length',
      ],
      [
        'a bad chunk size',
        'POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
        400,
        'malformed chunked body: chunk size expected',
      ],
      [
        'chunk data without its CRLF',
        'POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n1\r\nab\r\n',
        400,
        'malformed chunked body: CRLF expected after chunk data',
      ],
      [
        'a chunk size too large to count',
        'POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffff\r\n',
        413,
        'malformed chunked body: chunk size too large',
      ],
      [
        'CONNECT',
        'CONNECT a:443 HTTP/1.1\r\nhost: a:443\r\n\r\n',
        501,
        'CONNECT is not supported by this listener',
      ],
      ['HTTP/3.0', 'GET / HTTP/3.0\r\n\r\n', 505, 'HTTP version 3.0 not supported'],
    ];
    for (const [title, text, status, message] of malformed) {
      it(`answers ${title} with ${status} and closes`, async () => {
        const port = await startServer();
        const answer = await exchange(port, [text], { settleMs: 2000 });
        const [first, ...others] = responses(answer);
        assert.equal(others.length, 0);
        assert.equal(first!.status, status, answer);
        assert.equal(first!.body, `${message}\n`);
        assert.match(first!.head, /connection: close/);
      });
    }

    it('answers 431 to a head over the limit, whole or still incomplete, and 413 to a body over it', async () => {
      const port = await startServer({ maxHeadBytes: 256, maxHeaderCount: 10, maxBodyBytes: 8 });
      const big = `GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(300)}\r\n\r\n`;
      for (const text of [big, big.slice(0, 290)]) {
        const [first] = responses(await exchange(port, [text], { settleMs: 2000 }));
        assert.deepEqual([first!.status, first!.body], [431, 'request head larger than 256 bytes\n']);
      }
      const fields = Array.from({ length: 10 }, (_, i) => `x-${i}: ${i}\r\n`).join('');
      const [many] = responses(
        await exchange(port, [`GET / HTTP/1.1\r\nhost: x\r\n${fields}\r\n`], { settleMs: 2000 }),
      );
      assert.deepEqual([many!.status, many!.body], [431, 'more than 10 header fields\n']);
      const [long] = responses(
        await exchange(port, ['POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 9\r\n\r\n'], { settleMs: 2000 }),
      );
      assert.deepEqual([long!.status, long!.body], [413, 'content-length 9 is over the limit of 8 bytes\n']);
      const [chunked] = responses(
        await exchange(
          port,
          [
            'POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n',
          ],
          { settleMs: 2000 },
        ),
      );
      assert.deepEqual([chunked!.status, chunked!.body], [413, 'request body over the limit of 8 bytes\n']);
      // The refusals before any request reached the app are told as such; the chunked body's
      // request had reached it, and its exchange hears of the refusal instead.
      assert.deepEqual(app.refused, [431, 431, 431, 413]);
    });
  });

describe('proxy HTTP/1.1 downstream, through the proxy', () => {
  let upstream: HttpUpstream;
  before(async () => {
    upstream = await startHttpUpstream();
  });
  after(async () => {
    await upstream.close();
  });
  afterEach(closeAllHarnesses);

  it('forwards pipelined requests in order, bodies and all, on one downstream connection', async () => {
    const h = await startProxy(`
listeners:
  - { name: in, role: inbound, address: 127.0.0.1, port: 0, protocol: http }
routes:
  - match: { path: { prefix: / } }
    destinations: [{ cluster: up, weight: 1 }]
clusters:
${clusterYaml('up', [upstream.port])}`);
    const text = await exchange(
      h.port(),
      [
        'GET /one HTTP/1.1\r\nhost: x\r\n\r\n' +
          'POST /two HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello' +
          'POST /three HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      ],
      { settleMs: 500 },
    );
    const answers = responses(text);
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200],
    );
    const paths = answers.map((a) => (JSON.parse(a.body) as { url: string }).url);
    assert.deepEqual(paths, ['/one', '/two', '/three']);
  });

  it('answers a malformed request with 400 and the reason, and still serves the next connection', async () => {
    const h = await startProxy(`
listeners:
  - { name: in, role: inbound, address: 127.0.0.1, port: 0, protocol: http }
routes:
  - match: { path: { prefix: / } }
    directResponse: { status: 200, body: fine }
clusters:
${clusterYaml('up', [upstream.port])}`);
    const [first] = responses(
      await exchange(h.port(), ['GET / HTTP/1.1\r\nhost: x\r\nx : y\r\n\r\n'], { settleMs: 2000 }),
    );
    assert.deepEqual([first!.status, first!.body], [400, 'malformed header name "x "\n']);
    const answer = await request(h.port());
    assert.deepEqual([answer.status, answer.body], [200, 'fine']);
  });
});
