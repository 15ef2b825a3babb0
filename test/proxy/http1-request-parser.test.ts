/**
 * The downstream HTTP/1.1 server's request-head parsing: request line, headers the way Node's
 * server gives them, framing, persistence, Expect and Upgrade; malformed, smuggling-shaped and
 * oversized heads refused with the status and message that say why.
 */
import { strict as assert } from 'node:assert';
import { DEFAULT_REQUEST_LIMITS } from '../../proxy/config-model';
import { parseRequestHead, type RequestHead, type RequestHeadError } from '../../proxy/http1-request-parser';
import { CHUNKED, LENGTH, NO_BODY } from '../../proxy/http1-response-parser';

function head(text: string): RequestHead {
  const parsed = parseRequestHead(text);
  if ('status' in parsed) throw new Error(`refused: ${parsed.status} ${parsed.message}`);
  return parsed;
}

function refusal(text: string, limits = DEFAULT_REQUEST_LIMITS): RequestHeadError {
  const parsed = parseRequestHead(text, limits);
  assert.ok('status' in parsed, `expected a refusal of ${JSON.stringify(text)}`);
  return parsed;
}

describe('proxy HTTP/1.1 request head parser', () => {
  it('reads the request line, headers (lower-case, repeated ones joined) and persistence', () => {
    const h = head(
      'GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: a\r\naccept: b\r\nCookie: c=1\r\n' +
        'Set-Cookie: s=1\r\nSet-Cookie: s=2\r\nX-Empty:\r\nX-Spaces:  v  \r\n',
    );
    assert.equal(h.method, 'GET');
    assert.equal(h.target, '/a/b?x=1');
    assert.equal(h.minorVersion, 1);
    assert.deepEqual(
      { ...h.headers },
      {
        host: 'example.com',
        accept: 'a, b',
        cookie: 'c=1',
        'set-cookie': ['s=1', 's=2'],
        'x-empty': '',
        'x-spaces': 'v',
      },
    );
    assert.equal(h.framing, NO_BODY);
    assert.equal(h.keepAlive, true);
    assert.equal(h.expectContinue, false);
    assert.equal(h.upgrade, false);
  });

  it('keeps HTTP/1.1 alive unless Connection: close; HTTP/1.0 only with Connection: keep-alive', () => {
    assert.equal(head('GET / HTTP/1.1\r\nhost: a\r\nconnection: Close').keepAlive, false);
    assert.equal(head('GET / HTTP/1.0').keepAlive, false);
    assert.equal(head('GET / HTTP/1.0\r\nconnection: keep-alive').keepAlive, true);
    assert.equal(head('GET / HTTP/1.0').minorVersion, 0);
  });

  it('frames bodies by Content-Length and chunked Transfer-Encoding', () => {
    const length = head('POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 42');
    assert.equal(length.framing, LENGTH);
    assert.equal(length.length, 42);
    assert.equal(head('POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 0').framing, NO_BODY);
    assert.equal(head('POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 7, 7').length, 7);
    assert.equal(head('POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: Chunked').framing, CHUNKED);
  });

  it('sees Expect: 100-continue and an upgrade request', () => {
    assert.equal(
      head('PUT / HTTP/1.1\r\nhost: a\r\nexpect: 100-Continue\r\ncontent-length: 5').expectContinue,
      true,
    );
    assert.equal(head('PUT / HTTP/1.0\r\nexpect: 100-continue\r\ncontent-length: 5').expectContinue, false);
    const ws = head('GET /ws HTTP/1.1\r\nhost: a\r\nconnection: keep-alive, Upgrade\r\nupgrade: websocket');
    assert.equal(ws.upgrade, true);
    assert.equal(head('GET / HTTP/1.1\r\nhost: a\r\nupgrade: websocket').upgrade, false);
  });

  it('takes absolute-form and asterisk-form targets as sent', () => {
    assert.equal(head('GET http://a.example/x HTTP/1.1\r\nhost: a.example').target, 'http://a.example/x');
    assert.equal(head('OPTIONS * HTTP/1.1\r\nhost: a').target, '*');
  });

  const refused: Array<[string, string, number, string]> = [
    ['an empty request line', '', 400, 'malformed request line'],
    ['a request line without a version', 'GET /', 400, 'malformed request line'],
    ['two spaces after the method', 'GET  / HTTP/1.1\r\nhost: a', 400, 'malformed request target'],
    [
      'a method with a bad character',
      'G(T / HTTP/1.1\r\nhost: a',
      400,
      'malformed method in the request line',
    ],
    ['a control character in the target', 'GET /\x01 HTTP/1.1\r\nhost: a', 400, 'malformed request target'],
    ['a lower-case version', 'GET / http/1.1\r\nhost: a', 400, 'malformed HTTP version in the request line'],
    ['HTTP/2.0 in text', 'GET / HTTP/2.0\r\nhost: a', 505, 'HTTP version 2.0 not supported'],
    ['HTTP/1.1 without host', 'GET / HTTP/1.1', 400, 'HTTP/1.1 request without host'],
    ['two host fields', 'GET / HTTP/1.1\r\nhost: a\r\nHost: b', 400, 'more than one host header'],
    ['obs-fold', 'GET / HTTP/1.1\r\nhost: a\r\nx: 1\r\n 2', 400, 'obsolete line folding'],
    [
      'a line without a colon',
      'GET / HTTP/1.1\r\nhost: a\r\nnocolon',
      400,
      'header line without a name and colon',
    ],
    ['whitespace before the colon', 'GET / HTTP/1.1\r\nhost: a\r\nx : 1', 400, 'malformed header name "x "'],
    [
      'a control character in a value',
      'GET / HTTP/1.1\r\nhost: a\r\nx: a\x00b',
      400,
      'control character in header x',
    ],
    ['a bare LF in a value', 'GET / HTTP/1.1\r\nhost: a\r\nx: a\nb: c', 400, 'control character in header x'],
    [
      'a malformed content-length',
      'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1e3',
      400,
      'malformed content-length "1e3"',
    ],
    [
      'a negative content-length',
      'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: -1',
      400,
      'malformed content-length "-1"',
    ],
    [
      'conflicting content-lengths',
      'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ncontent-length: 2',
      400,
      'conflicting content-length values',
    ],
    [
      'conflicting lengths in one field',
      'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1, 2',
      400,
      'conflicting content-length values',
    ],
    [
      'a content-length too long to count',
      'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1234567890123456',
      413,
      'content-length 1234567890123456 is too large',
    ],
    [
      'both framings',
      'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ntransfer-encoding: chunked',
      400,
      'both transfer-encoding and content-length',
    ],
    [
      'chunked not last',
      'POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked, gzip',
      400,
      'transfer-encoding with chunked not last',
    ],
    [
      'chunked twice',
      'POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked, chunked',
      400,
      'transfer-encoding with chunked not last',
    ],
    [
      'a coding without chunked',
      'POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip',
      400,
      'transfer-encoding "gzip" does not end with chunked',
    ],
    [
      'a coding before chunked',
      'POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip, chunked',
      501,
      'transfer-coding "gzip" not implemented',
    ],
    [
      'transfer-encoding on HTTP/1.0',
      'POST / HTTP/1.0\r\ntransfer-encoding: chunked',
      400,
      'transfer-encoding in an HTTP/1.0 request',
    ],
  ];
  for (const [title, text, status, message] of refused) {
    it(`refuses ${title}: ${status} ${message}`, () => {
      assert.deepEqual(refusal(text), { status, message });
    });
  }

  it('answers 431 beyond the header count and 413 beyond the body limit', () => {
    const limits = { maxHeadBytes: 1024, maxHeaderCount: 3, maxBodyBytes: 10 };
    assert.deepEqual(refusal('GET / HTTP/1.1\r\nhost: a\r\na: 1\r\nb: 2\r\nc: 3', limits), {
      status: 431,
      message: 'more than 3 header fields',
    });
    assert.equal('status' in parseRequestHead('GET / HTTP/1.1\r\nhost: a\r\na: 1\r\nb: 2', limits), false);
    assert.deepEqual(refusal('POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 11', limits), {
      status: 413,
      message: 'content-length 11 is over the limit of 10 bytes',
    });
  });
});
