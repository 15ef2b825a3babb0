/**
 * The key a quota is counted under: the instance's full name and all its dimensions, in
 * name order, so that the same instance and dimensions always meet the same counter
 * whatever order the instance configuration lists them in.
 *
 * Every part is length-prefixed and every value tagged with its type, so no choice of
 * values can make two different instances share a key (`a="x;b=y"` is not `a="x", b="y"`,
 * and the string "10" is not the integer 10).
 */
import { Duration, IpAddress, Timestamp, isStringMap, type AttributeValue } from '../../../attributes';

export function counterKey(instanceName: string, dimensions: ReadonlyMap<string, AttributeValue>): string {
  let key = part(instanceName);
  const names = [...dimensions.keys()].sort();
  for (const name of names) key += part(name) + valuePart(dimensions.get(name)!);
  return key;
}

function part(text: string): string {
  return `${text.length}:${text}`;
}

function valuePart(value: AttributeValue): string {
  switch (typeof value) {
    case 'string':
      return 's' + part(value);
    case 'bigint':
      return 'i' + part(value.toString());
    case 'number':
      return 'd' + part(String(value));
    case 'boolean':
      return value ? 'T' : 'F';
    default:
      break;
  }
  if (value instanceof Timestamp) return 't' + part(value.toString());
  if (value instanceof Duration) return 'u' + part(value.toString());
  // An IPv4 address and its IPv4-mapped IPv6 form are one address, as in matching.
  if (value instanceof IpAddress) return 'p' + part(value.toString());
  if (value instanceof Uint8Array) return 'y' + part(Buffer.from(value).toString('hex'));
  if (isStringMap(value)) {
    const keys = [...value.keys()].sort();
    let text = '';
    for (const k of keys) text += part(k) + part(value.get(k)!);
    return 'm' + part(text);
  }
  return 'x' + part(String(value));
}
