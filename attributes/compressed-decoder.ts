/**
 * Decodes `istio.mixer.v1.CompressedAttributes` straight from the request bytes into an
 * {@link AttributeBag}, with no intermediate message objects. This is the Check hot path.
 * Sets laid out as every encoder writes them (words, then maps) decode in one pass; any
 * other layout, a repeated name or an error takes a careful path that reads all the words
 * first and decides. Every string is a word looked up by index, so the only strings made
 * per request are the message words.
 *
 * Indices: a non-negative index names a global dictionary word and must be below the
 * request's `global_word_count` (when that is not 0) and the dictionary's length; a
 * negative index n names the message word `words[-n - 1]`.
 *
 * Types: an attribute the manifest knows must arrive in the map of its type (string-like
 * types in `strings`, IP_ADDRESS and BYTES in `bytes`) and gets that type's representation;
 * an attribute it does not know is typed by its map (`bytes` gives a Uint8Array).
 *
 * One attribute name given twice in a message (under two indices, or in two maps) is
 * refused, as Mixer refused it; the same index repeated in one map is protobuf's map
 * semantics and the last entry wins.
 */
import { AttributeBag } from './bag';
import { AttributeDecodeError } from './errors';
import { GLOBAL_DICTIONARY, GLOBAL_WORD_INDEX } from './global-dictionary';
import { FlatStringMap } from './string-map';
import { AttributeManifest, type AttributeFinder } from './manifest';
import { ValueType, valueTypeName } from './value-type';
import { Duration, IpAddress, Timestamp, type AttributeValue } from './values';
import { decodeWords, WireReader, WireType } from './wire-reader';

/** CompressedAttributes field numbers, which are also the codes of the maps. */
const WORDS = 1;
const STRINGS = 2;
const INT64S = 3;
const DOUBLES = 4;
const BOOLS = 5;
const TIMESTAMPS = 6;
const DURATIONS = 7;
const BYTES = 8;
const STRING_MAPS = 9;

const FIELD_NAMES = [
  '',
  'words',
  'strings',
  'int64s',
  'doubles',
  'bools',
  'timestamps',
  'durations',
  'bytes',
  'string_maps',
];

/** Tags (field << 3 | wire type) of the fields the decoder reads. */
const TAG_WORDS = (WORDS << 3) | WireType.LENGTH_DELIMITED;
const TAG_STRINGS = (STRINGS << 3) | WireType.LENGTH_DELIMITED;
const TAG_INT64S = (INT64S << 3) | WireType.LENGTH_DELIMITED;
const TAG_DOUBLES = (DOUBLES << 3) | WireType.LENGTH_DELIMITED;
const TAG_BOOLS = (BOOLS << 3) | WireType.LENGTH_DELIMITED;
const TAG_TIMESTAMPS = (TIMESTAMPS << 3) | WireType.LENGTH_DELIMITED;
const TAG_DURATIONS = (DURATIONS << 3) | WireType.LENGTH_DELIMITED;
const TAG_BYTES = (BYTES << 3) | WireType.LENGTH_DELIMITED;
const TAG_STRING_MAPS = (STRING_MAPS << 3) | WireType.LENGTH_DELIMITED;
/** Map entries: key = 1, value = 2; and the fields of Timestamp, Duration and StringMap. */
const TAG_1_VARINT = (1 << 3) | WireType.VARINT;
const TAG_2_VARINT = (2 << 3) | WireType.VARINT;
const TAG_2_FIXED64 = (2 << 3) | WireType.FIXED64;
const TAG_1_LENGTH = (1 << 3) | WireType.LENGTH_DELIMITED;
const TAG_2_LENGTH = (2 << 3) | WireType.LENGTH_DELIMITED;

/** The map each manifest type must arrive in; 0 for types that say nothing (unspecified). */
const FIELD_OF_TYPE: readonly number[] = (() => {
  const fields: number[] = [];
  fields[ValueType.VALUE_TYPE_UNSPECIFIED] = 0;
  fields[ValueType.STRING] = STRINGS;
  fields[ValueType.EMAIL_ADDRESS] = STRINGS;
  fields[ValueType.URI] = STRINGS;
  fields[ValueType.DNS_NAME] = STRINGS;
  fields[ValueType.INT64] = INT64S;
  fields[ValueType.DOUBLE] = DOUBLES;
  fields[ValueType.BOOL] = BOOLS;
  fields[ValueType.TIMESTAMP] = TIMESTAMPS;
  fields[ValueType.DURATION] = DURATIONS;
  fields[ValueType.IP_ADDRESS] = BYTES;
  fields[ValueType.BYTES] = BYTES;
  fields[ValueType.STRING_MAP] = STRING_MAPS;
  return fields;
})();

/** What an index names, for the message of an out-of-range index. */
const enum IndexRole {
  NAME,
  VALUE,
  MAP_KEY,
  MAP_VALUE,
}

// Limits of google.protobuf.Timestamp (years 1 to 9999) and Duration (±10,000 years).
const MIN_TIMESTAMP_SECONDS = -62135596800;
const MAX_TIMESTAMP_SECONDS = 253402300799;
const MAX_DURATION_SECONDS = 315576000000;
const MAX_NANOS = 999999999;

const TWO_POW_32 = 4294967296;

/**
 * Manifest types of the global words, per manifest: the decoder looks an attribute named by
 * a global word up in an array instead of the manifest's map. Only AttributeManifest is
 * cached, since it is immutable; other finders are asked every time.
 */
const globalWordTypes = new WeakMap<AttributeManifest, Uint8Array>();

function globalWordTypesOf(manifest: AttributeManifest): Uint8Array {
  let types = globalWordTypes.get(manifest);
  if (types === undefined) {
    types = new Uint8Array(GLOBAL_DICTIONARY.length);
    for (let i = 0; i < types.length; i++) {
      types[i] = manifest.find(GLOBAL_DICTIONARY[i]!)?.valueType ?? ValueType.VALUE_TYPE_UNSPECIFIED;
    }
    globalWordTypes.set(manifest, types);
  }
  return types;
}

const NO_WORDS: readonly string[] = Object.freeze([]);
/** The value a set only checked gives every attribute (see {@link CompressedAttributesDecoder.decodeDelta}). */
const CHECKED_ONLY: AttributeValue = true;
const EMPTY_BAG = new AttributeBag();

/**
 * The attributes of one attribute set, decoded but not put in any bag: what a Report's
 * delta set changes. Global-word attributes by index, the others by name, each in the order
 * decoded, every name once. Reused from one set to the next by its decoder.
 */
export class AttributeDelta {
  // Filled up to the counts and overwritten from the start by the next set: resetting an
  // array's length costs a runtime call per array, more than decoding a small delta.
  private readonly globalIndices: number[] = [];
  private readonly globalValues: AttributeValue[] = [];
  private globalCount = 0;
  private readonly otherNames: string[] = [];
  private readonly otherValues: AttributeValue[] = [];
  private otherCount = 0;

  /** How many attributes the set holds. */
  get size(): number {
    return this.globalCount + this.otherCount;
  }

  /** Sets every attribute of the delta in `bag`, replacing values of the same names. */
  applyTo(bag: AttributeBag): AttributeBag {
    const indices = this.globalIndices;
    const values = this.globalValues;
    for (let i = 0; i < this.globalCount; i++) bag.setGlobalWord(indices[i]!, values[i]!);
    for (let i = 0; i < this.otherCount; i++) bag.set(this.otherNames[i]!, this.otherValues[i]!);
    return bag;
  }

  clear(): void {
    this.globalCount = 0;
    this.otherCount = 0;
  }

  /** Adds the attribute of global word `index`; the caller makes sure it is not there yet. */
  addGlobalWord(index: number, value: AttributeValue): void {
    this.globalIndices[this.globalCount] = index;
    this.globalValues[this.globalCount] = value;
    this.globalCount++;
  }

  /** Adds an attribute whose name is not a global word; false, adding nothing, when it is there. */
  addOther(name: string, value: AttributeValue): boolean {
    // Such names are few in a set: a scan finds a repeat.
    for (let i = 0; i < this.otherCount; i++) if (this.otherNames[i] === name) return false;
    this.otherNames[this.otherCount] = name;
    this.otherValues[this.otherCount] = value;
    this.otherCount++;
    return true;
  }

  /** Replaces the contents with the attributes of `bag`. */
  copyFrom(bag: AttributeBag): void {
    this.clear();
    for (const [name, value] of bag.entries()) {
      const index = GLOBAL_WORD_INDEX.get(name);
      if (index === undefined) this.addOther(name, value);
      else this.addGlobalWord(index, value);
    }
  }
}

/**
 * Offsets of the message words of the set being decoded, reused from one decode to the
 * next: decoding is synchronous, so no two decodes ever use it at once.
 */
const wordOffsets: number[] = [];

/**
 * For deltas, shared the same way: stamps[i] === stamp when global word i was given in the
 * set being decoded. A new stamp per set, so the array is never cleared (and, unlike an
 * array per request, never allocated again: one of this size lives outside the heap).
 */
const stamps = new Int32Array(GLOBAL_DICTIONARY.length);
let stamp = 0;

function nextStamp(): void {
  stamp++;
  if (stamp === 0x7fffffff) {
    stamps.fill(0);
    stamp = 1;
  }
}
const MAX_KEPT_OFFSETS = 4096;

/**
 * Decodes the CompressedAttributes messages of one request. One decoder serves every
 * attribute set of a request (a Report has several); it is not reused across requests.
 */
export class CompressedAttributesDecoder {
  private readonly globalTypes: Uint8Array | undefined;
  /** How many global words indices may name. */
  private readonly globalLimit: number;

  // State of the attribute set being decoded.
  private words: readonly string[] = NO_WORDS;
  private usingDefaultWords = false;
  private setIndex = -1;
  /** The bag being filled; EMPTY_BAG between decodes. */
  private bag = EMPTY_BAG;
  /** Set instead of `bag` while {@link decodeDelta} fills it. */
  private delta: AttributeDelta | undefined;
  /**
   * While {@link decodeDelta} only checks a set: every check is made, but no value is made
   * (no timestamp, integer, map or byte copy); the delta gets CHECKED_ONLY for each.
   */
  private checkOnly = false;
  /** Name → where it was first given (field · 2^32 + index); only after a repeated name. */
  private seen: Map<string, number> | undefined;
  /**
   * Extra occurrences of a string map's value message beyond the first (start, end pairs);
   * undefined until a message repeats one, which encoders never do.
   */
  private extraRanges: number[] | undefined;
  /** The last Timestamp or Duration read: seconds as a number, its exact 64 bits (for messages), nanos. */
  private seconds = 0;
  private secondsLo = 0;
  private secondsHi = 0;
  private nanos = 0;

  /**
   * @param reader positioned anywhere; the decoder moves it
   * @param globalWordCount the request's `global_word_count`, already checked against the dictionary
   */
  constructor(
    private readonly reader: WireReader,
    private readonly finder: AttributeFinder,
    private readonly globalWordCount: number,
  ) {
    this.globalTypes = finder instanceof AttributeManifest ? globalWordTypesOf(finder) : undefined;
    this.globalLimit = globalWordCount === 0 ? GLOBAL_DICTIONARY.length : globalWordCount;
  }

  /**
   * Decodes one attribute set: the CompressedAttributes whose bytes are at `ranges` (start,
   * end pairs; several when the field occurred several times, which protobuf merges).
   * @param defaultWords the words to use when the set has none of its own (Report's `default_words`)
   * @param setIndex the set's position in a Report, for messages; -1 for a Check
   */
  decode(
    ranges: readonly number[],
    defaultWords: readonly string[] | undefined,
    setIndex: number,
  ): AttributeBag {
    this.setIndex = setIndex;
    if (ranges.length === 2) {
      try {
        const bag = this.decodeInOnePass(ranges[0]!, ranges[1]!, defaultWords);
        if (bag !== undefined) return bag;
      } catch (e) {
        // The careful decode below meets the same fault, or (when a negative index only
        // looked out of range because more words followed) none; either way it decides.
        if (!(e instanceof AttributeDecodeError)) throw e;
      }
    }
    return this.decodeCarefully(ranges, defaultWords);
  }

  /**
   * Decodes one attribute set as {@link decode} does, with the same checks and errors, into
   * `delta` (cleared first) rather than a new bag: a Report's sets, applied one after the
   * other to one bag, cost no bag each.
   * @param checkOnly make every check (and throw every error) {@link decode} would, but no
   *   value: the delta's values are placeholders, for a set that goes nowhere
   */
  decodeDelta(
    ranges: readonly number[],
    defaultWords: readonly string[] | undefined,
    setIndex: number,
    delta: AttributeDelta,
    checkOnly = false,
  ): void {
    this.setIndex = setIndex;
    delta.clear();
    this.checkOnly = checkOnly;
    try {
      if (ranges.length === 2) {
        this.delta = delta;
        nextStamp();
        try {
          if (this.decodeInOnePass(ranges[0]!, ranges[1]!, defaultWords) !== undefined) return;
        } catch (e) {
          // As in decode: the careful decode below decides.
          if (!(e instanceof AttributeDecodeError)) throw e;
        } finally {
          this.delta = undefined;
        }
      }
      delta.copyFrom(this.decodeCarefully(ranges, defaultWords));
    } finally {
      this.checkOnly = false;
    }
  }

  /**
   * The fast path, for a set laid out as every encoder writes it: all words, then the maps.
   * Undefined when that guess fails (a word after the maps, or a name given twice).
   */
  private decodeInOnePass(
    start: number,
    end: number,
    defaultWords: readonly string[] | undefined,
  ): AttributeBag | undefined {
    const r = this.reader;
    const offsets = wordOffsets;
    let count = 0;
    r.pos = start;
    r.limit = end;
    let mapsStart = end;
    while (r.pos < end) {
      const tagStart = r.pos;
      if (r.readTag() !== TAG_WORDS) {
        mapsStart = tagStart;
        break;
      }
      const wordEnd = r.readLength();
      offsets[2 * count] = r.pos;
      offsets[2 * count + 1] = wordEnd;
      count++;
      r.pos = wordEnd;
    }
    this.useWords(offsets, count, defaultWords);
    this.seen = undefined;
    // Filling a delta, the bag stays EMPTY_BAG (returned to say the set is complete).
    const bag = this.delta === undefined ? new AttributeBag() : EMPTY_BAG;
    const complete = this.decodeMaps(mapsStart, end, bag, false);
    this.bag = EMPTY_BAG;
    return complete ? bag : undefined;
  }

  /**
   * The general path: words from anywhere in the set's ranges first, then the maps; and
   * when a name repeats, again with `seen` kept, to tell a repeated map entry (allowed)
   * from the same attribute given twice (refused).
   */
  private decodeCarefully(
    ranges: readonly number[],
    defaultWords: readonly string[] | undefined,
  ): AttributeBag {
    const r = this.reader;
    const offsets = wordOffsets;
    let count = 0;
    for (let i = 0; i < ranges.length; i += 2) {
      r.pos = ranges[i]!;
      r.limit = ranges[i + 1]!;
      while (r.pos < r.limit) {
        const tag = r.readTag();
        if (tag === TAG_WORDS) {
          const wordEnd = r.readLength();
          offsets[2 * count] = r.pos;
          offsets[2 * count + 1] = wordEnd;
          count++;
          r.pos = wordEnd;
        } else {
          if (tag >>> 3 === WORDS) {
            throw r.wrongWireType(tag, WireType.LENGTH_DELIMITED, 'CompressedAttributes.words');
          }
          r.skip(tag);
        }
      }
    }
    this.useWords(offsets, count, defaultWords);
    try {
      for (let attempt = 0; ; attempt++) {
        this.seen = attempt === 0 ? undefined : new Map();
        const bag = new AttributeBag();
        let complete = true;
        for (let i = 0; i < ranges.length && complete; i += 2) {
          complete = this.decodeMaps(ranges[i]!, ranges[i + 1]!, bag, true);
        }
        if (complete) return bag;
      }
    } finally {
      this.seen = undefined;
      this.bag = EMPTY_BAG;
    }
  }

  private useWords(offsets: number[], count: number, defaultWords: readonly string[] | undefined): void {
    if (count > 0) {
      this.words = decodeWords(this.reader.buf, offsets, count);
      this.usingDefaultWords = false;
      // One huge request must not leave a huge scratch array behind.
      if (offsets.length > MAX_KEPT_OFFSETS) offsets.length = 0;
    } else {
      this.words = defaultWords ?? NO_WORDS;
      this.usingDefaultWords = defaultWords !== undefined;
    }
  }

  /**
   * Decodes the typed maps in [start, end) into `bag`. False when a name repeated and
   * `seen` was not kept, or when a words field turns up and `wordsRead` is false.
   */
  private decodeMaps(start: number, end: number, bag: AttributeBag, wordsRead: boolean): boolean {
    const r = this.reader;
    this.bag = bag;
    r.pos = start;
    r.limit = end;
    while (r.pos < end) {
      const tag = r.readTag();
      let fresh = true;
      switch (tag) {
        case TAG_STRINGS:
          fresh = this.decodeStringEntry();
          break;
        case TAG_INT64S:
          fresh = this.decodeInt64Entry();
          break;
        case TAG_DOUBLES:
          fresh = this.decodeDoubleEntry();
          break;
        case TAG_BOOLS:
          fresh = this.decodeBoolEntry();
          break;
        case TAG_TIMESTAMPS:
          fresh = this.decodeTimestampEntry();
          break;
        case TAG_DURATIONS:
          fresh = this.decodeDurationEntry();
          break;
        case TAG_BYTES:
          fresh = this.decodeBytesEntry();
          break;
        case TAG_STRING_MAPS:
          fresh = this.decodeStringMapEntry();
          break;
        case TAG_WORDS:
          if (!wordsRead) return false;
          r.pos = r.readLength();
          break;
        default: {
          const field = tag >>> 3;
          if (field >= WORDS && field <= STRING_MAPS) {
            throw r.wrongWireType(
              tag,
              WireType.LENGTH_DELIMITED,
              `CompressedAttributes.${FIELD_NAMES[field]}`,
            );
          }
          r.skip(tag);
        }
      }
      if (!fresh) return false;
    }
    return true;
  }

  private decodeStringEntry(): boolean {
    const r = this.reader;
    const end = r.readLength();
    const outer = r.limit;
    r.limit = end;
    let key = 0;
    let value = 0;
    while (r.pos < end) {
      const tag = r.readTag();
      if (tag === TAG_1_VARINT) key = r.readSint32();
      else if (tag === TAG_2_VARINT) value = r.readSint32();
      else this.skipEntryField(tag, STRINGS, WireType.VARINT, WireType.VARINT);
    }
    r.limit = outer;
    const name = this.word(key, IndexRole.NAME, '', '');
    this.checkType(key, name, STRINGS);
    return this.insert(name, this.word(value, IndexRole.VALUE, name, ''), STRINGS, key);
  }

  private decodeInt64Entry(): boolean {
    const r = this.reader;
    const end = r.readLength();
    const outer = r.limit;
    r.limit = end;
    let key = 0;
    let value = 0n;
    const checkOnly = this.checkOnly;
    while (r.pos < end) {
      const tag = r.readTag();
      if (tag === TAG_1_VARINT) key = r.readSint32();
      else if (tag === TAG_2_VARINT) {
        // Checking only, the varint is read (it may be malformed) but no BigInt is made.
        if (checkOnly) r.readVarint64();
        else value = r.readInt64();
      } else this.skipEntryField(tag, INT64S, WireType.VARINT, WireType.VARINT);
    }
    r.limit = outer;
    const name = this.word(key, IndexRole.NAME, '', '');
    this.checkType(key, name, INT64S);
    return this.insert(name, checkOnly ? CHECKED_ONLY : value, INT64S, key);
  }

  private decodeDoubleEntry(): boolean {
    const r = this.reader;
    const end = r.readLength();
    const outer = r.limit;
    r.limit = end;
    let key = 0;
    let value = 0;
    while (r.pos < end) {
      const tag = r.readTag();
      if (tag === TAG_1_VARINT) key = r.readSint32();
      else if (tag === TAG_2_FIXED64) value = r.readDouble();
      else this.skipEntryField(tag, DOUBLES, WireType.VARINT, WireType.FIXED64);
    }
    r.limit = outer;
    const name = this.word(key, IndexRole.NAME, '', '');
    this.checkType(key, name, DOUBLES);
    return this.insert(name, value, DOUBLES, key);
  }

  private decodeBoolEntry(): boolean {
    const r = this.reader;
    const end = r.readLength();
    const outer = r.limit;
    r.limit = end;
    let key = 0;
    let value = false;
    while (r.pos < end) {
      const tag = r.readTag();
      if (tag === TAG_1_VARINT) key = r.readSint32();
      else if (tag === TAG_2_VARINT) value = r.readBool();
      else this.skipEntryField(tag, BOOLS, WireType.VARINT, WireType.VARINT);
    }
    r.limit = outer;
    const name = this.word(key, IndexRole.NAME, '', '');
    this.checkType(key, name, BOOLS);
    return this.insert(name, value, BOOLS, key);
  }

  private decodeTimestampEntry(): boolean {
    const key = this.readSecondsNanosEntry(TIMESTAMPS, 'Timestamp');
    const { seconds, nanos } = this;
    const name = this.word(key, IndexRole.NAME, '', '');
    this.checkType(key, name, TIMESTAMPS);
    if (seconds < MIN_TIMESTAMP_SECONDS || seconds > MAX_TIMESTAMP_SECONDS) {
      throw this.invalid(
        `attribute ${name} has a timestamp of ${int64Text(this.secondsLo, this.secondsHi)} seconds: ` +
          `expected ${MIN_TIMESTAMP_SECONDS} to ${MAX_TIMESTAMP_SECONDS} (years 1 to 9999)`,
      );
    }
    if (nanos < 0 || nanos > MAX_NANOS) {
      throw this.invalid(`attribute ${name} has a timestamp with nanos ${nanos}: expected 0 to ${MAX_NANOS}`);
    }
    return this.insert(name, this.checkOnly ? CHECKED_ONLY : new Timestamp(seconds, nanos), TIMESTAMPS, key);
  }

  private decodeDurationEntry(): boolean {
    const key = this.readSecondsNanosEntry(DURATIONS, 'Duration');
    const { seconds, nanos } = this;
    const name = this.word(key, IndexRole.NAME, '', '');
    this.checkType(key, name, DURATIONS);
    if (seconds < -MAX_DURATION_SECONDS || seconds > MAX_DURATION_SECONDS) {
      throw this.invalid(
        `attribute ${name} has a duration of ${int64Text(this.secondsLo, this.secondsHi)} seconds: ` +
          `expected at most ${MAX_DURATION_SECONDS} (10,000 years) either way`,
      );
    }
    if (nanos < -MAX_NANOS || nanos > MAX_NANOS) {
      throw this.invalid(
        `attribute ${name} has a duration with nanos ${nanos}: expected ${-MAX_NANOS} to ${MAX_NANOS}`,
      );
    }
    if ((seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) {
      throw this.invalid(
        `attribute ${name} has a duration of ${seconds} seconds and ${nanos} nanos: their signs differ`,
      );
    }
    return this.insert(name, this.checkOnly ? CHECKED_ONLY : new Duration(seconds, nanos), DURATIONS, key);
  }

  /**
   * Reads one map entry whose value is a Timestamp or a Duration (both `seconds`, `nanos`)
   * into the fields below, without allocating; returns the entry's key.
   */
  private readSecondsNanosEntry(field: number, message: string): number {
    const r = this.reader;
    const end = r.readLength();
    const outer = r.limit;
    r.limit = end;
    let key = 0;
    this.seconds = 0;
    this.secondsLo = 0;
    this.secondsHi = 0;
    this.nanos = 0;
    while (r.pos < end) {
      const tag = r.readTag();
      if (tag === TAG_1_VARINT) {
        key = r.readSint32();
      } else if (tag === TAG_2_LENGTH) {
        // A value given twice merges field by field, which these fields do by themselves.
        const valueEnd = r.readLength();
        r.limit = valueEnd;
        while (r.pos < valueEnd) {
          const inner = r.readTag();
          if (inner === TAG_1_VARINT) {
            this.seconds = r.readInt64AsNumber();
            this.secondsLo = r.lo;
            this.secondsHi = r.hi;
          } else if (inner === TAG_2_VARINT) {
            this.nanos = r.readInt32();
          } else {
            this.skipSecondsNanosField(inner, message);
          }
        }
        r.limit = end;
      } else {
        this.skipEntryField(tag, field, WireType.VARINT, WireType.LENGTH_DELIMITED);
      }
    }
    r.limit = outer;
    return key;
  }

  private decodeBytesEntry(): boolean {
    const r = this.reader;
    const end = r.readLength();
    const outer = r.limit;
    r.limit = end;
    let key = 0;
    let valueStart = 0;
    let valueEnd = 0;
    while (r.pos < end) {
      const tag = r.readTag();
      if (tag === TAG_1_VARINT) {
        key = r.readSint32();
      } else if (tag === TAG_2_LENGTH) {
        valueEnd = r.readLength();
        valueStart = r.pos;
        r.pos = valueEnd;
      } else {
        this.skipEntryField(tag, BYTES, WireType.VARINT, WireType.LENGTH_DELIMITED);
      }
    }
    r.limit = outer;
    const name = this.word(key, IndexRole.NAME, '', '');
    const type = this.checkType(key, name, BYTES);
    const length = valueEnd - valueStart;
    if (type === ValueType.IP_ADDRESS && length !== 4 && length !== 16) {
      throw this.invalid(`attribute ${name} is an IP address of ${length} bytes: expected 4 or 16`);
    }
    if (this.checkOnly) return this.insert(name, CHECKED_ONLY, BYTES, key);
    // A copy: the request's buffer must not be kept alive by, or changed under, the bag.
    // Values are short (IP addresses), and a loop is cheaper than a view and a copy of it.
    const bytes = new Uint8Array(length);
    const buf = r.buf;
    for (let i = 0; i < length; i++) bytes[i] = buf[valueStart + i]!;
    return this.insert(name, type === ValueType.IP_ADDRESS ? new IpAddress(bytes) : bytes, BYTES, key);
  }

  private decodeStringMapEntry(): boolean {
    const r = this.reader;
    const end = r.readLength();
    const outer = r.limit;
    r.limit = end;
    let key = 0;
    // The value's bytes; decoded once the name is known, since messages name the map.
    let valueStart = 0;
    let valueEnd = 0;
    let extra: number[] | undefined;
    while (r.pos < end) {
      const tag = r.readTag();
      if (tag === TAG_1_VARINT) {
        key = r.readSint32();
      } else if (tag === TAG_2_LENGTH) {
        const stop = r.readLength();
        if (valueEnd !== 0) {
          if (extra === undefined) {
            extra = this.extraRanges ??= [];
            extra.length = 0;
          }
          extra.push(valueStart, valueEnd);
        }
        valueStart = r.pos;
        valueEnd = stop;
        r.pos = stop;
      } else {
        this.skipEntryField(tag, STRING_MAPS, WireType.VARINT, WireType.LENGTH_DELIMITED);
      }
    }
    const name = this.word(key, IndexRole.NAME, '', '');
    this.checkType(key, name, STRING_MAPS);
    // Checking only, the entries' indices are checked but not kept.
    const pairs: string[] | undefined = this.checkOnly ? undefined : [];
    // A value message given more than once merges: its entries accumulate.
    if (extra !== undefined) {
      for (let i = 0; i < extra.length; i += 2) this.decodeStringMap(extra[i]!, extra[i + 1]!, name, pairs);
    }
    if (valueEnd !== 0) this.decodeStringMap(valueStart, valueEnd, name, pairs);
    r.pos = end;
    r.limit = outer;
    return this.insert(name, pairs === undefined ? CHECKED_ONLY : new FlatStringMap(pairs), STRING_MAPS, key);
  }

  /** Decodes a StringMap message at [start, end), appending its keys and values to `pairs` (when given). */
  private decodeStringMap(start: number, end: number, name: string, pairs: string[] | undefined): void {
    const r = this.reader;
    r.pos = start;
    r.limit = end;
    while (r.pos < end) {
      const tag = r.readTag();
      if (tag !== TAG_1_LENGTH) {
        if (tag >>> 3 === 1) throw r.wrongWireType(tag, WireType.LENGTH_DELIMITED, 'StringMap.entries');
        r.skip(tag);
        continue;
      }
      const entryEnd = r.readLength();
      r.limit = entryEnd;
      let k = 0;
      let v = 0;
      while (r.pos < entryEnd) {
        const inner = r.readTag();
        if (inner === TAG_1_VARINT) k = r.readSint32();
        else if (inner === TAG_2_VARINT) v = r.readSint32();
        else if (inner >>> 3 === 1)
          throw r.wrongWireType(inner, WireType.VARINT, 'StringMap.EntriesEntry.key');
        else if (inner >>> 3 === 2)
          throw r.wrongWireType(inner, WireType.VARINT, 'StringMap.EntriesEntry.value');
        else r.skip(inner);
      }
      r.limit = end;
      const mapKey = this.word(k, IndexRole.MAP_KEY, name, '');
      const mapValue = this.word(v, IndexRole.MAP_VALUE, name, mapKey);
      if (pairs !== undefined) pairs.push(mapKey, mapValue);
    }
  }

  /** The word an index names, or an error naming what the index was for. */
  private word(index: number, role: IndexRole, name: string, mapKey: string): string {
    if (index < 0) {
      const slot = -index - 1;
      if (slot < this.words.length) return this.words[slot]!;
    } else if (index < this.globalLimit) {
      return GLOBAL_DICTIONARY[index]!;
    }
    throw this.indexOutOfRange(index, role, name, mapKey);
  }

  /** Throws unless a known attribute arrived in the map of its type; returns its manifest type (0 if unknown). */
  private checkType(index: number, name: string, field: number): ValueType {
    const type: ValueType =
      index >= 0 && this.globalTypes !== undefined
        ? this.globalTypes[index]!
        : (this.finder.find(name)?.valueType ?? ValueType.VALUE_TYPE_UNSPECIFIED);
    const expected = FIELD_OF_TYPE[type];
    if (expected !== field && expected !== 0 && expected !== undefined) {
      throw this.error(
        'TYPE_MISMATCH',
        `attribute ${name} is declared ${valueTypeName(type)} but arrived in ${FIELD_NAMES[field]}`,
      );
    }
    return type;
  }

  /**
   * Puts an attribute in the bag. Returns false, the first time a name repeats, so that the
   * set is decoded again with `seen` kept; with `seen`, throws on a real duplicate.
   */
  private insert(name: string, value: AttributeValue, field: number, index: number): boolean {
    const bag = this.bag;
    const seen = this.seen;
    if (this.delta !== undefined) return this.insertInDelta(this.delta, name, value, index);
    if (seen === undefined) {
      if (index >= 0) return bag.setGlobalWord(index, value);
      const size = bag.size;
      bag.set(name, value);
      return bag.size !== size;
    }
    const origin = field * TWO_POW_32 + (index >>> 0);
    const earlier = seen.get(name);
    if (earlier !== undefined && earlier !== origin) {
      const earlierField = Math.floor(earlier / TWO_POW_32);
      const earlierIndex = (earlier % TWO_POW_32) | 0;
      throw this.error(
        'MALFORMED',
        `attribute ${name} is given twice: as ${FIELD_NAMES[earlierField]}[${earlierIndex}] and as ${FIELD_NAMES[field]}[${index}]`,
      );
    }
    seen.set(name, origin);
    bag.set(name, value);
    return true;
  }

  /** As {@link insert} without `seen`, into a delta: false when the name was given before in this set. */
  private insertInDelta(delta: AttributeDelta, name: string, value: AttributeValue, index: number): boolean {
    const global = index >= 0 ? index : GLOBAL_WORD_INDEX.get(name);
    if (global !== undefined) {
      if (stamps[global] === stamp) return false;
      stamps[global] = stamp;
      delta.addGlobalWord(global, value);
      return true;
    }
    return delta.addOther(name, value);
  }

  /** Skips an unknown field of a map entry; a key or value of the wrong wire type is malformed. */
  private skipEntryField(tag: number, field: number, keyType: WireType, valueType: WireType): void {
    const number = tag >>> 3;
    const entry = `CompressedAttributes.${FIELD_NAMES[field]}`;
    if (number === 1) throw this.reader.wrongWireType(tag, keyType, `${entry} key`);
    if (number === 2) throw this.reader.wrongWireType(tag, valueType, `${entry} value`);
    this.reader.skip(tag);
  }

  private skipSecondsNanosField(tag: number, message: string): void {
    const number = tag >>> 3;
    if (number === 1) throw this.reader.wrongWireType(tag, WireType.VARINT, `${message}.seconds`);
    if (number === 2) throw this.reader.wrongWireType(tag, WireType.VARINT, `${message}.nanos`);
    this.reader.skip(tag);
  }

  private indexOutOfRange(
    index: number,
    role: IndexRole,
    name: string,
    mapKey: string,
  ): AttributeDecodeError {
    let what: string;
    switch (role) {
      case IndexRole.NAME:
        what = `attribute index ${index}`;
        break;
      case IndexRole.VALUE:
        what = `value index ${index} of attribute ${name}`;
        break;
      case IndexRole.MAP_KEY:
        what = `key index ${index} in string map ${name}`;
        break;
      default:
        what = `value index ${index} of key ${mapKey} in string map ${name}`;
    }
    let available: string;
    if (index < 0) {
      const n = this.words.length;
      available = this.usingDefaultWords
        ? `the request has ${n} default ${n === 1 ? 'word' : 'words'}`
        : `the message has ${n} ${n === 1 ? 'word' : 'words'}`;
    } else if (this.globalWordCount !== 0) {
      available = `the request uses ${this.globalWordCount} global ${this.globalWordCount === 1 ? 'word' : 'words'}`;
    } else {
      available = `the global dictionary has ${GLOBAL_DICTIONARY.length} words`;
    }
    return this.error('WORD_INDEX_OUT_OF_RANGE', `${what} is out of range: ${available}`);
  }

  private invalid(message: string): AttributeDecodeError {
    return this.error('INVALID_VALUE', message);
  }

  private error(code: AttributeDecodeError['code'], message: string): AttributeDecodeError {
    return new AttributeDecodeError(
      code,
      this.setIndex < 0 ? message : `attribute set ${this.setIndex}: ${message}`,
    );
  }
}

/** The signed 64-bit integer with these unsigned halves, as decimal text. */
function int64Text(lo: number, hi: number): string {
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
}
