/**
 * The upstream HTTP/1.1 client's own parsing: response heads (status, headers the way Node's
 * client gives them, framing, persistence; malformed and smuggling-shaped heads refused) and
 * the chunked decoder (data handed on without copying, trailers, split anywhere, bad framing
 * refused). Then, through the proxy, raw upstreams that answer such heads: a 502 with a reason.
 */
import { strict as assert } from 'node:assert';
import { REASON_HEADER } from '../../proxy';
import {
  CHUNKED,
  ChunkedBodyError,
  ChunkedDecoder,
  LENGTH,
  NO_BODY,
  nameIs,
  parseResponseHead,
  UNTIL_CLOSE,
  type ResponseHead,
} from '../../proxy/http1-response-parser';
import { closeAllHarnesses, clusterYaml, request, startProxy } from './support/proxy-harness';
import { startRawUpstream, type RawUpstream } from './support/upstreams';

function head(text: string, requestWasHead = false): ResponseHead {
  const parsed = parseResponseHead(text, requestWasHead);
  if (typeof parsed === 'string') throw new Error(`refused: ${parsed}`);
  return parsed;
}

function refusal(text: string): string {
  const parsed = parseResponseHead(text, false);
  assert.equal(typeof parsed, 'string', `expected a refusal of ${JSON.stringify(text)}`);
  return parsed as string;
}

/** Decodes `parts` in turn; returns the data, trailers and what followed the body. */
function decode(parts: readonly string[]): { data: string; trailers: unknown; rest: string } {
  const decoder = new ChunkedDecoder();
  let data = '';
  let rest = '';
  let ended = false;
  const sink = {
    onBodyData(buf: Buffer, start: number, end: number): void {
      data += buf.toString('latin1', start, end);
    },
  };
  for (const part of parts) {
    const buf = Buffer.from(part, 'latin1');
    if (ended) {
      rest += part;
      continue;
    }
    const end = decoder.decode(buf, 0, buf.length, sink);
    if (end >= 0) {
      ended = true;
      rest += buf.toString('latin1', end);
    }
  }
  assert.equal(ended, true, 'the body should have ended');
  return { data, trailers: decoder.trailers === undefined ? undefined : { ...decoder.trailers }, rest };
}

describe('proxy HTTP/1.1 response head parser', () => {
  it('reads status, headers, framing and persistence', () => {
    const parsed = head(
      'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nSet-Cookie: a=1\r\n' +
        'set-cookie: b=2\r\nVary: a\r\nVary:  b \r\nKeep-Alive: timeout=5, max=100',
    );
    assert.equal(parsed.status, 200);
    assert.equal(parsed.framing, LENGTH);
    assert.equal(parsed.length, 12);
    assert.equal(parsed.reusable, true);
    assert.equal(parsed.keepAliveSeconds, 5);
    assert.deepEqual(
      { ...parsed.headers },
      {
        'content-type': 'text/plain',
        'content-length': '12',
        'set-cookie': ['a=1', 'b=2'],
        vary: 'a, b',
        'keep-alive': 'timeout=5, max=100',
      },
    );
  });

  it('reads the fields it needs alike whether the header object is built at once or when read', () => {
    // Plain: the object waits until read. A repeated field of interest: built at once.
    const plain = head(
      'HTTP/1.1 200 OK\r\nConnection: keep-alive, x-hop\r\ngrpc-status: 0\r\nGrpc-Message: ok\r\n' +
        'x-hop: 1\r\ncontent-length: 2',
    );
    const repeated = head(
      'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nconnection: x-hop\r\ngrpc-status: 0\r\nGrpc-Message: ok\r\n' +
        'x-hop: 1\r\ncontent-length: 2',
    );
    for (const parsed of [plain, repeated]) {
      assert.equal(parsed.connection, 'keep-alive, x-hop');
      assert.equal(parsed.grpcStatus, '0');
      assert.equal(parsed.grpcMessage, 'ok');
      assert.equal(parsed.hasContentLength, true);
      assert.equal(parsed.length, 2);
      assert.deepEqual(
        { ...parsed.headers },
        {
          connection: 'keep-alive, x-hop',
          'grpc-status': '0',
          'grpc-message': 'ok',
          'x-hop': '1',
          'content-length': '2',
        },
      );
    }
    assert.equal(head('HTTP/1.1 204 No Content').hasContentLength, false);
    assert.match(refusal('HTTP/1.1 200 OK\r\n__proto__: x'), /__proto__/);
  });

  it('compares field names in place, folding letters only', () => {
    assert.equal(nameIs('x\r\nContent-LENGTH: 1', 3, 'content-length'), true);
    assert.equal(nameIs('content-lengths: 1', 0, 'content-length'), false);
    assert.equal(nameIs('content\rlength: 1', 0, 'content-length'), false);
    assert.equal(nameIs('HTTP2-Settings: 1', 0, 'http2-settings'), true);
    assert.equal(nameIs('http\x12-settings: 1', 0, 'http2-settings'), false);
  });

  it('knows which responses have no body, and which run until the close', () => {
    assert.equal(head('HTTP/1.1 204 No Content\r\ncontent-length: 5').framing, NO_BODY);
    assert.equal(head('HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked').framing, NO_BODY);
    assert.equal(head('HTTP/1.1 200 OK\r\ncontent-length: 5', true).framing, NO_BODY);
    assert.equal(head('HTTP/1.1 100 Continue').framing, NO_BODY);
    assert.equal(head('HTTP/1.1 200 OK\r\ncontent-length: 0').framing, NO_BODY);
    assert.equal(head('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked').framing, CHUNKED);
    const untilClose = head('HTTP/1.1 200 OK\r\nx-a: b');
    assert.equal(untilClose.framing, UNTIL_CLOSE);
    assert.equal(untilClose.reusable, false);
    assert.equal(head('HTTP/1.1 200 OK\r\ntransfer-encoding: gzip').framing, UNTIL_CLOSE);
  });

  it('follows Connection and the HTTP version for persistence', () => {
    assert.equal(head('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1').reusable, false);
    assert.equal(head('HTTP/1.0 200 OK\r\ncontent-length: 1').reusable, false);
    assert.equal(head('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 1').reusable, true);
  });

  it('accepts repeated equal Content-Length values', () => {
    assert.equal(head('HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 3').length, 3);
    assert.equal(head('HTTP/1.1 200 OK\r\ncontent-length: 3, 3').length, 3);
  });

  it('refuses malformed heads, saying why', () => {
    assert.match(refusal('HTTP/2 200 OK'), /status line/);
    assert.match(refusal('HTTP/1.1 2000 OK'), /status code/);
    assert.match(refusal('HTTP/1.1 abc OK'), /status code/);
    assert.match(refusal('ICY 200 OK'), /status line/);
    assert.match(refusal('HTTP/1.1 200 OK\r\nno colon here'), /colon/);
    assert.match(refusal('HTTP/1.1 200 OK\r\n: empty name'), /colon/);
    assert.match(refusal('HTTP/1.1 200 OK\r\nx-a : b'), /header name/);
    assert.match(refusal('HTTP/1.1 200 OK\r\nx-a: b\r\n folded'), /folding/);
    assert.match(refusal('HTTP/1.1 200 OK\r\nx-a: b\x00c'), /control character/);
    assert.match(refusal('HTTP/1.1 200 OK\r\nx-a: b\nx-b: c'), /control character/);
    assert.match(refusal('HTTP/1.1 200 OK\r\ncontent-length: -1'), /content-length/);
    assert.match(refusal('HTTP/1.1 200 OK\r\ncontent-length: 0x10'), /content-length/);
  });

  it('refuses smuggling-shaped heads: two framings, conflicting lengths, chunked not last', () => {
    assert.match(
      refusal('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked'),
      /both transfer-encoding and content-length/,
    );
    assert.match(refusal('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6'), /conflicting/);
    assert.match(refusal('HTTP/1.1 200 OK\r\ncontent-length: 5, 6'), /conflicting/);
    assert.match(refusal('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip'), /chunked not last/);
    assert.match(
      refusal('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked'),
      /chunked/,
    );
  });
});

describe('proxy HTTP/1.1 chunked decoder', () => {
  const body = '5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n';

  it('hands on the data and finds the end, with what follows left alone', () => {
    assert.deepEqual(decode([`${body}HTTP/1.1`]), {
      data: 'hello, world',
      trailers: undefined,
      rest: 'HTTP/1.1',
    });
  });

  it('gives the same answer however the bytes are split', () => {
    const whole = `${body.slice(0, -2)}x-checksum: abc\r\nX-Other: 1\r\n\r\n`;
    for (let i = 0; i <= whole.length; i++) {
      for (const j of [i, Math.min(whole.length, i + 3)]) {
        const outcome = decode([whole.slice(0, i), whole.slice(i, j), whole.slice(j)]);
        assert.equal(outcome.data, 'hello, world', `split at ${i}, ${j}`);
        assert.deepEqual(outcome.trailers, { 'x-checksum': 'abc', 'x-other': '1' }, `split at ${i}, ${j}`);
      }
    }
  });

  it('refuses bytes that are not chunked framing', () => {
    for (const bad of [
      'x\r\n',
      '5\r\nhelloXX',
      '5\nhello',
      '12345678901234\r\n',
      '5;a\nb\r\n',
      '0\r\n\r\x00',
      '0\r\nbad trailer\r\n\r\n',
    ]) {
      assert.throws(() => decode([bad]), ChunkedBodyError, JSON.stringify(bad));
    }
  });
});

describe('proxy HTTP/1.1 upstream answering malformed heads', () => {
  let upstream: RawUpstream;

  before(async () => {
    upstream = await startRawUpstream();
  });
  after(() => upstream.close());
  afterEach(closeAllHarnesses);

  async function through(raw: string): Promise<{ status: number; reason: unknown; body: string }> {
    upstream.answer = raw;
    const harness = await startProxy(`
listeners: [{name: out, role: outbound, address: 127.0.0.1, port: 0}]
routes: [{cluster: raw}]
clusters:
${clusterYaml('raw', [upstream.port])}`);
    const got = await request(harness.port());
    return { status: got.status, reason: got.headers[REASON_HEADER], body: got.body };
  }

  it('forwards a well-formed answer', async () => {
    const got = await through('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    assert.deepEqual(got, { status: 200, reason: undefined, body: 'ok' });
  });

  it('answers 502 with the reason for a malformed head', async () => {
    const got = await through('HTTP/1.1 200 OK\r\nbroken header\r\n\r\n');
    assert.equal(got.status, 502);
    assert.equal(got.reason, 'upstream-reset');
    assert.match(got.body, /malformed upstream response head: header line without a name and colon/);
  });

  it('answers 502 for a response with both Content-Length and Transfer-Encoding', async () => {
    const got = await through(
      'HTTP/1.1 200 OK\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n',
    );
    assert.equal(got.status, 502);
    assert.match(got.body, /both transfer-encoding and content-length/);
  });
});
