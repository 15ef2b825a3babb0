/**
 * The hand-written CheckResponse encoder against its reference, the generated code:
 * `mixer.CheckResponse.encode(toCheckResponse(outcome, count))`. Its bytes must decode to
 * the same message, and be the same bytes whenever the reference's order of quotas is the
 * outcome's (see `sameQuotaOrder`).
 */
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { GLOBAL_DICTIONARY, Presence, ReferencedAttributes } from '../../attributes';
import {
  encodeCheckResponse,
  toCheckResponse,
  type CheckOutcome,
  type HeaderOperation,
  type QuotaOutcome,
} from '../../policy-server';
import { mixer } from '../../proto';
import type { Status } from '../../templates';
import { word } from '../attributes/arbitraries';

const OK: Status = { code: 0, message: '' };

function reference(outcome: CheckOutcome, globalWordCount: number): Uint8Array {
  return mixer.CheckResponse.encode(toCheckResponse(outcome, globalWordCount)).finish();
}

/**
 * Whether the reference writes the quotas in the outcome's order: it builds them as an
 * object, whose integer-like keys come first, in numeric order.
 */
function sameQuotaOrder(outcome: CheckOutcome): boolean {
  for (const name of outcome.quotas.keys()) if (/^(0|[1-9][0-9]*)$/.test(name)) return false;
  return true;
}

/** Asserts the encoder's bytes against the reference's. */
function assertEncodesAsReference(outcome: CheckOutcome, globalWordCount: number): Buffer {
  const bytes = encodeCheckResponse(outcome, globalWordCount);
  const expected = reference(outcome, globalWordCount);
  assert.deepStrictEqual(mixer.CheckResponse.decode(bytes), mixer.CheckResponse.decode(expected));
  if (sameQuotaOrder(outcome)) assert.deepEqual(bytes, Buffer.from(expected));
  return bytes;
}

function references(
  entries: ReadonlyArray<{ name: string; mapKey?: string | undefined; presence: Presence }>,
): ReferencedAttributes {
  const refs = new ReferencedAttributes();
  for (const { name, mapKey, presence } of entries) {
    if (mapKey === undefined) refs.recordAttribute(name, presence);
    else refs.recordMapKey(name, mapKey, presence);
  }
  return refs;
}

function outcomeOf(fields: Partial<CheckOutcome>): CheckOutcome {
  return {
    status: OK,
    validDurationMs: 60_000,
    validUseCount: 10_000,
    references: new ReferencedAttributes(),
    requestHeaderOperations: [],
    responseHeaderOperations: [],
    quotas: new Map(),
    ...fields,
  };
}

// --- Arbitraries ---------------------------------------------------------------------------

/** Any text: ASCII, graphemes, and lone surrogates (which UTF-8 writes as U+FFFD). */
const text = fc.oneof(
  fc.constant(''),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.string({ minLength: 60, maxLength: 300 }),
);

const int32 = fc.oneof(fc.integer({ min: -5, max: 200 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));

const status: fc.Arbitrary<Status> = fc.oneof(fc.constant(OK), fc.record({ code: int32, message: text }));

/** Validities in ms: fractions round, negatives become 0; up to the largest Duration. */
const validityMs = fc.oneof(
  fc.integer({ min: -1000, max: 100_000 }),
  fc.integer({ min: 0, max: 2 ** 53 - 1 }),
  fc.double({ min: -10, max: 9.2e21, noNaN: true }),
  fc.constantFrom(0, 0.4, 0.5, 999.5, 1000, 2 ** 31 * 1000, 2 ** 53, 9.2e21),
);

const referencedAttributes: fc.Arbitrary<ReferencedAttributes> = fc
  .array(
    fc.record({
      name: word,
      mapKey: fc.option(word, { nil: undefined }),
      presence: fc.constantFrom(Presence.ABSENCE, Presence.EXACT),
    }),
    { maxLength: 40 },
  )
  .map(references);

const headerOperation: fc.Arbitrary<HeaderOperation> = fc.record({
  name: fc.oneof(text, fc.constantFrom('x-user', ':authority')),
  value: text,
  operation: fc.constantFrom('REPLACE', 'REMOVE', 'APPEND'),
});

const quotaOutcome: fc.Arbitrary<QuotaOutcome> = fc.record({
  status,
  grantedAmount: fc.oneof(
    fc.constantFrom(0n, 1n, 127n, 128n, -1n, 2n ** 63n - 1n, -(2n ** 63n)),
    fc.bigInt({ min: 0n, max: 10_000n }),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  ),
  validDurationMs: validityMs,
});

const quotas: fc.Arbitrary<ReadonlyMap<string, QuotaOutcome>> = fc
  .uniqueArray(
    fc.tuple(
      // Not __proto__: the reference builds the quotas as a plain object, where assigning that
      // key sets the prototype instead, so it drops the quota (the encoder writes it).
      fc.oneof(text, fc.constantFrom('requestcount', '0', '7', '42')).filter((name) => name !== '__proto__'),
      quotaOutcome,
    ),
    { selector: ([name]) => name, maxLength: 4 },
  )
  .map((entries) => new Map(entries));

const checkOutcome: fc.Arbitrary<CheckOutcome> = fc.record({
  status,
  validDurationMs: validityMs,
  validUseCount: int32,
  references: referencedAttributes,
  requestHeaderOperations: fc.array(headerOperation, { maxLength: 4 }),
  responseHeaderOperations: fc.array(headerOperation, { maxLength: 4 }),
  quotas,
});

const globalWordCount = fc.oneof(
  fc.constant(GLOBAL_DICTIONARY.length),
  fc.constant(0),
  fc.integer({ min: 0, max: GLOBAL_DICTIONARY.length }),
);

// --- Tests ---------------------------------------------------------------------------------

describe('policy-server: encodeCheckResponse', () => {
  it('writes the bytes the generated encoder writes for any outcome', () => {
    fc.assert(
      fc.property(checkOutcome, globalWordCount, (outcome, count) => {
        assertEncodesAsReference(outcome, count);
      }),
      { numRuns: 500 },
    );
  });

  it("writes a typical Check's answer: references once per result, in the request's dictionary", () => {
    const refs = references([
      { name: 'source.ip', presence: Presence.EXACT }, // global word 0: no name field
      { name: 'request.path', presence: Presence.EXACT },
      { name: 'request.headers', mapKey: 'x-user', presence: Presence.ABSENCE },
      { name: 'destination.labels', mapKey: 'app', presence: Presence.EXACT },
      { name: 'source.labels', mapKey: 'app', presence: Presence.EXACT },
      { name: 'no.such.attribute', presence: Presence.ABSENCE },
    ]);
    const outcome = outcomeOf({
      references: refs,
      quotas: new Map([
        ['requestcount', { status: OK, grantedAmount: 1n, validDurationMs: 978 }],
        ['bytes', { status: { code: 8, message: 'quota exhausted' }, grantedAmount: 0n, validDurationMs: 0 }],
      ]),
    });
    const bytes = assertEncodesAsReference(outcome, GLOBAL_DICTIONARY.length);
    const decoded = mixer.CheckResponse.decode(bytes);
    const expected: mixer.ReferencedAttributes = {
      // Attributes first, then map keys, each in the order first read.
      words: ['no.such.attribute', 'x-user', 'app'],
      attributeMatches: [
        { name: 0, condition: mixer.ReferencedAttributes_Condition.EXACT, regex: '', mapKey: 0 },
        {
          name: GLOBAL_DICTIONARY.indexOf('request.path'),
          condition: mixer.ReferencedAttributes_Condition.EXACT,
          regex: '',
          mapKey: 0,
        },
        { name: -1, condition: mixer.ReferencedAttributes_Condition.ABSENCE, regex: '', mapKey: 0 },
        {
          name: GLOBAL_DICTIONARY.indexOf('request.headers'),
          condition: mixer.ReferencedAttributes_Condition.ABSENCE,
          regex: '',
          mapKey: -2,
        },
        {
          name: GLOBAL_DICTIONARY.indexOf('destination.labels'),
          condition: mixer.ReferencedAttributes_Condition.EXACT,
          regex: '',
          mapKey: -3,
        },
        {
          name: GLOBAL_DICTIONARY.indexOf('source.labels'),
          condition: mixer.ReferencedAttributes_Condition.EXACT,
          regex: '',
          mapKey: -3,
        },
      ],
    };
    assert.deepStrictEqual(decoded.precondition?.referencedAttributes, expected);
    assert.deepStrictEqual(decoded.quotas['requestcount']?.referencedAttributes, expected);
    assert.deepStrictEqual(decoded.quotas['bytes']?.referencedAttributes, expected);
    assert.deepStrictEqual(decoded.quotas['requestcount']?.validDuration, {
      seconds: 0n,
      nanos: 978_000_000,
    });
    assert.equal(decoded.quotas['bytes']?.grantedAmount, 0n);
    assert.deepStrictEqual(decoded.precondition?.validDuration, { seconds: 60n, nanos: 0 });
    assert.equal(decoded.precondition?.validUseCount, 10_000);
    assert.equal(decoded.precondition?.routeDirective, undefined);
  });

  it("writes words beyond the request's global word count, and a map key that is global word 0, as message words", () => {
    const outcome = outcomeOf({
      references: references([
        { name: 'request.path', presence: Presence.EXACT },
        { name: 'request.headers', mapKey: GLOBAL_DICTIONARY[0]!, presence: Presence.EXACT },
      ]),
    });
    for (const count of [0, GLOBAL_DICTIONARY.indexOf('request.path'), GLOBAL_DICTIONARY.length]) {
      assertEncodesAsReference(outcome, count);
    }
    const none = mixer.CheckResponse.decode(encodeCheckResponse(outcome, 0)).precondition
      ?.referencedAttributes;
    assert.deepEqual(none?.words, ['request.path', 'request.headers', 'source.ip']);
    const all = mixer.CheckResponse.decode(encodeCheckResponse(outcome, GLOBAL_DICTIONARY.length))
      .precondition?.referencedAttributes;
    assert.deepEqual(all?.words, ['source.ip']);
    assert.equal(all?.attributeMatches[1]?.mapKey, -1);
  });

  it('writes many message words (past the few it finds by scanning) each once', () => {
    // Sizes around the switch from scanning the words to a map of them, each word used again.
    for (const count of [15, 16, 17, 18, 40]) {
      const names = Array.from({ length: count }, (_, i) => `custom.attribute.${i}`);
      const outcome = outcomeOf({
        references: references([
          ...names.map((name) => ({ name, presence: Presence.EXACT })),
          ...names.map((key) => ({ name: 'request.headers', mapKey: key, presence: Presence.EXACT })),
        ]),
      });
      const bytes = assertEncodesAsReference(outcome, GLOBAL_DICTIONARY.length);
      assert.deepEqual(mixer.CheckResponse.decode(bytes).precondition?.referencedAttributes?.words, names);
    }
  });

  it('writes header operations as a RouteDirective, and statuses, validities and counts at their limits', () => {
    const outcome = outcomeOf({
      status: { code: -1, message: 'über: denied ✓' },
      validDurationMs: 9.2e21,
      validUseCount: -(2 ** 31),
      requestHeaderOperations: [
        { name: 'x-user', value: 'anonymous', operation: 'REPLACE' },
        { name: 'x-user', value: 'second', operation: 'APPEND' },
      ],
      responseHeaderOperations: [{ name: 'server', value: '', operation: 'REMOVE' }],
      quotas: new Map([
        ['', { status: OK, grantedAmount: -(2n ** 63n), validDurationMs: -5 }],
        ['max', { status: OK, grantedAmount: 2n ** 63n - 1n, validDurationMs: 0.5 }],
      ]),
    });
    const decoded = mixer.CheckResponse.decode(assertEncodesAsReference(outcome, 0));
    assert.deepStrictEqual(decoded.precondition?.routeDirective, {
      requestHeaderOperations: [
        { name: 'x-user', value: 'anonymous', operation: mixer.HeaderOperation_Operation.REPLACE },
        { name: 'x-user', value: 'second', operation: mixer.HeaderOperation_Operation.APPEND },
      ],
      responseHeaderOperations: [
        { name: 'server', value: '', operation: mixer.HeaderOperation_Operation.REMOVE },
      ],
      directResponseCode: 0,
      directResponseBody: '',
    });
    assert.deepStrictEqual(decoded.precondition?.status, {
      code: -1,
      message: 'über: denied ✓',
      details: [],
    });
    assert.equal(decoded.precondition?.validDuration?.seconds, BigInt(Math.floor(9.2e21 / 1000)));
    assert.equal(decoded.quotas['']?.grantedAmount, -(2n ** 63n));
    assert.equal(decoded.quotas['max']?.validDuration?.nanos, 1_000_000);
  });

  it('writes an empty outcome with every always-present message, empty', () => {
    const outcome = outcomeOf({ validDurationMs: 0, validUseCount: 0 });
    const bytes = assertEncodesAsReference(outcome, 0);
    // precondition { status {} valid_duration {} referenced_attributes {} }
    assert.deepEqual([...bytes], [0x12, 0x06, 0x0a, 0x00, 0x12, 0x00, 0x2a, 0x00]);
  });

  it('refuses what the generated encoder refuses, with a RangeError', () => {
    const refusals: Array<[string, CheckOutcome, number]> = [
      ['a global word count beyond the dictionary', outcomeOf({}), GLOBAL_DICTIONARY.length + 1],
      ['a fractional global word count', outcomeOf({}), 1.5],
      ['a status code beyond int32', outcomeOf({ status: { code: 2 ** 31, message: '' } }), 0],
      ['a fractional use count', outcomeOf({ validUseCount: 0.5 }), 0],
      ['an infinite validity', outcomeOf({ validDurationMs: Infinity }), 0],
      ['a validity of NaN', outcomeOf({ validDurationMs: NaN }), 0],
      ['seconds beyond int64', outcomeOf({ validDurationMs: 1e22 }), 0],
      [
        'a granted amount beyond int64',
        outcomeOf({ quotas: new Map([['q', { status: OK, grantedAmount: 2n ** 63n, validDurationMs: 1 }]]) }),
        0,
      ],
    ];
    for (const [what, outcome, count] of refusals) {
      assert.throws(() => reference(outcome, count), Error, `${what}: the reference refuses it too`);
      assert.throws(() => encodeCheckResponse(outcome, count), RangeError, what);
    }
  });
});
