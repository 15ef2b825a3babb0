import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  AttributeBag,
  AttributeDecodeError,
  decodeCheckRequest,
  decodeReportRecords,
  decodeReportRequest,
  Duration,
  encodeCheckRequest,
  encodeReportRequest,
  GLOBAL_DICTIONARY,
  GLOBAL_WORD_INDEX,
  IpAddress,
  STANDARD_MANIFEST,
  Timestamp,
  ValueType,
} from '../../attributes';
import { attributesPb, mixer } from '../../proto';

type CompressedAttributes = attributesPb.CompressedAttributes;
const CheckRequest = mixer.CheckRequest;
import { bag, reportBatch } from './arbitraries';
import { checkRequest, lengthField, stringMaps } from './proto-bytes';
import { referenceDecode } from './reference-decoder';
import { plain } from './plain-bags';

/** Runs `decode`; anything it throws must be an AttributeDecodeError. */
function decodesOrRefuses(decode: () => unknown): void {
  try {
    decode();
  } catch (e) {
    if (!(e instanceof AttributeDecodeError)) throw e;
  }
}

/** Outcome of a decode, for comparing two decoders: a bag, or the fact of an error. */
function outcome(decode: () => AttributeBag): AttributeBag | 'error' {
  try {
    return decode();
  } catch (e) {
    if (e instanceof AttributeDecodeError) return 'error';
    throw e;
  }
}

const globalWordCount = fc.oneof(
  fc.constant(undefined),
  fc.integer({ min: 0, max: GLOBAL_DICTIONARY.length }),
);

/** A CompressedAttributes with nothing in it. */
const EMPTY_SET: CompressedAttributes = {
  words: [],
  strings: {},
  int64s: {},
  doubles: {},
  bools: {},
  timestamps: {},
  durations: {},
  bytes: {},
  stringMaps: {},
};

/** A rich Check request: every value type, global and message words, headers. */
const richBag = new AttributeBag([
  ['request.path', '/api/v1/products/42?x=1'],
  ['request.method', 'GET'],
  ['request.host', 'productpage.default.svc.cluster.local'],
  ['request.size', 2n ** 60n + 7n],
  ['response.code', -1n],
  ['request.time', new Timestamp(1700000000, 123456789)],
  ['response.duration', new Duration(-3, -500)],
  ['connection.mtls', true],
  ['source.ip', IpAddress.parse('10.1.2.3')!],
  ['destination.ip', IpAddress.parse('2001:db8::1')!],
  ['custom.ratio', 0.25],
  ['custom.blob', Uint8Array.from([0, 1, 2, 255])],
  [
    'request.headers',
    new Map([
      [':path', '/api/v1/products/42?x=1'],
      [':method', 'GET'],
      ['user-agent', 'curl/8.0 ünïcode'],
      ['x-request-id', 'a3f1c6e2-0b7d-4c55-9d2e-6f1f0c9b2a11'],
    ]),
  ],
]);

describe('wire codec properties', () => {
  it('round-trips a Check: decode(encode(bag)) equals the bag', () => {
    fc.assert(
      fc.property(bag, globalWordCount, (attributes, count) => {
        const bytes = encodeCheckRequest({ attributes }, { globalWordCount: count });
        assert.deepEqual(plain(decodeCheckRequest(bytes).attributes), attributes);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips a Report batch, delta-encoded or independent', () => {
    fc.assert(
      fc.property(reportBatch, globalWordCount, fc.boolean(), (bags, count, independent) => {
        const bytes = encodeReportRequest(bags, { globalWordCount: count, independent });
        assert.deepEqual(plain(decodeReportRequest(bytes)), bags);
      }),
      { numRuns: 200 },
    );
  });

  it('decodes what the generated decoder decodes, on encoder output', () => {
    fc.assert(
      fc.property(bag, globalWordCount, (attributes, count) => {
        const bytes = encodeCheckRequest({ attributes }, { globalWordCount: count });
        const message = CheckRequest.decode(bytes);
        // The generated decoder drops a leading byte order mark from strings; ours keeps it.
        fc.pre(!message.attributes!.words.some((w) => w.startsWith('\uFEFF')));
        assert.deepEqual(
          plain(decodeCheckRequest(bytes).attributes),
          referenceDecode(message.attributes!, message.globalWordCount, STANDARD_MANIFEST),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('agrees with the generated decoder on arbitrary CompressedAttributes, valid or not', () => {
    fc.assert(
      fc.property(
        compressedAttributes,
        fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom(0, GLOBAL_DICTIONARY.length) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 230 }) },
        ),
        (attributes, count) => {
          const bytes = CheckRequest.encode({
            attributes,
            globalWordCount: count,
            deduplicationId: '',
            quotas: {},
          }).finish();
          const decoded = CheckRequest.decode(bytes);
          assert.deepEqual(
            plain(outcome(() => decodeCheckRequest(bytes).attributes)),
            outcome(() => referenceDecode(decoded.attributes!, decoded.globalWordCount, STANDARD_MANIFEST)),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it('decodes a Report set, delta or not, as the Check decoder decodes the same attributes, or refuses it with the same message', () => {
    // The Report path fills a delta (no bag per set, repeats found by stamps); the Check path
    // fills a bag. Set 1 goes on top of set 0, the same message as an unrelated base.
    const base = new AttributeBag([
      ['request.path', '/base'],
      ['response.code', 1n],
    ]);
    fc.assert(
      fc.property(compressedAttributes, fc.boolean(), (attributes, delta) => {
        const checkBytes = CheckRequest.encode({
          attributes,
          globalWordCount: 0,
          deduplicationId: '',
          quotas: {},
        }).finish();
        let expected: AttributeBag | string;
        try {
          expected = decodeCheckRequest(checkBytes).attributes;
          if (delta) expected = base.clone().assign(expected);
        } catch (e) {
          if (!(e instanceof AttributeDecodeError)) throw e;
          // A set without words of its own uses the Report's default words (none here).
          const message =
            attributes.words.length === 0
              ? e.message.replace('the message has 0 words', 'the request has 0 default words')
              : e.message;
          expected = `attribute set 1: ${message}`;
        }
        const reportBytes = mixer.ReportRequest.encode({
          attributes: [
            { ...EMPTY_SET, words: ['/base'], strings: { 17: -1 }, int64s: { 30: 1n } },
            attributes,
          ],
          defaultWords: [],
          globalWordCount: 0,
          repeatedAttributesSemantics: delta
            ? mixer.ReportRequest_RepeatedAttributesSemantics.DELTA_ENCODING
            : mixer.ReportRequest_RepeatedAttributesSemantics.INDEPENDENT_ENCODING,
        }).finish();
        const records: AttributeBag[] = [];
        let actual: AttributeBag | string;
        try {
          decodeReportRecords(reportBytes, STANDARD_MANIFEST, { add: (r) => records.push(r.clone()) });
          actual = records[1]!;
        } catch (e) {
          if (!(e instanceof AttributeDecodeError)) throw e;
          actual = e.message;
        }
        assert.deepEqual(plain(actual), plain(expected));
        // Only checking (no sink) refuses exactly what decoding refuses.
        let checked: string;
        try {
          decodeReportRecords(reportBytes);
          checked = 'ok';
        } catch (e) {
          if (!(e instanceof AttributeDecodeError)) throw e;
          checked = e.message;
        }
        assert.equal(checked, typeof expected === 'string' ? expected : 'ok');
      }),
      { numRuns: 1000 },
    );
  });

  it('hands the records of a Report to a sink one by one, the same bags decodeReportRequest makes', () => {
    fc.assert(
      fc.property(reportBatch, globalWordCount, fc.boolean(), (bags, count, independent) => {
        const bytes = encodeReportRequest(bags, { globalWordCount: count, independent });
        const records: AttributeBag[] = [];
        const n = decodeReportRecords(bytes, STANDARD_MANIFEST, { add: (r) => records.push(r.clone()) });
        assert.equal(n, bags.length);
        assert.equal(decodeReportRecords(bytes), bags.length);
        assert.deepEqual(plain(records), plain(decodeReportRequest(bytes)));
        assert.deepEqual(plain(records), bags);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a corrupted Report with the same message whether it is decoded into bags, records or only checked', () => {
    const second = richBag.clone().set('response.code', 200n).set('request.path', '/other');
    const report = encodeReportRequest([richBag, second, second.clone().set('request.method', 'PUT')]);
    const messageOf = (decode: () => unknown): string => {
      try {
        decode();
        return 'ok';
      } catch (e) {
        if (!(e instanceof AttributeDecodeError)) throw e;
        return e.message;
      }
    };
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (edits) => {
          const r = Uint8Array.from(report);
          for (const [at, value] of edits) r[at % r.length] = value;
          const expected = messageOf(() => decodeReportRequest(r));
          assert.equal(
            messageOf(() => decodeReportRecords(r, STANDARD_MANIFEST, { add: () => undefined })),
            expected,
          );
          assert.equal(
            messageOf(() => decodeReportRecords(r)),
            expected,
          );
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('decodes words, valid UTF-8 or not, as TextDecoder decodes each on its own', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 12 }),
            fc.string({ unit: 'grapheme', maxLength: 6 }).map((t) => Uint8Array.from(Buffer.from(t))),
          ),
          { minLength: 1, maxLength: 8 },
        ),
        (raw) => {
          // request.headers maps global words 100, 101, … to the message words in order.
          const bytes = checkRequest([
            ...raw.flatMap((w) => lengthField(1, [...w])),
            ...stringMaps(15, ...raw.map((_, i): [number, number] => [100 + i, -i - 1])),
          ]);
          const headers = decodeCheckRequest(bytes).attributes.get('request.headers') as ReadonlyMap<
            string,
            string
          >;
          // ignoreBOM keeps a leading U+FEFF, as protobuf strings do (and ts-proto does not).
          const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
          assert.deepEqual(
            plain(raw.map((_, i) => headers.get(GLOBAL_DICTIONARY[100 + i]!))),
            raw.map((w) => decoder.decode(w)),
          );
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('throws only AttributeDecodeError for a Check truncated at any byte', () => {
    const bytes = encodeCheckRequest({
      attributes: richBag,
      deduplicationId: 'dedup-1',
      quotas: new Map([['requestcount', { amount: 5n, bestEffort: true }]]),
    });
    for (let end = 0; end < bytes.length; end++)
      decodesOrRefuses(() => decodeCheckRequest(bytes.subarray(0, end)));
  });

  it('throws only AttributeDecodeError for a Report truncated at any byte', () => {
    const second = richBag.clone().set('response.code', 200n).set('request.path', '/other');
    const bytes = encodeReportRequest([richBag, second]);
    for (let end = 0; end < bytes.length; end++)
      decodesOrRefuses(() => decodeReportRequest(bytes.subarray(0, end)));
  });

  it('throws only AttributeDecodeError for corrupted bytes', () => {
    const check = encodeCheckRequest({ attributes: richBag });
    const report = encodeReportRequest([richBag, richBag.clone().set('request.method', 'POST')]);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (edits) => {
          const c = Uint8Array.from(check);
          const r = Uint8Array.from(report);
          for (const [at, value] of edits) {
            c[at % c.length] = value;
            r[at % r.length] = value;
          }
          decodesOrRefuses(() => decodeCheckRequest(c));
          decodesOrRefuses(() => decodeReportRequest(r));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('throws only AttributeDecodeError for random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        decodesOrRefuses(() => decodeCheckRequest(bytes));
        decodesOrRefuses(() => decodeReportRequest(bytes));
      }),
      { numRuns: 2000 },
    );
  });
});

type MapName =
  'strings' | 'int64s' | 'doubles' | 'bools' | 'timestamps' | 'durations' | 'bytes' | 'stringMaps';

/** Global indices whose word the standard manifest does not type, or types to fit `map`. */
function globalNamesFitting(map: readonly ValueType[]): number[] {
  const fitting: number[] = [];
  GLOBAL_DICTIONARY.forEach((word, index) => {
    const type = STANDARD_MANIFEST.find(word)?.valueType;
    if (type === undefined || map.includes(type)) fitting.push(index);
  });
  return fitting;
}

/**
 * Arbitrary CompressedAttributes as the generated classes hold them: mostly valid (names
 * that fit their map, indices in range, values within their limits) and sometimes not.
 * Message words are distinct and outside the dictionary, so no two indices name the same
 * word: the two decoders visit entries in different orders, and would otherwise pick
 * different "last" entries.
 */
const compressedAttributes: fc.Arbitrary<CompressedAttributes> = fc
  .uniqueArray(
    fc.oneof(
      fc.constantFrom('x.custom', 'ratio', 'blob', 'origin.ip', 'user@example.com'),
      fc.string({ maxLength: 8 }),
      fc.string({ unit: 'grapheme', maxLength: 4 }),
    ),
    { maxLength: 6 },
  )
  // A leading byte order mark is left out: the generated decoder drops it, ours keeps it.
  .map((words) => words.filter((w) => !GLOBAL_WORD_INDEX.has(w) && !w.startsWith('\uFEFF')))
  .chain((words) => {
    const outOfRange = fc.constantFrom(GLOBAL_DICTIONARY.length, -words.length - 1, 2 ** 31 - 1, -(2 ** 31));
    const messageIndex = words.length > 0 ? fc.integer({ min: -words.length, max: -1 }) : outOfRange;
    const index = fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 0, max: GLOBAL_DICTIONARY.length - 1 }) },
      { weight: 6, arbitrary: messageIndex },
      { weight: 1, arbitrary: outOfRange },
    );
    const name = (types: readonly ValueType[]) =>
      fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom(...globalNamesFitting(types)) },
        { weight: 4, arbitrary: messageIndex },
        { weight: 1, arbitrary: index },
      );
    const anyInt64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    const secondsNanos = (seconds: fc.Arbitrary<bigint>, nanos: fc.Arbitrary<number>) =>
      fc.record({ seconds, nanos });
    const timestamp = fc.oneof(
      {
        weight: 8,
        arbitrary: secondsNanos(
          fc.bigInt({ min: -62135596800n, max: 253402300799n }),
          fc.integer({ min: 0, max: 999999999 }),
        ),
      },
      { weight: 1, arbitrary: secondsNanos(anyInt64, fc.integer()) },
    );
    const duration = fc.oneof(
      {
        weight: 8,
        arbitrary: fc
          .tuple(
            fc.bigInt({ min: 0n, max: 315576000000n }),
            fc.integer({ min: 0, max: 999999999 }),
            fc.boolean(),
          )
          .map(([seconds, nanos, negative]) =>
            negative ? { seconds: -seconds, nanos: 0 - nanos } : { seconds, nanos },
          ),
      },
      { weight: 1, arbitrary: secondsNanos(anyInt64, fc.integer()) },
    );
    const valueMap = (key: fc.Arbitrary<number>, value: fc.Arbitrary<number>) =>
      fc
        .array(fc.tuple(key, value), { maxLength: 3 })
        .map((entries) => ({ entries: Object.fromEntries(entries) }));
    const { STRING, INT64, DOUBLE, BOOL, TIMESTAMP, DURATION, BYTES, IP_ADDRESS, STRING_MAP } = ValueType;
    const kinds: [MapName, ValueType[], fc.Arbitrary<unknown>][] = [
      ['strings', [STRING], index],
      ['int64s', [INT64], anyInt64],
      ['doubles', [DOUBLE], fc.double()],
      ['bools', [BOOL], fc.boolean()],
      ['timestamps', [TIMESTAMP], timestamp],
      ['durations', [DURATION], duration],
      [
        'bytes',
        [BYTES, IP_ADDRESS],
        fc
          .oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ maxLength: 17 }))
          .map((b) => Buffer.from(b)),
      ],
      ['stringMaps', [STRING_MAP], valueMap(index, index)],
    ];
    // Distinct name indices, each in one map: a name given twice is tested by hand.
    const entry = fc
      .constantFrom(...kinds)
      .chain(([map, types, value]) => fc.tuple(fc.constant(map), name(types), value));
    return fc.uniqueArray(entry, { selector: ([, key]) => key, maxLength: 10 }).map((entries) => {
      const message = attributesPb.CompressedAttributes.fromPartial({ words });
      for (const [map, key, value] of entries) (message[map] as Record<number, unknown>)[key] = value;
      return message;
    });
  });
