/**
 * Encodes attribute bags as `istio.mixer.v1.CompressedAttributes`, the proxy's side of the
 * wire codec: every string becomes an index, into the global dictionary when the word is
 * among the first `globalWordCount` words of it, otherwise into the message's own words.
 */
import { WireType } from '@bufbuild/protobuf/wire';
import type { Bag } from './bag';
import { GLOBAL_DICTIONARY, GLOBAL_WORD_INDEX } from './global-dictionary';
import type { ProtoWriter } from './proto-writer';
import {
  bytesEqual,
  Duration,
  IpAddress,
  isStringMap,
  pairsOf,
  stringMapsEqual,
  Timestamp,
  type AttributeValue,
  type StringMap,
} from './values';

/** CompressedAttributes field numbers of the typed maps. */
export const enum WireField {
  STRINGS = 2,
  INT64S = 3,
  DOUBLES = 4,
  BOOLS = 5,
  TIMESTAMPS = 6,
  DURATIONS = 7,
  BYTES = 8,
  STRING_MAPS = 9,
}

/**
 * The word list being built for one message: assigns each word its index, global when
 * allowed, else the next message word (-1 for the first, -2 for the second, …).
 */
export class MessageWords {
  readonly words: string[] = [];
  private readonly indices = new Map<string, number>();

  /** @param globalWordCount how many global words may be used (0 to the dictionary's length) */
  constructor(private readonly globalWordCount: number) {}

  index(word: string): number {
    const global = GLOBAL_WORD_INDEX.get(word);
    if (global !== undefined && global < this.globalWordCount) return global;
    return this.messageIndex(word);
  }

  /** As {@link index}, for a word whose global index (or its absence) the caller looked up once. */
  indexKnown(word: string, global: number | undefined): number {
    if (global !== undefined && global < this.globalWordCount) return global;
    return this.messageIndex(word);
  }

  /**
   * As {@link index}, but never 0. ReferencedAttributes leaves `map_key` 0 for "no map key",
   * so a key that is global word 0 goes to the message words instead.
   */
  nonZeroIndex(word: string): number {
    const index = this.index(word);
    return index === 0 ? this.messageIndex(word) : index;
  }

  private messageIndex(word: string): number {
    let index = this.indices.get(word);
    if (index === undefined) {
      this.words.push(word);
      index = -this.words.length;
      this.indices.set(word, index);
    }
    return index;
  }
}

/**
 * The global word count an encoder uses: the option, checked, or the whole dictionary.
 * @throws RangeError when the option is not an integer from 0 to the dictionary's length
 */
export function resolveGlobalWordCount(option: number | undefined): number {
  if (option === undefined) return GLOBAL_DICTIONARY.length;
  if (!Number.isInteger(option) || option < 0 || option > GLOBAL_DICTIONARY.length) {
    throw new RangeError(
      `EncodeOptions.globalWordCount must be an integer from 0 to ${GLOBAL_DICTIONARY.length}, got ${option}`,
    );
  }
  return option;
}

/** The map a value travels in, by its runtime representation. */
export function wireFieldOf(name: string, value: AttributeValue): WireField {
  switch (typeof value) {
    case 'string':
      return WireField.STRINGS;
    case 'bigint':
      if (BigInt.asIntN(64, value) !== value) {
        throw new RangeError(`attribute ${name}: ${value} does not fit in a signed 64-bit integer`);
      }
      return WireField.INT64S;
    case 'number':
      return WireField.DOUBLES;
    case 'boolean':
      return WireField.BOOLS;
  }
  if (value instanceof Timestamp) return WireField.TIMESTAMPS;
  if (value instanceof Duration) return WireField.DURATIONS;
  if (value instanceof IpAddress || value instanceof Uint8Array) return WireField.BYTES;
  if (isStringMap(value)) return WireField.STRING_MAPS;
  throw new TypeError(`attribute ${name}: a value of this kind cannot be encoded: ${String(value)}`);
}

/**
 * Whether two values encode identically (so a delta-encoded report may leave the second
 * out). A number is compared with Object.is, so NaN equals NaN and 0 differs from -0, as
 * their encodings do.
 */
export function sameWireValue(a: AttributeValue, b: AttributeValue): boolean {
  if (typeof a !== 'object' || typeof b !== 'object') return Object.is(a, b);
  if (a instanceof Timestamp) return b instanceof Timestamp && a.seconds === b.seconds && a.nanos === b.nanos;
  if (a instanceof Duration) return b instanceof Duration && a.seconds === b.seconds && a.nanos === b.nanos;
  const aBytes = bytesOf(a);
  const bBytes = bytesOf(b);
  if (aBytes !== undefined || bBytes !== undefined) {
    return aBytes !== undefined && bBytes !== undefined && bytesEqual(aBytes, bBytes);
  }
  if (isStringMap(a) && isStringMap(b)) {
    return stringMapsEqual(a, b);
  }
  return false;
}

function bytesOf(value: object): Uint8Array | undefined {
  if (value instanceof IpAddress) return value.bytes;
  if (value instanceof Uint8Array) return value;
  return undefined;
}

/**
 * Writes the fields of one CompressedAttributes message, for the named attributes of the
 * bag, to `writer`, words first when `withWords` (a Report's sets leave theirs to
 * `default_words`). Names absent from the bag are skipped.
 */
export function writeCompressedAttributes(
  writer: ProtoWriter,
  bag: Bag,
  names: Iterable<string>,
  words: MessageWords,
  withWords: boolean,
): void {
  // Indices are assigned before anything is written, so that the words come first, as
  // Mixer's and the proxy's encoders put them.
  const keys: number[] = [];
  const fields: WireField[] = [];
  // Per attribute: a string's word index, a string map's index pairs, or the value itself.
  const values: unknown[] = [];
  for (const name of names) {
    const value = bag.get(name);
    if (value === undefined) continue;
    const field = wireFieldOf(name, value);
    keys.push(words.index(name));
    fields.push(field);
    if (field === WireField.STRINGS) {
      values.push(words.index(value as string));
    } else if (field === WireField.STRING_MAPS) {
      // Encoded to index pairs now, so that its words are assigned before the words are written.
      const pairs: number[] = [];
      const flat = pairsOf(value as StringMap);
      if (flat !== undefined) for (const word of flat) pairs.push(words.index(word));
      else for (const [k, v] of (value as StringMap).entries()) pairs.push(words.index(k), words.index(v));
      values.push(pairs);
    } else {
      values.push(value);
    }
  }
  if (withWords) for (const word of words.words) writer.tag(1, WireType.LengthDelimited).string(word);
  // Maps in field order, entries in bag order.
  for (let field = WireField.STRINGS; field <= WireField.STRING_MAPS; field++) {
    for (let i = 0; i < keys.length; i++) {
      if (fields[i] !== field) continue;
      const entry = writer.tag(field, WireType.LengthDelimited).fork();
      writer.tag(1, WireType.Varint).sint32(keys[i]!);
      writeMapValue(writer, field, values[i]);
      writer.join(entry);
    }
  }
}

function writeMapValue(writer: ProtoWriter, field: WireField, value: unknown): void {
  switch (field) {
    case WireField.STRINGS:
      writer.tag(2, WireType.Varint).sint32(value as number);
      return;
    case WireField.INT64S:
      writer.tag(2, WireType.Varint).int64(value as bigint);
      return;
    case WireField.DOUBLES:
      writer.tag(2, WireType.Bit64).double(value as number);
      return;
    case WireField.BOOLS:
      writer.tag(2, WireType.Varint).bool(value as boolean);
      return;
    case WireField.TIMESTAMPS:
    case WireField.DURATIONS: {
      const { seconds, nanos } = value as Timestamp | Duration;
      const message = writer.tag(2, WireType.LengthDelimited).fork();
      if (seconds !== 0) writer.tag(1, WireType.Varint).int64(seconds);
      if (nanos !== 0) writer.tag(2, WireType.Varint).int32(nanos);
      writer.join(message);
      return;
    }
    case WireField.BYTES:
      writer
        .tag(2, WireType.LengthDelimited)
        .bytes(value instanceof IpAddress ? value.bytes : (value as Uint8Array));
      return;
    case WireField.STRING_MAPS: {
      const pairs = value as number[];
      const map = writer.tag(2, WireType.LengthDelimited).fork();
      for (let i = 0; i < pairs.length; i += 2) {
        const entry = writer.tag(1, WireType.LengthDelimited).fork();
        writer
          .tag(1, WireType.Varint)
          .sint32(pairs[i]!)
          .tag(2, WireType.Varint)
          .sint32(pairs[i + 1]!);
        writer.join(entry);
      }
      writer.join(map);
      return;
    }
  }
}
