/**
 * Attribute bags: the attributes of one request, by name.
 *
 * A bag is read by expressions and adapters through {@link Bag.get}. Recording which
 * attributes a decision read costs nothing unless asked for: wrap the bag in a
 * {@link ReferenceRecordingBag} (see references.ts) for the calls whose references matter.
 */
import type { AttributeValue } from './values';

/** Read access to a set of attributes. */
export interface Bag {
  /** The value of the attribute, or undefined when the bag does not have it. */
  get(name: string): AttributeValue | undefined;
  /** Names of the attributes present, in no particular order. */
  names(): Iterable<string>;
}

/** A bag backed by a Map; decoders and tests build these. */
export class AttributeBag implements Bag {
  private readonly values: Map<string, AttributeValue>;

  constructor(entries?: Iterable<readonly [string, AttributeValue]>) {
    this.values = new Map(entries);
  }

  get(name: string): AttributeValue | undefined {
    return this.values.get(name);
  }

  names(): IterableIterator<string> {
    return this.values.keys();
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  get size(): number {
    return this.values.size;
  }

  set(name: string, value: AttributeValue): this {
    this.values.set(name, value);
    return this;
  }

  delete(name: string): boolean {
    return this.values.delete(name);
  }

  entries(): IterableIterator<[string, AttributeValue]> {
    return this.values.entries();
  }

  /** A shallow copy: values are immutable, so sharing them is safe. */
  clone(): AttributeBag {
    return new AttributeBag(this.values);
  }
}
