/**
 * Validation and equality of the name-like value types: DNS names, e-mail addresses
 * and URIs. They are strings at runtime; these rules give them their meaning, after
 * Mixer's: DNS names compare case-insensitively and ignore one trailing dot, e-mail
 * addresses compare their local part exactly and their domain as a DNS name, URIs
 * compare their scheme case-insensitively and, for http(s), their host as a DNS name.
 */
import { domainToASCII, domainToUnicode } from 'node:url';

const MAX_DNS_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i;

/** Why a string is not a DNS name, or undefined when it is one. */
export function dnsNameProblem(name: string): string | undefined {
  if (name === '') return 'it is empty';
  const body = name.endsWith('.') ? name.slice(0, -1) : name;
  const ascii = domainToASCII(body);
  if (ascii === '' || ascii.length > MAX_DNS_NAME_LENGTH) {
    return ascii === ''
      ? 'it is not a valid internationalized domain name'
      : `it is longer than ${MAX_DNS_NAME_LENGTH} characters`;
  }
  for (const label of ascii.split('.')) {
    if (label === '') return 'it has an empty label';
    if (label.length > MAX_LABEL_LENGTH)
      return `label '${label}' is longer than ${MAX_LABEL_LENGTH} characters`;
    if (!LDH_LABEL.test(label)) return `label '${label}' may hold only letters, digits and inner hyphens`;
  }
  return undefined;
}

/** The canonical form used for comparison: lower case, Unicode labels, no trailing dot. */
function canonicalDnsName(name: string): string {
  const body = name.endsWith('.') ? name.slice(0, -1) : name;
  const unicode = domainToUnicode(body);
  return (unicode === '' ? body : unicode).toLowerCase();
}

/** DNS name equality: case-insensitive, punycode and Unicode alike, one trailing dot ignored. */
export function dnsNameEqual(a: string, b: string): boolean {
  return a === b || canonicalDnsName(a) === canonicalDnsName(b);
}

/** Splits an e-mail address at its last `@`; undefined when there is none. */
function splitEmail(address: string): { local: string; domain: string } | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

// A dot-atom or a quoted string, as RFC 5322 allows for the local part.
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const QUOTED_LOCAL = /^"(?:[^"\\\r\n]|\\.)*"$/;

/** Why a string is not a bare e-mail address (`local@domain`, no display name), or undefined. */
export function emailProblem(address: string): string | undefined {
  if (/[<>]/.test(address) || /\s/.test(address.trim()))
    return 'display names and angle brackets are not allowed';
  const parts = splitEmail(address);
  if (parts === undefined) return 'it needs the form local@domain';
  if (!DOT_ATOM.test(parts.local) && !QUOTED_LOCAL.test(parts.local))
    return `local part '${parts.local}' is not valid`;
  const domainProblem = dnsNameProblem(parts.domain);
  return domainProblem === undefined ? undefined : `domain '${parts.domain}': ${domainProblem}`;
}

/** A quoted local part means its content: `"istio"` is `istio`, `"a\\"b"` is `a"b`. */
function unquoteLocal(local: string): string {
  return QUOTED_LOCAL.test(local) ? local.slice(1, -1).replace(/\\(.)/g, '$1') : local;
}

/** E-mail equality: the local part exactly (quoting aside), the domain as a DNS name. */
export function emailEqual(a: string, b: string): boolean {
  if (a === b) return true;
  const x = splitEmail(a);
  const y = splitEmail(b);
  if (x === undefined || y === undefined) return false;
  return unquoteLocal(x.local) === unquoteLocal(y.local) && dnsNameEqual(x.domain, y.domain);
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const BAD_PERCENT = /%(?![0-9A-Fa-f]{2})/;

/** Why a string is not a URI reference, or undefined. Accepts what a lenient URL parser accepts. */
export function uriProblem(text: string): string | undefined {
  if (text === '') return 'it is empty';
  if (/[\x00-\x1f\x7f ]/.test(text)) return 'it contains a control character or a space';
  if (text.startsWith(':')) return 'it is missing a scheme before the colon';
  if (BAD_PERCENT.test(text)) return 'it has an invalid percent escape';
  const parsed = parseUri(text);
  if (parsed.port !== '' && !/^\d*$/.test(parsed.port)) return `port '${parsed.port}' is not a number`;
  return undefined;
}

interface UriParts {
  scheme: string;
  authority: string | undefined;
  host: string;
  port: string;
  rest: string;
}

function parseUri(text: string): UriParts {
  const m = SCHEME.exec(text);
  const scheme = m === null ? '' : m[1]!;
  let remainder = m === null ? text : text.slice(m[0].length);
  let authority: string | undefined;
  if (remainder.startsWith('//')) {
    const end = remainder.slice(2).search(/[/?#]/);
    authority = end === -1 ? remainder.slice(2) : remainder.slice(2, end + 2);
    remainder = end === -1 ? '' : remainder.slice(end + 2);
  }
  let host = '';
  let port = '';
  if (authority !== undefined) {
    const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
    const v6 = /^\[([^\]]*)\](?::(.*))?$/.exec(hostPort);
    if (v6 !== null) {
      host = v6[1]!;
      port = v6[2] ?? '';
    } else {
      const colon = hostPort.lastIndexOf(':');
      host = colon === -1 ? hostPort : hostPort.slice(0, colon);
      port = colon === -1 ? '' : hostPort.slice(colon + 1);
    }
  }
  return { scheme, authority, host, port, rest: remainder };
}

/** URI equality: scheme case-insensitive; for http and https the host as a DNS name; the rest exactly. */
export function uriEqual(a: string, b: string): boolean {
  if (a === b) return true;
  const x = parseUri(a);
  const y = parseUri(b);
  const scheme = x.scheme.toLowerCase();
  if (scheme !== y.scheme.toLowerCase()) return false;
  if (scheme === 'http' || scheme === 'https') {
    if (x.authority === undefined || y.authority === undefined)
      return x.authority === y.authority && x.rest === y.rest;
    const userinfo = (u: UriParts) => u.authority!.slice(0, u.authority!.lastIndexOf('@') + 1);
    return (
      dnsNameEqual(x.host, y.host) && x.port === y.port && userinfo(x) === userinfo(y) && x.rest === y.rest
    );
  }
  return x.authority === y.authority && x.rest === y.rest;
}
