/**
 * Attributes as Istio's proxies encoded them decode to the bags the proxies meant
 * (test/fixtures/istio-proxy/: the expected outputs of the C++ mixer client's own unit
 * tests in istio/proxy, attribute_compressor_test.cc and referenced_test.cc; see the
 * README there). The fixtures hold each expected message as a structure; the bytes are
 * built here with the generated encoders, in the wire layout any protobuf encoder gives.
 * Our encoder, given the same bags, must give them back; and since these vectors have a
 * single message word (so word numbering cannot differ), it must also give the proxy's
 * very messages: the same global words, shared default_words and delta selection.
 *
 * One known disagreement is pinned below rather than hidden: the proxy's compressor tests
 * put 24 bytes of text in `source.ip`, which our manifest declares IP_ADDRESS, and we
 * refuse an IP address that is not 4 or 16 bytes long (Mixer accepted any bytes). The
 * bags are compared through a finder that leaves `source.ip` undeclared, so that every
 * other value of those vectors is still checked.
 */
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  AttributeBag,
  AttributeDecodeError,
  Duration,
  GLOBAL_DICTIONARY,
  IpAddress,
  Presence,
  ReferencedAttributes,
  STANDARD_MANIFEST,
  Timestamp,
  decodeCheckRequest,
  decodeReportRequest,
  encodeCheckRequest,
  encodeReferencedAttributes,
  encodeReportRequest,
  type AttributeDecodeErrorCode,
  type AttributeFinder,
  type AttributeValue,
  type Bag,
} from '../../attributes';
import { attributesPb, mixer } from '../../proto';

const DIR = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'istio-proxy');

/** An attribute value as the proxy's test built it. */
interface Tagged {
  readonly type: 'string' | 'int64' | 'double' | 'bool' | 'timestamp' | 'duration' | 'bytes' | 'stringmap';
  readonly value: unknown;
  /** Timestamps: the nanoseconds of the second given in `value` (RFC 3339). */
  readonly nanos?: number;
}

type TaggedBag = Record<string, Tagged>;

/** google.protobuf.Timestamp or Duration in the text form: int64 seconds as a decimal string. */
interface SecondsNanos {
  readonly seconds?: string;
  readonly nanos?: number;
}

/** CompressedAttributes as the proxy's text proto wrote it; keys are the sint32 indices. */
interface TextCompressedAttributes {
  readonly words?: string[];
  readonly strings?: Record<string, number>;
  readonly int64s?: Record<string, string>;
  readonly doubles?: Record<string, number>;
  readonly bools?: Record<string, boolean>;
  readonly timestamps?: Record<string, SecondsNanos>;
  readonly durations?: Record<string, SecondsNanos>;
  /** Hex. */
  readonly bytes?: Record<string, string>;
  readonly string_maps?: Record<string, { readonly entries?: Record<string, number> }>;
}

interface TextReportRequest {
  readonly attributes?: TextCompressedAttributes[];
  readonly default_words?: string[];
  readonly global_word_count?: number;
  readonly repeated_attributes_semantics?: 'DELTA_ENCODING' | 'INDEPENDENT_ENCODING';
}

interface TextReferencedAttributes {
  readonly words?: string[];
  readonly attribute_matches?: Array<{
    readonly name?: number;
    readonly map_key?: number;
    readonly condition?: 'ABSENCE' | 'EXACT' | 'REGEX';
  }>;
}

/** One reference as the proxy's cache understood it. */
interface Reference {
  readonly name: string;
  readonly mapKey: string | null;
  readonly condition: 'ABSENCE' | 'EXACT';
}

type Vector = {
  readonly description: string;
  readonly source: string;
  /** The proxy's dictionary size at that commit: the global_word_count it sent. */
  readonly globalWordCount: number;
} & (
  | {
      readonly kind: 'CompressedAttributes';
      readonly message: TextCompressedAttributes;
      readonly expected: TaggedBag;
    }
  | {
      readonly kind: 'ReportRequest';
      readonly message: TextReportRequest;
      readonly expected: TaggedBag[];
      readonly notRepresentable?: TaggedBag;
    }
  | {
      readonly kind: 'ReferencedAttributes';
      readonly message: TextReferencedAttributes;
      readonly requestAttributes: TaggedBag;
      readonly expected: Reference[];
    }
);

const vectors = readdirSync(DIR)
  .filter((f) => f.endsWith('.json') && f !== 'global-dictionary.json')
  .sort()
  .map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Vector] as const);

/**
 * The proxy's own view of the compressor vectors' attributes: `source.ip` is plain bytes
 * there (24 bytes of text), so it is left undeclared; every other name keeps its type.
 */
const PROXY_VIEW: AttributeFinder = {
  find: (name) => (name === 'source.ip' ? undefined : STANDARD_MANIFEST.find(name)),
};

/**
 * DISAGREEMENT (reported, not fixed here): with the standard manifest we refuse the
 * compressor vectors, because `source.ip` is IP_ADDRESS and its value is not 4 or 16
 * bytes. Real proxies sent 4 or 16 bytes (Envoy's address); only their tests did not.
 */
const REFUSED_WITH_STANDARD_MANIFEST: ReadonlyMap<string, string> = new Map([
  ['compressor-check', 'attribute source.ip is an IP address of 24 bytes: expected 4 or 16'],
  [
    'compressor-batch-independent',
    'attribute set 0: attribute source.ip is an IP address of 24 bytes: expected 4 or 16',
  ],
  [
    'compressor-batch-delta',
    'attribute set 0: attribute source.ip is an IP address of 24 bytes: expected 4 or 16',
  ],
]);

/**
 * Messages as the C++ test wrote them that we refuse, by global_word_count: the delta-era
 * test overwrote the count with 111 although its sets name global words 127
 * ("connection.received.bytes_total") and 132 ("context.timestamp"). No proxy sent that (a
 * proxy whose dictionary shrank to 111 words sent those as message words); we refuse an
 * index beyond the count, as for Mixer's check-index-beyond-word-count vector (Mixer
 * decoded it anyway).
 */
const REFUSED_AS_WRITTEN: ReadonlyMap<string, readonly [number, AttributeDecodeErrorCode, string]> = new Map([
  [
    'compressor-batch-delta',
    [
      111,
      'WORD_INDEX_OUT_OF_RANGE',
      'attribute set 0: value index 127 of attribute source.name is out of range: the request uses 111 global words',
    ],
  ],
]);

// ---------------------------------------------------------------- the text form to messages

function keyed<T, U>(map: Record<string, T> | undefined, convert: (value: T) => U): { [key: number]: U } {
  return Object.fromEntries(Object.entries(map ?? {}).map(([k, v]) => [Number(k), convert(v)]));
}

function secondsNanos(value: SecondsNanos): { seconds: bigint; nanos: number } {
  return { seconds: BigInt(value.seconds ?? '0'), nanos: value.nanos ?? 0 };
}

function compressedAttributes(set: TextCompressedAttributes): attributesPb.CompressedAttributes {
  return {
    words: set.words ?? [],
    strings: keyed(set.strings, (v) => v),
    int64s: keyed(set.int64s, (v) => BigInt(v)),
    doubles: keyed(set.doubles, (v) => v),
    bools: keyed(set.bools, (v) => v),
    timestamps: keyed(set.timestamps, secondsNanos),
    durations: keyed(set.durations, secondsNanos),
    bytes: keyed(set.bytes, (v) => Buffer.from(v, 'hex')),
    stringMaps: keyed(set.string_maps, (v) => ({ entries: keyed(v.entries, (i) => i) })),
  };
}

function reportRequest(message: TextReportRequest, globalWordCount: number): mixer.ReportRequest {
  return {
    attributes: (message.attributes ?? []).map(compressedAttributes),
    defaultWords: message.default_words ?? [],
    globalWordCount,
    repeatedAttributesSemantics:
      mixer.ReportRequest_RepeatedAttributesSemantics[
        message.repeated_attributes_semantics ?? 'DELTA_ENCODING'
      ],
  };
}

function checkRequestBytes(attributes: TextCompressedAttributes, globalWordCount: number): Uint8Array {
  return mixer.CheckRequest.encode({
    attributes: compressedAttributes(attributes),
    globalWordCount,
    deduplicationId: '',
    quotas: {},
  }).finish();
}

function reportRequestBytes(message: TextReportRequest, globalWordCount: number): Uint8Array {
  return mixer.ReportRequest.encode(reportRequest(message, globalWordCount)).finish();
}

// ---------------------------------------------------------------- comparing bags

/** A comparable form of one of our values; IP addresses and bytes alike as hex. */
function normal(value: AttributeValue | undefined): unknown {
  if (value === undefined) return undefined;
  if (typeof value === 'bigint') return { type: 'int64', value: value.toString() };
  if (typeof value === 'number') return { type: 'double', value };
  if (typeof value === 'string') return { type: 'string', value };
  if (typeof value === 'boolean') return { type: 'bool', value };
  if (value instanceof Timestamp) return { type: 'timestamp', seconds: value.seconds, nanos: value.nanos };
  if (value instanceof Duration) return { type: 'duration', value: value.toNanos().toString() };
  if (value instanceof IpAddress) return { type: 'bytes', value: Buffer.from(value.bytes).toString('hex') };
  if (value instanceof Uint8Array) return { type: 'bytes', value: Buffer.from(value).toString('hex') };
  return { type: 'stringmap', value: Object.fromEntries([...value.entries()].sort()) };
}

/** The same form of the proxy's value. */
function normalTagged(tagged: Tagged): unknown {
  switch (tagged.type) {
    case 'timestamp': {
      const at = Timestamp.parse(tagged.value as string);
      assert.ok(at !== undefined && at.nanos === 0, `whole-second RFC 3339: ${String(tagged.value)}`);
      return { type: 'timestamp', seconds: at.seconds, nanos: tagged.nanos ?? 0 };
    }
    case 'stringmap':
      return {
        type: 'stringmap',
        value: Object.fromEntries(Object.entries(tagged.value as Record<string, string>).sort()),
      };
    default:
      return { type: tagged.type, value: tagged.value };
  }
}

function assertSameBag(ours: Bag, theirs: TaggedBag, what: string): void {
  assert.deepEqual([...ours.names()].sort(), Object.keys(theirs).sort(), `${what}: names`);
  for (const [name, tagged] of Object.entries(theirs)) {
    assert.deepEqual(normal(ours.get(name)), normalTagged(tagged), `${what}: ${name}`);
  }
}

/** The proxy's bag as one of ours (bytes stay bytes, as in PROXY_VIEW). */
function bagOf(tagged: TaggedBag): AttributeBag {
  return new AttributeBag(
    Object.entries(tagged).map(([name, t]): [string, AttributeValue] => {
      switch (t.type) {
        case 'string':
        case 'bool':
        case 'double':
          return [name, t.value as string | boolean | number];
        case 'int64':
          return [name, BigInt(t.value as string)];
        case 'timestamp':
          return [name, new Timestamp(Timestamp.parse(t.value as string)!.seconds, t.nanos ?? 0)];
        case 'duration':
          return [name, Duration.fromNanos(BigInt(t.value as string))];
        case 'bytes':
          return [name, Uint8Array.from(Buffer.from(t.value as string, 'hex'))];
        case 'stringmap':
          return [name, new Map(Object.entries(t.value as Record<string, string>))];
      }
    }),
  );
}

function assertRefused(decode: () => unknown, code: AttributeDecodeErrorCode, message: string): void {
  assert.throws(decode, (err: unknown) => {
    assert.ok(err instanceof AttributeDecodeError, String(err));
    assert.equal(err.code, code);
    assert.equal(err.message, message);
    return true;
  });
}

// ---------------------------------------------------------------- referenced attributes

/**
 * Reads ReferencedAttributes as the proxy's cache did (Referenced::Fill): indices name
 * global words (the whole dictionary) or message words; `map_key` is read only when the
 * attribute is a string map in the request; REGEX makes the response uncachable.
 */
function proxyReading(message: TextReferencedAttributes, request: TaggedBag): Reference[] {
  const words = message.words ?? [];
  const word = (index: number): string => {
    const found = index >= 0 ? GLOBAL_DICTIONARY[index] : words[-index - 1];
    assert.ok(found !== undefined, `index ${index} names no word`);
    return found;
  };
  return (message.attribute_matches ?? []).map((match) => {
    const name = word(match.name ?? 0);
    const mapKey = request[name]?.type === 'stringmap' ? word(match.map_key ?? 0) : null;
    assert.ok(match.condition === 'ABSENCE' || match.condition === 'EXACT', `condition ${match.condition}`);
    return { name, mapKey, condition: match.condition };
  });
}

function textOf(message: mixer.ReferencedAttributes): TextReferencedAttributes {
  return {
    words: message.words,
    attribute_matches: message.attributeMatches.map((m) => ({
      name: m.name,
      map_key: m.mapKey,
      condition: m.condition === mixer.ReferencedAttributes_Condition.ABSENCE ? 'ABSENCE' : 'EXACT',
    })),
  };
}

const byKey = (a: Reference, b: Reference): number => {
  const ka = `${a.name}\u0000${a.mapKey ?? ''}\u0000${a.condition}`;
  const kb = `${b.name}\u0000${b.mapKey ?? ''}\u0000${b.condition}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

// ---------------------------------------------------------------- the tests

describe('attributes: attributes encoded by the Istio proxy decode as the proxy meant them', () => {
  it('has the vectors', () => {
    assert.deepEqual(
      vectors.map(([name, v]) => `${name}:${v.kind}`),
      [
        'compressor-batch-delta:ReportRequest',
        'compressor-batch-independent:ReportRequest',
        'compressor-check:CompressedAttributes',
        'referenced-fill:ReferencedAttributes',
        'referenced-string-map:ReferencedAttributes',
      ],
    );
  });

  it("the proxy's global dictionary is ours, word for word", () => {
    const proxy = JSON.parse(readFileSync(join(DIR, 'global-dictionary.json'), 'utf8')) as {
      words: string[];
    };
    assert.equal(proxy.words.length, 222);
    assert.deepEqual(proxy.words, [...GLOBAL_DICTIONARY]);
  });

  for (const [name, vector] of vectors) {
    if (vector.kind === 'CompressedAttributes') {
      describe(`${name} (${vector.source.split(' ').slice(2).join(' ')})`, () => {
        const bytes = checkRequestBytes(vector.message, vector.globalWordCount);

        it('decodes in a CheckRequest to the bag the proxy encoded', () => {
          const decoded = decodeCheckRequest(bytes, PROXY_VIEW);
          assert.equal(decoded.globalWordCount, vector.globalWordCount);
          assertSameBag(decoded.attributes, vector.expected, name);
        });

        it('DISAGREEMENT: the standard manifest refuses its 24-byte source.ip', () => {
          assertRefused(
            () => decodeCheckRequest(bytes),
            'INVALID_VALUE',
            REFUSED_WITH_STANDARD_MANIFEST.get(name)!,
          );
        });

        it('our encoder gives the same bag back, and (one message word) the same message', () => {
          const options = { globalWordCount: vector.globalWordCount };
          const ours = encodeCheckRequest({ attributes: bagOf(vector.expected) }, options);
          assertSameBag(
            decodeCheckRequest(ours, PROXY_VIEW).attributes,
            vector.expected,
            `${name} re-encoded`,
          );
          assert.deepEqual(mixer.CheckRequest.decode(ours).attributes, compressedAttributes(vector.message));
        });
      });
    } else if (vector.kind === 'ReportRequest') {
      describe(`${name} (${vector.source.split(' ').slice(2).join(' ')})`, () => {
        const written = vector.message.global_word_count ?? 0;
        const refusal = REFUSED_AS_WRITTEN.get(name);

        for (const count of [...new Set([written, vector.globalWordCount])]) {
          const bytes = reportRequestBytes(vector.message, count);
          const how = count === written ? 'as the test wrote it' : "with the proxy's own word count";
          if (refusal !== undefined && refusal[0] === count) {
            it(`global_word_count ${count} (${how}): refused, ${refusal[1]}`, () => {
              assertRefused(() => decodeReportRequest(bytes, PROXY_VIEW), refusal[1], refusal[2]);
            });
            continue;
          }
          it(`global_word_count ${count} (${how}): one bag per report, as the proxy batched them`, () => {
            const bags = decodeReportRequest(bytes, PROXY_VIEW);
            assert.equal(bags.length, vector.expected.length);
            bags.forEach((bag, i) => assertSameBag(bag, vector.expected[i]!, `${name} bag ${i}`));
          });
          it(`global_word_count ${count} (${how}): DISAGREEMENT: the standard manifest refuses its 24-byte source.ip`, () => {
            assertRefused(
              () => decodeReportRequest(bytes),
              'INVALID_VALUE',
              REFUSED_WITH_STANDARD_MANIFEST.get(name)!,
            );
          });
        }

        it("our encoder gives the same bags back, and (one message word) the proxy's message", () => {
          const bags = vector.expected.map(bagOf);
          const ours = encodeReportRequest(bags, { globalWordCount: vector.globalWordCount });
          const decoded = decodeReportRequest(ours, PROXY_VIEW);
          assert.equal(decoded.length, vector.expected.length);
          decoded.forEach((bag, i) => assertSameBag(bag, vector.expected[i]!, `${name} re-encoded bag ${i}`));
          // Same semantics, same delta selection, same shared words.
          assert.deepEqual(
            mixer.ReportRequest.decode(ours),
            reportRequest(vector.message, vector.globalWordCount),
          );
        });

        if (vector.notRepresentable !== undefined) {
          it('the report the delta batch could not take: our encoder falls back to INDEPENDENT_ENCODING', () => {
            const expected = [...vector.expected, vector.notRepresentable!];
            const ours = encodeReportRequest(expected.map(bagOf), {
              globalWordCount: vector.globalWordCount,
            });
            assert.equal(
              mixer.ReportRequest.decode(ours).repeatedAttributesSemantics,
              mixer.ReportRequest_RepeatedAttributesSemantics.INDEPENDENT_ENCODING,
            );
            const decoded = decodeReportRequest(ours, PROXY_VIEW);
            assert.equal(decoded.length, expected.length);
            decoded.forEach((bag, i) => assertSameBag(bag, expected[i]!, `${name} with removal, bag ${i}`));
          });
        }
      });
    } else {
      describe(`${name} (${vector.source.split(' ').slice(2).join(' ')})`, () => {
        it("the proxy's message reads, with our dictionary, as the proxy read it", () => {
          assert.deepEqual(
            proxyReading(vector.message, vector.requestAttributes).sort(byKey),
            [...vector.expected].sort(byKey),
          );
        });

        it('encodeReferencedAttributes of the same references reads the same on the proxy', () => {
          const references = new ReferencedAttributes();
          for (const r of vector.expected) {
            const presence = r.condition === 'ABSENCE' ? Presence.ABSENCE : Presence.EXACT;
            if (r.mapKey === null) references.recordAttribute(r.name, presence);
            else references.recordMapKey(r.name, r.mapKey, presence);
          }
          const message = encodeReferencedAttributes(references, { globalWordCount: vector.globalWordCount });
          const onTheWire = mixer.ReferencedAttributes.decode(
            mixer.ReferencedAttributes.encode(message).finish(),
          );
          assert.deepEqual(
            proxyReading(textOf(onTheWire), vector.requestAttributes).sort(byKey),
            [...vector.expected].sort(byKey),
          );
        });
      });
    }
  }
});
