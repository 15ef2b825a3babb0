import { strict as assert } from 'node:assert';
import {
  AttributeBag,
  AttributeDecodeError,
  AttributeManifest,
  decodeCheckRequest,
  Duration,
  IpAddress,
  Timestamp,
  ValueType,
  type AttributeValue,
} from '../../attributes';
import {
  bools,
  bytes,
  checkRequest,
  doubles,
  durations,
  int64s,
  lengthField,
  sintField,
  stringField,
  stringMaps,
  strings,
  tag,
  timestamps,
  toBytes,
  varintField,
  words,
  type Bytes,
} from './proto-bytes';
import { plain } from './plain-bags';

// Global dictionary indices used below (facts of istio/api's global_dictionary.yaml).
const SOURCE_IP = 0;
const REQUEST_HEADERS = 15;
const REQUEST_PATH = 17;
const REQUEST_METHOD = 19;
const REQUEST_SIZE = 23;
const REQUEST_TIME = 24;
const RESPONSE_DURATION = 29;
const METHOD_HEADER = 32; // ":method"
const PATH_HEADER = 33; // ":path"
const USER_AGENT = 86; // "user-agent"
const GET = 90;
const DESTINATION_IP = 150;
const DESTINATION_PORT = 151;
const CONNECTION_MTLS = 177;

function decodeAttributes(
  attributes: Bytes,
  globalWordCount = 0,
  manifest?: AttributeManifest,
): AttributeBag {
  return decodeCheckRequest(checkRequest(attributes, globalWordCount), manifest).attributes;
}

function expectError(bytes: Uint8Array, code: AttributeDecodeError['code'], message: string): void {
  assert.throws(
    () => decodeCheckRequest(bytes),
    (e: unknown) => {
      assert.ok(e instanceof AttributeDecodeError, `expected an AttributeDecodeError, got ${String(e)}`);
      assert.equal(e.message, message);
      assert.equal(e.code, code);
      return true;
    },
  );
}

describe('decodeCheckRequest', () => {
  it('decodes a request written out in hex', () => {
    const hex = [
      '0a 13', //          CheckRequest.attributes, 19 bytes:
      '0a 03 626f62', //     words[0] = "bob"
      '12 04 08 22 10 01', // strings: sint32 17 (request.path) → sint32 -1 (words[0])
      '1a 06 08 ae02 10 903f', // int64s: sint32 151 (destination.port) → int64 8080
      '10 de01', //        CheckRequest.global_word_count = 222
      '1a 02 6431', //     CheckRequest.deduplication_id = "d1"
    ].join('');
    const decoded = decodeCheckRequest(Buffer.from(hex.replace(/ /g, ''), 'hex'));
    assert.deepEqual(
      plain(decoded.attributes),
      new AttributeBag([
        ['request.path', 'bob'],
        ['destination.port', 8080n],
      ]),
    );
    assert.equal(decoded.globalWordCount, 222);
    assert.equal(decoded.deduplicationId, 'd1');
    assert.equal(decoded.quotas.size, 0);
  });

  const ipv6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const valueCases: { name: string; attributes: Bytes; expected: [string, AttributeValue][] }[] = [
    {
      name: 'global word name and value',
      attributes: strings(REQUEST_METHOD, GET),
      expected: [['request.method', 'GET']],
    },
    {
      name: 'message word value (-1 is words[0])',
      attributes: [...words('/a', '/b'), ...strings(REQUEST_PATH, -2)],
      expected: [['request.path', '/b']],
    },
    {
      name: 'message word name of an attribute the manifest does not know',
      attributes: [...words('my.attr', 'v'), ...strings(-1, -2)],
      expected: [['my.attr', 'v']],
    },
    {
      name: 'int64 beyond 2^53',
      attributes: int64s(REQUEST_SIZE, 2n ** 60n + 1n),
      expected: [['request.size', 1152921504606846977n]],
    },
    { name: 'negative int64', attributes: int64s(REQUEST_SIZE, -5n), expected: [['request.size', -5n]] },
    {
      name: 'int64 minimum',
      attributes: int64s(REQUEST_SIZE, -(2n ** 63n)),
      expected: [['request.size', -9223372036854775808n]],
    },
    {
      name: 'int64 maximum',
      attributes: int64s(REQUEST_SIZE, 2n ** 63n - 1n),
      expected: [['request.size', 9223372036854775807n]],
    },
    {
      name: 'double of an unknown attribute',
      attributes: [...words('ratio'), ...doubles(-1, 0.25)],
      expected: [['ratio', 0.25]],
    },
    { name: 'bool', attributes: bools(CONNECTION_MTLS, true), expected: [['connection.mtls', true]] },
    {
      name: 'bool from any non-zero varint',
      attributes: lengthField(5, sintField(1, CONNECTION_MTLS), varintField(2, 2n ** 40n)),
      expected: [['connection.mtls', true]],
    },
    {
      name: 'map entry without a value: the default',
      attributes: lengthField(5, sintField(1, CONNECTION_MTLS)),
      expected: [['connection.mtls', false]],
    },
    {
      name: 'timestamp',
      attributes: timestamps(REQUEST_TIME, 1700000000, 123456789),
      expected: [['request.time', new Timestamp(1700000000, 123456789)]],
    },
    {
      name: 'timestamp before 1970',
      attributes: timestamps(REQUEST_TIME, -1, 5),
      expected: [['request.time', new Timestamp(-1, 5)]],
    },
    {
      name: 'timestamp at year 1',
      attributes: timestamps(REQUEST_TIME, -62135596800, 0),
      expected: [['request.time', new Timestamp(-62135596800, 0)]],
    },
    {
      name: 'duration',
      attributes: durations(RESPONSE_DURATION, 2, 500),
      expected: [['response.duration', new Duration(2, 500)]],
    },
    {
      name: 'negative duration',
      attributes: durations(RESPONSE_DURATION, -1, -5),
      expected: [['response.duration', new Duration(-1, -5)]],
    },
    {
      name: 'IPv4 address',
      attributes: bytes(SOURCE_IP, [10, 1, 2, 3]),
      expected: [['source.ip', new IpAddress(Uint8Array.from([10, 1, 2, 3]))]],
    },
    {
      name: 'IPv6 address',
      attributes: bytes(DESTINATION_IP, ipv6),
      expected: [['destination.ip', new IpAddress(Uint8Array.from(ipv6))]],
    },
    {
      name: 'bytes of an unknown attribute',
      attributes: [...words('blob'), ...bytes(-1, [0, 255, 7])],
      expected: [['blob', Uint8Array.from([0, 255, 7])]],
    },
    {
      name: 'string map with global and message keys and values',
      attributes: [
        ...words('/x', 'x-user', 'bob'),
        ...stringMaps(REQUEST_HEADERS, [PATH_HEADER, -1], [-2, -3], [METHOD_HEADER, GET], [USER_AGENT, -3]),
      ],
      expected: [
        [
          'request.headers',
          new Map([
            [':path', '/x'],
            ['x-user', 'bob'],
            [':method', 'GET'],
            ['user-agent', 'bob'],
          ]),
        ],
      ],
    },
    {
      name: 'empty string map',
      attributes: stringMaps(REQUEST_HEADERS),
      expected: [['request.headers', new Map()]],
    },
    {
      name: 'non-ASCII words',
      attributes: [...words('café', 'x-名前'), ...stringMaps(REQUEST_HEADERS, [-2, -1])],
      expected: [['request.headers', new Map([['x-名前', 'café']])]],
    },
    {
      name: 'a word with a leading byte order mark, kept (TextDecoder would drop it)',
      attributes: [...words('\uFEFFx'), ...strings(REQUEST_PATH, -1)],
      expected: [['request.path', '\uFEFFx']],
    },
    {
      name: 'invalid UTF-8 as U+FFFD, word by word',
      attributes: [
        ...lengthField(1, [0x61, 0xc3]), // "a" and a lead byte cut short by the end of the word
        ...lengthField(1, [0xa9, 0x62]), // a continuation byte with no lead, then "b"
        ...stringMaps(REQUEST_HEADERS, [PATH_HEADER, -1], [METHOD_HEADER, -2]),
      ],
      expected: [
        [
          'request.headers',
          new Map([
            [':path', 'a\ufffd'],
            [':method', '\ufffdb'],
          ]),
        ],
      ],
    },
    {
      name: 'the same index twice in one map: the last entry wins, as protobuf maps do',
      attributes: [...words('/a', '/b'), ...strings(REQUEST_PATH, -1), ...strings(REQUEST_PATH, -2)],
      expected: [['request.path', '/b']],
    },
    {
      name: 'words before and after the maps that use them',
      attributes: [...words('/early'), ...strings(REQUEST_PATH, -2), ...words('/late')],
      expected: [['request.path', '/late']],
    },
    {
      name: 'words after the maps that use them',
      attributes: [...strings(REQUEST_PATH, -1), ...words('/late')],
      expected: [['request.path', '/late']],
    },
    {
      name: 'unknown fields, in the message and in a map entry, skipped',
      attributes: [
        ...varintField(15, 7),
        ...lengthField(16, [1, 2, 3]),
        ...tag(17, 3), // a group, with a field inside
        ...varintField(1, 1),
        ...tag(17, 4),
        ...[...tag(18, 5), 1, 2, 3, 4], // fixed32
        ...lengthField(2, sintField(1, REQUEST_METHOD), varintField(3, 9), sintField(2, GET)),
      ],
      expected: [['request.method', 'GET']],
    },
  ];

  for (const { name, attributes, expected } of valueCases) {
    it(`decodes ${name}`, () => {
      assert.deepEqual(plain(decodeAttributes(attributes)), new AttributeBag(expected));
    });
  }

  it('decodes a whole request: global word count, deduplication id, quotas', () => {
    const decoded = decodeCheckRequest(
      checkRequest(strings(REQUEST_METHOD, GET), 200, {
        deduplicationId: 'req-7',
        quotas: [
          ['requestcount', 1n, false],
          ['bytes', 2n ** 62n, true],
        ],
      }),
    );
    assert.equal(decoded.globalWordCount, 200);
    assert.equal(decoded.deduplicationId, 'req-7');
    assert.deepEqual(
      plain(decoded.quotas),
      new Map([
        ['requestcount', { amount: 1n, bestEffort: false }],
        ['bytes', { amount: 4611686018427387904n, bestEffort: true }],
      ]),
    );
  });

  it('decodes an empty request to an empty bag', () => {
    const decoded = decodeCheckRequest(new Uint8Array(0));
    assert.equal(decoded.attributes.size, 0);
    assert.equal(decoded.globalWordCount, 0);
    assert.equal(decoded.deduplicationId, '');
  });

  it('merges repeated occurrences of CheckRequest.attributes, as protobuf does', () => {
    const bytes = toBytes(
      lengthField(1, words('/a')),
      lengthField(1, strings(REQUEST_PATH, -1), words('bob'), strings(-2, -2)),
    );
    assert.deepEqual(
      plain(decodeCheckRequest(bytes).attributes),
      new AttributeBag([
        ['request.path', '/a'],
        ['bob', 'bob'],
      ]),
    );
  });

  it('types attributes by the manifest given', () => {
    const manifest = new AttributeManifest([
      { name: 'user.email', valueType: ValueType.EMAIL_ADDRESS },
      { name: 'peer.ip', valueType: ValueType.IP_ADDRESS },
      { name: 'ratio', valueType: ValueType.DOUBLE },
    ]);
    const bag = decodeAttributes(
      [
        ...words('user.email', 'a@b.c', 'peer.ip', 'ratio'),
        ...strings(-1, -2),
        ...bytes(-3, [1, 2, 3, 4]),
        ...doubles(-4, 1.5),
        ...bytes(SOURCE_IP, [1, 2, 3]), // not in this manifest: plain bytes
      ],
      0,
      manifest,
    );
    assert.deepEqual(
      plain(bag),
      new AttributeBag([
        ['user.email', 'a@b.c'],
        ['peer.ip', new IpAddress(Uint8Array.from([1, 2, 3, 4]))],
        ['ratio', 1.5],
        ['source.ip', Uint8Array.from([1, 2, 3])],
      ]),
    );
  });

  it('copies bytes values out of the request buffer', () => {
    const request = checkRequest(bytes(SOURCE_IP, [10, 0, 0, 1]));
    const ip = decodeCheckRequest(request).attributes.get('source.ip') as IpAddress;
    request.fill(0);
    assert.equal(ip.toString(), '10.0.0.1');
  });

  it('accepts global indices below global_word_count', () => {
    assert.equal(decodeAttributes(strings(REQUEST_METHOD, GET), GET + 1).get('request.method'), 'GET');
  });

  describe('errors', () => {
    const W = words('a', 'b', 'c');
    const cases: { name: string; bytes: Uint8Array; code: AttributeDecodeError['code']; message: string }[] =
      [
        {
          name: 'message word name index out of range',
          bytes: checkRequest([...W, ...strings(-7, -1)]),
          code: 'WORD_INDEX_OUT_OF_RANGE',
          message: 'attribute index -7 is out of range: the message has 3 words',
        },
        {
          name: 'global name index beyond the dictionary',
          bytes: checkRequest(strings(222, GET)),
          code: 'WORD_INDEX_OUT_OF_RANGE',
          message: 'attribute index 222 is out of range: the global dictionary has 222 words',
        },
        {
          name: 'global name index beyond global_word_count',
          bytes: checkRequest(strings(DESTINATION_PORT, GET), 100),
          code: 'WORD_INDEX_OUT_OF_RANGE',
          message: 'attribute index 151 is out of range: the request uses 100 global words',
        },
        {
          name: 'string value index out of range',
          bytes: checkRequest([...words('x'), ...strings(REQUEST_PATH, -2)]),
          code: 'WORD_INDEX_OUT_OF_RANGE',
          message: 'value index -2 of attribute request.path is out of range: the message has 1 word',
        },
        {
          name: 'string map key index out of range',
          bytes: checkRequest(stringMaps(REQUEST_HEADERS, [500, GET])),
          code: 'WORD_INDEX_OUT_OF_RANGE',
          message:
            'key index 500 in string map request.headers is out of range: the global dictionary has 222 words',
        },
        {
          name: 'string map value index out of range',
          bytes: checkRequest(stringMaps(REQUEST_HEADERS, [PATH_HEADER, -9])),
          code: 'WORD_INDEX_OUT_OF_RANGE',
          message:
            'value index -9 of key :path in string map request.headers is out of range: the message has 0 words',
        },
        {
          name: 'INT64 attribute in strings',
          bytes: checkRequest(strings(REQUEST_SIZE, GET)),
          code: 'TYPE_MISMATCH',
          message: 'attribute request.size is declared INT64 but arrived in strings',
        },
        {
          name: 'IP_ADDRESS attribute in strings',
          bytes: checkRequest(strings(SOURCE_IP, GET)),
          code: 'TYPE_MISMATCH',
          message: 'attribute source.ip is declared IP_ADDRESS but arrived in strings',
        },
        {
          name: 'STRING attribute in bytes',
          bytes: checkRequest(bytes(REQUEST_PATH, [1])),
          code: 'TYPE_MISMATCH',
          message: 'attribute request.path is declared STRING but arrived in bytes',
        },
        {
          name: 'STRING_MAP attribute in strings',
          bytes: checkRequest(strings(REQUEST_HEADERS, GET)),
          code: 'TYPE_MISMATCH',
          message: 'attribute request.headers is declared STRING_MAP but arrived in strings',
        },
        {
          name: 'TIMESTAMP attribute in durations',
          bytes: checkRequest(durations(REQUEST_TIME, 1, 0)),
          code: 'TYPE_MISMATCH',
          message: 'attribute request.time is declared TIMESTAMP but arrived in durations',
        },
        {
          name: 'IP address of 5 bytes',
          bytes: checkRequest(bytes(SOURCE_IP, [1, 2, 3, 4, 5])),
          code: 'INVALID_VALUE',
          message: 'attribute source.ip is an IP address of 5 bytes: expected 4 or 16',
        },
        {
          name: 'IP address of 0 bytes',
          bytes: checkRequest(bytes(SOURCE_IP, [])),
          code: 'INVALID_VALUE',
          message: 'attribute source.ip is an IP address of 0 bytes: expected 4 or 16',
        },
        {
          name: 'timestamp nanos of a second or more',
          bytes: checkRequest(timestamps(REQUEST_TIME, 1, 1_000_000_000)),
          code: 'INVALID_VALUE',
          message: 'attribute request.time has a timestamp with nanos 1000000000: expected 0 to 999999999',
        },
        {
          name: 'negative timestamp nanos',
          bytes: checkRequest(timestamps(REQUEST_TIME, 1, -1)),
          code: 'INVALID_VALUE',
          message: 'attribute request.time has a timestamp with nanos -1: expected 0 to 999999999',
        },
        {
          name: 'timestamp after year 9999',
          bytes: checkRequest(timestamps(REQUEST_TIME, 253402300800, 0)),
          code: 'INVALID_VALUE',
          message:
            'attribute request.time has a timestamp of 253402300800 seconds: expected -62135596800 to 253402300799 (years 1 to 9999)',
        },
        {
          name: 'timestamp seconds far beyond 2^53, printed exactly',
          bytes: checkRequest(timestamps(REQUEST_TIME, -(2n ** 62n) - 3n, 0)),
          code: 'INVALID_VALUE',
          message:
            'attribute request.time has a timestamp of -4611686018427387907 seconds: expected -62135596800 to 253402300799 (years 1 to 9999)',
        },
        {
          name: 'duration beyond 10,000 years',
          bytes: checkRequest(durations(RESPONSE_DURATION, -315576000001, 0)),
          code: 'INVALID_VALUE',
          message:
            'attribute response.duration has a duration of -315576000001 seconds: expected at most 315576000000 (10,000 years) either way',
        },
        {
          name: 'duration nanos of a second or more',
          bytes: checkRequest(durations(RESPONSE_DURATION, 0, -1_000_000_000)),
          code: 'INVALID_VALUE',
          message:
            'attribute response.duration has a duration with nanos -1000000000: expected -999999999 to 999999999',
        },
        {
          name: 'duration seconds and nanos of different signs',
          bytes: checkRequest(durations(RESPONSE_DURATION, 1, -5)),
          code: 'INVALID_VALUE',
          message: 'attribute response.duration has a duration of 1 seconds and -5 nanos: their signs differ',
        },
        {
          name: 'global_word_count beyond the dictionary',
          bytes: checkRequest([], 223),
          code: 'DICTIONARY_MISMATCH',
          message: 'global_word_count 223 is larger than the global dictionary, which has 222 words',
        },
        {
          name: 'one attribute under two indices',
          bytes: checkRequest([
            ...words('request.path', '/x'),
            ...strings(REQUEST_PATH, -2),
            ...strings(-1, -2),
          ]),
          code: 'MALFORMED',
          message: 'attribute request.path is given twice: as strings[17] and as strings[-1]',
        },
        {
          name: 'one attribute in two maps',
          bytes: checkRequest([...words('x'), ...strings(-1, -1), ...int64s(-1, 1n)]),
          code: 'MALFORMED',
          message: 'attribute x is given twice: as strings[-1] and as int64s[-1]',
        },
        {
          name: 'a length past the end of the input',
          bytes: Uint8Array.from([0x0a, 0x05, 0x0a]),
          code: 'TRUNCATED',
          message: 'truncated input: field 1 at byte 0 is 5 bytes long but the input ends at byte 3',
        },
        {
          name: 'a length past the end of its enclosing message',
          bytes: Uint8Array.from([0x0a, 0x02, 0x12, 0x05, 0x28, 0x01]),
          code: 'TRUNCATED',
          message: 'truncated input: field 2 at byte 2 is 5 bytes long but its message ends at byte 4',
        },
        {
          name: 'a varint cut off',
          bytes: Uint8Array.from([0x10, 0xff]),
          code: 'TRUNCATED',
          message: 'truncated input: the varint at byte 1 runs past the end of the input at byte 2',
        },
        {
          name: 'a double cut off',
          bytes: checkRequest(lengthField(4, sintField(1, -1), [0x11, 0, 0, 0])),
          code: 'TRUNCATED',
          message: 'truncated input: the 8-byte value at byte 7 runs past the end of the input at byte 10',
        },
        {
          name: 'an unclosed group',
          bytes: toBytes(tag(20, 3), varintField(1, 1)),
          code: 'TRUNCATED',
          message:
            'truncated input: group of field 20 at byte 0 is not closed before the input ends at byte 4',
        },
        {
          name: 'a varint beyond 64 bits',
          bytes: Uint8Array.from([0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
          code: 'MALFORMED',
          message: 'malformed input: the varint at byte 1 overflows 64 bits',
        },
        {
          name: 'a varint of 11 bytes',
          bytes: Uint8Array.from([0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
          code: 'MALFORMED',
          message: 'malformed input: the varint at byte 1 overflows 64 bits',
        },
        {
          name: 'wire type 7',
          bytes: Uint8Array.from([0x0f]),
          code: 'MALFORMED',
          message: 'malformed input: field 1 at byte 0 has invalid wire type 7',
        },
        {
          name: 'field number 0',
          bytes: Uint8Array.from([0x00, 0x00]),
          code: 'MALFORMED',
          message: 'malformed input: field number 0 at byte 0',
        },
        {
          name: 'a tag beyond 32 bits',
          bytes: Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
          code: 'MALFORMED',
          message: 'malformed input: the tag at byte 0 is larger than 32 bits',
        },
        {
          name: 'an end-group with no start',
          bytes: toBytes(tag(9, 4)),
          code: 'MALFORMED',
          message: 'malformed input: end-group of field 9 at byte 0 has no matching start-group',
        },
        {
          name: 'groups nested a hundred thousand deep, never closed',
          bytes: toBytes(new Array<number>(100_000).fill(0x7b)), // start-group of field 15, over and over
          code: 'TRUNCATED',
          message:
            'truncated input: group of field 15 at byte 99999 is not closed before the input ends at byte 100000',
        },
        {
          name: 'a group closed by another field',
          bytes: toBytes(tag(20, 3), tag(21, 4)),
          code: 'MALFORMED',
          message: 'malformed input: group of field 20 at byte 0 is closed by field 21 at byte 2',
        },
        {
          name: 'CheckRequest.global_word_count as a length-delimited field',
          bytes: toBytes(lengthField(2, [])),
          code: 'MALFORMED',
          message:
            'malformed input: CheckRequest.global_word_count (field 2) at byte 0 has wire type 2, expected 0',
        },
        {
          name: 'CompressedAttributes.strings as a varint',
          bytes: checkRequest(varintField(2, 1)),
          code: 'MALFORMED',
          message:
            'malformed input: CompressedAttributes.strings (field 2) at byte 2 has wire type 0, expected 2',
        },
        {
          name: 'CompressedAttributes.words as a varint',
          bytes: checkRequest(varintField(1, 1)),
          code: 'MALFORMED',
          message:
            'malformed input: CompressedAttributes.words (field 1) at byte 2 has wire type 0, expected 2',
        },
        {
          name: 'a map key of the wrong wire type',
          bytes: checkRequest(lengthField(3, lengthField(1, []))),
          code: 'MALFORMED',
          message:
            'malformed input: CompressedAttributes.int64s key (field 1) at byte 4 has wire type 2, expected 0',
        },
        {
          name: 'Timestamp.nanos of the wrong wire type',
          bytes: checkRequest(lengthField(6, sintField(1, REQUEST_TIME), lengthField(2, lengthField(2, [])))),
          code: 'MALFORMED',
          message: 'malformed input: Timestamp.nanos (field 2) at byte 8 has wire type 2, expected 0',
        },
        {
          name: 'a quota amount of the wrong wire type',
          bytes: toBytes(lengthField(4, stringField(1, 'q'), lengthField(2, lengthField(1, [])))),
          code: 'MALFORMED',
          message: 'malformed input: QuotaParams.amount (field 1) at byte 7 has wire type 2, expected 0',
        },
      ];

    for (const { name, bytes, code, message } of cases) {
      it(`${code}: ${name}`, () => expectError(bytes, code, message));
    }
  });
});
