import { strict as assert } from 'node:assert';
import {
  AttributeBag,
  encodeCheckRequest,
  encodeReferencedAttributes,
  encodeReportRequest,
  IpAddress,
  Presence,
  ReferencedAttributes,
  type AttributeValue,
} from '../../attributes';
import {
  CheckRequest,
  ReferencedAttributes_Condition,
  ReportRequest,
} from '../../proto/generated/mixer/v1/mixer.pb';

function bag(...entries: [string, AttributeValue][]): AttributeBag {
  return new AttributeBag(entries);
}

const EMPTY_MAPS = {
  strings: {},
  int64s: {},
  doubles: {},
  bools: {},
  timestamps: {},
  durations: {},
  bytes: {},
  stringMaps: {},
};

describe('encodeCheckRequest', () => {
  const request = bag(
    ['request.path', '/x'],
    ['request.method', 'GET'],
    ['destination.port', 8080n],
    [
      'request.headers',
      new Map([
        [':path', '/x'],
        ['x-user', 'bob'],
      ]),
    ],
    ['source.ip', IpAddress.parse('10.0.0.1')!],
  );

  it('encodes words from the global dictionary, the rest as message words in order of first use', () => {
    const bytes = encodeCheckRequest({
      attributes: request,
      deduplicationId: 'd-1',
      quotas: new Map([['requestcount', { amount: 3n, bestEffort: true }]]),
    });
    assert.deepEqual(CheckRequest.decode(bytes), {
      attributes: {
        ...EMPTY_MAPS,
        words: ['/x', 'x-user', 'bob'],
        strings: { 17: -1, 19: 90 }, // request.path → "/x", request.method → GET
        int64s: { 151: 8080n }, // destination.port
        bytes: { 0: Buffer.from([10, 0, 0, 1]) }, // source.ip
        stringMaps: { 15: { entries: { 33: -1, [-2]: -3 } } }, // request.headers: :path, x-user
      },
      globalWordCount: 222,
      deduplicationId: 'd-1',
      quotas: { requestcount: { amount: 3n, bestEffort: true } },
    });
  });

  it('uses only the first globalWordCount global words', () => {
    const bytes = encodeCheckRequest(
      { attributes: bag(['request.path', '/x'], ['request.method', 'GET']) },
      {
        globalWordCount: 18,
      },
    );
    const decoded = CheckRequest.decode(bytes);
    assert.deepEqual(decoded.attributes?.words, ['/x', 'request.method', 'GET']);
    assert.deepEqual(decoded.attributes?.strings, { 17: -1, [-2]: -3 });
    assert.equal(decoded.globalWordCount, 18);
  });

  it('uses no global words when globalWordCount is 0', () => {
    const decoded = CheckRequest.decode(
      encodeCheckRequest({ attributes: bag(['request.method', 'GET']) }, { globalWordCount: 0 }),
    );
    assert.deepEqual(decoded.attributes?.words, ['request.method', 'GET']);
    assert.deepEqual(decoded.attributes?.strings, { [-1]: -2 });
    assert.equal(decoded.globalWordCount, 0);
  });

  const badOptions: [number, string][] = [
    [223, 'EncodeOptions.globalWordCount must be an integer from 0 to 222, got 223'],
    [-1, 'EncodeOptions.globalWordCount must be an integer from 0 to 222, got -1'],
    [1.5, 'EncodeOptions.globalWordCount must be an integer from 0 to 222, got 1.5'],
  ];
  for (const [globalWordCount, message] of badOptions) {
    it(`refuses globalWordCount ${globalWordCount}`, () => {
      assert.throws(() => encodeCheckRequest({ attributes: bag() }, { globalWordCount }), {
        name: 'RangeError',
        message,
      });
    });
  }

  it('refuses a quota amount beyond 64 bits', () => {
    const quotas = new Map([['requestcount', { amount: -(2n ** 63n) - 1n, bestEffort: false }]]);
    assert.throws(() => encodeCheckRequest({ attributes: bag(), quotas }), {
      name: 'RangeError',
      message: 'quota requestcount: amount -9223372036854775809 does not fit in a signed 64-bit integer',
    });
  });

  it('refuses an INT64 beyond 64 bits', () => {
    assert.throws(() => encodeCheckRequest({ attributes: bag(['request.size', 2n ** 63n]) }), {
      name: 'RangeError',
      message: 'attribute request.size: 9223372036854775808 does not fit in a signed 64-bit integer',
    });
  });
});

describe('encodeReportRequest', () => {
  const first = bag(['request.path', '/a'], ['request.method', 'GET'], ['response.code', 200n]);
  const second = bag(['request.path', '/a'], ['request.method', 'GET'], ['response.code', 503n]);
  const third = bag(['request.path', '/b'], ['request.method', 'GET'], ['response.code', 503n], ['x', true]);

  it('delta-encodes: later sets carry only what changed, all words in default_words', () => {
    const decoded = ReportRequest.decode(encodeReportRequest([first, second, third]));
    assert.deepEqual(decoded, {
      attributes: [
        { ...EMPTY_MAPS, words: [], strings: { 17: -1, 19: 90 }, int64s: { 30: 200n } },
        { ...EMPTY_MAPS, words: [], int64s: { 30: 503n } },
        { ...EMPTY_MAPS, words: [], strings: { 17: -2 }, bools: { [-3]: true } },
      ],
      repeatedAttributesSemantics: 0, // DELTA_ENCODING
      defaultWords: ['/a', '/b', 'x'],
      globalWordCount: 222,
    });
  });

  it('falls back to independent encoding when an attribute disappears', () => {
    const withoutMethod = bag(['request.path', '/a'], ['response.code', 200n]);
    const decoded = ReportRequest.decode(encodeReportRequest([first, withoutMethod]));
    assert.equal(decoded.repeatedAttributesSemantics, 1); // INDEPENDENT_ENCODING
    assert.deepEqual(decoded.attributes[1], {
      ...EMPTY_MAPS,
      words: [],
      strings: { 17: -1 },
      int64s: { 30: 200n },
    });
  });

  it('deltas and removals of attributes outside the global dictionary too', () => {
    const a = bag(['request.path', '/a'], ['x', true], ['y', 'same']);
    const b = bag(['request.path', '/a'], ['x', false], ['y', 'same']);
    const delta = ReportRequest.decode(encodeReportRequest([a, b]));
    assert.equal(delta.repeatedAttributesSemantics, 0);
    assert.deepEqual(delta.attributes[1], { ...EMPTY_MAPS, words: [], bools: { [-2]: false } });
    const withoutY = bag(['request.path', '/a'], ['x', false]);
    assert.equal(ReportRequest.decode(encodeReportRequest([a, withoutY])).repeatedAttributesSemantics, 1);
  });

  it('encodes every set complete when asked to', () => {
    const decoded = ReportRequest.decode(encodeReportRequest([first, second], { independent: true }));
    assert.equal(decoded.repeatedAttributesSemantics, 1);
    assert.deepEqual(decoded.attributes[1], {
      ...EMPTY_MAPS,
      words: [],
      strings: { 17: -1, 19: 90 },
      int64s: { 30: 503n },
    });
  });

  it('encodes an empty batch', () => {
    assert.deepEqual(ReportRequest.decode(encodeReportRequest([])), {
      attributes: [],
      repeatedAttributesSemantics: 0,
      defaultWords: [],
      globalWordCount: 222,
    });
  });
});

describe('encodeReferencedAttributes', () => {
  const references = new ReferencedAttributes();
  references.recordAttribute('request.path', Presence.EXACT);
  references.recordAttribute('source.ip', Presence.ABSENCE);
  references.recordAttribute('my.attr', Presence.EXACT);
  references.recordMapKey('request.headers', ':path', Presence.EXACT);
  references.recordMapKey('request.headers', 'x-user', Presence.ABSENCE);
  references.recordMapKey('request.headers', 'source.ip', Presence.ABSENCE);
  const { EXACT, ABSENCE } = ReferencedAttributes_Condition;

  it('encodes names and map keys as indices, with ABSENCE and EXACT conditions', () => {
    assert.deepEqual(encodeReferencedAttributes(references), {
      words: ['my.attr', 'x-user', 'source.ip'],
      attributeMatches: [
        { name: 17, condition: EXACT, regex: '', mapKey: 0 },
        { name: 0, condition: ABSENCE, regex: '', mapKey: 0 },
        { name: -1, condition: EXACT, regex: '', mapKey: 0 },
        { name: 15, condition: EXACT, regex: '', mapKey: 33 },
        { name: 15, condition: ABSENCE, regex: '', mapKey: -2 },
        // source.ip is global word 0, but map_key 0 reads as "no key": a message word instead.
        { name: 15, condition: ABSENCE, regex: '', mapKey: -3 },
      ],
    });
  });

  it('uses message words beyond the request’s global word count', () => {
    assert.deepEqual(encodeReferencedAttributes(references, { globalWordCount: 16 }), {
      words: ['request.path', 'my.attr', ':path', 'x-user', 'source.ip'],
      attributeMatches: [
        { name: -1, condition: EXACT, regex: '', mapKey: 0 },
        { name: 0, condition: ABSENCE, regex: '', mapKey: 0 },
        { name: -2, condition: EXACT, regex: '', mapKey: 0 },
        { name: 15, condition: EXACT, regex: '', mapKey: -3 },
        { name: 15, condition: ABSENCE, regex: '', mapKey: -4 },
        { name: 15, condition: ABSENCE, regex: '', mapKey: -5 },
      ],
    });
  });
});
