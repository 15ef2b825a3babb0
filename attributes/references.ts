/**
 * Referenced attributes: which attributes (and string-map keys) a decision read, and
 * whether each was present. The proxy keys its decision cache on exactly these
 * (ReferencedAttributes in the Check response), so recording must be complete.
 */
import type { Bag } from './bag';
import { isStringMap, type AttributeValue, type StringMap } from './values';

/** How a referenced attribute constrains the cache key; numbers as ReferencedAttributes.Condition. */
export enum Presence {
  /** The attribute (or key) was looked up and was absent. */
  ABSENCE = 1,
  /** The attribute (or key) was read; the decision holds for its exact value. */
  EXACT = 2,
}

/** One referenced attribute, or one referenced key of a string map when mapKey is set. */
export interface ReferencedAttribute {
  readonly name: string;
  readonly mapKey?: string;
  readonly presence: Presence;
}

/** The set of attributes and map keys read through a {@link ReferenceRecordingBag}. */
export class ReferencedAttributes {
  private readonly attributes = new Map<string, Presence>();
  private readonly mapKeys = new Map<string, Map<string, Presence>>();

  recordAttribute(name: string, presence: Presence): void {
    this.attributes.set(name, presence);
  }

  recordMapKey(name: string, key: string, presence: Presence): void {
    let keys = this.mapKeys.get(name);
    if (keys === undefined) {
      keys = new Map();
      this.mapKeys.set(name, keys);
    }
    keys.set(key, presence);
  }

  /**
   * The attributes read, by name, in the order first read: the first part of {@link list},
   * without an object per reference, for the response encoder. Read only.
   */
  get attributePresences(): ReadonlyMap<string, Presence> {
    return this.attributes;
  }

  /** The string-map keys read, by attribute then key: the rest of {@link list}. Read only. */
  get mapKeyPresences(): ReadonlyMap<string, ReadonlyMap<string, Presence>> {
    return this.mapKeys;
  }

  /** Every reference: attributes first, then map keys. */
  list(): ReferencedAttribute[] {
    const out: ReferencedAttribute[] = [];
    for (const [name, presence] of this.attributes) out.push({ name, presence });
    for (const [name, keys] of this.mapKeys) {
      for (const [mapKey, presence] of keys) out.push({ name, mapKey, presence });
    }
    return out;
  }

  /**
   * Sorted compact form, as Mixer's expression tests write it: `name`, `-name` for an
   * absent attribute, `name[key]` and `-name[key]` for string-map keys.
   */
  toStrings(): string[] {
    return this.list()
      .map(
        (r) =>
          (r.presence === Presence.ABSENCE ? '-' : '') +
          r.name +
          (r.mapKey === undefined ? '' : `[${r.mapKey}]`),
      )
      .sort();
  }

  clear(): void {
    this.attributes.clear();
    this.mapKeys.clear();
  }

  get size(): number {
    let n = this.attributes.size;
    for (const keys of this.mapKeys.values()) n += keys.size;
    return n;
  }
}

/**
 * A view of a bag that records every attribute and string-map key read through it.
 *
 * A present string map is not recorded as a whole when it is fetched, only the keys
 * then looked up in it — as Mixer's server bag did, and as the proxies expect: their
 * cache reads a referenced map without a key as a lookup of key index 0. When a map is
 * used whole (iterated, sized), each of its keys is recorded as EXACT; keys it lacks are
 * not, which the wire format cannot express.
 */
export class ReferenceRecordingBag implements Bag {
  constructor(
    private readonly inner: Bag,
    readonly references: ReferencedAttributes = new ReferencedAttributes(),
  ) {}

  get(name: string): AttributeValue | undefined {
    const value = this.inner.get(name);
    if (value === undefined) {
      this.references.recordAttribute(name, Presence.ABSENCE);
      return undefined;
    }
    if (isStringMap(value)) return new RecordingStringMap(name, value, this.references);
    this.references.recordAttribute(name, Presence.EXACT);
    return value;
  }

  names(): Iterable<string> {
    return this.inner.names();
  }
}

/** A string map whose key lookups are recorded as references of its attribute. */
class RecordingStringMap implements StringMap {
  constructor(
    private readonly name: string,
    private readonly inner: StringMap,
    private readonly references: ReferencedAttributes,
  ) {}

  get(key: string): string | undefined {
    const value = this.inner.get(key);
    this.references.recordMapKey(this.name, key, value === undefined ? Presence.ABSENCE : Presence.EXACT);
    return value;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** The map is used whole: every key it has becomes part of the decision. */
  private recordWhole(): void {
    for (const key of this.inner.keys()) this.references.recordMapKey(this.name, key, Presence.EXACT);
  }

  get size(): number {
    this.recordWhole();
    return this.inner.size;
  }

  forEach(callback: (value: string, key: string, map: ReadonlyMap<string, string>) => void): void {
    this.recordWhole();
    this.inner.forEach((value, key) => callback(value, key, this));
  }

  entries(): MapIterator<[string, string]> {
    this.recordWhole();
    return this.inner.entries();
  }

  keys(): MapIterator<string> {
    this.recordWhole();
    return this.inner.keys();
  }

  values(): MapIterator<string> {
    this.recordWhole();
    return this.inner.values();
  }

  [Symbol.iterator](): MapIterator<[string, string]> {
    this.recordWhole();
    return this.inner[Symbol.iterator]();
  }
}
