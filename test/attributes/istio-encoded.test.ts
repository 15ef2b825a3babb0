/**
 * Bytes encoded as Istio encoded them decode to the bags Mixer's own server decoded
 * (test/fixtures/mixer/encoded/: produced by running Istio's encoder and Mixer's gRPC
 * server at a6eefdf7). Where Mixer accepted malformed input silently — an undefined
 * word index, one name in two typed maps, indices beyond the client's word count —
 * we refuse it with a typed error instead; each such vector is listed with its code.
 */
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  AttributeDecodeError,
  Duration,
  IpAddress,
  STANDARD_MANIFEST,
  GLOBAL_DICTIONARY,
  Timestamp,
  ValueType,
  ReferenceRecordingBag,
  decodeCheckRequest,
  decodeReportRequest,
  encodeReferencedAttributes,
  type AttributeDecodeErrorCode,
  type AttributeValue,
  type Bag,
} from '../../attributes';

const DIR = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'mixer', 'encoded');

interface Tagged {
  readonly type: string;
  readonly value?: unknown;
  readonly unixNanos?: string;
  readonly hex?: string;
}

interface ReferencedProbe {
  readonly lookups: string[];
  readonly referencedAttributes: Array<{
    name: string;
    nameWord: string;
    mapKey: string | null;
    mapKeyWord?: string;
    condition: 'ABSENCE' | 'EXACT';
  }>;
}

interface Vector {
  readonly referencedProbe?: ReferencedProbe;
  readonly description: string;
  readonly kind: 'CheckRequest' | 'ReportRequest';
  readonly base64: string;
  readonly toProtoBase64?: string;
  readonly expected: {
    readonly serverError: { code: string; message: string } | null;
    readonly bag?: Record<string, Tagged> | null;
    readonly bags?: Array<Record<string, Tagged>>;
    readonly globalWordCount?: number;
    readonly deduplicationId?: string;
    readonly quotas?: Record<string, { amount: string; bestEffort: boolean }>;
  };
}

/** Vectors of input Mixer accepted or half-applied, which we refuse as a whole. */
const REFUSED: ReadonlyMap<string, readonly [AttributeDecodeErrorCode, string]> = new Map([
  [
    'check-undefined-index',
    [
      'WORD_INDEX_OUT_OF_RANGE',
      'value index -5 of attribute request.path is out of range: the message has 1 word',
    ],
  ],
  [
    'check-index-beyond-word-count',
    ['WORD_INDEX_OUT_OF_RANGE', 'attribute index 17 is out of range: the request uses 10 global words'],
  ],
  [
    'check-duplicate-name-across-types',
    ['TYPE_MISMATCH', 'attribute request.path is declared STRING but arrived in int64s'],
  ],
  [
    'check-word-count-too-large',
    [
      'DICTIONARY_MISMATCH',
      'global_word_count 223 is larger than the global dictionary, which has 222 words',
    ],
  ],
  [
    'report-delta-undefined-index',
    [
      'WORD_INDEX_OUT_OF_RANGE',
      'attribute set 0: value index -7 of attribute request.method is out of range: the message has 1 word',
    ],
  ],
  [
    'report-delta-duplicate-error',
    ['TYPE_MISMATCH', 'attribute set 1: attribute request.path is declared STRING but arrived in int64s'],
  ],
  [
    'report-word-count-too-large',
    [
      'DICTIONARY_MISMATCH',
      'global_word_count 223 is larger than the global dictionary, which has 222 words',
    ],
  ],
]);

/** A comparable text form of a decoded value. */
function normal(value: AttributeValue | undefined): unknown {
  if (value === undefined) return undefined;
  if (typeof value === 'bigint') return `int64:${value}`;
  if (typeof value === 'number') return `double:${value}`;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (value instanceof Timestamp) return `timestamp:${value}`;
  if (value instanceof Duration) return `duration:${value.toNanos()}`;
  if (value instanceof IpAddress) return `ip:${Buffer.from(value.bytes).toString('hex')}`;
  if (value instanceof Uint8Array) return `bytes:${Buffer.from(value).toString('hex')}`;
  return Object.fromEntries([...value.entries()].sort());
}

/** The same form for Mixer's tagged value of an attribute. */
function normalTagged(name: string, tagged: Tagged): unknown {
  switch (tagged.type) {
    case 'string':
    case 'bool':
      return tagged.value;
    case 'int64':
      return `int64:${tagged.value as string}`;
    case 'float64':
      return `double:${tagged.value as number}`;
    case 'timestamp': {
      const nanos = BigInt(tagged.unixNanos!);
      const seconds = nanos / 1_000_000_000n - (nanos % 1_000_000_000n < 0n ? 1n : 0n);
      return `timestamp:${new Timestamp(Number(seconds), Number(nanos - seconds * 1_000_000_000n))}`;
    }
    case 'duration':
      return `duration:${tagged.value as string}`;
    case 'bytes':
      return STANDARD_MANIFEST.find(name)?.valueType === ValueType.IP_ADDRESS
        ? `ip:${tagged.hex!}`
        : `bytes:${tagged.hex!}`;
    case 'stringmap':
      return Object.fromEntries(Object.entries(tagged.value as Record<string, string>).sort());
    default:
      throw new Error(`no comparison for tagged type ${tagged.type}`);
  }
}

function assertSameBag(ours: Bag, theirs: Record<string, Tagged>): void {
  assert.deepEqual([...ours.names()].sort(), Object.keys(theirs).sort());
  for (const [name, tagged] of Object.entries(theirs)) {
    assert.deepEqual(normal(ours.get(name)), normalTagged(name, tagged), name);
  }
}

const vectors = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Vector] as const);

describe('attributes: requests encoded by Istio decode as Mixer decoded them', () => {
  it('has the vectors, and every refused one exists', () => {
    assert.ok(vectors.length >= 19);
    for (const name of REFUSED.keys())
      assert.ok(
        vectors.some(([n]) => n === name),
        name,
      );
  });

  for (const [name, vector] of vectors) {
    const bytes = Buffer.from(vector.base64, 'base64');
    const refusal = REFUSED.get(name);
    if (refusal !== undefined) {
      const [code, message] = refusal;
      it(`${name}: refused with ${code} (${vector.description.slice(0, 80)}…)`, () => {
        const decode = vector.kind === 'CheckRequest' ? decodeCheckRequest : decodeReportRequest;
        assert.throws(
          () => decode(bytes),
          (err: unknown) =>
            err instanceof AttributeDecodeError && err.code === code && err.message === message,
        );
      });
      continue;
    }
    it(`${name}: ${vector.description.slice(0, 100)}…`, () => {
      assert.equal(vector.expected.serverError, null, 'a vector Mixer rejected must be listed as refused');
      if (vector.kind === 'CheckRequest') {
        const decoded = decodeCheckRequest(bytes);
        assertSameBag(decoded.attributes, vector.expected.bag!);
        assert.equal(decoded.deduplicationId, vector.expected.deduplicationId);
        assert.equal(decoded.globalWordCount, vector.expected.globalWordCount);
        assert.deepEqual(
          Object.fromEntries(
            [...decoded.quotas].map(([q, p]) => [q, { amount: String(p.amount), bestEffort: p.bestEffort }]),
          ),
          vector.expected.quotas,
        );
        if (vector.toProtoBase64 !== undefined) {
          // Istio's encoder numbered message words in another order: the bag is the same.
          assertSameBag(
            decodeCheckRequest(Buffer.from(vector.toProtoBase64, 'base64')).attributes,
            vector.expected.bag!,
          );
        }
      } else {
        const bags = decodeReportRequest(bytes);
        assert.equal(bags.length, vector.expected.bags!.length);
        bags.forEach((bag, i) => assertSameBag(bag, vector.expected.bags![i]!));
      }
    });
  }
});

describe('attributes: referenced attributes encode as Mixer encoded them', () => {
  const probed = vectors.filter(([, v]) => v.referencedProbe !== undefined);

  it('has the probes', () => assert.equal(probed.length, 2));

  for (const [name, vector] of probed) {
    it(`${name}: ${vector.referencedProbe!.lookups.join(', ')}`, () => {
      const decoded = decodeCheckRequest(Buffer.from(vector.base64, 'base64'));
      const bag = new ReferenceRecordingBag(decoded.attributes);
      for (const lookup of vector.referencedProbe!.lookups) {
        const m = /^(.*)\[(.*)\]$/.exec(lookup);
        if (m === null) bag.get(lookup);
        else (bag.get(m[1]!) as ReadonlyMap<string, string> | undefined)?.get(m[2]!);
      }
      const message = encodeReferencedAttributes(bag.references, {
        globalWordCount: decoded.globalWordCount,
      });
      const word = (index: number) => (index < 0 ? message.words[-index - 1]! : GLOBAL_DICTIONARY[index]!);
      const where = (index: number) => (index < 0 ? 'message' : `global:${index}`);
      const ours = message.attributeMatches.map((match) => ({
        name: word(match.name),
        nameWord: where(match.name),
        mapKey: match.mapKey === 0 ? null : word(match.mapKey),
        ...(match.mapKey === 0 ? {} : { mapKeyWord: where(match.mapKey) }),
        condition: match.condition === 1 ? 'ABSENCE' : 'EXACT',
      }));
      const order = (
        a: { name: string; mapKey: string | null },
        b: { name: string; mapKey: string | null },
      ) => `${a.name}[${a.mapKey ?? ''}]`.localeCompare(`${b.name}[${b.mapKey ?? ''}]`);
      assert.deepEqual(ours.sort(order), [...vector.referencedProbe!.referencedAttributes].sort(order));
    });
  }
});
