/**
 * The check of an upstream request head before it is written (proxy/upstream-call.ts): a
 * value that brings its own line break or NUL (from a header operation or a policy verdict)
 * must not reach the upstream. No network.
 */
import { strict as assert } from 'node:assert';
import { isCleanHead } from '../../proxy/upstream-call';

describe('proxy upstream request head check', () => {
  const head = (value: string): string =>
    `GET / HTTP/1.1\r\nhost: a\r\nx-a: ${value}\r\ncontent-length: 0\r\n\r\n`;

  it('passes a head whose line breaks are its own', () => {
    assert.equal(isCleanHead(head('b c\t"d"'), 5), true);
  });

  it('refuses values with CRLF, a bare CR or LF, or NUL', () => {
    assert.equal(isCleanHead(head('b\r\nx-injected: 1'), 5), false);
    assert.equal(isCleanHead(head('b\nc'), 5), false);
    assert.equal(isCleanHead(head('b\rc'), 5), false);
    assert.equal(isCleanHead(head('b\0c'), 5), false);
  });
});
