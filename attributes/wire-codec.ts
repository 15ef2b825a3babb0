/**
 * The attribute wire codec: `istio.mixer.v1.CheckRequest` and `ReportRequest` bytes to
 * bags and back, with Istio's global word dictionary (global-dictionary.ts).
 *
 * The decoders read the request bytes directly (compressed-decoder.ts) rather than through
 * the generated message classes, because decoding is most of the cost of a Check that the
 * rules answer quickly; the generated classes remain the reference they are tested against.
 */
import { WireType as Wire } from '@bufbuild/protobuf/wire';
import { AttributeBag, type Bag } from './bag';
import { AttributeDelta, CompressedAttributesDecoder } from './compressed-decoder';
import {
  MessageWords,
  resolveGlobalWordCount,
  sameWireValue,
  writeCompressedAttributes,
} from './compressed-encoder';
import { AttributeDecodeError } from './errors';
import { ProtoWriter } from './proto-writer';
import { GLOBAL_DICTIONARY } from './global-dictionary';
import { STANDARD_MANIFEST, type AttributeFinder } from './manifest';
import { Presence, type ReferencedAttributes } from './references';
import { decodeWords, WireReader, WireType } from './wire-reader';
import { mixer } from '../proto';

/** One quota asked for in a Check. */
export interface QuotaRequest {
  readonly amount: bigint;
  readonly bestEffort: boolean;
}

/** A CheckRequest decoded for the dispatcher. */
export interface DecodedCheckRequest {
  readonly attributes: AttributeBag;
  readonly globalWordCount: number;
  readonly deduplicationId: string;
  readonly quotas: ReadonlyMap<string, QuotaRequest>;
}

const TAG_1_LENGTH = (1 << 3) | WireType.LENGTH_DELIMITED;
const TAG_1_VARINT = (1 << 3) | WireType.VARINT;
const TAG_2_LENGTH = (2 << 3) | WireType.LENGTH_DELIMITED;
const TAG_2_VARINT = (2 << 3) | WireType.VARINT;
const TAG_3_LENGTH = (3 << 3) | WireType.LENGTH_DELIMITED;
const TAG_3_VARINT = (3 << 3) | WireType.VARINT;
const TAG_4_LENGTH = (4 << 3) | WireType.LENGTH_DELIMITED;
const TAG_4_VARINT = (4 << 3) | WireType.VARINT;

/** ReportRequest.RepeatedAttributesSemantics. */
const DELTA_ENCODING = 0;
const INDEPENDENT_ENCODING = 1;

const NO_RANGES: readonly number[] = Object.freeze([]);

/**
 * Decodes the bytes of an `istio.mixer.v1.CheckRequest`, the Check hot path.
 *
 * Attributes are typed by the manifest where it knows them, otherwise by the map they
 * arrived in (see compressed-decoder.ts). Non-negative word indices must be below the
 * request's `global_word_count` when it is not 0, and below the dictionary's length in any
 * case; the returned `globalWordCount` is the request's own (0 when unset), which is what
 * {@link encodeReferencedAttributes} should get for the response.
 *
 * @param bytes the serialized request; it is not modified, and the bag keeps no view of it
 * @param manifest attribute types; default {@link STANDARD_MANIFEST}. An AttributeManifest
 *   has its types of the global words cached on first use (manifests are immutable).
 * @throws AttributeDecodeError on malformed input, with code TRUNCATED or MALFORMED for bad
 *   protobuf, WORD_INDEX_OUT_OF_RANGE, DICTIONARY_MISMATCH (a `global_word_count` larger
 *   than the dictionary), TYPE_MISMATCH or INVALID_VALUE; the server answers INVALID_ARGUMENT
 */
export function decodeCheckRequest(
  bytes: Uint8Array,
  manifest: AttributeFinder = STANDARD_MANIFEST,
): DecodedCheckRequest {
  const r = new WireReader(bytes);
  let ranges: number[] | undefined;
  let globalWordCount = 0;
  let deduplicationId = '';
  const quotas = new Map<string, QuotaRequest>();
  while (r.pos < r.limit) {
    const tag = r.readTag();
    switch (tag) {
      case TAG_1_LENGTH: {
        // Occurrences of a message field merge; the set decoder reads them as one message.
        const end = r.readLength();
        if (ranges === undefined) ranges = [r.pos, end];
        else ranges.push(r.pos, end);
        r.pos = end;
        break;
      }
      case TAG_2_VARINT:
        globalWordCount = r.readVarint32();
        break;
      case TAG_3_LENGTH:
        deduplicationId = r.readString();
        break;
      case TAG_4_LENGTH:
        decodeQuotaEntry(r, quotas);
        break;
      default:
        checkWireType(r, tag, CHECK_REQUEST_FIELDS);
        r.skip(tag);
    }
  }
  checkGlobalWordCount(globalWordCount);
  const decoder = new CompressedAttributesDecoder(r, manifest, globalWordCount);
  const attributes = decoder.decode(ranges ?? NO_RANGES, undefined, -1);
  return { attributes, globalWordCount, deduplicationId, quotas };
}

/**
 * Decodes the bytes of an `istio.mixer.v1.ReportRequest` into one bag per attribute set,
 * in order, as Mixer applied them:
 *
 * - A set with no words of its own uses the request's `default_words` (Mixer substituted
 *   them for every set whose `words` was empty before decoding anything).
 * - DELTA_ENCODING (the default): set 0 is complete; each later set lists attributes to add
 *   or replace, applied to the bag of the set before it. An attribute it does not list
 *   keeps its previous value; a delta cannot remove an attribute, and a string map is
 *   replaced whole, never merged key by key.
 * - INDEPENDENT_ENCODING: each set is complete on its own.
 *
 * The bags share unchanged values with each other (values are immutable). Unlike Mixer,
 * which dispatched the sets it could decode and failed the call afterwards, an error in
 * any set fails the whole request, naming the set. {@link decodeReportRecords} decodes the
 * same, without a bag per set.
 *
 * @param manifest attribute types; default {@link STANDARD_MANIFEST}
 * @throws AttributeDecodeError on malformed input (see {@link decodeCheckRequest}); also
 *   INVALID_VALUE for an unknown `repeated_attributes_semantics`
 */
export function decodeReportRequest(
  bytes: Uint8Array,
  manifest: AttributeFinder = STANDARD_MANIFEST,
): AttributeBag[] {
  const request = new ReportRequestSets(bytes, manifest);
  const bags: AttributeBag[] = [];
  const delta = new AttributeDelta();
  for (let set = 0; set < request.count; set++) {
    request.decode(set, delta);
    const base = request.independent || set === 0 ? new AttributeBag() : bags[set - 1]!.clone();
    bags.push(delta.applyTo(base));
  }
  return bags;
}

/** Receives the records of a Report from {@link decodeReportRecords}, one at a time. */
export interface ReportRecordSink {
  /**
   * One record, complete (delta sets already applied). The bag is the decoder's: it changes
   * for the next record, so keep values (immutable), never the bag.
   */
  add(record: AttributeBag): void;
}

/**
 * Decodes a ReportRequest as {@link decodeReportRequest} does — the same records, checks
 * and errors — handing each record to `sink` as soon as it is decoded. Delta sets are
 * applied in place to one bag, so a batch costs one bag, not a copy per record; without a
 * sink nothing is applied at all: the request is only checked.
 *
 * Records reach the sink before a later set is found malformed: a sink that acts on them
 * (rather than gathering them) cannot undo that, so gather, and act once this returns.
 *
 * @returns how many records the request holds
 * @throws as {@link decodeReportRequest}
 */
export function decodeReportRecords(
  bytes: Uint8Array,
  manifest: AttributeFinder = STANDARD_MANIFEST,
  sink?: ReportRecordSink,
): number {
  const request = new ReportRequestSets(bytes, manifest);
  const delta = new AttributeDelta();
  let bag: AttributeBag | undefined;
  for (let set = 0; set < request.count; set++) {
    request.decode(set, delta, sink === undefined);
    if (sink === undefined) continue;
    if (bag === undefined || request.independent) bag = new AttributeBag();
    sink.add(delta.applyTo(bag));
  }
  return request.count;
}

/** A ReportRequest's envelope read and checked; its attribute sets decoded on demand, in order. */
class ReportRequestSets {
  /** Start and end offsets of each set. */
  private readonly sets: number[] = [];
  private readonly defaultWords: readonly string[];
  private readonly decoder: CompressedAttributesDecoder;
  /** The range of the set being decoded, reused. */
  private readonly range = [0, 0];
  readonly independent: boolean;

  constructor(bytes: Uint8Array, manifest: AttributeFinder) {
    const r = new WireReader(bytes);
    const sets = this.sets;
    const defaultWordOffsets: number[] = [];
    let globalWordCount = 0;
    let semantics = DELTA_ENCODING;
    while (r.pos < r.limit) {
      const tag = r.readTag();
      switch (tag) {
        case TAG_1_LENGTH: {
          const end = r.readLength();
          sets.push(r.pos, end);
          r.pos = end;
          break;
        }
        case TAG_2_LENGTH: {
          const end = r.readLength();
          defaultWordOffsets.push(r.pos, end);
          r.pos = end;
          break;
        }
        case TAG_3_VARINT:
          globalWordCount = r.readVarint32();
          break;
        case TAG_4_VARINT:
          semantics = r.readInt32();
          break;
        default:
          checkWireType(r, tag, REPORT_REQUEST_FIELDS);
          r.skip(tag);
      }
    }
    checkGlobalWordCount(globalWordCount);
    if (semantics !== DELTA_ENCODING && semantics !== INDEPENDENT_ENCODING) {
      throw new AttributeDecodeError(
        'INVALID_VALUE',
        `repeated_attributes_semantics ${semantics} is neither DELTA_ENCODING (0) nor INDEPENDENT_ENCODING (1)`,
      );
    }
    this.independent = semantics === INDEPENDENT_ENCODING;
    this.defaultWords = decodeWords(r.buf, defaultWordOffsets, defaultWordOffsets.length >> 1);
    this.decoder = new CompressedAttributesDecoder(r, manifest, globalWordCount);
  }

  /** How many attribute sets (records) the request holds. */
  get count(): number {
    return this.sets.length >> 1;
  }

  /** Decodes set `set` into `delta`; with `checkOnly`, its values are checked but not made. */
  decode(set: number, delta: AttributeDelta, checkOnly = false): void {
    const range = this.range;
    range[0] = this.sets[2 * set]!;
    range[1] = this.sets[2 * set + 1]!;
    this.decoder.decodeDelta(range, this.defaultWords, set, delta, checkOnly);
  }
}

/** Field names by number, for messages about a field of the wrong wire type. */
const CHECK_REQUEST_FIELDS: readonly (readonly [string, WireType])[] = [
  ['', WireType.VARINT],
  ['CheckRequest.attributes', WireType.LENGTH_DELIMITED],
  ['CheckRequest.global_word_count', WireType.VARINT],
  ['CheckRequest.deduplication_id', WireType.LENGTH_DELIMITED],
  ['CheckRequest.quotas', WireType.LENGTH_DELIMITED],
];
const REPORT_REQUEST_FIELDS: readonly (readonly [string, WireType])[] = [
  ['', WireType.VARINT],
  ['ReportRequest.attributes', WireType.LENGTH_DELIMITED],
  ['ReportRequest.default_words', WireType.LENGTH_DELIMITED],
  ['ReportRequest.global_word_count', WireType.VARINT],
  ['ReportRequest.repeated_attributes_semantics', WireType.VARINT],
];

/** Throws when a known field (not read by the caller's switch) has the wrong wire type. */
function checkWireType(r: WireReader, tag: number, fields: readonly (readonly [string, WireType])[]): void {
  const field = fields[tag >>> 3];
  if (field !== undefined && (tag & 7) !== field[1]) throw r.wrongWireType(tag, field[1], field[0]);
}

function checkGlobalWordCount(count: number): void {
  if (count > GLOBAL_DICTIONARY.length) {
    // Mixer refused these too: the client's dictionary has words this one does not know.
    throw new AttributeDecodeError(
      'DICTIONARY_MISMATCH',
      `global_word_count ${count} is larger than the global dictionary, which has ${GLOBAL_DICTIONARY.length} words`,
    );
  }
}

/** Decodes one entry of CheckRequest.quotas (name → QuotaParams) into `quotas`. */
function decodeQuotaEntry(r: WireReader, quotas: Map<string, QuotaRequest>): void {
  const end = r.readLength();
  const outer = r.limit;
  r.limit = end;
  let name = '';
  let amount = 0n;
  let bestEffort = false;
  while (r.pos < end) {
    const tag = r.readTag();
    if (tag === TAG_1_LENGTH) {
      name = r.readString();
    } else if (tag === TAG_2_LENGTH) {
      const valueEnd = r.readLength();
      r.limit = valueEnd;
      while (r.pos < valueEnd) {
        const inner = r.readTag();
        if (inner === TAG_1_VARINT) amount = r.readInt64();
        else if (inner === TAG_2_VARINT) bestEffort = r.readBool();
        else {
          checkWireType(r, inner, QUOTA_PARAMS_FIELDS);
          r.skip(inner);
        }
      }
      r.limit = end;
    } else {
      checkWireType(r, tag, QUOTA_ENTRY_FIELDS);
      r.skip(tag);
    }
  }
  r.limit = outer;
  quotas.set(name, { amount, bestEffort });
}

const QUOTA_ENTRY_FIELDS: readonly (readonly [string, WireType])[] = [
  ['', WireType.VARINT],
  ['CheckRequest.quotas key', WireType.LENGTH_DELIMITED],
  ['CheckRequest.quotas value', WireType.LENGTH_DELIMITED],
];
const QUOTA_PARAMS_FIELDS: readonly (readonly [string, WireType])[] = [
  ['', WireType.VARINT],
  ['QuotaParams.amount', WireType.VARINT],
  ['QuotaParams.best_effort', WireType.VARINT],
];

/** Options of the encoders (the proxy's side). */
export interface EncodeOptions {
  /**
   * How many words of the global dictionary to use; default: all of them. Words beyond
   * the count are sent as message words. A server encoding a response should pass the
   * request's `global_word_count`: the client knows no more words than that.
   */
  readonly globalWordCount?: number;
}

/**
 * Encodes a Check request as Istio's proxies did: attributes in bag order, words first,
 * `global_word_count` set to the count used.
 * @throws RangeError for a bad `globalWordCount` or an INT64 outside 64 bits; TypeError for
 *   a value that is no attribute representation
 */
export function encodeCheckRequest(
  request: {
    readonly attributes: Bag;
    readonly deduplicationId?: string;
    readonly quotas?: ReadonlyMap<string, QuotaRequest>;
  },
  options?: EncodeOptions,
): Uint8Array {
  const globalWordCount = resolveGlobalWordCount(options?.globalWordCount);
  const writer = new ProtoWriter();
  const attributes = writer.tag(1, Wire.LengthDelimited).fork();
  const bag = request.attributes;
  writeCompressedAttributes(writer, bag, bag.names(), new MessageWords(globalWordCount), true);
  writer.join(attributes);
  if (globalWordCount !== 0) writer.tag(2, Wire.Varint).uint32(globalWordCount);
  if (request.deduplicationId) writer.tag(3, Wire.LengthDelimited).string(request.deduplicationId);
  for (const [name, quota] of request.quotas ?? []) {
    if (BigInt.asIntN(64, quota.amount) !== quota.amount) {
      throw new RangeError(`quota ${name}: amount ${quota.amount} does not fit in a signed 64-bit integer`);
    }
    const entry = writer.tag(4, Wire.LengthDelimited).fork();
    writer.tag(1, Wire.LengthDelimited).string(name);
    const params = writer.tag(2, Wire.LengthDelimited).fork();
    if (quota.amount !== 0n) writer.tag(1, Wire.Varint).int64(quota.amount);
    if (quota.bestEffort) writer.tag(2, Wire.Varint).bool(true);
    writer.join(params).join(entry);
  }
  return writer.finish();
}

/**
 * Encodes a batch of reports. All sets share one word list, sent as `default_words`.
 *
 * Delta encoding (the default): the first set is complete and each later set lists only
 * the attributes that are new or whose value changed since the bag before it. A delta
 * cannot express a removed attribute (the decoder, like Mixer, keeps what a set does not
 * mention), so when any bag lacks an attribute its predecessor had, the whole batch is
 * encoded with INDEPENDENT_ENCODING instead: larger, but decoded exactly.
 *
 * @param options.independent encode every set complete (INDEPENDENT_ENCODING)
 * @throws as {@link encodeCheckRequest}
 */
export function encodeReportRequest(
  bags: readonly Bag[],
  options?: EncodeOptions & { readonly independent?: boolean },
): Uint8Array {
  let independent = options?.independent === true;
  // AttributeBags: delta-encoded as they come; when one drops an attribute, the batch is
  // written again independently below.
  if (!independent && bags.every((bag) => bag instanceof AttributeBag)) {
    const encoder = new ReportRequestEncoder(options);
    if (bags.every((bag) => encoder.add(bag as AttributeBag))) return encoder.finish();
    independent = true;
  }
  const globalWordCount = resolveGlobalWordCount(options?.globalWordCount);
  // Other bags: each one's changes since the one before, computed once — whether any drops
  // an attribute (then the batch is encoded independently), and the names to write if not.
  const deltas: (string[] | undefined)[] = [undefined];
  for (let i = 1; i < bags.length && !independent; i++) {
    const previous = bags[i - 1]!;
    const bag = bags[i]!;
    if (removesAnyOf(previous, bag)) independent = true;
    else deltas.push(changedNames(previous, bag));
  }
  const words = new MessageWords(globalWordCount);
  const writer = new ProtoWriter();
  for (let i = 0; i < bags.length; i++) {
    const bag = bags[i]!;
    const names = independent || i === 0 ? bag.names() : deltas[i]!;
    const set = writer.tag(1, Wire.LengthDelimited).fork();
    writeCompressedAttributes(writer, bag, names, words, false);
    writer.join(set);
  }
  for (const word of words.words) writer.tag(2, Wire.LengthDelimited).string(word);
  if (globalWordCount !== 0) writer.tag(3, Wire.Varint).uint32(globalWordCount);
  if (independent) writer.tag(4, Wire.Varint).int32(INDEPENDENT_ENCODING);
  return writer.finish();
}

/**
 * A writer of Report sets that keeps its own delta state: it writes a set's attributes
 * straight into a batch, from whatever it records (the proxy writes a request's set from
 * the request's facts, without an attribute bag). {@link ReportRequestEncoder.add} asks it
 * for the whole set when the set starts a batch, and for the changes since its previous
 * set otherwise — that previous set is then always the one before in the same batch.
 */
export interface ReportSetWriter {
  /**
   * Writes the set's attributes as CompressedAttributes fields (no words: a Report's sets
   * share the batch's `default_words`, which `words` assigns): all of them when `whole`,
   * else those new or changed since the set this writer wrote last. Returns false, having
   * written nothing, when the set lacks an attribute that set had (a delta cannot remove
   * one). When it throws, the encoder forgets what was written.
   */
  writeSet(out: ProtoWriter, words: MessageWords, whole: boolean): boolean;
}

/**
 * A delta-encoded Report batch written as its sets arrive, so that a batch waiting to be
 * sent holds bytes rather than bags (the proxy's sender: a bag kept for a whole batch
 * interval outlives the young generation, and its promotion costs more than encoding it).
 * As Istio's proxies did, a set that lacks an attribute the one before it had cannot be
 * delta-encoded: {@link add} refuses it, and the caller starts a new batch with it.
 *
 * A set comes as an AttributeBag, or from a {@link ReportSetWriter}. A set from another
 * source than the one before it (a bag after a writer's set, a second writer) is refused
 * too: neither can say what it lacks of the other's.
 */
export class ReportRequestEncoder {
  private readonly writer = new ProtoWriter();
  private readonly words: MessageWords;
  private readonly globalWordCount: number;
  /** The previous set's bag or writer; undefined before the first set, and after a failed one. */
  private previous: AttributeBag | ReportSetWriter | undefined;
  private sets = 0;

  constructor(options?: EncodeOptions) {
    this.globalWordCount = resolveGlobalWordCount(options?.globalWordCount);
    this.words = new MessageWords(this.globalWordCount);
  }

  /** Sets written. */
  get count(): number {
    return this.sets;
  }

  /** Bytes written so far (the words list and trailer not counted). */
  get byteLength(): number {
    return this.writer.length;
  }

  /**
   * Appends a set — a bag (which must not change afterwards), or what a set writer writes —
   * as the batch's next one; false, with nothing written, when it cannot follow the set
   * before it (it lacks one of its attributes, or comes from another source).
   * @throws as {@link encodeCheckRequest}, with nothing written
   */
  add(set: AttributeBag | ReportSetWriter): boolean {
    const whole = this.sets === 0;
    if (
      !whole &&
      this.previous !== set &&
      !(set instanceof AttributeBag && this.previous instanceof AttributeBag)
    )
      return false;
    let names: string[] | undefined;
    if (set instanceof AttributeBag) {
      if (this.previous === undefined || whole) {
        names = set.names();
      } else {
        const { changed, removesAny } = set.changesSince(this.previous as AttributeBag, sameWireValue);
        if (removesAny) return false;
        names = changed;
      }
    }
    const before = this.writer.length;
    try {
      const mark = this.writer.tag(1, Wire.LengthDelimited).fork();
      if (names !== undefined) {
        writeCompressedAttributes(this.writer, set as AttributeBag, names, this.words, false);
      } else if (!(set as ReportSetWriter).writeSet(this.writer, this.words, whole)) {
        this.writer.truncate(before);
        return false;
      }
      this.writer.join(mark);
    } catch (error) {
      this.writer.truncate(before);
      // What the writer recorded may not be what the batch holds: nothing may follow as a delta.
      if (!whole && !(set instanceof AttributeBag)) this.previous = undefined;
      throw error;
    }
    this.previous = set;
    this.sets++;
    return true;
  }

  /** The ReportRequest: the sets, then the words they use. */
  finish(): Uint8Array {
    const writer = this.writer;
    for (const word of this.words.words) writer.tag(2, Wire.LengthDelimited).string(word);
    if (this.globalWordCount !== 0) writer.tag(3, Wire.Varint).uint32(this.globalWordCount);
    return writer.finish();
  }
}

/** Whether `next` lacks an attribute `previous` has. */
function removesAnyOf(previous: Bag, next: Bag): boolean {
  for (const name of previous.names()) if (next.get(name) === undefined) return true;
  return false;
}

/** Names of the attributes of `next` that are new or changed since `previous`. */
function changedNames(previous: Bag, next: Bag): string[] {
  const names: string[] = [];
  for (const name of next.names()) {
    const before = previous.get(name);
    if (before === undefined || !sameWireValue(before, next.get(name)!)) names.push(name);
  }
  return names;
}

/**
 * Encodes referenced attributes for a CheckResponse (or QuotaResult): names and map keys
 * as indices, global words below `globalWordCount`, the rest in the message's `words`;
 * conditions ABSENCE and EXACT. An attribute-level reference has `map_key` 0, which is why
 * a map key never takes global index 0.
 *
 * Note for callers: the Istio proxy reads the `map_key` of any reference to an attribute
 * that is a string map in its request, including 0 (global word 0, `source.ip`), and will
 * not cache a decision whose exact keys it cannot find; Mixer never sent attribute-level
 * references for string maps it only indexed.
 *
 * @param options.globalWordCount pass the Check request's `global_word_count` (0 means the
 *   client uses no global words); default: the whole dictionary
 * @throws RangeError for a bad `globalWordCount`
 */
export function encodeReferencedAttributes(
  references: ReferencedAttributes,
  options?: EncodeOptions,
): mixer.ReferencedAttributes {
  const words = new MessageWords(resolveGlobalWordCount(options?.globalWordCount));
  const attributeMatches = references.list().map((reference) => ({
    name: words.index(reference.name),
    condition:
      reference.presence === Presence.ABSENCE
        ? mixer.ReferencedAttributes_Condition.ABSENCE
        : mixer.ReferencedAttributes_Condition.EXACT,
    regex: '',
    mapKey: reference.mapKey === undefined ? 0 : words.nonZeroIndex(reference.mapKey),
  }));
  return { words: words.words, attributeMatches };
}
