/**
 * The upstream HTTP/1.1 client's own parsing (adapted from the raw prototype of
 * bench/proxy/prototypes/raw-heads.ts and chunked-scanner.ts): the response head — status,
 * headers as an object (as Node's client gives them), body framing and persistence — and a
 * chunked body decoder that hands the data of each chunk on as slices of the bytes received
 * (no copy) and collects the trailers.
 *
 * Strict where leniency lets a response be read two ways (RFC 9112 §6.3, §11.2): a head with
 * both Transfer-Encoding and Content-Length, conflicting or malformed Content-Length,
 * `chunked` not last or twice, obs-fold continuation lines, whitespace before the colon,
 * control characters in a value — all refused, and the exchange answers 502.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** How a response body is delimited. */
export const NO_BODY = 0;
export const LENGTH = 1;
export const CHUNKED = 2;
/** The body runs until the upstream closes the connection. */
export const UNTIL_CLOSE = 3;

/** Longest response head accepted, final CRLFCRLF included (Node's client default is 16 KiB). */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Longest chunked trailer section accepted. */
export const MAX_TRAILER_BYTES = 16 * 1024;

/**
 * A parsed response head. The fields every response needs (framing, persistence, the
 * Connection value, gRPC status) are read when it is parsed; the header object only when
 * `headers` is first read — a head forwarded as text (Downstream.writeReceivedHead) never
 * needs it unless the access log or the traffic hook asks.
 */
export class ResponseHead {
  constructor(
    readonly status: number,
    readonly framing: number,
    /** Body bytes when framing is LENGTH. */
    readonly length: number,
    /** Whether the connection may carry another request after this response. */
    readonly reusable: boolean,
    /** `Keep-Alive: timeout=N` of the upstream, in seconds; -1 when not announced. */
    readonly keepAliveSeconds: number,
    /** The Connection field's value (repeats joined), or undefined. */
    readonly connection: string | undefined,
    /** The head has a Content-Length field. */
    readonly hasContentLength: boolean,
    readonly grpcStatus: string | undefined,
    readonly grpcMessage: string | undefined,
    /**
     * The head's text as received (latin1, without its final CRLFCRLF); `headers` is parsed
     * from it, from `fieldsFrom`, when first read.
     */
    readonly text: string,
    private readonly fieldsFrom: number,
    private parsedHeaders: IncomingHttpHeaders | undefined,
  ) {}

  /** Lower-case names; `set-cookie` an array; other repeated fields joined with `, `. */
  get headers(): IncomingHttpHeaders {
    let headers = this.parsedHeaders;
    if (headers === undefined) {
      const fields = Object.create(null) as Record<string, string | string[] | undefined>;
      // The lines were checked when the head was parsed: this cannot refuse.
      if (this.fieldsFrom < this.text.length) parseFieldLines(this.text, this.fieldsFrom, fields);
      headers = fields as IncomingHttpHeaders;
      this.parsedHeaders = headers;
    }
    return headers;
  }
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Control characters other than horizontal tab (and CR/LF, which end lines). */
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const DIGITS = /^\d{1,15}$/;
/**
 * Field lines that parseFieldLines accepts, checked in one pass (from `lastIndex`, to the end):
 * a token, a colon, a value of visible characters, tabs and obs-text; lines joined by CRLF.
 */
const PLAIN_FIELD_LINES =
  /(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*)(?:\r\n[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*)*$/y;
/** 1 at the name lengths the response parser reads values of (see NotedFields.read). */
const NOTED_LENGTHS = new Uint8Array(18);
for (const name of [
  '__proto__',
  'connection',
  'keep-alive',
  'grpc-status',
  'grpc-message',
  'content-length',
  'transfer-encoding',
])
  NOTED_LENGTHS[name.length] = 1;

/**
 * Common field names, each mapped to itself: a name read from a head is a new string, and a
 * new string as a property key is looked up among the interned ones — in the runtime, on every
 * request, while a store site has seen one name only (requests with just `Host`). The constant
 * from this table is interned already.
 */
const COMMON_NAMES: ReadonlyMap<string, string> = new Map(
  [
    'accept',
    'accept-encoding',
    'accept-language',
    'authorization',
    'cache-control',
    'connection',
    'content-encoding',
    'content-length',
    'content-type',
    'cookie',
    'date',
    'etag',
    'expect',
    'grpc-message',
    'grpc-status',
    'host',
    'keep-alive',
    'last-modified',
    'location',
    'origin',
    'referer',
    'server',
    'set-cookie',
    'te',
    'traceparent',
    'tracestate',
    'transfer-encoding',
    'upgrade',
    'user-agent',
    'vary',
    'x-forwarded-for',
    'x-forwarded-proto',
    'x-request-id',
  ].map((name) => [name, name]),
);

/** Fields Node's client keeps only the first of, when repeated. */
const SINGLE: ReadonlySet<string> = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

function trimOws(value: string): string {
  let from = 0;
  let to = value.length;
  while (from < to && (value.charCodeAt(from) === 0x20 || value.charCodeAt(from) === 0x09)) from++;
  while (to > from && (value.charCodeAt(to - 1) === 0x20 || value.charCodeAt(to - 1) === 0x09)) to--;
  return from === 0 && to === value.length ? value : value.slice(from, to);
}

/** Whether a comma-separated header value lists `token` (lower-case; compared case-insensitively). */
export function hasToken(value: string, token: string): boolean {
  // The usual case, one token and nothing else, without splitting.
  if (value.length === token.length) return value === token || value.toLowerCase() === token;
  if (value.length < token.length) return false;
  // Element by element, without splitting (String.prototype.split calls into the runtime).
  let from = 0;
  while (from <= value.length) {
    let to = value.indexOf(',', from);
    if (to < 0) to = value.length;
    let start = from;
    let end = to;
    while (start < end && isOws(value.charCodeAt(start))) start++;
    while (end > start && isOws(value.charCodeAt(end - 1))) end--;
    if (end - start === token.length && value.slice(start, end).toLowerCase() === token) return true;
    from = to + 1;
  }
  return false;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Adds the header lines of `head[from, head.length)` (CRLF-separated, no final CRLF) to
 * `headers`, Node's way. Returns a string saying why a line is refused, else the number of
 * names added (fewer than the lines when a field was repeated).
 */
export function parseFieldLines(
  head: string,
  from: number,
  headers: Record<string, string | string[] | undefined>,
): string | number {
  let added = 0;
  let pos = from;
  while (pos < head.length) {
    let end = head.indexOf('\r\n', pos);
    if (end < 0) end = head.length;
    const first = head.charCodeAt(pos);
    if (first === 0x20 || first === 0x09) return 'obsolete line folding';
    const colon = head.indexOf(':', pos);
    if (colon <= pos || colon > end) return 'header line without a name and colon';
    const lower = head.slice(pos, colon).toLowerCase();
    const name = COMMON_NAMES.get(lower) ?? lower;
    if (!TOKEN.test(name)) return `malformed header name ${JSON.stringify(name)}`;
    const value = trimOws(head.slice(colon + 1, end));
    if (BAD_VALUE.test(value)) return `control character in header ${name}`;
    if (name === '__proto__') return 'malformed header name "__proto__"';
    const existing = headers[name];
    if (existing === undefined) {
      headers[name] = name === 'set-cookie' ? [value] : value;
      added++;
    } else if (Array.isArray(existing)) existing.push(value);
    else if (name === 'content-length' && existing !== value) return 'conflicting content-length values';
    else if (!SINGLE.has(name)) headers[name] = `${existing}, ${value}`;
    pos = end + 2;
  }
  return added;
}

/**
 * Parses a response head (`head` is latin1 and ends before its final CRLFCRLF) to a request
 * whose method was HEAD or not.
 * @returns the head, or a string saying why it is refused (the exchange answers 502)
 */
export function parseResponseHead(head: string, requestWasHead: boolean): ResponseHead | string {
  if (
    !head.startsWith('HTTP/1.') ||
    (head.charCodeAt(7) !== 0x30 && head.charCodeAt(7) !== 0x31) ||
    head.charCodeAt(8) !== 0x20
  )
    return 'malformed status line';
  const after = head.charCodeAt(12);
  const status = statusCode(head);
  if (status < 0 || !(Number.isNaN(after) || after === 0x20 || after === 0x0d))
    return 'malformed status code';
  const lineEnd = head.indexOf('\r\n');
  const from = lineEnd < 0 ? head.length : lineEnd + 2;
  const noted = new NotedFields();
  let headers: Record<string, string | string[] | undefined> | undefined;
  if (from < head.length) {
    PLAIN_FIELD_LINES.lastIndex = from;
    if (!PLAIN_FIELD_LINES.test(head) || !noted.read(head, from)) {
      // Something to refuse, or a field of interest repeated: the whole parse says which.
      headers = Object.create(null) as Record<string, string | string[] | undefined>;
      const refused = parseFieldLines(head, from, headers);
      if (typeof refused === 'string') return refused;
      noted.take(headers);
    }
  }
  const http10 = head.charCodeAt(7) === 0x30;
  let reusable = !http10;
  const connection = noted.connection;
  if (typeof connection === 'string') {
    if (hasToken(connection, 'close')) reusable = false;
    else if (hasToken(connection, 'keep-alive')) reusable = true;
  }
  let keepAliveSeconds = -1;
  const keepAlive = noted.keepAlive;
  if (typeof keepAlive === 'string') {
    const seconds = /timeout=(\d+)/.exec(keepAlive)?.[1];
    if (seconds !== undefined) keepAliveSeconds = Number(seconds);
  }

  let contentLength = -1;
  const lengthValue = noted.contentLength;
  if (typeof lengthValue === 'string' && DIGITS.test(lengthValue)) {
    contentLength = decimal(lengthValue); // the usual case: one plain number
  } else if (typeof lengthValue === 'string') {
    for (const part of lengthValue.split(',')) {
      const text = part.trim();
      if (!DIGITS.test(text)) return `malformed content-length ${JSON.stringify(lengthValue)}`;
      const n = Number(text);
      if (contentLength >= 0 && n !== contentLength) return 'conflicting content-length values';
      contentLength = n;
    }
  }
  let chunked = false;
  let otherCoding = false;
  const transferEncoding = noted.transferEncoding;
  if (typeof transferEncoding === 'string') {
    if (contentLength >= 0) return 'both transfer-encoding and content-length';
    const codings = transferEncoding.split(',');
    for (let i = 0; i < codings.length; i++) {
      const coding = codings[i]!.trim().toLowerCase();
      if (coding !== 'chunked') otherCoding = true;
      else if (i !== codings.length - 1) return 'transfer-encoding with chunked not last';
      else chunked = true;
    }
    if (chunked) otherCoding = false;
  }

  let framing: number;
  let length = 0;
  if (requestWasHead || status < 200 || status === 204 || status === 304) framing = NO_BODY;
  else if (chunked) framing = CHUNKED;
  else if (otherCoding || contentLength < 0) framing = UNTIL_CLOSE;
  else if (contentLength === 0) framing = NO_BODY;
  else {
    framing = LENGTH;
    length = contentLength;
  }
  if (framing === UNTIL_CLOSE) reusable = false;
  return new ResponseHead(
    status,
    framing,
    length,
    reusable,
    keepAliveSeconds,
    connection,
    lengthValue !== undefined,
    noted.grpcStatus,
    noted.grpcMessage,
    head,
    from,
    headers as IncomingHttpHeaders | undefined,
  );
}

/** The values of the fields a response head is read for, without a header object. */
class NotedFields {
  connection: string | undefined = undefined;
  keepAlive: string | undefined = undefined;
  contentLength: string | undefined = undefined;
  transferEncoding: string | undefined = undefined;
  grpcStatus: string | undefined = undefined;
  grpcMessage: string | undefined = undefined;

  /**
   * Reads the noted fields from lines already checked by PLAIN_FIELD_LINES; false when one is
   * repeated (or named `__proto__`): the caller then parses the head the whole way.
   */
  read(head: string, from: number): boolean {
    let pos = from;
    while (pos < head.length) {
      let end = head.indexOf('\r\n', pos);
      if (end < 0) end = head.length;
      const colon = head.indexOf(':', pos);
      const nameLength = colon - pos;
      // Names compared in place, case-insensitively: no slice, no lower-case copy per line.
      if (nameLength <= 17 && NOTED_LENGTHS[nameLength] === 1) {
        let repeated = false;
        if (nameIs(head, pos, 'content-length')) {
          repeated = this.contentLength !== undefined;
          this.contentLength = trimOws(head.slice(colon + 1, end));
        } else if (nameIs(head, pos, 'connection')) {
          repeated = this.connection !== undefined;
          this.connection = trimOws(head.slice(colon + 1, end));
        } else if (nameIs(head, pos, 'keep-alive')) {
          repeated = this.keepAlive !== undefined;
          this.keepAlive = trimOws(head.slice(colon + 1, end));
        } else if (nameIs(head, pos, 'transfer-encoding')) {
          repeated = this.transferEncoding !== undefined;
          this.transferEncoding = trimOws(head.slice(colon + 1, end));
        } else if (nameIs(head, pos, 'grpc-status')) {
          repeated = this.grpcStatus !== undefined;
          this.grpcStatus = trimOws(head.slice(colon + 1, end));
        } else if (nameIs(head, pos, 'grpc-message')) {
          repeated = this.grpcMessage !== undefined;
          this.grpcMessage = trimOws(head.slice(colon + 1, end));
        } else if (nameIs(head, pos, '__proto__')) {
          return false;
        }
        if (repeated) return false;
      }
      pos = end + 2;
    }
    return true;
  }

  /** Takes the values from a parsed header object (repeats joined as there). */
  take(headers: Record<string, string | string[] | undefined>): void {
    this.connection = headers['connection'] as string | undefined;
    this.keepAlive = headers['keep-alive'] as string | undefined;
    this.contentLength = headers['content-length'] as string | undefined;
    this.transferEncoding = headers['transfer-encoding'] as string | undefined;
    this.grpcStatus = headers['grpc-status'] as string | undefined;
    this.grpcMessage = headers['grpc-message'] as string | undefined;
  }
}

/**
 * Whether the field name at `head[pos]` is `name` (lower-case), ignoring case; the caller knows
 * the lengths are equal. Only letters fold: `-` and digits must match exactly.
 */
export function nameIs(head: string, pos: number, name: string): boolean {
  const length = name.length;
  if (head.charCodeAt(pos + length) !== 0x3a /* : */) return false;
  for (let i = 0; i < length; i++) {
    const c = head.charCodeAt(pos + i);
    const t = name.charCodeAt(i);
    if (c !== t && (t < 0x61 || t > 0x7a || (c | 0x20) !== t)) return false;
  }
  return true;
}

/** The three digits at 9–11 of a status line (the first not 0), or -1. */
function statusCode(head: string): number {
  const a = head.charCodeAt(9) - 0x30;
  const b = head.charCodeAt(10) - 0x30;
  const c = head.charCodeAt(11) - 0x30;
  // NaN (a short line) fails every comparison.
  if (!(a >= 1 && a <= 9 && b >= 0 && b <= 9 && c >= 0 && c <= 9)) return -1;
  return a * 100 + b * 10 + c;
}

/** The value of a string of decimal digits (checked by the caller; at most 15: exact in a double). */
function decimal(digits: string): number {
  let n = 0;
  for (let i = 0; i < digits.length; i++) n = n * 10 + (digits.charCodeAt(i) - 0x30);
  return n;
}

export class ChunkedBodyError extends Error {}

/** Receives what a {@link ChunkedDecoder} finds. */
export interface ChunkedBodySink {
  /** Data of a chunk: `buf[start, end)`. */
  onBodyData(buf: Buffer, start: number, end: number): void;
}

const SIZE = 0; // hex digits of a chunk size
const EXTENSION = 1; // `;name=value` after the size, up to CR
const SIZE_LF = 2;
const DATA = 3;
const DATA_CR = 4;
const DATA_LF = 5;
const TRAILERS = 6; // trailer section, collected until an empty line
const DONE = 7;

const CR = 13;
const LF = 10;
/** A chunk size of more than 13 hex digits (2^52) is refused: it cannot be counted exactly. */
const MAX_SIZE_DIGITS = 13;
/** A CR not followed by LF, or an LF not preceded by CR. */
const BARE_LINE_END = /\r(?!\n)|(?<!\r)\n/;
const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Decodes a chunked body as it arrives, without copying chunk data. One per call; `decode`
 * returns where the body ended, and {@link trailers} then holds the trailer fields, if any.
 */
export class ChunkedDecoder {
  private state = SIZE;
  private remaining = 0;
  private digits = 0;
  /** Trailer section bytes so far, starting with the CRLF that ended the last-chunk line. */
  private trailerText = '';
  trailers: Record<string, string | string[] | undefined> | undefined;

  /**
   * Decodes `buf[start, end)`, which continues the body, passing chunk data to `sink`.
   * @returns the index just past the body's last byte when it ends there, or -1
   * @throws ChunkedBodyError on bytes that are not valid chunked framing
   */
  decode(buf: Buffer, start: number, end: number, sink: ChunkedBodySink): number {
    let i = start;
    while (i < end) {
      switch (this.state) {
        case DATA: {
          const take = Math.min(this.remaining, end - i);
          this.remaining -= take;
          sink.onBodyData(buf, i, i + take);
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
        case EXTENSION: {
          const c = buf[i]!;
          if (c === CR) this.state = SIZE_LF;
          else if (c === LF || c === 0) throw new ChunkedBodyError('bad character in chunk extension');
          break;
        }
        case SIZE_LF:
          if (buf[i] !== LF) throw new ChunkedBodyError('LF expected after chunk size');
          this.digits = 0;
          if (this.remaining === 0) {
            this.state = TRAILERS;
            this.trailerText = '\r\n';
          } else {
            this.state = DATA;
          }
          break;
        case DATA_CR:
          if (buf[i] !== CR) throw new ChunkedBodyError('CRLF expected after chunk data');
          this.state = DATA_LF;
          break;
        case DATA_LF:
          if (buf[i] !== LF) throw new ChunkedBodyError('CRLF expected after chunk data');
          this.state = SIZE;
          break;
        case TRAILERS:
          return this.scanTrailers(buf, i, end);
        case DONE:
          return i;
      }
      i++;
    }
    return -1;
  }

  /** The trailer section: up to and including the empty line that ends the body. */
  private scanTrailers(buf: Buffer, start: number, end: number): number {
    const before = this.trailerText.length;
    // Fast path: no trailers, the final CRLF is right there.
    if (before === 2 && end - start >= 2 && buf[start] === CR && buf[start + 1] === LF) {
      this.state = DONE;
      this.trailerText = '';
      return start + 2;
    }
    const text = this.trailerText + buf.toString('latin1', start, end);
    const bare = text.search(BARE_LINE_END);
    if (bare >= 0 && !(bare === text.length - 1 && text.charCodeAt(bare) === CR))
      throw new ChunkedBodyError('bare CR or LF in the trailers');
    const at = text.indexOf('\r\n\r\n');
    if (at < 0) {
      if (text.length > MAX_TRAILER_BYTES) throw new ChunkedBodyError('trailer section too large');
      this.trailerText = text;
      return -1;
    }
    this.state = DONE;
    this.trailerText = '';
    if (at > 0) {
      const trailers = Object.create(null) as Record<string, string | string[] | undefined>;
      const refused = parseFieldLines(text.slice(0, at), 2, trailers);
      if (typeof refused === 'string') throw new ChunkedBodyError(`malformed trailer: ${refused}`);
      this.trailers = trailers;
    }
    return start + (at + 4 - before);
  }
}

/** Where a response head ends in `buf` (the index just past CRLFCRLF), from `from`; -1 if not yet. */
export function headEnd(buf: Buffer, from: number): number {
  const at = buf.indexOf(CRLFCRLF, from);
  return at < 0 ? -1 : at + 4;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}
