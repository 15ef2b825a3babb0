/**
 * The proxy's Check decision cache: exact, bounded, and generation-aware.
 *
 * A Check answer says which attributes the decision read (ReferencedAttributes: each
 * attribute or string-map key, present with its exact value, or absent). The answer holds
 * for every request that agrees on exactly those — so the cache keys an answer by its
 * *signature* (the list of references) and the request's values under it. A lookup tries
 * each signature seen (most recently stored first; real configurations yield a handful)
 * and builds the request's key under it: a request that has an attribute the decision saw
 * absent, or lacks one it saw present, cannot match that signature.
 *
 * Entries honour the answer's valid duration and valid use count, and the cache holds at
 * most `maxEntries`, least recently used evicted first. Recency is refreshed by a hit only
 * once the entry has fallen into the older half of the cache (a hit would otherwise move
 * the entry in the map on every request): an entry used within the last `maxEntries / 2`
 * stores is never evicted before one that was not. Beyond Mixer: each entry carries
 * the server's configuration generation, and once an answer from a newer generation is
 * seen every older entry is dropped, so a policy change applies at the next request
 * rather than when cached answers expire.
 */
import {
  isStringMap,
  lengthPrefixed as part,
  Presence,
  valueKey,
  type Bag,
  type ReferencedAttribute,
} from '../../attributes';

/** Options of {@link DecisionCache}. */
export interface DecisionCacheOptions {
  /** Most answers held. Default 10000. */
  readonly maxEntries?: number;
  /** Milliseconds; default Date.now. Tests move it. */
  readonly now?: () => number;
}

/** What the cache keeps of an answer, besides the answer itself. */
export interface CacheTerms {
  /** Milliseconds the answer may be reused; 0 or less: not cached. */
  readonly validDurationMs: number;
  /** Requests the answer may serve (the first included); 0 or less: not cached. */
  readonly validUseCount: number;
  /** The server's configuration generation that made it; 0 when the server does not say. */
  readonly generation: number;
}

interface Entry<Answer> {
  readonly answer: Answer;
  readonly expiresAtMs: number;
  usesLeft: number;
  readonly generation: number;
  /** When it was (re)inserted, counted in stores and refreshes: its place in the recency order. */
  order: number;
}

/** A signature: the references of one answer, in a canonical order, with an id. */
interface Signature {
  /** The references as text: equal references, equal ids. */
  readonly id: string;
  /** What keys under this signature start with: short, and unique to it in the process. */
  readonly prefix: string;
  readonly references: readonly ReferencedAttribute[];
}

export const DEFAULT_MAX_ENTRIES = 10_000;

/**
 * Signatures made so far, by every cache: a key's prefix is unique in the process, so a key
 * of one cache never meets a key of another (the policy client keys its Checks in flight
 * the same way, and replaces its cache when its size changes).
 */
let signaturesMade = 0;

export class DecisionCache<Answer> {
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Insertion order is recency: a hit moves its entry to the end once it is in the older half. */
  private readonly entries = new Map<string, Entry<Answer>>();
  /** Signatures, most recently stored last (lookups try them from the end), and by id. */
  private readonly signatures: Signature[] = [];
  private readonly signatureById = new Map<string, Signature>();
  private newestGeneration = 0;
  /** Insertions so far (stores and refreshes), for Entry.order. */
  private insertions = 0;
  /** Counters, for the proxy's metrics. */
  readonly stats = { hits: 0, misses: 0, stored: 0, evicted: 0, expired: 0, droppedByGeneration: 0 };

  constructor(options: DecisionCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) {
      throw new RangeError(`maxEntries must be a whole number >= 1, got ${this.maxEntries}`);
    }
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached answer for a request, counting one use of it; undefined on a miss. */
  lookup(bag: Bag): Answer | undefined {
    const nowMs = this.now();
    for (let i = this.signatures.length - 1; i >= 0; i--) {
      const key = keyOf(this.signatures[i] as Signature, bag);
      if (key === undefined) continue;
      const entry = this.entries.get(key);
      if (entry === undefined) continue;
      if (entry.expiresAtMs <= nowMs || entry.generation < this.newestGeneration) {
        this.entries.delete(key);
        this.stats.expired++;
        continue;
      }
      entry.usesLeft--;
      if (entry.usesLeft <= 0) {
        this.entries.delete(key);
      } else if (this.insertions - entry.order > this.maxEntries / 2) {
        // In the older half: moved to the newest end (insertion order is recency).
        this.entries.delete(key);
        entry.order = this.insertions++;
        this.entries.set(key, entry);
      }
      this.stats.hits++;
      return entry.answer;
    }
    this.stats.misses++;
    return undefined;
  }

  /**
   * The key `bag` would have under the most recently stored signature it can match, whether
   * or not an answer is held: requests with the same one would most likely get the same
   * answer, so a caller can let them wait for one Check (then look up again). Undefined when
   * no signature is known yet or none matches.
   */
  likelyKey(bag: Bag): string | undefined {
    for (let i = this.signatures.length - 1; i >= 0; i--) {
      const key = keyOf(this.signatures[i] as Signature, bag);
      if (key !== undefined) return key;
    }
    return undefined;
  }

  /**
   * Keeps `answer`, made for `bag` after reading exactly `references`, on `terms`. An answer
   * from a newer generation first drops every older entry; one from an older generation
   * than already seen is not kept.
   */
  store(bag: Bag, references: readonly ReferencedAttribute[], answer: Answer, terms: CacheTerms): void {
    this.observeGeneration(terms.generation);
    if (terms.generation < this.newestGeneration) return;
    if (terms.validDurationMs <= 0 || terms.validUseCount <= 0) return;
    const signature = this.signatureOf(references);
    const key = keyOf(signature, bag);
    // The request does not agree with what the server says it read: nothing can be keyed.
    if (key === undefined) return;
    this.entries.delete(key);
    this.entries.set(key, {
      answer,
      expiresAtMs: this.now() + terms.validDurationMs,
      usesLeft: terms.validUseCount - 1,
      generation: terms.generation,
      order: this.insertions++,
    });
    this.stats.stored++;
    if (terms.validUseCount === 1) this.entries.delete(key);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.stats.evicted++;
    }
  }

  /** Tells the cache the server now serves `generation`: older answers are dropped. */
  observeGeneration(generation: number): void {
    if (generation <= this.newestGeneration) return;
    this.newestGeneration = generation;
    for (const [key, entry] of this.entries) {
      if (entry.generation < generation) {
        this.entries.delete(key);
        this.stats.droppedByGeneration++;
      }
    }
  }

  clear(): void {
    this.entries.clear();
    this.signatures.length = 0;
    this.signatureById.clear();
  }

  private signatureOf(references: readonly ReferencedAttribute[]): Signature {
    const sorted = [...references].sort(compareReferences);
    const id = sorted
      .map((r) => `${r.presence}${part(r.name)}${r.mapKey === undefined ? '-' : part(r.mapKey)}`)
      .join('');
    let signature = this.signatureById.get(id);
    if (signature === undefined) {
      signature = { id, prefix: `${++signaturesMade}|`, references: sorted };
      this.signatureById.set(id, signature);
    } else {
      this.signatures.splice(this.signatures.indexOf(signature), 1);
    }
    // Most recently stored last: lookups try it first.
    this.signatures.push(signature);
    return signature;
  }
}

function compareReferences(a: ReferencedAttribute, b: ReferencedAttribute): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  const ak = a.mapKey ?? '';
  const bk = b.mapKey ?? '';
  if (ak !== bk) return ak < bk ? -1 : 1;
  return (a.mapKey === undefined ? 0 : 1) - (b.mapKey === undefined ? 0 : 1);
}

/** The request's key under a signature, or undefined when the request cannot match it. */
function keyOf(signature: Signature, bag: Bag): string | undefined {
  let key = signature.prefix;
  for (const reference of signature.references) {
    const value = bag.get(reference.name);
    if (reference.mapKey === undefined) {
      if (reference.presence === Presence.ABSENCE) {
        if (value !== undefined) return undefined;
        key += '|';
      } else {
        if (value === undefined) return undefined;
        key += valueKey(value);
      }
      continue;
    }
    const entry = value !== undefined && isStringMap(value) ? value.get(reference.mapKey) : undefined;
    if (reference.presence === Presence.ABSENCE) {
      if (entry !== undefined) return undefined;
      key += '|';
    } else {
      if (entry === undefined) return undefined;
      key += 's' + part(entry);
    }
  }
  return key;
}
