/**
 * The downstream HTTP/1.1 server's own request-head parsing: request line, header fields
 * (as Node's server gives them: lower-case names, repeated fields joined), body framing,
 * persistence, `Expect: 100-continue` and Upgrade.
 *
 * Strict where leniency lets a request be read two ways by two servers (request smuggling,
 * RFC 9112 §6.1, §6.3, §11.2): Content-Length with Transfer-Encoding, conflicting or malformed
 * Content-Length, a Transfer-Encoding other than `chunked` alone, obs-fold, whitespace before a
 * colon, control characters, two Host fields — each refused with a 400 that says which. A head
 * too large or with too many fields is a 431; a body announced beyond what can be counted
 * (or beyond the listener's limit) a 413.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from './config-model';
import { CHUNKED, hasToken, LENGTH, NO_BODY, parseFieldLines } from './http1-response-parser';

export interface RequestHead {
  readonly method: string;
  /** The request target as sent (origin-form, absolute-form, or `*`). */
  readonly target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minorVersion: number;
  /** Lower-case names; `set-cookie` an array; other repeated fields joined with `, `. */
  readonly headers: IncomingHttpHeaders;
  /** NO_BODY, LENGTH or CHUNKED (http1-response-parser.ts). */
  readonly framing: number;
  /** Body bytes when framing is LENGTH. */
  readonly length: number;
  /** Whether the connection may carry another request after this one's response. */
  readonly keepAlive: boolean;
  /** `Expect: 100-continue` on an HTTP/1.1 request. */
  readonly expectContinue: boolean;
  /** `Connection: upgrade` with an Upgrade field: the connection may switch protocols. */
  readonly upgrade: boolean;
  /** The head's text as parsed (latin1, request line first, without the final CRLFCRLF). */
  readonly text: string;
  /** A field appeared on more than one line (its lines were joined, or all but the first dropped). */
  readonly repeatedFields: boolean;
}

/** Why a request head is refused, and the status that says so. */
export interface RequestHeadError {
  readonly status: 400 | 413 | 431 | 501 | 505;
  readonly message: string;
}

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Visible ASCII and obs-text: what a request target may hold (no spaces, no controls). */
const TARGET = /^[\x21-\x7e\x80-\xff]+$/;
const DIGITS = /^\d+$/;
/** Content-Length values with more digits cannot be counted exactly (2^53 has 16). */
const MAX_LENGTH_DIGITS = 15;

function refuse(status: RequestHeadError['status'], message: string): RequestHeadError {
  return { status, message };
}

/**
 * Parses a request head: `head` is latin1 and ends before its final CRLFCRLF (the caller
 * found it, and refused a head longer than `limits.maxHeadBytes` with 431).
 * @returns the head, or the status and message to refuse it with
 */
export function parseRequestHead(
  head: string,
  limits: RequestLimits = DEFAULT_REQUEST_LIMITS,
): RequestHead | RequestHeadError {
  let lineEnd = head.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = head.length;
  const sp1 = head.indexOf(' ');
  const sp2 = sp1 < 0 ? -1 : head.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || sp2 > lineEnd) return refuse(400, 'malformed request line');
  const method = head.slice(0, sp1);
  if (!METHOD.test(method)) return refuse(400, 'malformed method in the request line');
  const target = head.slice(sp1 + 1, sp2);
  if (!TARGET.test(target)) return refuse(400, 'malformed request target');
  const version = head.slice(sp2 + 1, lineEnd);
  let minorVersion: number;
  if (version === 'HTTP/1.1') minorVersion = 1;
  else if (version === 'HTTP/1.0') minorVersion = 0;
  else if (/^HTTP\/\d\.\d$/.test(version))
    return refuse(505, `HTTP version ${version.slice(5)} not supported`);
  else return refuse(400, 'malformed HTTP version in the request line');

  const headers = Object.create(null) as Record<string, string | string[] | undefined>;
  let repeatedFields = false;
  if (lineEnd < head.length) {
    // Counted before parsing: a head of many tiny fields costs no more than its bytes allow.
    let count = 0;
    for (let at = head.indexOf('\r\n', lineEnd + 2); at >= 0; at = head.indexOf('\r\n', at + 2)) count++;
    if (count + 1 > limits.maxHeaderCount)
      return refuse(431, `more than ${limits.maxHeaderCount} header fields`);
    const hosts = countHostFields(head, lineEnd + 2);
    if (hosts > 1) return refuse(400, 'more than one host header');
    const parsed = parseFieldLines(head, lineEnd + 2, headers);
    if (typeof parsed === 'string') return refuse(400, parsed);
    repeatedFields = parsed !== count + 1;
  }
  if (minorVersion === 1 && headers['host'] === undefined)
    return refuse(400, 'HTTP/1.1 request without host');

  let keepAlive = minorVersion === 1;
  let upgrade = false;
  const connection = headers['connection'];
  if (typeof connection === 'string') {
    if (hasToken(connection, 'close')) keepAlive = false;
    else if (hasToken(connection, 'keep-alive')) keepAlive = true;
    upgrade = headers['upgrade'] !== undefined && hasToken(connection, 'upgrade');
  }

  let contentLength = -1;
  const lengthValue = headers['content-length'];
  if (typeof lengthValue === 'string') {
    for (const part of lengthValue.split(',')) {
      const text = part.trim();
      if (!DIGITS.test(text)) return refuse(400, `malformed content-length ${JSON.stringify(lengthValue)}`);
      if (text.length > MAX_LENGTH_DIGITS) return refuse(413, `content-length ${text} is too large`);
      const n = Number(text);
      if (contentLength >= 0 && n !== contentLength) return refuse(400, 'conflicting content-length values');
      contentLength = n;
    }
  }
  let framing = NO_BODY;
  let length = 0;
  const transferEncoding = headers['transfer-encoding'];
  if (typeof transferEncoding === 'string') {
    if (contentLength >= 0) return refuse(400, 'both transfer-encoding and content-length');
    if (minorVersion === 0) return refuse(400, 'transfer-encoding in an HTTP/1.0 request');
    const codings = transferEncoding.split(',');
    for (let i = 0; i < codings.length; i++) {
      const coding = codings[i]!.trim().toLowerCase();
      if (coding === 'chunked') {
        if (i !== codings.length - 1) return refuse(400, 'transfer-encoding with chunked not last');
      } else if (i === codings.length - 1) {
        return refuse(400, `transfer-encoding ${JSON.stringify(transferEncoding)} does not end with chunked`);
      } else {
        return refuse(501, `transfer-coding ${JSON.stringify(coding)} not implemented`);
      }
    }
    framing = CHUNKED;
  } else if (contentLength > 0) {
    if (contentLength > limits.maxBodyBytes)
      return refuse(413, `content-length ${contentLength} is over the limit of ${limits.maxBodyBytes} bytes`);
    framing = LENGTH;
    length = contentLength;
  }
  const expect = headers['expect'];
  const expectContinue =
    minorVersion === 1 && typeof expect === 'string' && expect.toLowerCase() === '100-continue';
  return {
    method,
    target,
    minorVersion,
    headers: headers as IncomingHttpHeaders,
    framing,
    length,
    keepAlive,
    expectContinue,
    upgrade,
    text: head,
    repeatedFields,
  };
}

/** Host fields in the header lines from `from` (Node's way of joining would hide a second one). */
function countHostFields(head: string, from: number): number {
  let count = 0;
  let pos = from;
  while (pos < head.length) {
    const c = head.charCodeAt(pos);
    if (
      (c === 0x68 || c === 0x48) &&
      head.charCodeAt(pos + 4) === 0x3a &&
      head.slice(pos, pos + 4).toLowerCase() === 'host'
    )
      count++;
    const end = head.indexOf('\r\n', pos);
    if (end < 0) break;
    pos = end + 2;
  }
  return count;
}
