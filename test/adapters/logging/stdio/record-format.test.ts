import { strict as assert } from 'node:assert';
import { createStdioHandler } from '../../../../adapters/logging/stdio';
import { formatTime, valueJson } from '../../../../adapters/logging/stdio/record-format';
import { Duration, FlatStringMap, IpAddress, Timestamp } from '../../../../attributes';
import { MemoryStream, logEntry, metric, stdioConfig, testEnv } from './support';

// 2017-08-21T10:04:00Z, the time in Mixer's own tests of this adapter.
const AUG_21 = 1_503_309_840;

describe('adapters/logging/stdio: record format', () => {
  it('writes every value type of a log entry, variables sorted by name', async () => {
    const stream = new MemoryStream();
    const handler = await createStdioHandler(stdioConfig(), testEnv().env, { stream });
    await handler.handleLogEntry(
      [
        logEntry(
          'accesslog.instance.istio-system',
          {
            string: 'say "hi"\n',
            uri: 'http://foo.com',
            email: 'foo@bar.com',
            dnsName: 'foo.bar.com',
            int64: 123n,
            int64AtLimit: 2n ** 53n,
            int64Big: 2n ** 60n,
            int64Negative: -(2n ** 53n) - 1n,
            double: 1.23,
            nan: NaN,
            infinity: -Infinity,
            bool: true,
            time: new Timestamp(AUG_21, 123_456_789),
            duration: Duration.parse('1.5s')!,
            ipv4: IpAddress.parse('10.0.0.1')!,
            ipv6: IpAddress.parse('2001:db8::1')!,
            bytes: Uint8Array.of(0x62),
            headers: new Map([
              ['x-b', '2'],
              ['x-a', '1'],
            ]),
          },
          { severity: 'WARNING', timestamp: new Timestamp(AUG_21, 0) },
        ),
      ],
      { signal: new AbortController().signal },
    );
    await handler.close();
    assert.deepEqual(stream.lines(), [
      '{"level":"warn","time":"2017-08-21T10:04:00.000000Z","instance":"accesslog.instance.istio-system",' +
        '"bool":true,"bytes":"Yg==","dnsName":"foo.bar.com","double":1.23,"duration":"1.5s",' +
        '"email":"foo@bar.com","headers":{"x-a":"1","x-b":"2"},"infinity":"-Inf","int64":123,' +
        '"int64AtLimit":9007199254740992,"int64Big":"1152921504606846976","int64Negative":"-9007199254740993",' +
        '"ipv4":"10.0.0.1","ipv6":"2001:db8::1","nan":"NaN","string":"say \\"hi\\"\\n",' +
        '"time":"2017-08-21T10:04:00.123456Z","uri":"http://foo.com"}',
    ]);
    for (const line of stream.lines()) JSON.parse(line);
  });

  it("maps severities through severityLevels (INFO when not listed) and uses the handler's clock when there is no timestamp", async () => {
    const stream = new MemoryStream();
    const handler = await createStdioHandler(stdioConfig(), testEnv().env, { stream });
    await handler.handleLogEntry(
      [
        logEntry('a', { x: 1n }, { severity: 'informational' }),
        logEntry('a', { x: 2n }, { severity: 'ERR' }),
        logEntry('a', { x: 3n }, { severity: 'fatal' }),
        logEntry('a', { x: 4n }, { severity: 'BOGUS' }),
        logEntry('a', {}, { severity: 'warn' }),
      ],
      { signal: new AbortController().signal },
    );
    await handler.close();
    assert.deepEqual(stream.lines(), [
      '{"level":"info","time":"2024-05-01T10:20:30.123000Z","instance":"a","x":1}',
      '{"level":"error","time":"2024-05-01T10:20:30.123000Z","instance":"a","x":2}',
      '{"level":"error","time":"2024-05-01T10:20:30.123000Z","instance":"a","x":3}',
      '{"level":"info","time":"2024-05-01T10:20:30.123000Z","instance":"a","x":4}',
      '{"level":"warn","time":"2024-05-01T10:20:30.123000Z","instance":"a"}',
    ]);
  });

  it('writes a metric as level, time (now), instance, value, then dimensions sorted by name', async () => {
    const stream = new MemoryStream();
    const handler = await createStdioHandler(stdioConfig({ metricLevel: 'WARNING' }), testEnv().env, {
      stream,
    });
    await handler.handleMetric(
      [
        metric('requestcount.instance.istio-system', 1n, {
          source: 'productpage',
          destination: 'reviews',
          code: 200n,
          latency: Duration.parse('19ms')!,
        }),
        metric('requestsize.instance.istio-system', 0.5, {}),
        metric('nothing.instance.istio-system', undefined, { labels: new FlatStringMap(['app', 'x']) }),
      ],
      { signal: new AbortController().signal },
    );
    await handler.close();
    assert.deepEqual(stream.lines(), [
      '{"level":"warn","time":"2024-05-01T10:20:30.123000Z","instance":"requestcount.instance.istio-system",' +
        '"value":1,"code":200,"destination":"reviews","latency":"19ms","source":"productpage"}',
      '{"level":"warn","time":"2024-05-01T10:20:30.123000Z","instance":"requestsize.instance.istio-system","value":0.5}',
      '{"level":"warn","time":"2024-05-01T10:20:30.123000Z","instance":"nothing.instance.istio-system",' +
        '"value":null,"labels":{"app":"x"}}',
    ]);
  });

  it("writes Mixer's console form when outputAsJson is false", async () => {
    const stream = new MemoryStream();
    const handler = await createStdioHandler(stdioConfig({ outputAsJson: false }), testEnv().env, { stream });
    await handler.handleLogEntry(
      [
        logEntry(
          'Foo',
          { b: true, a: 'x', m: new Map([['k', 'v']]) },
          { severity: 'WARNING', timestamp: new Timestamp(AUG_21, 0) },
        ),
        logEntry('Foo', {}, { timestamp: new Timestamp(AUG_21, 0) }),
      ],
      { signal: new AbortController().signal },
    );
    await handler.handleMetric([metric('Bar', 123n, { s: 'y' })], { signal: new AbortController().signal });
    await handler.close();
    assert.deepEqual(stream.lines(), [
      '2017-08-21T10:04:00.000000Z\twarn\tFoo\t{"a": "x", "b": true, "m": {"k":"v"}}',
      '2017-08-21T10:04:00.000000Z\tinfo\tFoo',
      '2024-05-01T10:20:30.123000Z\tinfo\tBar\t{"value": 123, "s": "y"}',
    ]);
  });

  it('leaves out records below outputLevel and counts them', async () => {
    const stream = new MemoryStream();
    const handler = await createStdioHandler(stdioConfig({ outputLevel: 'WARNING' }), testEnv().env, {
      stream,
    });
    const context = { signal: new AbortController().signal };
    await handler.handleLogEntry(
      [logEntry('a', { n: 1n }, { severity: 'info' }), logEntry('a', { n: 2n }, { severity: 'error' })],
      context,
    );
    await handler.handleMetric([metric('m', 1n, {})], context);
    await handler.close();
    assert.deepEqual(stream.lines(), [
      '{"level":"error","time":"2024-05-01T10:20:30.123000Z","instance":"a","n":2}',
    ]);
    assert.equal(handler.stats().filteredRecords, 2);
    assert.equal(handler.stats().writtenRecords, 1);
  });

  it('formats times as Mixer did, for any second', () => {
    assert.equal(formatTime(0, 0), '1970-01-01T00:00:00.000000Z');
    assert.equal(formatTime(-62_135_596_800, 0), '0001-01-01T00:00:00.000000Z');
    assert.equal(formatTime(AUG_21, 999_999_999), '2017-08-21T10:04:00.999999Z');
    assert.equal(formatTime(951_782_400, 1_000), '2000-02-29T00:00:00.000001Z');
    assert.equal(formatTime(253_402_300_799, 0), '9999-12-31T23:59:59.000000Z');
    // Across 1600-2400, every 7919 hours and some seconds, against Date.
    for (let s = -11_676_096_000; s < 13_569_465_600; s += 28_508_413) {
      assert.equal(formatTime(s, 0), new Date(s * 1000).toISOString().replace(/\.000Z$/, '.000000Z'), `${s}`);
    }
  });

  it('writes a value that is not an attribute value as its text', () => {
    assert.equal(valueJson(Symbol('odd')), '"Symbol(odd)"');
    assert.equal(valueJson(null), 'null');
    assert.equal(valueJson(-0), '0');
  });
});
