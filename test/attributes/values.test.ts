import { strict as assert } from 'node:assert';
import { Duration, IpAddress, Timestamp } from '../../attributes';

describe('attributes: values', () => {
  describe('Timestamp', () => {
    const cases: Array<[string, string | undefined]> = [
      ['2015-01-02T15:04:35Z', '2015-01-02T15:04:35Z'],
      ['2015-01-02T15:04:35.000000001Z', '2015-01-02T15:04:35.000000001Z'],
      ['2015-01-02T15:04:35.5z', '2015-01-02T15:04:35.5Z'],
      ['2015-01-02t15:04:35-07:30', '2015-01-02T22:34:35Z'],
      ['1969-12-31T23:59:59.25Z', '1969-12-31T23:59:59.25Z'],
      ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00Z'],
      ['2016-02-29T00:00:00Z', '2016-02-29T00:00:00Z'],
      ['2015-02-29T00:00:00Z', undefined],
      ['2015-01-02 15:04:35Z', undefined],
      ['2015-01-02T24:00:00Z', undefined],
      ['2015-01-02T15:04:35', undefined],
      ['2015-01-02T15:04:35+25:00', undefined],
      ['yesterday', undefined],
    ];
    for (const [text, want] of cases) {
      it(`parses ${text}`, () => assert.equal(Timestamp.parse(text)?.toString(), want));
    }

    it('orders by seconds, then nanoseconds', () => {
      const a = Timestamp.parse('2015-01-02T15:04:35.1Z')!;
      const b = Timestamp.parse('2015-01-02T15:04:35.2Z')!;
      assert.ok(Timestamp.compare(a, b) < 0 && Timestamp.compare(b, a) > 0);
      assert.equal(Timestamp.compare(a, Timestamp.parse('2015-01-02T16:04:35.1+01:00')!), 0);
    });
  });

  describe('Duration', () => {
    const cases: Array<[string, string | undefined]> = [
      ['0', '0s'],
      ['0s', '0s'],
      ['19ms', '19ms'],
      ['1.5s', '1.5s'],
      ['90s', '1m30s'],
      ['2h45m', '2h45m0s'],
      ['-1.5h', '-1h30m0s'],
      ['1us', '1µs'],
      ['1µs', '1µs'],
      ['1500ns', '1.5µs'],
      ['.5s', '500ms'],
      ['1h1m1s1ms', '1h1m1.001s'],
      ['2562047h47m16.854775807s', '2562047h47m16.854775807s'],
      ['2562047h47m16.854775808s', undefined],
      ['', undefined],
      ['1', undefined],
      ['1d', undefined],
      ['s', undefined],
      ['.s', undefined],
      ['1.5', undefined],
      ['abc', undefined],
    ];
    for (const [text, want] of cases) {
      it(`parses ${JSON.stringify(text)}`, () => assert.equal(Duration.parse(text)?.toString(), want));
    }

    it('keeps nanoseconds exactly beyond 2^53', () => {
      const d = Duration.parse('2562047h47m16.854775807s')!;
      assert.equal(d.toNanos(), 2n ** 63n - 1n);
      assert.equal(Duration.fromNanos(-(2n ** 62n)).toNanos(), -(2n ** 62n));
    });
  });

  describe('IpAddress', () => {
    const cases: Array<[string, string | undefined, number?]> = [
      ['10.0.0.1', '10.0.0.1', 4],
      ['255.255.255.255', '255.255.255.255', 4],
      ['::1', '::1', 16],
      ['::', '::', 16],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', 16],
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1', 16],
      ['fe80::1:0:0:0:2', 'fe80:0:0:1::2', 16],
      ['::ffff:10.1.2.3', '10.1.2.3', 16],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8', 16],
      ['10.0.0.256', undefined],
      ['10.0.0', undefined],
      ['1::2::3', undefined],
      ['example.com', undefined],
    ];
    for (const [text, want, length] of cases) {
      it(`parses ${text}`, () => {
        const ip = IpAddress.parse(text);
        assert.equal(ip?.toString(), want);
        if (length !== undefined) assert.equal(ip!.bytes.length, length);
      });
    }

    it('treats an IPv4 address and its IPv4-mapped IPv6 form as equal, as Go does', () => {
      assert.ok(IpAddress.equal(IpAddress.parse('10.1.2.3')!, IpAddress.parse('::ffff:10.1.2.3')!));
      assert.ok(!IpAddress.equal(IpAddress.parse('10.1.2.3')!, IpAddress.parse('::10.1.2.3')!));
      assert.ok(!IpAddress.equal(IpAddress.parse('10.1.2.3')!, IpAddress.parse('10.1.2.4')!));
    });
  });
});
