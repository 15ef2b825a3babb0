/**
 * Where RING_HASH takes a request's key from: a header, a cookie or the client's IP address.
 * The reader is chosen once per cluster, so a request pays for one property read (and, for a
 * cookie, one scan of the Cookie header) and no allocation beyond the key itself.
 */
import type { HashKeySource, HashSource } from './contract';

export type HashKeyReader = (source: HashSource) => string | undefined;

/** A reader for `hashOn`; every reader yields undefined when the request lacks the key or it is empty. */
export function createHashKeyReader(hashOn: HashKeySource): HashKeyReader {
  if ('header' in hashOn) {
    const name = hashOn.header;
    // HTTP/2 requests carry the host in :authority; hashing on host should follow them there.
    if (name === 'host')
      return (source) => headerValue(source.headers['host'] ?? source.headers[':authority']);
    return (source) => headerValue(source.headers[name]);
  }
  if ('cookie' in hashOn) {
    const name = hashOn.cookie;
    return (source) => cookieValue(source.headers['cookie'], name);
  }
  return (source) => clientAddress(source.sourceIp);
}

/** A header's value; repeated headers are joined as one field value (`a, b`), as HTTP combines them. */
function headerValue(value: string | readonly string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = typeof value === 'string' ? value : value.join(', ');
  return text === '' ? undefined : text;
}

/** The value of cookie `name` in a Cookie header (or several, as HTTP/2 may split it); the first one wins. */
export function cookieValue(
  header: string | readonly string[] | undefined,
  name: string,
): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header === 'string') return findCookie(header, name);
  for (const line of header) {
    const value = findCookie(line, name);
    if (value !== undefined) return value;
  }
  return undefined;
}

/** Scans `a=1; b=2` for `name` without splitting the header into pieces. */
function findCookie(header: string, name: string): string | undefined {
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    // Skip the optional whitespace after the previous `;`.
    while (start < end && (header.charCodeAt(start) === 0x20 || header.charCodeAt(start) === 0x09)) start++;
    if (
      header.charCodeAt(start + name.length) === 0x3d /* = */ &&
      start + name.length < end &&
      header.startsWith(name, start)
    ) {
      let valueStart = start + name.length + 1;
      let valueEnd = end;
      while (
        valueEnd > valueStart &&
        (header.charCodeAt(valueEnd - 1) === 0x20 || header.charCodeAt(valueEnd - 1) === 0x09)
      ) {
        valueEnd--;
      }
      // RFC 6265 allows a value in double quotes; the quotes are not part of it.
      if (
        valueEnd - valueStart >= 2 &&
        header.charCodeAt(valueStart) === 0x22 &&
        header.charCodeAt(valueEnd - 1) === 0x22
      ) {
        valueStart++;
        valueEnd--;
      }
      return valueEnd > valueStart ? header.slice(valueStart, valueEnd) : undefined;
    }
    start = end + 1;
  }
  return undefined;
}

/**
 * The client address as a key. An IPv4 client reaching a dual-stack listener appears as
 * `::ffff:10.0.0.1`; it is the same client as `10.0.0.1` and must hash the same.
 */
function clientAddress(address: string): string | undefined {
  if (address === '') return undefined;
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
