/**
 * MEASUREMENT AID, NOT THE PRODUCT (see bench/proxy/README.md). Finds where an HTTP/1.1
 * chunked body ends without copying or de-chunking it, so the raw prototype can forward the
 * bytes exactly as they came and still know when the message is over.
 */

const SIZE = 0; // hex digits of a chunk size
const EXTENSION = 1; // `;name=value` after the size, up to CR
const SIZE_LF = 2;
const DATA = 3;
const DATA_CR = 4;
const DATA_LF = 5;
const TRAILER_START = 6; // start of a trailer line, or the final CRLF
const TRAILER_LINE = 7;
const TRAILER_LF = 8;
const FINAL_LF = 9;

const CR = 13;
const LF = 10;
/** A chunk size of more than 13 hex digits (2^52) is refused: it cannot be counted exactly. */
const MAX_SIZE_DIGITS = 13;

export class ChunkedBodyError extends Error {}

export class ChunkedScanner {
  private state = SIZE;
  private remaining = 0;
  private digits = 0;

  /** Forgets any body in progress: ready for the next message. */
  reset(): void {
    this.state = SIZE;
    this.remaining = 0;
    this.digits = 0;
  }

  /**
   * Scans `buf[start, end)`, which continues the body. Returns the index just past the body's
   * last byte (the CRLF closing the trailers) when it ends there, or -1 when it goes on.
   * @throws ChunkedBodyError on bytes that are not valid chunked framing
   */
  scan(buf: Uint8Array, start: number, end: number): number {
    let i = start;
    while (i < end) {
      switch (this.state) {
        case DATA: {
          const take = Math.min(this.remaining, end - i);
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.state = DATA_CR;
          continue;
        }
        case SIZE: {
          const c = buf[i]!;
          const digit = hexValue(c);
          if (digit >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) throw new ChunkedBodyError('chunk size too large');
            this.remaining = this.remaining * 16 + digit;
          } else if (this.digits === 0) {
            throw new ChunkedBodyError('chunk size expected');
          } else if (c === CR) {
            this.state = SIZE_LF;
          } else if (c === 0x3b /* ; */ || c === 0x20 || c === 0x09) {
            this.state = EXTENSION;
          } else {
            throw new ChunkedBodyError('bad character in chunk size');
          }
          break;
        }
        case EXTENSION:
          if (buf[i] === CR) this.state = SIZE_LF;
          break;
        case SIZE_LF:
          if (buf[i] !== LF) throw new ChunkedBodyError('LF expected after chunk size');
          this.digits = 0;
          this.state = this.remaining === 0 ? TRAILER_START : DATA;
          break;
        case DATA_CR:
          if (buf[i] !== CR) throw new ChunkedBodyError('CRLF expected after chunk data');
          this.state = DATA_LF;
          break;
        case DATA_LF:
          if (buf[i] !== LF) throw new ChunkedBodyError('CRLF expected after chunk data');
          this.state = SIZE;
          break;
        case TRAILER_START:
          this.state = buf[i] === CR ? FINAL_LF : TRAILER_LINE;
          break;
        case TRAILER_LINE:
          if (buf[i] === CR) this.state = TRAILER_LF;
          break;
        case TRAILER_LF:
          if (buf[i] !== LF) throw new ChunkedBodyError('LF expected after trailer');
          this.state = TRAILER_START;
          break;
        case FINAL_LF:
          if (buf[i] !== LF) throw new ChunkedBodyError('LF expected at the end of the body');
          this.reset();
          return i + 1;
      }
      i++;
    }
    return -1;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}
