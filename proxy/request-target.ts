/** Where a downstream request goes: its authority and path, normalised for routing. */
import type { IncomingHeaders } from './forwarding-headers';

export interface RequestTarget {
  /** Host or :authority as sent, port included; '' when the request has none. */
  readonly authority: string;
  /** The host, lower-cased, without the port: what routes match. */
  readonly host: string;
  /** Origin-form target: path and query. */
  readonly url: string;
  readonly urlPath: string;
  /** The query string without `?`; undefined when there is none. */
  readonly query: string | undefined;
}

/**
 * Reads the target of a request from its request line (`url`) and headers. An absolute-form
 * target (`GET http://host/path`, sent by clients that use the proxy as an HTTP proxy) gives
 * both authority and path.
 */
export function parseRequestTarget(
  rawUrl: string | undefined,
  headers: IncomingHeaders,
  http2: boolean,
): RequestTarget {
  let url = rawUrl ?? '/';
  let authority = (http2 ? (headers[':authority'] ?? headers['host']) : headers['host']) as
    string | undefined;
  if (url.charCodeAt(0) !== 47 /* '/' */ && /^https?:\/\//i.test(url)) {
    try {
      const parsed = new URL(url);
      authority = parsed.host;
      url = `${parsed.pathname}${parsed.search}`;
    } catch {
      // Not a URL after all: route it as it is.
    }
  }
  const q = url.indexOf('?');
  const urlPath = q < 0 ? url : url.slice(0, q);
  return {
    authority: authority ?? '',
    host: hostWithoutPort(authority ?? ''),
    url,
    urlPath,
    query: q < 0 ? undefined : url.slice(q + 1),
  };
}

/** `Example.com:8080` → `example.com`; `[::1]:80` → `[::1]`. */
export function hostWithoutPort(authority: string): string {
  let host = authority;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    host = end < 0 ? host : host.slice(0, end + 1);
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) host = host.slice(0, colon);
  }
  return host.toLowerCase();
}
