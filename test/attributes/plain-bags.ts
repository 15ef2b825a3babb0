/**
 * Decoded string maps are FlatStringMaps, not Map instances; for deep equality in tests
 * this turns every string map inside bags (and arrays of bags) into a plain Map.
 */
import { AttributeBag, isStringMap } from '../../attributes';

export function plain<T>(value: T): T {
  if (Array.isArray(value)) return value.map(plain) as T;
  if (value instanceof AttributeBag) {
    return new AttributeBag(
      [...value.entries()].map(([name, v]) => [
        name,
        isStringMap(v) && !(v instanceof Map) ? new Map(v.entries()) : v,
      ]),
    ) as T;
  }
  return value;
}
