/**
 * MEASUREMENT AID, NOT THE PRODUCT (see bench/proxy/README.md). The minimal HTTP/1.1 head
 * parsing of the raw prototype: it reads only what a forwarding proxy must know — method,
 * version, body framing, persistence — and drops the hop-by-hop headers, keeping every other
 * byte of the head as it came.
 */
import { randomUUID } from 'node:crypto';

/** How a message's body is delimited. */
export const NO_BODY = 0;
export const LENGTH = 1;
export const CHUNKED = 2;
/** Response only: the body runs until the upstream closes. */
export const UNTIL_CLOSE = 3;

export interface RequestHead {
  /** The head to send upstream, final CRLFCRLF included (latin1). */
  readonly text: string;
  readonly framing: number;
  /** Body bytes when framing is LENGTH. */
  readonly length: number;
  /** Whether the client connection stays open after this exchange. */
  readonly keepAlive: boolean;
  readonly isHead: boolean;
}

export interface ResponseHead {
  /** The head to send downstream when it had to change; undefined: forward the bytes unchanged. */
  readonly text: string | undefined;
  readonly status: number;
  readonly framing: number;
  readonly length: number;
  /** Whether the upstream connection can carry another request after this response. */
  readonly reusable: boolean;
}

/** What the proxy adds to each request it forwards: `x-forwarded-for` is the client's address. */
export interface AddedHeaders {
  readonly enabled: boolean;
  readonly clientAddress: string;
}

/** Lower-cased name of the header at `head[from, colon)` when it is one the proxy reads, else ''. */
function interestingName(head: string, from: number, colon: number): string {
  // Names are compared only when the length matches one we care about: most headers are
  // skipped without allocating a lower-cased copy.
  switch (colon - from) {
    case 2: // te
    case 7: // upgrade, trailer
    case 10: // connection, keep-alive
    case 12: // x-request-id
    case 14: // content-length
    case 15: // x-forwarded-for
    case 16: // proxy-connection
    case 17: // transfer-encoding
      return head.slice(from, colon).toLowerCase();
    default:
      return '';
  }
}

function valueOf(head: string, colon: number, end: number): string {
  return head.slice(colon + 1, end).trim();
}

/** Whether a comma-separated header value lists `token` (case-insensitive). */
function hasToken(value: string, token: string): boolean {
  for (const part of value.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

/**
 * Parses a request head (`head` ends before its final CRLFCRLF).
 * @returns the head to forward, or a string saying why the request is refused (answer 400)
 */
export function parseRequestHead(head: string, added: AddedHeaders): RequestHead | string {
  const firstEnd = head.indexOf('\r\n');
  const lineEnd = firstEnd < 0 ? head.length : firstEnd;
  const sp1 = head.indexOf(' ');
  const sp2 = head.lastIndexOf(' ', lineEnd);
  if (sp1 <= 0 || sp2 <= sp1) return 'malformed request line';
  const version = head.slice(sp2 + 1, lineEnd);
  const http10 = version === 'HTTP/1.0';
  if (!http10 && version !== 'HTTP/1.1') return `unsupported version ${version}`;
  let keepAlive = !http10;
  let contentLength = -1;
  let chunked = false;
  let forwardedFor = '';
  let hasRequestId = false;
  let kept = '';
  let keptFrom = 0;
  let pos = lineEnd + 2;
  while (pos < head.length) {
    let end = head.indexOf('\r\n', pos);
    if (end < 0) end = head.length;
    const colon = head.indexOf(':', pos);
    if (colon <= pos || colon > end) return 'malformed header line';
    let drop = false;
    const name = interestingName(head, pos, colon);
    if (name !== '') {
      switch (name) {
        case 'connection': {
          const value = valueOf(head, colon, end);
          if (hasToken(value, 'close')) keepAlive = false;
          else if (hasToken(value, 'keep-alive')) keepAlive = true;
          drop = true;
          break;
        }
        case 'keep-alive':
        case 'proxy-connection':
        case 'te':
        case 'trailer':
        case 'upgrade': // this prototype does not tunnel upgrades
          drop = true;
          break;
        case 'content-length': {
          const value = valueOf(head, colon, end);
          if (!/^\d{1,15}$/.test(value)) return `bad content-length ${value}`;
          const n = Number(value);
          if (contentLength >= 0 && contentLength !== n) return 'conflicting content-length';
          contentLength = n;
          break;
        }
        case 'transfer-encoding': {
          const value = valueOf(head, colon, end).toLowerCase();
          if (!value.endsWith('chunked')) return `transfer-encoding without chunked last: ${value}`;
          chunked = true;
          break;
        }
        case 'x-forwarded-for':
          if (added.enabled) {
            forwardedFor = forwardedFor
              ? `${forwardedFor}, ${valueOf(head, colon, end)}`
              : valueOf(head, colon, end);
            drop = true;
          }
          break;
        case 'x-request-id':
          hasRequestId = true;
          break;
      }
    }
    if (drop) {
      kept += head.slice(keptFrom, pos - 2);
      keptFrom = end;
    }
    pos = end + 2;
  }
  // Both framings at once is how requests are smuggled (RFC 9112 §6.3): refuse.
  if (chunked && contentLength >= 0) return 'both content-length and transfer-encoding';
  let text = keptFrom === 0 ? head : kept + head.slice(keptFrom);
  if (added.enabled) {
    const client = added.clientAddress;
    text += `\r\nx-forwarded-for: ${forwardedFor ? `${forwardedFor}, ${client}` : client}\r\nx-forwarded-proto: http`;
    if (!hasRequestId) text += `\r\nx-request-id: ${randomUUID()}`;
  }
  return {
    text: `${text}\r\n\r\n`,
    framing: chunked ? CHUNKED : contentLength > 0 ? LENGTH : NO_BODY,
    length: contentLength > 0 ? contentLength : 0,
    keepAlive,
    isHead: sp1 === 4 && head.startsWith('HEAD'),
  };
}

/**
 * Parses a response head (`head` ends before its final CRLFCRLF) to a request whose method
 * was HEAD or not, for a client that keeps its connection (`keepAlive`) or not.
 * @returns the response head, or a string saying why it is unusable (answer 502)
 */
export function parseResponseHead(
  head: string,
  requestWasHead: boolean,
  keepAlive: boolean,
): ResponseHead | string {
  if (!head.startsWith('HTTP/1.') || head.charCodeAt(8) !== 0x20) return 'malformed status line';
  const status = Number(head.slice(9, 12));
  if (!Number.isInteger(status) || status < 100) return 'malformed status code';
  const http10 = head.charCodeAt(7) === 0x30;
  let reusable = !http10;
  let contentLength = -1;
  let chunked = false;
  let otherCoding = false;
  let kept = '';
  let keptFrom = 0;
  let pos = head.indexOf('\r\n');
  pos = pos < 0 ? head.length : pos + 2;
  while (pos < head.length) {
    let end = head.indexOf('\r\n', pos);
    if (end < 0) end = head.length;
    const colon = head.indexOf(':', pos);
    if (colon <= pos || colon > end) return 'malformed header line';
    let drop = false;
    const name = interestingName(head, pos, colon);
    if (name !== '') {
      switch (name) {
        case 'connection': {
          const value = valueOf(head, colon, end);
          if (hasToken(value, 'close')) reusable = false;
          else if (hasToken(value, 'keep-alive')) reusable = true;
          drop = true;
          break;
        }
        case 'keep-alive':
        case 'proxy-connection':
        case 'upgrade':
        case 'trailer':
          drop = true;
          break;
        case 'content-length': {
          const value = valueOf(head, colon, end);
          if (!/^\d{1,15}$/.test(value)) return `bad content-length ${value}`;
          contentLength = Number(value);
          break;
        }
        case 'transfer-encoding':
          if (valueOf(head, colon, end).toLowerCase().endsWith('chunked')) chunked = true;
          else otherCoding = true;
          break;
      }
    }
    if (drop) {
      kept += head.slice(keptFrom, pos - 2);
      keptFrom = end;
    }
    pos = end + 2;
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
  // The client's connection header is ours to write: only `close` needs saying in HTTP/1.1.
  const closing = !keepAlive || framing === UNTIL_CLOSE;
  let text: string | undefined;
  if (keptFrom !== 0 || closing) {
    text = keptFrom === 0 ? head : kept + head.slice(keptFrom);
    text += closing ? '\r\nconnection: close\r\n\r\n' : '\r\n\r\n';
  }
  return { text, status, framing, length, reusable };
}
