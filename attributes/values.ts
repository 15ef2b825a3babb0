/**
 * Runtime representations of attribute values.
 *
 * | ValueType                        | representation                      |
 * |----------------------------------|-------------------------------------|
 * | STRING, EMAIL_ADDRESS, URI, DNS_NAME | `string`                        |
 * | INT64                            | `bigint` (full 64-bit precision)    |
 * | DOUBLE                           | `number`                            |
 * | BOOL                             | `boolean`                           |
 * | TIMESTAMP                        | {@link Timestamp}                   |
 * | DURATION                         | {@link Duration}                    |
 * | IP_ADDRESS                       | {@link IpAddress}                   |
 * | BYTES                            | `Uint8Array`                        |
 * | STRING_MAP                       | `ReadonlyMap<string, string>`       |
 *
 * E-mail addresses, URIs and DNS names are strings at runtime, as in Mixer: the manifest
 * gives them their type, and equality between them follows the type (see expressions/).
 */
import { isIP } from 'node:net';

/** A point in time: whole seconds since the Unix epoch plus nanoseconds (0 ≤ nanos < 1e9). */
export class Timestamp {
  constructor(
    readonly seconds: number,
    readonly nanos: number,
  ) {}

  /** Parses an RFC 3339 date-time such as `2015-01-02T15:04:05.5Z`; undefined when it is not one. */
  static parse(text: string): Timestamp | undefined {
    const m = RFC3339.exec(text);
    if (m === null) return undefined;
    const [, y, mo, d, h, mi, s, frac, zone] = m;
    // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear takes the year as written.
    const check = new Date(0);
    check.setUTCFullYear(+y!, +mo! - 1, +d!);
    check.setUTCHours(+h!, +mi!, +s!, 0);
    const millis = check.getTime();
    // Date.UTC rolls over out-of-range fields (Feb 30 → Mar 2); RFC 3339 does not.
    if (check.getUTCDate() !== +d! || check.getUTCMonth() !== +mo! - 1 || +h! > 23 || +mi! > 59 || +s! > 59) {
      return undefined;
    }
    let seconds = Math.floor(millis / 1000);
    if (zone !== 'Z' && zone !== 'z') {
      const sign = zone![0] === '-' ? -1 : 1;
      const offsetHours = +zone!.slice(1, 3);
      const offsetMinutes = +zone!.slice(4, 6);
      if (offsetHours > 23 || offsetMinutes > 59) return undefined;
      seconds -= sign * (offsetHours * 3600 + offsetMinutes * 60);
    }
    const nanos = frac === undefined ? 0 : Number((frac.slice(1) + '00000000').slice(0, 9));
    return new Timestamp(seconds, nanos);
  }

  /** Orders two timestamps: negative, zero or positive. */
  static compare(a: Timestamp, b: Timestamp): number {
    return a.seconds !== b.seconds ? a.seconds - b.seconds : a.nanos - b.nanos;
  }

  /** RFC 3339 in UTC, with as many fractional digits as needed (none for whole seconds). */
  toString(): string {
    const base = new Date(this.seconds * 1000).toISOString().slice(0, 19);
    return `${base}${fractionDigits(this.nanos)}Z`;
  }

  toJSON(): string {
    return this.toString();
  }
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** A signed length of time: seconds plus nanoseconds, both of the same sign (as google.protobuf.Duration). */
export class Duration {
  constructor(
    readonly seconds: number,
    readonly nanos: number,
  ) {}

  /** A duration from a whole number of nanoseconds. */
  static fromNanos(total: bigint): Duration {
    const seconds = total / 1_000_000_000n;
    return new Duration(Number(seconds), Number(total - seconds * 1_000_000_000n));
  }

  /**
   * Parses a Go-style duration: a signed sequence of decimal numbers with units
   * `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, such as `19ms`, `1.5s`, `-2h45m`; `0` alone is allowed.
   * Undefined when the text is not one.
   */
  static parse(text: string): Duration | undefined {
    let rest = text;
    let negative = false;
    if (rest[0] === '-' || rest[0] === '+') {
      negative = rest[0] === '-';
      rest = rest.slice(1);
    }
    if (rest === '0') return new Duration(0, 0);
    if (rest === '') return undefined;
    let total = 0n;
    while (rest !== '') {
      const m = DURATION_PART.exec(rest);
      if (m === null) return undefined;
      const [whole, intPart, fracPart, unit] = m;
      if (intPart === '' && (fracPart === undefined || fracPart === '.')) return undefined;
      const scale = DURATION_UNIT_NANOS[unit!]!;
      total += BigInt(intPart || '0') * scale;
      if (fracPart !== undefined && fracPart.length > 1) {
        const digits = fracPart.slice(1);
        total += (BigInt(digits) * scale) / 10n ** BigInt(digits.length);
      }
      rest = rest.slice(whole.length);
    }
    if (total > MAX_DURATION_NANOS) return undefined;
    return Duration.fromNanos(negative ? -total : total);
  }

  static compare(a: Duration, b: Duration): number {
    return a.seconds !== b.seconds ? a.seconds - b.seconds : a.nanos - b.nanos;
  }

  /** Total nanoseconds. */
  toNanos(): bigint {
    return BigInt(this.seconds) * 1_000_000_000n + BigInt(this.nanos);
  }

  /** Go-style text: `1.5s`, `19ms`, `2h45m0s`, `0s`. */
  toString(): string {
    let nanos = this.toNanos();
    if (nanos === 0n) return '0s';
    const sign = nanos < 0n ? '-' : '';
    if (nanos < 0n) nanos = -nanos;
    if (nanos < 1_000n) return `${sign}${nanos}ns`;
    if (nanos < 1_000_000n) return `${sign}${decimal(nanos, 1_000n)}µs`;
    if (nanos < 1_000_000_000n) return `${sign}${decimal(nanos, 1_000_000n)}ms`;
    const hours = nanos / 3_600_000_000_000n;
    nanos -= hours * 3_600_000_000_000n;
    const minutes = nanos / 60_000_000_000n;
    nanos -= minutes * 60_000_000_000n;
    const seconds = decimal(nanos, 1_000_000_000n);
    if (hours > 0n) return `${sign}${hours}h${minutes}m${seconds}s`;
    if (minutes > 0n) return `${sign}${minutes}m${seconds}s`;
    return `${sign}${seconds}s`;
  }

  toJSON(): string {
    return this.toString();
  }
}

const DURATION_PART = /^(\d*)(\.\d*)?(ns|us|µs|μs|ms|s|m|h)/;
const DURATION_UNIT_NANOS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  μs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const MAX_DURATION_NANOS = 2n ** 63n - 1n;

/** `value / unit` as a decimal without trailing zeros. */
function decimal(value: bigint, unit: bigint): string {
  const whole = value / unit;
  const frac = value % unit;
  if (frac === 0n) return `${whole}`;
  const width = unit.toString().length - 1;
  return `${whole}.${frac.toString().padStart(width, '0').replace(/0+$/, '')}`;
}

function fractionDigits(nanos: number): string {
  if (nanos === 0) return '';
  return '.' + String(nanos).padStart(9, '0').replace(/0+$/, '');
}

/** An IPv4 (4 bytes) or IPv6 (16 bytes) address, as carried on the wire. */
export class IpAddress {
  constructor(readonly bytes: Uint8Array) {}

  /** Parses IPv4 dotted or IPv6 text (including `::ffff:1.2.3.4`); undefined when it is neither. */
  static parse(text: string): IpAddress | undefined {
    const family = isIP(text);
    if (family === 4) return new IpAddress(Uint8Array.from(text.split('.').map(Number)));
    if (family === 6) return new IpAddress(parseIpv6(text));
    return undefined;
  }

  /** Equality as Go's net.IP.Equal: an IPv4 address equals its IPv4-mapped IPv6 form. */
  static equal(a: IpAddress, b: IpAddress): boolean {
    const x = a.bytes;
    const y = b.bytes;
    if (x.length === y.length) return bytesEqual(x, y);
    if (x.length === 4 && y.length === 16) return isV4Mapped(y) && bytesEqual(x, y.subarray(12));
    if (x.length === 16 && y.length === 4) return isV4Mapped(x) && bytesEqual(x.subarray(12), y);
    return false;
  }

  /** The 4-byte form of an IPv4 or IPv4-mapped address; undefined for other addresses. */
  toIpv4(): Uint8Array | undefined {
    if (this.bytes.length === 4) return this.bytes;
    if (this.bytes.length === 16 && isV4Mapped(this.bytes)) return this.bytes.subarray(12);
    return undefined;
  }

  /** Text form as Go prints it: dotted IPv4 (also for IPv4-mapped IPv6), RFC 5952 IPv6, else hex. */
  toString(): string {
    const v4 = this.toIpv4();
    if (v4 !== undefined) return `${v4[0]}.${v4[1]}.${v4[2]}.${v4[3]}`;
    if (this.bytes.length === 16) return formatIpv6(this.bytes);
    return '?' + Buffer.from(this.bytes).toString('hex');
  }

  toJSON(): string {
    return this.toString();
  }
}

/** Byte-wise equality of two byte arrays. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

function parseIpv6(text: string): Uint8Array {
  // isIP() has already accepted the text, so only the layout is left to work out.
  let head = text;
  const out = new Uint8Array(16);
  const lastColon = head.lastIndexOf(':');
  let tailV4: number[] | undefined;
  if (head.indexOf('.', lastColon) !== -1) {
    tailV4 = head
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    head = head.slice(0, lastColon + 1) + '0:0';
  }
  const [left, right] = head.split('::') as [string, string | undefined];
  const leftGroups = left === '' ? [] : left.split(':');
  const rightGroups = right === undefined || right === '' ? [] : right.split(':');
  const groups =
    right === undefined
      ? leftGroups
      : [
          ...leftGroups,
          ...new Array<string>(8 - leftGroups.length - rightGroups.length).fill('0'),
          ...rightGroups,
        ];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  if (tailV4 !== undefined) out.set(tailV4, 12);
  return out;
}

function formatIpv6(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // RFC 5952: the longest run (of two or more) of zero groups becomes `::`, the first one on ties.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** A string map (request headers, labels): key to value. */
export type StringMap = ReadonlyMap<string, string>;

/**
 * Whether a value is a string map. Any ReadonlyMap implementation qualifies (decoded maps
 * are not Map instances), and no other attribute representation has `get` and `entries`.
 */
export function isStringMap(value: unknown): value is StringMap {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as StringMap).get === 'function' &&
    typeof (value as StringMap).entries === 'function'
  );
}

/** Whether two string maps hold the same keys with the same values. */
export function stringMapsEqual(a: StringMap, b: StringMap): boolean {
  // The same pairs in the same order (consecutive requests' headers, say) are the same map.
  const pa = pairsOf(a);
  const pb = pa === undefined ? undefined : pairsOf(b);
  if (pa !== undefined && pb !== undefined && pa.length === pb.length) {
    let same = true;
    for (let i = 0; i < pa.length; i++) {
      if (pa[i] !== pb[i]) {
        same = false;
        break;
      }
    }
    if (same) return true;
  }
  if (a.size !== b.size) return false;
  for (const [key, value] of a.entries()) if (b.get(key) !== value) return false;
  return true;
}

/** A string map's distinct pairs in order, when it keeps them so (FlatStringMap does). */
export function pairsOf(map: StringMap): readonly string[] | undefined {
  const flat = map as StringMap & { distinctPairs?: () => readonly string[] | undefined };
  return typeof flat.distinctPairs === 'function' ? flat.distinctPairs() : undefined;
}

/** Any attribute value; see the table above for which representation each type has. */
export type AttributeValue =
  string | bigint | number | boolean | Timestamp | Duration | IpAddress | Uint8Array | StringMap;
