/**
 * The key a quota is counted under: the instance's full name and all its dimensions, in
 * name order, so that the same instance and dimensions always meet the same counter
 * whatever order the instance configuration lists them in.
 *
 * Every part is length-prefixed and every value tagged with its type, so no choice of
 * values can make two different instances share a key (`a="x;b=y"` is not `a="x", b="y"`,
 * and the string "10" is not the integer 10).
 */
import { lengthPrefixed as part, valueKey as valuePart, type AttributeValue } from '../../../attributes';

export function counterKey(instanceName: string, dimensions: ReadonlyMap<string, AttributeValue>): string {
  let key = part(instanceName);
  const names = [...dimensions.keys()].sort();
  for (const name of names) key += part(name) + valuePart(dimensions.get(name)!);
  return key;
}
