/**
 * String maps as the decoder makes them: the entries in one flat array, looked up by
 * scanning it. A Check carries a dozen request headers and its rules read one or two of
 * them, so building a hash map for every request would cost more than the reads it
 * speeds up. The first whole-map use (iteration, size) builds a Map once.
 */
import type { StringMap } from './values';

/** Beyond this many entries a lookup builds the Map instead of scanning. */
const MAX_SCANNED_ENTRIES = 24;

export class FlatStringMap implements StringMap {
  private map: Map<string, string> | undefined;
  /** Whether no key repeats: then the pairs are the map's entries, in its order. */
  private distinct: boolean | undefined;

  /**
   * @param pairs keys and values alternating, in wire order; a key given again overrides
   *   the earlier one (protobuf map semantics). The map takes ownership of the array.
   */
  constructor(private readonly pairs: string[]) {}

  get(key: string): string | undefined {
    const pairs = this.pairs;
    if (this.map === undefined && pairs.length <= 2 * MAX_SCANNED_ENTRIES) {
      for (let i = pairs.length - 2; i >= 0; i -= 2) if (pairs[i] === key) return pairs[i + 1];
      return undefined;
    }
    return this.toMap().get(key);
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  get size(): number {
    return this.toMap().size;
  }

  forEach(callback: (value: string, key: string, map: ReadonlyMap<string, string>) => void): void {
    this.toMap().forEach((value, key) => callback(value, key, this));
  }

  entries(): MapIterator<[string, string]> {
    return this.toMap().entries();
  }

  keys(): MapIterator<string> {
    return this.toMap().keys();
  }

  values(): MapIterator<string> {
    return this.toMap().values();
  }

  [Symbol.iterator](): MapIterator<[string, string]> {
    return this.toMap()[Symbol.iterator]();
  }

  /**
   * Keys and values alternating, in the map's order, when no key repeats (undefined when
   * one does): encoders and comparisons walk these without building the Map.
   */
  distinctPairs(): readonly string[] | undefined {
    if (this.distinct === undefined) {
      const pairs = this.pairs;
      if (pairs.length > 2 * MAX_SCANNED_ENTRIES) {
        this.distinct = this.toMap().size * 2 === pairs.length;
      } else {
        let distinct = true;
        for (let i = 2; i < pairs.length && distinct; i += 2) {
          for (let j = 0; j < i; j += 2) {
            if (pairs[i] === pairs[j]) {
              distinct = false;
              break;
            }
          }
        }
        this.distinct = distinct;
      }
    }
    return this.distinct ? this.pairs : undefined;
  }

  private toMap(): Map<string, string> {
    if (this.map === undefined) {
      const map = new Map<string, string>();
      const pairs = this.pairs;
      for (let i = 0; i < pairs.length; i += 2) map.set(pairs[i]!, pairs[i + 1]!);
      this.map = map;
    }
    return this.map;
  }
}
