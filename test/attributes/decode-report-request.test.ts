import { strict as assert } from 'node:assert';
import {
  AttributeBag,
  AttributeDecodeError,
  decodeReportRecords,
  decodeReportRequest,
  type AttributeValue,
} from '../../attributes';
import { int64s, reportRequest, stringMaps, strings, words, type Bytes } from './proto-bytes';
import { plain } from './plain-bags';

// Global dictionary indices (facts of istio/api's global_dictionary.yaml).
const REQUEST_HEADERS = 15;
const REQUEST_PATH = 17;
const REQUEST_METHOD = 19;
const RESPONSE_CODE = 30;
const PATH_HEADER = 33; // ":path"
const GET = 90;
const POST = 91;

const DELTA_ENCODING = 0;
const INDEPENDENT_ENCODING = 1;

function bag(...entries: [string, AttributeValue][]): AttributeBag {
  return new AttributeBag(entries);
}

/** The records decodeReportRecords hands a sink, each copied when handed. */
function records(bytes: Uint8Array): AttributeBag[] {
  const out: AttributeBag[] = [];
  decodeReportRecords(bytes, undefined, { add: (record) => out.push(record.clone()) });
  return out;
}

/** Every way of reading a Report refuses it the same: into bags, into records, or only checked. */
function expectError(bytes: Uint8Array, code: AttributeDecodeError['code'], message: string): void {
  for (const decode of [
    () => decodeReportRequest(bytes),
    () => records(bytes),
    () => decodeReportRecords(bytes),
  ]) {
    assert.throws(decode, (e: unknown) => {
      assert.ok(e instanceof AttributeDecodeError, `expected an AttributeDecodeError, got ${String(e)}`);
      assert.equal(e.message, message);
      assert.equal(e.code, code);
      return true;
    });
  }
}

describe('decodeReportRequest', () => {
  it('decodes an empty request to no bags', () => {
    assert.deepEqual(plain(decodeReportRequest(new Uint8Array(0))), []);
  });

  it('applies delta encoding: each set adds or replaces attributes of the bag before it', () => {
    const sets: Bytes[] = [
      // Set 0, complete: request.path = words[0], request.method = GET, response.code = 200.
      [...strings(REQUEST_PATH, -1), ...strings(REQUEST_METHOD, GET), ...int64s(RESPONSE_CODE, 200n)],
      // Set 1 changes response.code only.
      int64s(RESPONSE_CODE, 503n),
      // Set 2 changes the path and adds headers.
      [...strings(REQUEST_PATH, -2), ...stringMaps(REQUEST_HEADERS, [PATH_HEADER, -2])],
      // Set 3 replaces the headers whole: the old :path key does not survive.
      stringMaps(REQUEST_HEADERS, [-3, -1]),
      // Set 4 is empty: the same attributes again.
      [],
    ];
    const bags = decodeReportRequest(reportRequest(sets, { defaultWords: ['/a', '/b', 'x-user'] }));
    const set0: [string, AttributeValue][] = [
      ['request.path', '/a'],
      ['request.method', 'GET'],
      ['response.code', 200n],
    ];
    const set2: [string, AttributeValue][] = [
      ['request.path', '/b'],
      ['request.method', 'GET'],
      ['response.code', 503n],
      ['request.headers', new Map([[':path', '/b']])],
    ];
    const set3: [string, AttributeValue][] = [
      ['request.path', '/b'],
      ['request.method', 'GET'],
      ['response.code', 503n],
      ['request.headers', new Map([['x-user', '/a']])],
    ];
    assert.deepEqual(plain(bags), [
      bag(...set0),
      bag(['request.path', '/a'], ['request.method', 'GET'], ['response.code', 503n]),
      bag(...set2),
      bag(...set3),
      bag(...set3),
    ]);
  });

  it('returns bags independent of each other', () => {
    const bags = decodeReportRequest(reportRequest([strings(REQUEST_METHOD, GET), []]));
    bags[1]!.set('request.method', 'PUT');
    assert.equal(bags[0]!.get('request.method'), 'GET');
  });

  it('uses a set’s own words over default_words', () => {
    const bags = decodeReportRequest(
      reportRequest([strings(REQUEST_PATH, -1), [...words('/own'), ...strings(REQUEST_PATH, -1)]], {
        defaultWords: ['/default'],
      }),
    );
    assert.deepEqual(plain(bags.map((b) => b.get('request.path'))), ['/default', '/own']);
  });

  it('applies independent encoding: each set stands alone', () => {
    const bags = decodeReportRequest(
      reportRequest(
        [[...strings(REQUEST_METHOD, GET), ...int64s(RESPONSE_CODE, 200n)], strings(REQUEST_METHOD, POST)],
        {
          semantics: INDEPENDENT_ENCODING,
        },
      ),
    );
    assert.deepEqual(plain(bags), [
      bag(['request.method', 'GET'], ['response.code', 200n]),
      bag(['request.method', 'POST']),
    ]);
  });

  it('treats an explicit DELTA_ENCODING as the default', () => {
    const bags = decodeReportRequest(
      reportRequest([strings(REQUEST_METHOD, GET), int64s(RESPONSE_CODE, 200n)], {
        semantics: DELTA_ENCODING,
      }),
    );
    assert.deepEqual(plain(bags[1]), bag(['request.method', 'GET'], ['response.code', 200n]));
  });

  it('limits global words to global_word_count', () => {
    expectError(
      reportRequest([strings(REQUEST_METHOD, GET)], { globalWordCount: 50 }),
      'WORD_INDEX_OUT_OF_RANGE',
      'attribute set 0: value index 90 of attribute request.method is out of range: the request uses 50 global words',
    );
  });

  it('hands a sink the same records, delta sets applied, and counts them', () => {
    const bytes = reportRequest(
      [
        [...strings(REQUEST_PATH, -1), ...int64s(RESPONSE_CODE, 200n)],
        int64s(RESPONSE_CODE, 503n),
        [...words('/own'), ...strings(REQUEST_PATH, -1)],
      ],
      { defaultWords: ['/a'] },
    );
    const expected = [
      bag(['request.path', '/a'], ['response.code', 200n]),
      bag(['request.path', '/a'], ['response.code', 503n]),
      bag(['request.path', '/own'], ['response.code', 503n]),
    ];
    assert.deepEqual(plain(records(bytes)), expected);
    assert.deepEqual(plain(decodeReportRequest(bytes)), expected);
    assert.equal(decodeReportRecords(bytes), 3);
  });

  it('lets a later set give again what the set before gave; in one map, the last entry of an index wins', () => {
    const bytes = reportRequest(
      [strings(REQUEST_PATH, -1), [...strings(REQUEST_PATH, -1), ...strings(REQUEST_PATH, -2)]],
      { defaultWords: ['/a', '/b'] },
    );
    const expected = [bag(['request.path', '/a']), bag(['request.path', '/b'])];
    assert.deepEqual(plain(records(bytes)), expected);
    assert.deepEqual(plain(decodeReportRequest(bytes)), expected);
  });

  describe('errors', () => {
    it('refuses an attribute given twice in a later set, in two maps, though the set before gave it too', () => {
      expectError(
        reportRequest([strings(-1, -2), [...strings(-1, -2), ...int64s(-1, 5n)]], {
          defaultWords: ['x.custom', '/a'],
        }),
        'MALFORMED',
        'attribute set 1: attribute x.custom is given twice: as strings[-1] and as int64s[-1]',
      );
    });

    it('refuses an attribute given twice in a later set, as a global word and as a message word', () => {
      expectError(
        reportRequest([strings(REQUEST_PATH, -2), [...strings(REQUEST_PATH, -2), ...strings(-1, -2)]], {
          defaultWords: ['request.path', '/a'],
        }),
        'MALFORMED',
        'attribute set 1: attribute request.path is given twice: as strings[17] and as strings[-1]',
      );
    });

    it('names the set and the default words', () => {
      expectError(
        reportRequest([strings(REQUEST_PATH, -1), strings(REQUEST_PATH, -3)], { defaultWords: ['/a', '/b'] }),
        'WORD_INDEX_OUT_OF_RANGE',
        'attribute set 1: value index -3 of attribute request.path is out of range: the request has 2 default words',
      );
    });

    it('names the set and its own words', () => {
      expectError(
        reportRequest([[...words('x'), ...strings(-2, -1)]], { defaultWords: ['/a', '/b'] }),
        'WORD_INDEX_OUT_OF_RANGE',
        'attribute set 0: attribute index -2 is out of range: the message has 1 word',
      );
    });

    it('refuses a type mismatch in a later set', () => {
      expectError(
        reportRequest([strings(REQUEST_METHOD, GET), int64s(REQUEST_METHOD, 1n)]),
        'TYPE_MISMATCH',
        'attribute set 1: attribute request.method is declared STRING but arrived in int64s',
      );
    });

    it('refuses an unknown repeated_attributes_semantics', () => {
      expectError(
        reportRequest([], { semantics: 2 }),
        'INVALID_VALUE',
        'repeated_attributes_semantics 2 is neither DELTA_ENCODING (0) nor INDEPENDENT_ENCODING (1)',
      );
    });

    it('refuses a negative repeated_attributes_semantics', () => {
      expectError(
        reportRequest([], { semantics: -1 }),
        'INVALID_VALUE',
        'repeated_attributes_semantics -1 is neither DELTA_ENCODING (0) nor INDEPENDENT_ENCODING (1)',
      );
    });

    it('refuses a global_word_count beyond the dictionary', () => {
      expectError(
        reportRequest([], { globalWordCount: 1000 }),
        'DICTIONARY_MISMATCH',
        'global_word_count 1000 is larger than the global dictionary, which has 222 words',
      );
    });

    it('refuses default_words of the wrong wire type', () => {
      expectError(
        Uint8Array.from([0x10, 0x01]),
        'MALFORMED',
        'malformed input: ReportRequest.default_words (field 2) at byte 0 has wire type 0, expected 2',
      );
    });
  });
});
