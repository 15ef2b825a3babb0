/**
 * Whether an instance's dimension value equals the text an override gives for it.
 *
 * Overrides are written in YAML, so their values are text; instance dimensions are typed
 * attribute values. Mixer compared them with `adapter.StringEquals`
 * (mixer/pkg/adapter/instanceUtil.go): the text is read as the value's type — `"200"` and
 * `"0200"` both equal the integer 200, `"1s"` and `"1000ms"` the same duration, `"true"`
 * and `"T"` true — and IP addresses and bytes compare by their printed form. An absent
 * dimension equals the empty text only (memquota.go's `matchDimensions` looks the name up
 * and compares what it finds, nil for an absent name).
 *
 * We follow that rule with two fixes: Mixer also let `""` match any value whose type
 * could not parse it, and let a string-map text miss a key whose value is empty; here
 * neither matches.
 *
 * Texts are parsed once, when the handler is built, so a request compares values only.
 */
import { Duration, IpAddress, Timestamp, isStringMap, type AttributeValue } from '../../../attributes';

/** One dimension an override requires, with its text read in every type it may be compared with. */
export interface DimensionCondition {
  readonly name: string;
  readonly text: string;
  readonly asInteger: bigint | undefined;
  readonly asDouble: number | undefined;
  readonly asBoolean: boolean | undefined;
  readonly asTimestamp: Timestamp | undefined;
  readonly asDuration: Duration | undefined;
  readonly asStringMap: ReadonlyMap<string, string>;
}

/** Reads an override's `name: text` once, for {@link matchesDimension}. */
export function compileDimensionCondition(name: string, text: string): DimensionCondition {
  return Object.freeze({
    name,
    text,
    asInteger: parseGoInt64(text),
    asDouble: parseGoFloat(text),
    asBoolean: GO_BOOLEANS.get(text),
    asTimestamp: Timestamp.parse(text),
    asDuration: Duration.parse(text),
    asStringMap: parseStringMapText(text),
  });
}

/** Whether `value` (undefined when the instance has no such dimension) satisfies the condition. */
export function matchesDimension(condition: DimensionCondition, value: AttributeValue | undefined): boolean {
  switch (typeof value) {
    case 'string':
      return value === condition.text;
    case 'undefined':
      return condition.text === '';
    case 'bigint':
      return value === condition.asInteger;
    case 'number':
      return value === condition.asDouble;
    case 'boolean':
      return value === condition.asBoolean;
    default:
      break;
  }
  if (value instanceof IpAddress) return value.toString() === condition.text;
  // Bytes print as Go prints a net.IP: dotted for 4 bytes, IPv6 text for 16, else `?` and hex.
  if (value instanceof Uint8Array) return new IpAddress(value).toString() === condition.text;
  if (value instanceof Timestamp) {
    return condition.asTimestamp !== undefined && Timestamp.compare(value, condition.asTimestamp) === 0;
  }
  if (value instanceof Duration) {
    return condition.asDuration !== undefined && Duration.compare(value, condition.asDuration) === 0;
  }
  if (isStringMap(value)) {
    const expected = condition.asStringMap;
    if (expected.size !== value.size) return false;
    for (const [key, entry] of value.entries()) if (expected.get(key) !== entry) return false;
    return true;
  }
  return false;
}

/** What Go's strconv.ParseBool accepts. */
const GO_BOOLEANS: ReadonlyMap<string, boolean> = new Map([
  ...['1', 't', 'T', 'TRUE', 'true', 'True'].map((t) => [t, true] as const),
  ...['0', 'f', 'F', 'FALSE', 'false', 'False'].map((t) => [t, false] as const),
]);

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Go's strconv.ParseInt(text, 10, 64): an optional sign and decimal digits, within int64. */
function parseGoInt64(text: string): bigint | undefined {
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  const value = BigInt(text);
  return value >= INT64_MIN && value <= INT64_MAX ? value : undefined;
}

/** Go's strconv.ParseFloat(text, 64) for decimal forms, infinities and NaN (hexadecimal floats are not read). */
function parseGoFloat(text: string): number | undefined {
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
  const infinity = /^([+-]?)(inf|infinity)$/i.exec(text);
  if (infinity !== null) return infinity[1] === '-' ? -Infinity : Infinity;
  // NaN parses, and equals nothing; undefined says the same.
  return undefined;
}

/** A string map written as Mixer printed one: `key=value&key=value`; entries without exactly one `=` are skipped. */
function parseStringMapText(text: string): ReadonlyMap<string, string> {
  const map = new Map<string, string>();
  for (const entry of text.split('&')) {
    const parts = entry.split('=');
    if (parts.length === 2) map.set(parts[0]!, parts[1]!);
  }
  return map;
}

/** The first of `overrides` whose every condition matches `dimensions`; undefined when none does. */
export function firstMatchingOverride<
  Override extends { readonly conditions: readonly DimensionCondition[] },
>(overrides: readonly Override[], dimensions: ReadonlyMap<string, AttributeValue>): Override | undefined {
  for (const override of overrides) {
    let all = true;
    for (const condition of override.conditions) {
      if (!matchesDimension(condition, dimensions.get(condition.name))) {
        all = false;
        break;
      }
    }
    if (all) return override;
  }
  return undefined;
}
