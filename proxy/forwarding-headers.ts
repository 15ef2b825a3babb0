/**
 * The headers of each hop. Hop-by-hop fields (RFC 9110 §7.6.1: Connection and every field
 * it names, plus Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade and
 * HTTP2-Settings) are not forwarded — except `TE: trailers`, which gRPC needs end to end,
 * and Upgrade on a WebSocket handshake. The proxy sets or extends `x-forwarded-for`,
 * `x-forwarded-proto`, `x-request-id` and W3C `traceparent`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { drawEntropy, entropy } from './entropy-pool';
import type { OutgoingHeaders } from './header-operations';
import { nameIs } from './http1-response-parser';

/**
 * Fields a proxy never forwards, in either direction: hop-by-hop (RFC 9110 §7.6.1), plus
 * `http2-settings`, and `host` (rebuilt from the authority).
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'http2-settings',
  'host',
]);

/** Whether `name` (lower-case) is in {@link HOP_BY_HOP}; compared, not hashed, for the hot path. */
export function isHopByHop(name: string): boolean {
  switch (name) {
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'transfer-encoding':
    case 'upgrade':
    case 'te':
    case 'http2-settings':
    case 'host':
      return true;
    default:
      return false;
  }
}

/** Incoming headers, as Node's HTTP/1.1 and HTTP/2 servers and clients give them. */
export type IncomingHeaders = IncomingHttpHeaders | Readonly<Record<string, string | string[] | undefined>>;

/** Names listed in a Connection header (other than the options close / keep-alive / upgrade). */
export function connectionListed(headers: IncomingHeaders): ReadonlySet<string> | undefined {
  return connectionTokens(headers['connection']);
}

/** Names listed in a Connection value (other than close / keep-alive / upgrade); undefined for none. */
export function connectionTokens(
  connection: string | readonly string[] | undefined,
): ReadonlySet<string> | undefined {
  if (connection === undefined) return undefined;
  // The usual values list nothing: no split, no set.
  if (connection === 'keep-alive' || connection === 'close') return undefined;
  const text = Array.isArray(connection) ? connection.join(',') : (connection as string);
  let listed: Set<string> | undefined;
  for (const token of text.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive' || name === 'upgrade') continue;
    (listed ??= new Set()).add(name);
  }
  return listed;
}

/** What the request headers sent upstream depend on besides the downstream headers. */
export interface ForwardingFacts {
  /** The downstream peer's address, as the socket gives it. */
  readonly remoteAddress: string;
  /** Whether the downstream connection is TLS. */
  readonly secure: boolean;
}

/** The ids a request carries: its own, or new ones when it has none (or an invalid traceparent). */
export interface RequestIds {
  readonly requestId: string;
  readonly traceparent: string;
  /** The request's traceparent was missing or invalid and was replaced: its tracestate goes too. */
  readonly traceStarted: boolean;
}

/** Reads or makes the request id and trace context of a request (W3C Trace Context §3.3 for an invalid one). */
export function requestIdsOf(headers: IncomingHeaders): RequestIds {
  const given = headers['x-request-id'];
  const requestId = typeof given === 'string' && given !== '' ? given : newRequestId();
  const traceparent = headers['traceparent'];
  if (typeof traceparent === 'string' && isValidTraceparent(traceparent)) {
    return { requestId, traceparent, traceStarted: false };
  }
  return { requestId, traceparent: newTraceparent(), traceStarted: true };
}

/**
 * The end-to-end request headers to send upstream: `incoming` without pseudo-headers, Host
 * and hop-by-hop fields (the caller sets the Host or :authority), with the forwarding
 * headers and the request's ids set.
 */
export function upstreamRequestHeaders(
  incoming: IncomingHeaders,
  facts: ForwardingFacts,
  ids: RequestIds,
  keepUpgrade: boolean,
): OutgoingHeaders {
  const out: OutgoingHeaders = {};
  const listed = connectionListed(incoming);
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* ':' pseudo-header */) continue;
    if (HOP_BY_HOP.has(name)) {
      if (name === 'te' && /(^|,)\s*trailers\s*(,|;|$)/i.test(String(value))) out['te'] = 'trailers';
      else if (keepUpgrade && name === 'upgrade') out['upgrade'] = value as string;
      continue;
    }
    if (listed !== undefined && listed.has(name)) continue;
    out[name] = value as string | string[];
  }
  if (keepUpgrade) out['connection'] = 'upgrade';

  const client = plainAddress(facts.remoteAddress);
  const forwardedFor = out['x-forwarded-for'];
  out['x-forwarded-for'] =
    forwardedFor === undefined
      ? client
      : `${Array.isArray(forwardedFor) ? forwardedFor.join(', ') : forwardedFor}, ${client}`;
  if (out['x-forwarded-proto'] === undefined) out['x-forwarded-proto'] = facts.secure ? 'https' : 'http';
  out['x-request-id'] = ids.requestId;
  out['traceparent'] = ids.traceparent;
  // (A delete goes through the runtime even for a field that is not there.)
  if (ids.traceStarted && out['tracestate'] !== undefined) delete out['tracestate'];
  return out;
}

/** Field lines to send upstream, as text: see {@link upstreamFieldLines}. */
export interface UpstreamFieldLines {
  /** The lines, each ending in CRLF; no Host line, no framing line of the proxy's own. */
  readonly text: string;
  /** How many lines `text` has. */
  readonly lines: number;
  /** A Content-Length line is among them. */
  readonly hasLength: boolean;
}

/**
 * The end-to-end request fields to send upstream as the text of field lines, from `head`, a
 * received HTTP/1.1 request head whose every field is on one line, and `incoming`, its parsed
 * fields: what {@link upstreamRequestHeaders} sends (without `keepUpgrade`), with the lines
 * forwarded as received rather than rebuilt from an object — the lines the proxy sets
 * (`x-forwarded-for`, `x-request-id`, `traceparent`, `te: trailers`, and `x-forwarded-proto`
 * when absent) come last.
 */
export function upstreamFieldLines(
  head: string,
  incoming: IncomingHeaders,
  facts: ForwardingFacts,
  ids: RequestIds,
): UpstreamFieldLines {
  const listed = connectionListed(incoming);
  const traceStarted = ids.traceStarted;
  let text = '';
  let lines = 0;
  // Runs of kept lines are copied as slices: [keepFrom, pos) is kept so far.
  let pos = head.indexOf('\r\n');
  pos = pos < 0 ? head.length : pos + 2;
  let keepFrom = pos;
  while (pos < head.length) {
    let end = head.indexOf('\r\n', pos);
    if (end < 0) end = head.length;
    const colon = head.indexOf(':', pos);
    let drop: boolean;
    if (listed === undefined) {
      drop = isDroppedUpstreamAt(head, pos, colon - pos, traceStarted);
    } else {
      const name = head.slice(pos, colon).toLowerCase();
      drop = isHopByHop(name) || listed.has(name) || isDroppedUpstream(name, traceStarted);
    }
    if (drop) {
      if (pos > keepFrom) text += head.slice(keepFrom, pos);
      keepFrom = end + 2;
    } else {
      lines++;
    }
    pos = end + 2;
  }
  if (keepFrom < head.length) text += `${head.slice(keepFrom)}\r\n`;
  const te = incoming['te'];
  if (te !== undefined && /(^|,)\s*trailers\s*(,|;|$)/i.test(String(te))) {
    text += 'te: trailers\r\n';
    lines++;
  }
  const client = plainAddress(facts.remoteAddress);
  const forwardedFor = listed?.has('x-forwarded-for') === true ? undefined : incoming['x-forwarded-for'];
  text += `x-forwarded-for: ${
    forwardedFor === undefined
      ? client
      : `${Array.isArray(forwardedFor) ? forwardedFor.join(', ') : forwardedFor}, ${client}`
  }\r\n`;
  if (incoming['x-forwarded-proto'] === undefined || listed?.has('x-forwarded-proto') === true) {
    text += facts.secure ? 'x-forwarded-proto: https\r\n' : 'x-forwarded-proto: http\r\n';
    lines++;
  }
  text += `x-request-id: ${ids.requestId}\r\ntraceparent: ${ids.traceparent}\r\n`;
  lines += 3;
  const hasLength = incoming['content-length'] !== undefined && listed?.has('content-length') !== true;
  return { text, lines, hasLength };
}

/** Fields the proxy sets itself, dropped from the received lines (tracestate: with a new trace). */
function isDroppedUpstream(name: string, traceStarted: boolean): boolean {
  return (
    name === 'x-forwarded-for' ||
    name === 'x-request-id' ||
    name === 'traceparent' ||
    (traceStarted && name === 'tracestate')
  );
}

/** As isHopByHop(name) || isDroppedUpstream(name), for the name of `length` at `head[pos]`, compared in place. */
function isDroppedUpstreamAt(head: string, pos: number, length: number, traceStarted: boolean): boolean {
  switch (length) {
    case 10:
      if (traceStarted && nameIs(head, pos, 'tracestate')) return true;
      break;
    case 11:
      return nameIs(head, pos, 'traceparent');
    case 12:
      return nameIs(head, pos, 'x-request-id');
    case 15:
      return nameIs(head, pos, 'x-forwarded-for');
  }
  return isHopByHopAt(head, pos, length);
}

/** As isHopByHop(name), for the field name of `length` at `head[pos]`, compared in place. */
export function isHopByHopAt(head: string, pos: number, length: number): boolean {
  switch (length) {
    case 2:
      return nameIs(head, pos, 'te');
    case 4:
      return nameIs(head, pos, 'host');
    case 7:
      return nameIs(head, pos, 'upgrade');
    case 10:
      return nameIs(head, pos, 'connection') || nameIs(head, pos, 'keep-alive');
    case 14:
      return nameIs(head, pos, 'http2-settings');
    case 16:
      return nameIs(head, pos, 'proxy-connection');
    case 17:
      return nameIs(head, pos, 'transfer-encoding');
    default:
      return false;
  }
}

/** The response headers to send downstream: `incoming` without pseudo-headers and hop-by-hop fields. */
export function downstreamResponseHeaders(incoming: IncomingHeaders): OutgoingHeaders {
  const out: OutgoingHeaders = {};
  const listed = connectionListed(incoming);
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || name.charCodeAt(0) === 58 || HOP_BY_HOP.has(name)) continue;
    if (listed !== undefined && listed.has(name)) continue;
    out[name] = value as string | string[];
  }
  return out;
}

/** Trailers to forward: as response headers, minus the fields never allowed in trailers. */
export function forwardedTrailers(incoming: IncomingHeaders): OutgoingHeaders {
  const out = downstreamResponseHeaders(incoming);
  delete out['content-length'];
  return out;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** W3C Trace Context: version 00 exactly as specified; later versions may append fields. */
export function isValidTraceparent(value: string): boolean {
  const m = TRACEPARENT.exec(value);
  if (m === null) return false;
  const [, version, traceId, parentId, , rest] = m;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return false;
  return !/^0+$/.test(traceId!) && !/^0+$/.test(parentId!);
}

/**
 * A new traceparent: random trace and parent ids, flagged sampled, so that a service whose
 * tracer samples by its parent keeps tracing as it would without the proxy.
 */
export function newTraceparent(): string {
  const from = drawEntropy(TRACE_ID_BYTES);
  const text = idText;
  text[0] = 0x30; // 00-
  text[1] = 0x30;
  text[2] = 0x2d;
  let at = hexInto(text, 3, from, 16);
  text[at++] = 0x2d;
  at = hexInto(text, at, from + 16, 8);
  text[at++] = 0x2d; // -01
  text[at++] = 0x30;
  text[at++] = 0x31;
  return text.toString('latin1', 0, at);
}

/**
 * A new request id: a random (version 4) UUID, as `crypto.randomUUID` makes, written as one
 * flat string (randomUUID concatenates 20 pieces, which every later test of the value flattens).
 */
export function newRequestId(): string {
  const from = drawEntropy(16);
  const bytes = entropy;
  bytes[from + 6] = (bytes[from + 6]! & 0x0f) | 0x40; // version 4
  bytes[from + 8] = (bytes[from + 8]! & 0x3f) | 0x80; // variant 10
  const text = idText;
  let at = hexInto(text, 0, from, 4);
  text[at++] = 0x2d;
  at = hexInto(text, at, from + 4, 2);
  text[at++] = 0x2d;
  at = hexInto(text, at, from + 6, 2);
  text[at++] = 0x2d;
  at = hexInto(text, at, from + 8, 2);
  text[at++] = 0x2d;
  at = hexInto(text, at, from + 10, 6);
  return text.toString('latin1', 0, at);
}

/** Random bytes of a trace id (16) and a parent id (8). */
const TRACE_ID_BYTES = 24;
/** Where an id's text is put together before it becomes a string. */
const idText = Buffer.alloc(64);
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/** Writes `count` entropy bytes from `from` as lower-case hex into `text` at `at`; returns the end. */
function hexInto(text: Buffer, at: number, from: number, count: number): number {
  for (let i = from; i < from + count; i++) {
    const b = entropy[i]!;
    text[at++] = HEX_DIGITS[b >> 4]!;
    text[at++] = HEX_DIGITS[b & 15]!;
  }
  return at;
}

/** `::ffff:10.0.0.1` → `10.0.0.1`: the form other proxies and services expect. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
