/**
 * Attribute values as key text: each value tagged with its type and length-prefixed, so
 * that no choice of values makes two different keys meet (`a="x;b=y"` is not `a="x",
 * b="y"`, and the string "10" is not the integer 10). Quota counters and the proxy's
 * decision cache key on these.
 */
import { Duration, IpAddress, Timestamp, isStringMap, type AttributeValue } from './values';

/** `text` behind its length: `3:abc`. */
export function lengthPrefixed(text: string): string {
  return `${text.length}:${text}`;
}

/** A value as key text, tagged with its type. String maps by their keys in sorted order. */
export function valueKey(value: AttributeValue): string {
  switch (typeof value) {
    case 'string':
      return 's' + lengthPrefixed(value);
    case 'bigint':
      return 'i' + lengthPrefixed(value.toString());
    case 'number':
      return 'd' + lengthPrefixed(String(value));
    case 'boolean':
      return value ? 'T' : 'F';
    default:
      break;
  }
  if (value instanceof Timestamp) return 't' + lengthPrefixed(value.toString());
  if (value instanceof Duration) return 'u' + lengthPrefixed(value.toString());
  // An IPv4 address and its IPv4-mapped IPv6 form are one address, as in matching.
  if (value instanceof IpAddress) return 'p' + lengthPrefixed(value.toString());
  if (value instanceof Uint8Array) return 'y' + lengthPrefixed(Buffer.from(value).toString('hex'));
  if (isStringMap(value)) {
    const keys = [...value.keys()].sort();
    let text = '';
    for (const k of keys) text += lengthPrefixed(k) + lengthPrefixed(value.get(k)!);
    return 'm' + lengthPrefixed(text);
  }
  return 'x' + lengthPrefixed(String(value));
}
