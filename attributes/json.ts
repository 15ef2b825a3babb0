/**
 * Attribute values in JSON: reading a bag from a JSON object typed by the manifest
 * (`switchboard eval --attributes`, fixtures, debugging) and writing values back.
 *
 * | type | JSON |
 * |------|------|
 * | STRING, EMAIL_ADDRESS, URI, DNS_NAME | string |
 * | INT64 | integer number, or a string of digits beyond 2^53 |
 * | DOUBLE | number |
 * | BOOL | true / false |
 * | TIMESTAMP | RFC 3339 string, `"2015-01-02T15:04:35Z"` |
 * | DURATION | Go duration string, `"19ms"`, `"1.5s"` |
 * | IP_ADDRESS | text, `"10.0.0.1"`, `"2001:db8::1"` |
 * | STRING_MAP | object of strings |
 * | BYTES | base64 string |
 */
import { AttributeBag } from './bag';
import type { AttributeFinder } from './manifest';
import { ValueType, valueTypeName } from './value-type';
import { Duration, IpAddress, Timestamp, type AttributeValue } from './values';

/** A JSON value as parsed by {@link parseJson}: integers beyond 2^53 arrive as bigint. */
export type JsonValue =
  null | boolean | number | bigint | string | JsonValue[] | { [key: string]: JsonValue };

/** A JSON input that does not fit the attribute it is given for. */
export class AttributeJsonError extends Error {
  override readonly name = 'AttributeJsonError';
}

const TWO_POW_53 = 2n ** 53n;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Parses JSON text like JSON.parse, except that integer literals beyond 2^53 (which a
 * JS number would round) become bigint, so INT64 attributes keep full precision.
 * @throws SyntaxError for invalid JSON
 */
export function parseJson(text: string): JsonValue {
  // Mark long integer literals outside strings, parse, then restore them as bigint.
  const marker = '\u0000int:';
  let marked = '';
  let last = 0;
  const token = /"(?:[^"\\]|\\.)*"|-?\d{16,}(?![.eE\d])/g;
  for (let m = token.exec(text); m !== null; m = token.exec(text)) {
    if (m[0][0] === '"') continue;
    marked += text.slice(last, m.index) + JSON.stringify(marker + m[0]);
    last = m.index + m[0].length;
  }
  marked += text.slice(last);
  return JSON.parse(marked, (_key, value: unknown) => {
    if (typeof value === 'string' && value.startsWith(marker)) {
      const big = BigInt(value.slice(marker.length));
      return big > -TWO_POW_53 && big < TWO_POW_53 ? Number(big) : big;
    }
    return value;
  }) as JsonValue;
}

/**
 * Builds a bag from a JSON object of attribute name to value, each typed by the manifest.
 * @throws AttributeJsonError naming the attribute for an unknown name or a value of the wrong type
 */
export function bagFromJson(input: JsonValue, finder: AttributeFinder): AttributeBag {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new AttributeJsonError('attributes must be a JSON object of attribute name to value');
  }
  const bag = new AttributeBag();
  for (const [name, raw] of Object.entries(input)) {
    const info = finder.find(name);
    if (info === undefined) throw new AttributeJsonError(`attribute '${name}' is not in the manifest`);
    bag.set(name, valueFromJson(name, info.valueType, raw));
  }
  return bag;
}

/** Converts one JSON value to the runtime value of a type. @throws AttributeJsonError */
export function valueFromJson(name: string, type: ValueType, raw: JsonValue): AttributeValue {
  const wrong = (expected: string): AttributeJsonError =>
    new AttributeJsonError(
      `attribute '${name}' is ${valueTypeName(type)} and needs ${expected}, got ${describeJson(raw)}`,
    );
  switch (type) {
    case ValueType.STRING:
    case ValueType.EMAIL_ADDRESS:
    case ValueType.URI:
    case ValueType.DNS_NAME:
      if (typeof raw !== 'string') throw wrong('a string');
      return raw;
    case ValueType.INT64: {
      let value: bigint | undefined;
      if (typeof raw === 'bigint') value = raw;
      else if (typeof raw === 'number' && Number.isInteger(raw)) value = BigInt(raw);
      else if (typeof raw === 'string' && /^-?\d+$/.test(raw)) value = BigInt(raw);
      if (value === undefined) throw wrong('an integer (a string of digits beyond 2^53)');
      if (value < INT64_MIN || value > INT64_MAX) throw wrong('an integer within the INT64 range');
      return value;
    }
    case ValueType.DOUBLE:
      if (typeof raw === 'number') return raw;
      if (typeof raw === 'bigint') return Number(raw);
      throw wrong('a number');
    case ValueType.BOOL:
      if (typeof raw !== 'boolean') throw wrong('true or false');
      return raw;
    case ValueType.TIMESTAMP: {
      const value = typeof raw === 'string' ? Timestamp.parse(raw) : undefined;
      if (value === undefined) throw wrong('an RFC 3339 string such as "2015-01-02T15:04:35Z"');
      return value;
    }
    case ValueType.DURATION: {
      const value = typeof raw === 'string' ? Duration.parse(raw) : undefined;
      if (value === undefined) throw wrong('a duration string such as "19ms" or "1.5s"');
      return value;
    }
    case ValueType.IP_ADDRESS: {
      const value = typeof raw === 'string' ? IpAddress.parse(raw) : undefined;
      if (value === undefined) throw wrong('an IPv4 or IPv6 address string');
      return value;
    }
    case ValueType.STRING_MAP: {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw wrong('an object of strings');
      const map = new Map<string, string>();
      for (const [key, value] of Object.entries(raw)) {
        if (typeof value !== 'string') {
          throw new AttributeJsonError(
            `attribute '${name}' key '${key}' needs a string value, got ${describeJson(value)}`,
          );
        }
        map.set(key, value);
      }
      return map;
    }
    case ValueType.BYTES:
      if (typeof raw !== 'string') throw wrong('a base64 string');
      return new Uint8Array(Buffer.from(raw, 'base64'));
    default:
      throw new AttributeJsonError(
        `attribute '${name}' has type ${valueTypeName(type)}, which has no JSON form`,
      );
  }
}

/**
 * The JSON form of a value of a type, as `switchboard eval` prints it. INT64 is a
 * number up to 2^53 in magnitude and a string beyond, so no reader rounds it.
 */
export function valueToJson(value: AttributeValue, type: ValueType): unknown {
  switch (type) {
    case ValueType.INT64: {
      const v = value as bigint;
      return v > TWO_POW_53 || v < -TWO_POW_53 ? v.toString() : Number(v);
    }
    case ValueType.DOUBLE: {
      const v = value as number;
      return Number.isFinite(v) ? v : String(v);
    }
    case ValueType.TIMESTAMP:
    case ValueType.DURATION:
    case ValueType.IP_ADDRESS:
      return String(value);
    case ValueType.STRING_MAP:
      return Object.fromEntries((value as ReadonlyMap<string, string>).entries());
    case ValueType.BYTES:
      return Buffer.from(value as Uint8Array).toString('base64');
    default:
      return value;
  }
}

function describeJson(raw: JsonValue): string {
  if (raw === null) return 'null';
  if (Array.isArray(raw)) return 'an array';
  if (typeof raw === 'object') return 'an object';
  if (typeof raw === 'string') return JSON.stringify(raw);
  return String(raw);
}
