import { strict as assert } from 'node:assert';
import {
  AttributeJsonError,
  STANDARD_MANIFEST,
  ValueType,
  bagFromJson,
  parseJson,
  valueToJson,
} from '../../attributes';

describe('attributes: JSON values', () => {
  it('parses integers beyond 2^53 as bigint, and others as numbers', () => {
    assert.deepEqual(
      parseJson('{"a": 9007199254740993, "b": 12, "c": "9007199254740993", "d": -9223372036854775808}'),
      {
        a: 9007199254740993n,
        b: 12,
        c: '9007199254740993',
        d: -9223372036854775808n,
      },
    );
    assert.deepEqual(parseJson('[1234567890123456.5, "x\\"9007199254740993"]'), [
      1234567890123456.5,
      'x"9007199254740993',
    ]);
  });

  it('builds a bag typed by the manifest', () => {
    const bag = bagFromJson(
      parseJson(
        '{"destination.port": 9007199254740993, "request.time": "2015-01-02T15:04:35Z", "response.duration": "19ms",' +
          ' "source.ip": "::1", "request.headers": {"a": "b"}, "connection.mtls": true}',
      ),
      STANDARD_MANIFEST,
    );
    assert.equal(bag.get('destination.port'), 9007199254740993n);
    assert.equal(String(bag.get('request.time')), '2015-01-02T15:04:35Z');
    assert.equal(String(bag.get('response.duration')), '19ms');
    assert.equal(String(bag.get('source.ip')), '::1');
    assert.deepEqual(bag.get('request.headers'), new Map([['a', 'b']]));
    assert.equal(bag.get('connection.mtls'), true);
  });

  const bad: Array<[string, string]> = [
    ['[]', 'attributes must be a JSON object of attribute name to value'],
    ['{"nosuch": 1}', "attribute 'nosuch' is not in the manifest"],
    [
      '{"destination.port": "80x"}',
      `attribute 'destination.port' is INT64 and needs an integer (a string of digits beyond 2^53), got "80x"`,
    ],
    [
      '{"destination.port": 1.5}',
      "attribute 'destination.port' is INT64 and needs an integer (a string of digits beyond 2^53), got 1.5",
    ],
    [
      '{"destination.port": "9223372036854775808"}',
      `attribute 'destination.port' is INT64 and needs an integer within the INT64 range, got "9223372036854775808"`,
    ],
    ['{"request.path": 1}', "attribute 'request.path' is STRING and needs a string, got 1"],
    ['{"connection.mtls": "yes"}', `attribute 'connection.mtls' is BOOL and needs true or false, got "yes"`],
    [
      '{"request.time": "now"}',
      `attribute 'request.time' is TIMESTAMP and needs an RFC 3339 string such as "2015-01-02T15:04:35Z", got "now"`,
    ],
    [
      '{"response.duration": 5}',
      `attribute 'response.duration' is DURATION and needs a duration string such as "19ms" or "1.5s", got 5`,
    ],
    [
      '{"source.ip": "1.2.3"}',
      `attribute 'source.ip' is IP_ADDRESS and needs an IPv4 or IPv6 address string, got "1.2.3"`,
    ],
    [
      '{"request.headers": []}',
      "attribute 'request.headers' is STRING_MAP and needs an object of strings, got an array",
    ],
    ['{"request.headers": {"a": 1}}', "attribute 'request.headers' key 'a' needs a string value, got 1"],
  ];
  for (const [json, message] of bad) {
    it(`refuses ${json}`, () => {
      assert.throws(
        () => bagFromJson(parseJson(json), STANDARD_MANIFEST),
        (err: Error) => err instanceof AttributeJsonError && err.message === message,
      );
    });
  }

  it('writes INT64 as a number up to 2^53 and as a string beyond', () => {
    assert.equal(valueToJson(2n ** 53n, ValueType.INT64), 9007199254740992);
    assert.equal(valueToJson(2n ** 53n + 1n, ValueType.INT64), '9007199254740993');
    assert.equal(valueToJson(-(2n ** 53n) - 1n, ValueType.INT64), '-9007199254740993');
  });
});
