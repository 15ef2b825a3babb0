import { strict as assert } from 'node:assert';
import { IpAddress } from '../../../../attributes';
import { IpRangeSet, parseIpRange, parseIpText } from '../../../../adapters/acl/list/ip-ranges';

function ip(text: string): IpAddress {
  const address = IpAddress.parse(text);
  assert.ok(address, text);
  return address;
}

function set(...ranges: string[]): IpRangeSet {
  const out = new IpRangeSet();
  for (const text of ranges) {
    const range = parseIpRange(text);
    assert.ok(range, text);
    out.add(range);
  }
  return out;
}

describe('adapters/acl/list: IP ranges', () => {
  it('parses ranges as Go ParseCIDR does, host bits cleared, IPv4-mapped ranges as IPv4', () => {
    const cases: [string, { network: number[]; prefixLength: number } | undefined][] = [
      ['10.0.0.0/8', { network: [10, 0, 0, 0], prefixLength: 8 }],
      ['10.1.2.3/8', { network: [10, 0, 0, 0], prefixLength: 8 }],
      ['192.168.1.7', { network: [192, 168, 1, 7], prefixLength: 32 }],
      ['0.0.0.0/0', { network: [0, 0, 0, 0], prefixLength: 0 }],
      ['10.0.0.0/024', { network: [10, 0, 0, 0], prefixLength: 24 }],
      ['::ffff:172.16.0.0/108', { network: [172, 16, 0, 0], prefixLength: 12 }],
      ['::ffff:10.1.2.3', { network: [10, 1, 2, 3], prefixLength: 32 }],
      ['::ffff:0:0/96', { network: [0, 0, 0, 0], prefixLength: 0 }],
      [
        '2001:db8::1/32',
        { network: [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(12).fill(0)], prefixLength: 32 },
      ],
      ['fe80::1', { network: [0xfe, 0x80, ...new Array<number>(13).fill(0), 1], prefixLength: 128 }],
      // Below /96 an IPv4-mapped address loses its ffff marker, and is an IPv6 range.
      ['::ffff:10.0.0.0/80', { network: new Array<number>(16).fill(0), prefixLength: 80 }],
      ['10.0.0.0/33', undefined],
      ['2001:db8::/129', undefined],
      ['10.0.0.0/', undefined],
      ['10.0.0.0/-1', undefined],
      ['10.0.0.0/8/8', undefined],
      ['10.0.0', undefined],
      ['fe80::1%eth0', undefined],
      ['', undefined],
      ['example.com', undefined],
    ];
    for (const [text, want] of cases) {
      const got = parseIpRange(text);
      assert.deepEqual(
        got === undefined ? undefined : { network: [...got.network], prefixLength: got.prefixLength },
        want,
        text,
      );
    }
  });

  it('parses addresses as Go ParseIP does: no zones', () => {
    assert.deepEqual(parseIpText('10.1.2.3')?.bytes, Uint8Array.from([10, 1, 2, 3]));
    assert.equal(parseIpText('fe80::1%eth0'), undefined);
    assert.equal(parseIpText('010.1.2.3'), undefined);
  });

  it('contains as Go net.IPNet.Contains: IPv4 and IPv4-mapped IPv6 are one address', () => {
    const ranges = set('10.0.0.0/8', '::ffff:172.16.0.0/108', '2001:db8::/32', 'fe80::1', '192.168.1.7');
    const cases: [string, boolean][] = [
      ['10.0.0.0', true],
      ['10.255.255.255', true],
      ['11.0.0.0', false],
      ['::ffff:10.9.8.7', true],
      ['172.16.0.1', true],
      ['172.31.255.255', true],
      ['172.32.0.0', false],
      ['::ffff:172.20.0.1', true],
      ['192.168.1.7', true],
      ['192.168.1.6', false],
      ['2001:db8::', true],
      ['2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', true],
      ['2001:db9::', false],
      ['fe80::1', true],
      ['fe80::2', false],
      // IPv4-compatible (not mapped) addresses are IPv6.
      ['::10.0.0.1', false],
    ];
    for (const [text, want] of cases) assert.equal(ranges.contains(ip(text)), want, text);
    assert.equal(ranges.size, 5);
  });

  it('keeps IPv6 ranges away from IPv4 addresses, as Go: ::/0 contains no IPv4 address', () => {
    const everything6 = set('::/0');
    assert.equal(everything6.contains(ip('2001:db8::1')), true);
    assert.equal(everything6.contains(ip('10.0.0.1')), false);
    assert.equal(everything6.contains(ip('::ffff:10.0.0.1')), false);
    const everything4 = set('0.0.0.0/0');
    assert.equal(everything4.contains(ip('::ffff:10.0.0.1')), true);
    assert.equal(everything4.contains(ip('2001:db8::1')), false);
    assert.equal(set('::ffff:10.0.0.0/80').contains(ip('10.0.0.1')), false);
  });

  it('refuses addresses that are neither 4 nor 16 bytes', () => {
    assert.equal(set('0.0.0.0/0', '::/0').contains(new IpAddress(Uint8Array.from([1, 2, 3]))), false);
  });
});
