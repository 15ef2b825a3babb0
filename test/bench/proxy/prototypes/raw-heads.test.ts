import { strict as assert } from 'node:assert';
import {
  CHUNKED,
  LENGTH,
  NO_BODY,
  parseRequestHead,
  parseResponseHead,
  UNTIL_CLOSE,
  type RequestHead,
  type ResponseHead,
} from '../../../../bench/proxy/prototypes/raw-heads';

const PLAIN = { enabled: false, clientAddress: '' };

function request(head: string, added = PLAIN): RequestHead {
  const parsed = parseRequestHead(head, added);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

function response(head: string, wasHead = false, keepAlive = true): ResponseHead {
  const parsed = parseResponseHead(head, wasHead, keepAlive);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

describe('bench/proxy prototypes: raw head parsing (measurement aid)', () => {
  it('forwards a request head unchanged but for hop-by-hop headers', () => {
    const parsed = request(
      'GET /a?b HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nAccept: */*\r\nTE: trailers',
    );
    assert.equal(parsed.text, 'GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n');
    assert.equal(parsed.framing, NO_BODY);
    assert.equal(parsed.keepAlive, true);
  });

  it('reads the body framing and persistence of requests', () => {
    assert.deepEqual(
      [LENGTH, 12],
      [
        request('POST / HTTP/1.1\r\nContent-Length: 12').framing,
        request('POST / HTTP/1.1\r\ncontent-length: 12').length,
      ],
    );
    assert.equal(request('POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked').framing, CHUNKED);
    assert.equal(request('GET / HTTP/1.1\r\nConnection: close').keepAlive, false);
    assert.equal(request('GET / HTTP/1.0').keepAlive, false);
    assert.equal(request('GET / HTTP/1.0\r\nConnection: keep-alive').keepAlive, true);
    assert.equal(request('HEAD / HTTP/1.1').isHead, true);
  });

  it('refuses requests a proxy must not forward', () => {
    for (const bad of [
      'GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked',
      'GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2',
      'GET / HTTP/1.1\r\nContent-Length: -1',
      'GET / HTTP/1.1\r\nTransfer-Encoding: gzip',
      'GET / HTTP/2.0',
      'GET /\r\nHost: x',
      'GET / HTTP/1.1\r\nno colon here',
    ]) {
      assert.equal(typeof parseRequestHead(bad, PLAIN), 'string', bad);
    }
  });

  it('adds x-forwarded-for (appended to one already there), x-forwarded-proto and an x-request-id', () => {
    const added = { enabled: true, clientAddress: '10.0.0.9' };
    const text = request('GET / HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\nHost: x', added).text;
    assert.match(
      text,
      /^GET \/ HTTP\/1\.1\r\nHost: x\r\nx-forwarded-for: 1\.2\.3\.4, 10\.0\.0\.9\r\nx-forwarded-proto: http\r\nx-request-id: [0-9a-f-]{36}\r\n\r\n$/,
    );
    assert.doesNotMatch(
      request('GET / HTTP/1.1\r\nX-Request-Id: mine', added).text,
      /x-request-id: [0-9a-f-]{36}/,
    );
  });

  it('reads the framing of responses, and rewrites a head only when it must', () => {
    const plain = response('HTTP/1.1 200 OK\r\nContent-Length: 5');
    assert.deepEqual([plain.text, plain.framing, plain.length, plain.reusable], [undefined, LENGTH, 5, true]);
    const keepAlive = response('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5');
    assert.equal(keepAlive.text, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
    const closing = response('HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked');
    assert.deepEqual([closing.framing, closing.reusable], [CHUNKED, false]);
    const clientCloses = response('HTTP/1.1 200 OK\r\nContent-Length: 5', false, false);
    assert.equal(clientCloses.text, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nconnection: close\r\n\r\n');
    assert.deepEqual(
      [response('HTTP/1.1 200 OK').framing, response('HTTP/1.1 200 OK').reusable],
      [UNTIL_CLOSE, false],
    );
    assert.equal(response('HTTP/1.1 204 No Content').framing, NO_BODY);
    assert.equal(response('HTTP/1.1 304 Not Modified\r\nContent-Length: 5').framing, NO_BODY);
    assert.equal(response('HTTP/1.1 200 OK\r\nContent-Length: 5', true).framing, NO_BODY);
    assert.equal(response('HTTP/1.0 200 OK\r\nContent-Length: 5').reusable, false);
  });
});
