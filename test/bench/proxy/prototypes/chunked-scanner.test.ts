import { strict as assert } from 'node:assert';
import { ChunkedBodyError, ChunkedScanner } from '../../../../bench/proxy/prototypes/chunked-scanner';

/** Feeds `text` to a fresh scanner in pieces of `piece` bytes; returns where it said the body ended. */
function endOf(text: string, piece: number): number {
  const bytes = Buffer.from(text, 'latin1');
  const scanner = new ChunkedScanner();
  for (let at = 0; at < bytes.length; at += piece) {
    const end = scanner.scan(bytes, at, Math.min(bytes.length, at + piece));
    if (end >= 0) return end;
  }
  return -1;
}

describe('bench/proxy prototypes: chunked scanner (measurement aid)', () => {
  const body = '5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: yes\r\n\r\n';

  it('finds the end of a chunked body however it is split', () => {
    for (let piece = 1; piece <= body.length; piece++) {
      assert.equal(endOf(`${body}NEXT`, piece), body.length, `pieces of ${piece}`);
    }
  });

  it('finds the end of a body without trailers, and says -1 while it goes on', () => {
    assert.equal(endOf('3\r\nabc\r\n0\r\n\r\n', 4), 13);
    assert.equal(endOf('3\r\nabc\r\n0\r\n', 100), -1);
  });

  it('refuses what is not chunked framing', () => {
    for (const bad of ['x\r\n', '3\r\nabcX', '3\nabc', '0\r\n\r\r', 'ffffffffffffff\r\n']) {
      assert.throws(() => endOf(bad, 100), ChunkedBodyError, JSON.stringify(bad));
    }
  });
});
