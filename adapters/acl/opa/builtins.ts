/**
 * Rego built-in functions that OPA's WebAssembly compiler does not compile into the module
 * and the `@open-policy-agent/opa-wasm` SDK does not provide either (the SDK has `sprintf`,
 * `json.is_valid`, `regex.split` and `yaml.*`). A module calls them through its
 * `opa_builtinN` imports; the SDK hands each one its arguments as JSON values and turns its
 * return value back into a Rego value.
 *
 * Semantics follow OPA's own (Go) implementations; test/adapters/acl/opa/builtins.test.ts
 * compares every function here with `opa eval` on the same arguments. As in OPA, a built-in
 * that cannot compute an answer (a malformed token, an unknown unit) makes its expression
 * undefined rather than failing the whole evaluation: these return `undefined`, which the
 * SDK passes on as "no value".
 *
 * Integers that may exceed 2^53 (nanosecond times) are returned as raw JSON text in an
 * ArrayBuffer, which the SDK parses as it is, so no precision is lost.
 */
import {
  createHash,
  createHmac,
  createPublicKey,
  timingSafeEqual,
  verify,
  X509Certificate,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { constants as cryptoConstants } from 'node:crypto';
import { Duration } from '../../../attributes';
import { compilePattern } from '../../../expressions';

/** What a built-in implementation is: JSON values in, a JSON value (or raw JSON text, or undefined) out. */
export type BuiltinFunction = (...args: unknown[]) => unknown;

/** The per-evaluation facts built-ins read. */
export interface BuiltinClock {
  /**
   * The evaluation's time in milliseconds since the epoch: `time.now_ns` answers it, and
   * `io.jwt.decode_verify` checks `exp` and `nbf` against it. Set once per evaluation, so
   * that every call within one evaluation sees the same time, as in OPA.
   */
  nowMs: number;
}

/** Raw JSON text for the SDK to parse as it is. */
function rawJson(text: string): ArrayBuffer {
  const bytes = new TextEncoder().encode(text);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** An exact integer as raw JSON. */
function integer(value: bigint): ArrayBuffer {
  return rawJson(value.toString());
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A number argument that must be a whole number (times in ns), as a bigint. */
function wholeNumber(value: unknown): bigint | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  return BigInt(Math.trunc(value));
}

// ---------------------------------------------------------------------------------------
// Hashes and encodings

function digest(algorithm: string): BuiltinFunction {
  return (value) => (isString(value) ? createHash(algorithm).update(value, 'utf8').digest('hex') : undefined);
}

function hmac(algorithm: string): BuiltinFunction {
  return (value, key) =>
    isString(value) && isString(key)
      ? createHmac(algorithm, Buffer.from(key, 'utf8')).update(value, 'utf8').digest('hex')
      : undefined;
}

function hmacEqual(a: unknown, b: unknown): boolean | undefined {
  if (!isString(a) || !isString(b)) return undefined;
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function hexEncode(value: unknown): string | undefined {
  return isString(value) ? Buffer.from(value, 'utf8').toString('hex') : undefined;
}

function hexDecode(value: unknown): string | undefined {
  if (!isString(value) || value.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(value)) return undefined;
  return Buffer.from(value, 'hex').toString('utf8');
}

function base64UrlEncodeNoPad(value: unknown): string | undefined {
  return isString(value) ? Buffer.from(value, 'utf8').toString('base64url') : undefined;
}

/** Base64url, padded or not (as OPA's base64url.decode accepts); undefined when malformed. */
function base64UrlBytes(value: string): Buffer | undefined {
  const unpadded = value.replace(/=+$/, '');
  if (!/^[A-Za-z0-9_-]*$/.test(unpadded) || unpadded.length % 4 === 1) return undefined;
  return Buffer.from(unpadded, 'base64url');
}

// ---------------------------------------------------------------------------------------
// URL queries, as Go's net/url

/** Go's url.QueryEscape: everything but A-Z a-z 0-9 - _ . ~ escaped, spaces as '+'. */
function queryEscape(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Go's url.QueryUnescape; undefined on a malformed escape. */
function queryUnescape(value: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '%') {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c === '+') {
      bytes.push(0x20);
    } else {
      for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function urlqueryEncode(value: unknown): string | undefined {
  return isString(value) ? queryEscape(value) : undefined;
}

function urlqueryDecode(value: unknown): string | undefined {
  return isString(value) ? queryUnescape(value) : undefined;
}

/** Go's url.Values.Encode: keys sorted, each value `key=value`, joined with `&`. */
function urlqueryEncodeObject(object: unknown): string | undefined {
  if (!isObject(object)) return undefined;
  const parts: string[] = [];
  for (const key of Object.keys(object).sort()) {
    const value = object[key];
    const values = isString(value) ? [value] : Array.isArray(value) ? value : undefined;
    if (values === undefined || !values.every(isString)) return undefined;
    for (const v of values) parts.push(`${queryEscape(key)}=${queryEscape(v)}`);
  }
  return parts.join('&');
}

/** Go's url.ParseQuery: each key to the list of its values; undefined on a malformed query. */
function urlqueryDecodeObject(query: unknown): Record<string, string[]> | undefined {
  if (!isString(query)) return undefined;
  const out: Record<string, string[]> = {};
  for (const part of query.split('&')) {
    if (part === '') continue;
    if (part.includes(';')) return undefined;
    const eq = part.indexOf('=');
    const key = queryUnescape(eq < 0 ? part : part.slice(0, eq));
    const value = queryUnescape(eq < 0 ? '' : part.slice(eq + 1));
    if (key === undefined || value === undefined) return undefined;
    (out[key] ??= []).push(value);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Strings and regular expressions

function regexFindN(pattern: unknown, value: unknown, count: unknown): string[] | undefined {
  if (!isString(pattern) || !isString(value) || typeof count !== 'number' || !Number.isInteger(count))
    return undefined;
  const compiled = compilePattern(pattern);
  if (!compiled.ok) return undefined;
  const global = new RegExp(compiled.regex.source, `${compiled.regex.flags}g`);
  const out: string[] = [];
  let previousEnd = -1;
  for (const match of value.matchAll(global)) {
    if (count >= 0 && out.length >= count) break;
    // Go does not report an empty match right after the previous match.
    if (match[0] === '' && match.index === previousEnd) continue;
    out.push(match[0]);
    previousEnd = match.index + match[0].length;
  }
  return out;
}

/** A string, or an array of strings (a Rego set arrives as an array). */
function stringList(value: unknown): string[] | undefined {
  if (isString(value)) return [value];
  if (Array.isArray(value) && value.every(isString)) return value;
  return undefined;
}

function anyMatch(test: (search: string, base: string) => boolean): BuiltinFunction {
  return (search, base) => {
    const searches = stringList(search);
    const bases = stringList(base);
    if (searches === undefined || bases === undefined) return undefined;
    return searches.some((s) => bases.some((b) => test(s, b)));
  };
}

/** Go's strings.Count: non-overlapping occurrences; an empty substring counts code points + 1. */
function stringsCount(search: unknown, substring: unknown): number | undefined {
  if (!isString(search) || !isString(substring)) return undefined;
  if (substring === '') return [...search].length + 1;
  let count = 0;
  for (let i = search.indexOf(substring); i >= 0; i = search.indexOf(substring, i + substring.length))
    count++;
  return count;
}

/** Every index (in code points) where `search` occurs in `value`, overlapping occurrences included. */
function indexofN(value: unknown, search: unknown): number[] | undefined {
  if (!isString(value) || !isString(search)) return undefined;
  const chars = [...value];
  const wanted = [...search];
  const out: number[] = [];
  for (let i = 0; i + wanted.length <= chars.length; i++) {
    let same = true;
    for (let j = 0; j < wanted.length && same; j++) same = chars[i + j] === wanted[j];
    if (same) out.push(i);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Units

/** Splits `10.5KiB` into its number and unit, as OPA does (digits, dots, an exponent). */
function numberAndUnit(text: string): { number: number; unit: string } | undefined {
  if (text.includes(' ')) return undefined;
  const m = /^([0-9.]*(?:[eE][+-]?[0-9]{1,6})?)(.*)$/.exec(text);
  if (m === null || m[1] === '' || !/^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(m[1]!)) return undefined;
  return { number: Number(m[1]), unit: m[2]! };
}

const BYTE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  kb: 1e3,
  ki: 2 ** 10,
  kib: 2 ** 10,
  m: 1e6,
  mb: 1e6,
  mi: 2 ** 20,
  mib: 2 ** 20,
  g: 1e9,
  gb: 1e9,
  gi: 2 ** 30,
  gib: 2 ** 30,
  t: 1e12,
  tb: 1e12,
  ti: 2 ** 40,
  tib: 2 ** 40,
  p: 1e15,
  pb: 1e15,
  pi: 2 ** 50,
  pib: 2 ** 50,
  e: 1e18,
  eb: 1e18,
  ei: 2 ** 60,
  eib: 2 ** 60,
};

/** `units.parse_bytes`: a whole number of bytes (SI and binary units, any case). */
function unitsParseBytes(value: unknown): ArrayBuffer | undefined {
  if (!isString(value)) return undefined;
  const parsed = numberAndUnit(value.toLowerCase().replaceAll('"', ''));
  const multiplier = parsed === undefined ? undefined : BYTE_UNITS[parsed.unit];
  if (parsed === undefined || multiplier === undefined) return undefined;
  return integer(BigInt(Math.trunc(parsed.number * multiplier)));
}

const SI_UNITS: Readonly<Record<string, number>> = {
  m: 1e-3,
  '': 1,
  k: 1e3,
  K: 1e3,
  ki: 2 ** 10,
  Ki: 2 ** 10,
  M: 1e6,
  mi: 2 ** 20,
  Mi: 2 ** 20,
  g: 1e9,
  G: 1e9,
  gi: 2 ** 30,
  Gi: 2 ** 30,
  t: 1e12,
  T: 1e12,
  ti: 2 ** 40,
  Ti: 2 ** 40,
  p: 1e15,
  P: 1e15,
  pi: 2 ** 50,
  Pi: 2 ** 50,
  e: 1e18,
  E: 1e18,
  ei: 2 ** 60,
  Ei: 2 ** 60,
};

/** `units.parse`: SI (`m` is milli, `M` mega) and binary units, to a number. */
function unitsParse(value: unknown): number | undefined {
  if (!isString(value)) return undefined;
  const parsed = numberAndUnit(value.replaceAll('"', ''));
  if (parsed === undefined) return undefined;
  // Only the letters after the first are case-insensitive, so that m and M differ.
  const unit = parsed.unit.length > 1 ? parsed.unit[0] + parsed.unit.slice(1).toLowerCase() : parsed.unit;
  const multiplier = SI_UNITS[unit];
  return multiplier === undefined ? undefined : parsed.number * multiplier;
}

// ---------------------------------------------------------------------------------------
// Time

const NS_PER_MS = 1_000_000n;
const NS_PER_SECOND = 1_000_000_000n;
const NS_PER_DAY = 86_400n * NS_PER_SECOND;
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Go's time.RFC3339 parse (fractional seconds accepted), to nanoseconds since the epoch. */
function parseRfc3339Ns(value: unknown): ArrayBuffer | undefined {
  if (!isString(value)) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|([+-])(\d{2}):(\d{2}))$/.exec(
    value,
  );
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return undefined;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > daysInMonth) return undefined;
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute, second, 0);
  let ns = BigInt(utc.getTime()) * NS_PER_MS + BigInt((m[7] ?? '').padEnd(9, '0') || '0');
  if (m[8] !== 'Z') {
    const offsetHours = Number(m[10]);
    const offsetMinutes = Number(m[11]);
    if (offsetHours > 23 || offsetMinutes > 59) return undefined;
    const offset = BigInt(offsetHours * 3600 + offsetMinutes * 60) * NS_PER_SECOND;
    ns = m[9] === '+' ? ns - offset : ns + offset;
  }
  return integer(ns);
}

/** Hours in OPA's extended duration units. */
const EXTENDED_UNIT_HOURS: Readonly<Record<string, number>> = { d: 24, w: 7 * 24, y: 365 * 24 };

/** A Go duration, plus OPA's days, weeks and years (`1d2h`: d, w and y are rewritten as hours). */
function parseDurationNs(value: unknown): ArrayBuffer | undefined {
  if (!isString(value)) return undefined;
  let text = value;
  if (/[dwy]/.test(value)) {
    const m = /^([-+]?)((?:[0-9.]+(?:ms|us|µs|ns|[a-z]))+)$/.exec(value);
    if (m === null) return undefined;
    const segments = [...m[2]!.matchAll(/([0-9.]+)(ms|us|µs|ns|[a-z])/g)].map(([, digits, unit]) => {
      const hours = EXTENDED_UNIT_HOURS[unit!];
      return hours === undefined ? `${digits}${unit}` : `${Number(digits) * hours}h`;
    });
    text = m[1]! + segments.join('');
  }
  const duration = Duration.parse(text);
  return duration === undefined ? undefined : integer(duration.toNanos());
}

/** The civil fields of a time in a zone: `time.date`, `time.clock`, `time.weekday` read these. */
interface CivilTime {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  readonly weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** `ns` or `[ns, zone]`, as the time built-ins take it, in civil fields. */
function civilTime(argument: unknown): CivilTime | undefined {
  let ns: bigint | undefined;
  let zone = 'UTC';
  if (Array.isArray(argument)) {
    if (argument.length !== 2 || !isString(argument[1])) return undefined;
    ns = wholeNumber(argument[0]);
    zone = argument[1] === '' ? 'UTC' : argument[1];
  } else {
    ns = wholeNumber(argument);
  }
  if (ns === undefined) return undefined;
  const ms = Number(ns / NS_PER_MS - (ns % NS_PER_MS < 0n ? 1n : 0n));
  const date = new Date(ms);
  if (zone === 'UTC') {
    return {
      year: date.getUTCFullYear(),
      month: date.getUTCMonth() + 1,
      day: date.getUTCDate(),
      hour: date.getUTCHours(),
      minute: date.getUTCMinutes(),
      second: date.getUTCSeconds(),
      weekday: date.getUTCDay(),
    };
  }
  let formatter = formatters.get(zone);
  if (formatter === undefined) {
    try {
      formatter = new Intl.DateTimeFormat('en-US', {
        timeZone: zone === 'Local' ? undefined : zone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
        weekday: 'long',
        era: 'short',
      });
    } catch {
      return undefined; // an unknown zone: OPA fails the call
    }
    formatters.set(zone, formatter);
  }
  const parts: Record<string, string> = {};
  for (const part of formatter.formatToParts(date)) parts[part.type] = part.value;
  const year = Number(parts.year);
  return {
    year: parts.era === 'BC' ? 1 - year : year,
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
    weekday: WEEKDAYS.indexOf(parts.weekday ?? ''),
  };
}

/** `time.add_date(ns, years, months, days)`, normalising as Go's AddDate (31 Jan + 1 month = 2 or 3 Mar), in UTC. */
function addDate(ns: unknown, years: unknown, months: unknown, days: unknown): ArrayBuffer | undefined {
  const time = wholeNumber(ns);
  if (time === undefined || !Number.isInteger(years) || !Number.isInteger(months) || !Number.isInteger(days))
    return undefined;
  const dayNs = ((time % NS_PER_DAY) + NS_PER_DAY) % NS_PER_DAY;
  const dayStart = time - dayNs;
  const date = new Date(Number(dayStart / NS_PER_MS));
  const moved = new Date(0);
  moved.setUTCFullYear(
    date.getUTCFullYear() + (years as number),
    date.getUTCMonth() + (months as number),
    date.getUTCDate() + (days as number),
  );
  return integer(BigInt(moved.getTime()) * NS_PER_MS + dayNs);
}

// ---------------------------------------------------------------------------------------
// JSON Web Tokens

/** One level of a compact JWS, split and decoded. */
interface TokenParts {
  readonly header: Record<string, unknown>;
  readonly payload: Buffer;
  readonly signature: Buffer;
  /** `header.payload` as written: what the signature signs. */
  readonly signed: string;
}

function jsonObject(bytes: Buffer | undefined): Record<string, unknown> | undefined {
  if (bytes === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function splitToken(token: unknown): TokenParts | undefined {
  if (!isString(token)) return undefined;
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const header = jsonObject(base64UrlBytes(parts[0]!));
  const payload = base64UrlBytes(parts[1]!);
  const signature = base64UrlBytes(parts[2]!);
  if (header === undefined || payload === undefined || signature === undefined) return undefined;
  return { header, payload, signature, signed: `${parts[0]}.${parts[1]}` };
}

/** A nested token's payload is the inner token, possibly quoted (as jwt.io writes it). */
function innerToken(payload: Buffer): string {
  return payload.toString('utf8').replace(/^["']+|["']+$/g, '');
}

function jwtDecode(token: unknown): unknown[] | undefined {
  const parts = splitToken(token);
  if (parts === undefined) return undefined;
  if (parts.header.cty === 'JWT') return jwtDecode(innerToken(parts.payload));
  const payload = jsonObject(parts.payload);
  return payload === undefined ? undefined : [parts.header, payload, parts.signature.toString('hex')];
}

/** A verification key and what the JWKS said of it. */
interface VerificationKey {
  readonly key: KeyObject;
  readonly kid?: string;
  readonly alg?: string;
}

/** Keys from a PEM certificate, a PEM public key, a JWK or a JWKS (OPA's `cert` argument). */
function verificationKeys(certificate: unknown): VerificationKey[] | undefined {
  if (!isString(certificate)) return undefined;
  try {
    const trimmed = certificate.trim();
    if (trimmed.startsWith('-----BEGIN CERTIFICATE-----')) {
      return [{ key: new X509Certificate(trimmed).publicKey }];
    }
    if (trimmed.startsWith('-----BEGIN')) return [{ key: createPublicKey(trimmed) }];
    const parsed: unknown = JSON.parse(trimmed);
    const jwks = isObject(parsed) && Array.isArray(parsed.keys) ? parsed.keys : [parsed];
    return jwks.filter(isObject).map((jwk) => ({
      key: createPublicKey({ key: jwk as never, format: 'jwk' }),
      ...(isString(jwk.kid) ? { kid: jwk.kid } : {}),
      ...(isString(jwk.alg) ? { alg: jwk.alg } : {}),
    }));
  } catch {
    return undefined;
  }
}

const HASHES: Readonly<Record<string, string>> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

/** Whether `signature` over `signed` verifies for `alg` with `key` (a public key, or an HMAC secret). */
function signatureVerifies(alg: string, signed: string, signature: Buffer, key: KeyObject | string): boolean {
  const family = alg.slice(0, 2);
  const hash = HASHES[alg.slice(2)];
  try {
    if (family === 'HS' && hash !== undefined && typeof key === 'string') {
      const expected = createHmac(hash, Buffer.from(key, 'utf8')).update(signed).digest();
      return expected.length === signature.length && timingSafeEqual(expected, signature);
    }
    if (typeof key === 'string') return false;
    const data = Buffer.from(signed, 'utf8');
    if (alg === 'EdDSA') return verify(null, data, key, signature);
    if (hash === undefined) return false;
    if (family === 'RS') return verify(hash, data, key, signature);
    if (family === 'PS')
      return verify(
        hash,
        data,
        {
          key,
          padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
          saltLength: cryptoConstants.RSA_PSS_SALTLEN_AUTO,
        },
        signature,
      );
    if (family === 'ES') return verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    return false;
  } catch {
    return false;
  }
}

/** `io.jwt.verify_<alg>(token, certificate or secret)`. */
function jwtVerify(alg: string): BuiltinFunction {
  return (token, keyOrSecret) => {
    if (!isString(token)) return undefined;
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const signature = base64UrlBytes(parts[2]!);
    if (signature === undefined) return undefined;
    const signed = `${parts[0]}.${parts[1]}`;
    if (alg.startsWith('HS')) {
      return isString(keyOrSecret) ? signatureVerifies(alg, signed, signature, keyOrSecret) : undefined;
    }
    const keys = verificationKeys(keyOrSecret);
    if (keys === undefined) return undefined;
    return keys.some((k) => signatureVerifies(alg, signed, signature, k.key));
  };
}

/** `io.jwt.decode_verify(token, constraints)`: `[valid, header, payload]`, as OPA checks them. */
function jwtDecodeVerify(clock: BuiltinClock): BuiltinFunction {
  const unverified = (): unknown[] => [false, {}, {}];
  return (token, constraints) => {
    if (!isObject(constraints)) return undefined;
    const known = new Set(['cert', 'secret', 'alg', 'iss', 'aud', 'time']);
    if (Object.keys(constraints).some((k) => !known.has(k))) return undefined;
    const { cert, secret, alg, iss, aud, time } = constraints;
    if ((cert === undefined) === (secret === undefined)) return undefined; // exactly one key constraint
    for (const s of [alg, iss, aud]) if (s !== undefined && !isString(s)) return undefined;
    if (secret !== undefined && !isString(secret)) return undefined;
    const keys = cert === undefined ? undefined : verificationKeys(cert);
    if (cert !== undefined && keys === undefined) return undefined;
    const nowNs = time === undefined ? clock.nowMs * 1e6 : time;
    if (typeof nowNs !== 'number' || nowNs < 0) return undefined;

    // Each level of a nested token (`cty: JWT`) must verify with the same constraints.
    let level = splitToken(token);
    for (;;) {
      if (level === undefined) return undefined;
      const headerAlg = level.header.alg;
      if (!isString(headerAlg)) return unverified();
      if (alg !== undefined && alg !== headerAlg) return unverified();
      if (!levelVerifies(level, headerAlg, keys, secret as string | undefined)) return unverified();
      if (level.header.cty !== 'JWT') break;
      level = splitToken(innerToken(level.payload));
    }
    const header = level.header;
    const payload = jsonObject(level.payload);
    if (payload === undefined) return undefined;
    if (iss !== undefined && iss !== '' && payload.iss !== iss) return unverified();
    if (payload.aud !== undefined) {
      const audiences = isString(payload.aud) ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
      if (!isString(aud) || aud === '' || !audiences.includes(aud)) return unverified();
    } else if (isString(aud) && aud !== '') {
      return unverified();
    }
    const nowSeconds = nowNs / 1e9;
    if (payload.exp !== undefined) {
      if (typeof payload.exp !== 'number') return undefined;
      if (nowSeconds >= payload.exp) return unverified();
    }
    if (payload.nbf !== undefined) {
      if (typeof payload.nbf !== 'number') return undefined;
      if (nowSeconds < payload.nbf) return unverified();
    }
    return [true, header, payload];
  };
}

/** Whether one level's signature verifies: by the key whose kid matches, else by any key (of the header's alg), or the secret. */
function levelVerifies(
  level: TokenParts,
  alg: string,
  keys: readonly VerificationKey[] | undefined,
  secret: string | undefined,
): boolean {
  if (keys === undefined) return signatureVerifies(alg, level.signed, level.signature, secret ?? '');
  const kid = level.header.kid;
  const byKid = isString(kid) ? keys.find((k) => k.kid === kid) : undefined;
  if (byKid !== undefined) return signatureVerifies(alg, level.signed, level.signature, byKid.key);
  return keys.some(
    (k) =>
      (k.alg === undefined || k.alg === alg) && signatureVerifies(alg, level.signed, level.signature, k.key),
  );
}

// ---------------------------------------------------------------------------------------

/**
 * The built-ins Switchboard provides, by their Rego names, reading the evaluation's time
 * from `clock`. Each call returns fresh functions bound to that clock.
 */
export function createBuiltins(clock: BuiltinClock): Record<string, BuiltinFunction> {
  const builtins: Record<string, BuiltinFunction> = {
    'time.now_ns': () => integer(BigInt(Math.trunc(clock.nowMs)) * NS_PER_MS),
    'time.parse_rfc3339_ns': parseRfc3339Ns,
    'time.parse_duration_ns': parseDurationNs,
    'time.date': (x) => {
      const t = civilTime(x);
      return t === undefined ? undefined : [t.year, t.month, t.day];
    },
    'time.clock': (x) => {
      const t = civilTime(x);
      return t === undefined ? undefined : [t.hour, t.minute, t.second];
    },
    'time.weekday': (x) => {
      const t = civilTime(x);
      return t === undefined ? undefined : WEEKDAYS[t.weekday];
    },
    'time.add_date': addDate,
    'crypto.sha256': digest('sha256'),
    'crypto.sha1': digest('sha1'),
    'crypto.md5': digest('md5'),
    'crypto.hmac.sha256': hmac('sha256'),
    'crypto.hmac.sha1': hmac('sha1'),
    'crypto.hmac.sha512': hmac('sha512'),
    'crypto.hmac.md5': hmac('md5'),
    'crypto.hmac.equal': hmacEqual,
    'hex.encode': hexEncode,
    'hex.decode': hexDecode,
    'base64url.encode_no_pad': base64UrlEncodeNoPad,
    'urlquery.encode': urlqueryEncode,
    'urlquery.decode': urlqueryDecode,
    'urlquery.encode_object': urlqueryEncodeObject,
    'urlquery.decode_object': urlqueryDecodeObject,
    'regex.find_n': regexFindN,
    'strings.any_prefix_match': anyMatch((s, b) => s.startsWith(b)),
    'strings.any_suffix_match': anyMatch((s, b) => s.endsWith(b)),
    'strings.count': stringsCount,
    indexof_n: indexofN,
    'units.parse_bytes': unitsParseBytes,
    'units.parse': unitsParse,
    'io.jwt.decode': jwtDecode,
    'io.jwt.decode_verify': jwtDecodeVerify(clock),
    'io.jwt.verify_eddsa': jwtVerify('EdDSA'),
  };
  for (const family of ['hs', 'rs', 'ps', 'es']) {
    for (const bits of ['256', '384', '512']) {
      builtins[`io.jwt.verify_${family}${bits}`] = jwtVerify(`${family.toUpperCase()}${bits}`);
    }
  }
  return builtins;
}

/** Names of the built-ins {@link createBuiltins} provides. */
export const PROVIDED_BUILTINS: readonly string[] = Object.freeze(
  Object.keys(createBuiltins({ nowMs: 0 })).sort(),
);

/** Names of the built-ins the SDK itself provides in JavaScript. */
export const SDK_BUILTINS: readonly string[] = Object.freeze([
  'json.is_valid',
  'regex.split',
  'sprintf',
  'yaml.is_valid',
  'yaml.marshal',
  'yaml.unmarshal',
]);
