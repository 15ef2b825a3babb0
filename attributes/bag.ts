/**
 * Attribute bags: the attributes of one request, by name.
 *
 * A bag is read by expressions and adapters through {@link Bag.get}. Recording which
 * attributes a decision read costs nothing unless asked for: wrap the bag in a
 * {@link ReferenceRecordingBag} (see references.ts) for the calls whose references matter.
 */
import { GLOBAL_DICTIONARY, GLOBAL_WORD_INDEX } from './global-dictionary';
import type { AttributeValue } from './values';

/** Read access to a set of attributes. */
export interface Bag {
  /** The value of the attribute, or undefined when the bag does not have it. */
  get(name: string): AttributeValue | undefined;
  /** Names of the attributes present, in no particular order. */
  names(): Iterable<string>;
}

const GLOBAL_WORDS = GLOBAL_DICTIONARY.length;

/**
 * A mutable bag; decoders and tests build these. Attributes whose names are words of the
 * global dictionary (nearly all of them, in practice) live in an array slot of their word
 * index, which a decoder fills without hashing a name; the others live in a Map.
 */
export class AttributeBag implements Bag {
  private readonly global: Array<AttributeValue | undefined>;
  private others: Map<string, AttributeValue> | undefined;
  private count = 0;

  constructor(entries?: Iterable<readonly [string, AttributeValue]>) {
    this.global = new Array<AttributeValue | undefined>(GLOBAL_WORDS);
    if (entries !== undefined) for (const [name, value] of entries) this.set(name, value);
  }

  get(name: string): AttributeValue | undefined {
    const index = GLOBAL_WORD_INDEX.get(name);
    return index !== undefined ? this.global[index] : this.others?.get(name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** How many attributes the bag holds. */
  get size(): number {
    return this.count;
  }

  set(name: string, value: AttributeValue): this {
    const index = GLOBAL_WORD_INDEX.get(name);
    if (index !== undefined) {
      this.setGlobalWord(index, value);
    } else {
      this.others ??= new Map();
      if (!this.others.has(name)) this.count++;
      this.others.set(name, value);
    }
    return this;
  }

  /**
   * The attribute named by global word `index` (0 ≤ index < the dictionary's length), or
   * undefined; for readers that resolved the name to its index once, beforehand.
   */
  getGlobalWord(index: number): AttributeValue | undefined {
    return this.global[index];
  }

  /**
   * Sets the attribute named by global word `index` (0 ≤ index < the dictionary's length),
   * for decoders that already hold the index. Returns false when it replaced a value.
   */
  setGlobalWord(index: number, value: AttributeValue): boolean {
    const fresh = this.global[index] === undefined;
    if (fresh) this.count++;
    this.global[index] = value;
    return fresh;
  }

  delete(name: string): boolean {
    const index = GLOBAL_WORD_INDEX.get(name);
    if (index !== undefined) {
      if (this.global[index] === undefined) return false;
      delete this.global[index];
      this.count--;
      return true;
    }
    const deleted = this.others?.delete(name) ?? false;
    if (deleted) {
      this.count--;
      // No empty Map left behind: two bags of the same attributes have the same shape.
      if (this.others!.size === 0) this.others = undefined;
    }
    return deleted;
  }

  /**
   * The names, as a fresh array in entries() order. A plain loop, not a generator: the Report
   * encoder walks every bag two or three times (delta encoding), and nested generators over
   * the 222 global-word slots cost more than the encoding itself.
   */
  names(): string[] {
    const names: string[] = [];
    const global = this.global;
    for (let i = 0; i < global.length; i++) if (global[i] !== undefined) names.push(GLOBAL_DICTIONARY[i]!);
    if (this.others !== undefined) for (const name of this.others.keys()) names.push(name);
    return names;
  }

  /**
   * For the Report encoder's delta encoding: the names of this bag's attributes that
   * `previous` lacks or holds with another value (`same` compares), in entries() order, and
   * whether `previous` has an attribute this bag lacks. Compares slot by slot, without a
   * name lookup per attribute.
   */
  changesSince(
    previous: AttributeBag,
    same: (a: AttributeValue, b: AttributeValue) => boolean,
  ): { readonly changed: string[]; readonly removesAny: boolean } {
    const changed: string[] = [];
    let removesAny = false;
    const mine = this.global;
    const theirs = previous.global;
    for (let i = 0; i < mine.length; i++) {
      const value = mine[i];
      const before = theirs[i];
      if (value === undefined) {
        if (before !== undefined) removesAny = true;
      } else if (before === undefined || (before !== value && !same(before, value))) {
        changed.push(GLOBAL_DICTIONARY[i]!);
      }
    }
    if (this.others !== undefined) {
      for (const [name, value] of this.others) {
        const before = previous.others?.get(name);
        if (before === undefined || (before !== value && !same(before, value))) changed.push(name);
      }
    }
    if (previous.others !== undefined && !removesAny) {
      for (const name of previous.others.keys()) {
        if (this.others?.has(name) !== true) {
          removesAny = true;
          break;
        }
      }
    }
    return { changed, removesAny };
  }

  /** Every attribute: global words in dictionary order, then the others in insertion order. */
  *entries(): IterableIterator<[string, AttributeValue]> {
    const global = this.global;
    for (let i = 0; i < global.length; i++) {
      const value = global[i];
      if (value !== undefined) yield [GLOBAL_DICTIONARY[i]!, value];
    }
    if (this.others !== undefined) yield* this.others.entries();
  }

  /**
   * Sets every attribute of `other` here, replacing values of the same names: a Report's
   * delta set applied to the bag of the set before it. What `for (const [n, v] of
   * other.entries()) this.set(n, v)` does, slot by slot, without a generator or a name lookup.
   */
  assign(other: AttributeBag): this {
    if (other.count === 0) return this;
    const mine = this.global;
    const theirs = other.global;
    for (let i = 0; i < theirs.length; i++) {
      const value = theirs[i];
      if (value === undefined) continue;
      if (mine[i] === undefined) this.count++;
      mine[i] = value;
    }
    if (other.others !== undefined) for (const [name, value] of other.others) this.set(name, value);
    return this;
  }

  /** A shallow copy: values are immutable, so sharing them is safe. */
  clone(): AttributeBag {
    const copy = new AttributeBag();
    const global = this.global;
    for (let i = 0; i < global.length; i++) if (global[i] !== undefined) copy.global[i] = global[i];
    if (this.others !== undefined) copy.others = new Map(this.others);
    copy.count = this.count;
    return copy;
  }
}
