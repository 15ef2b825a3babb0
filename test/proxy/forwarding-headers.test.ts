/**
 * proxy/forwarding-headers.ts in process: the ids the proxy gives requests that come without
 * them (version 4 UUIDs for x-request-id, valid sampled W3C traceparents, all distinct) and the
 * hop-by-hop test of the hot path. No network.
 */
import { strict as assert } from 'node:assert';
import {
  HOP_BY_HOP,
  isHopByHop,
  isValidTraceparent,
  newRequestId,
  newTraceparent,
  requestIdsOf,
  upstreamFieldLines,
  upstreamRequestHeaders,
} from '../../proxy/forwarding-headers';
import { parseRequestHead } from '../../proxy/http1-request-parser';
import { parseFieldLines } from '../../proxy/http1-response-parser';

describe('proxy forwarding headers', () => {
  it('tells hop-by-hop names as the HOP_BY_HOP set does', () => {
    for (const name of HOP_BY_HOP) assert.equal(isHopByHop(name), true, name);
    for (const name of ['content-length', 'date', 'x-te', 'hosts', 'Connection', ''])
      assert.equal(isHopByHop(name), false, name);
  });

  it('forwards received lines as text to the same fields as the header object', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const heads = [
      'GET / HTTP/1.1\r\nHost: a',
      'GET /x?y HTTP/1.1\r\nHost: a:8080\r\nUser-Agent: t\r\nAccept: */*\r\nContent-Length: 3',
      'POST / HTTP/1.1\r\nhost: a\r\nConnection: keep-alive, X-Secret\r\nx-secret: 1\r\nkeep-alive: 5\r\n' +
        'Proxy-Connection: x\r\nUpgrade: h2c\r\ntransfer-encoding: chunked\r\nx-kept: 2',
      'GET / HTTP/1.1\r\nhost: a\r\nX-Forwarded-For: 203.0.113.9\r\nx-forwarded-proto: https\r\n' +
        'TE: trailers, deflate\r\nx-request-id: r1\r\nTraceparent: ' +
        traceparent +
        '\r\ntracestate: v=1',
      'GET / HTTP/1.1\r\nhost: a\r\ntraceparent: bad\r\ntracestate: v=1\r\nte: gzip\r\nx-request-id: ',
      'GET / HTTP/1.1\r\nhost: a\r\nconnection: x-forwarded-for, x-forwarded-proto, content-length\r\n' +
        'x-forwarded-for: 1.2.3.4\r\nx-forwarded-proto: https\r\ncontent-length: 0',
    ];
    for (const text of heads) {
      const parsed = parseRequestHead(text);
      assert.ok(!('status' in parsed), text);
      if ('status' in parsed) continue;
      const facts = { remoteAddress: '::ffff:127.0.0.1', secure: false };
      const ids = requestIdsOf(parsed.headers);
      const expected = upstreamRequestHeaders(parsed.headers, facts, ids, false);
      const lines = upstreamFieldLines(text, parsed.headers, facts, ids);
      const fields = Object.create(null) as Record<string, string | string[] | undefined>;
      assert.equal(parseFieldLines(lines.text.slice(0, -2), 0, fields), lines.lines, text);
      assert.deepEqual({ ...fields }, { ...expected }, text);
      assert.equal(lines.hasLength, expected['content-length'] !== undefined, text);
    }
  });

  it('makes version 4 UUIDs, each new', () => {
    const seen = new Set<string>();
    // Over several refills of the entropy batch.
    for (let i = 0; i < 1000; i++) {
      const id = newRequestId();
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(id);
    }
    assert.equal(seen.size, 1000);
  });

  it('makes valid sampled traceparents, each new', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const traceparent = newTraceparent();
      assert.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      assert.ok(isValidTraceparent(traceparent));
      seen.add(traceparent);
    }
    assert.equal(seen.size, 1000);
  });
});
