/**
 * IP address ranges as the list checker matches them. Containment follows Go's
 * `net.IPNet.Contains`, which Mixer's list checker used: an IPv4 address and its
 * IPv4-mapped IPv6 form (`::ffff:10.1.2.3`) are the same address, and a range written in
 * IPv4-mapped form (`::ffff:10.0.0.0/104`) is the IPv4 range it maps (`10.0.0.0/8`), on
 * both sides. Other IPv6 ranges, `::/0` included, contain no IPv4 address.
 */
import { IpAddress } from '../../../attributes';

/** A range: its network address (4 bytes for IPv4, else 16), host bits cleared, and its prefix length. */
export interface IpRange {
  readonly network: Uint8Array;
  readonly prefixLength: number;
}

/** Parses an address as Go's net.ParseIP does: IPv4 dotted, or IPv6 without a zone. */
export function parseIpText(text: string): IpAddress | undefined {
  // Node's isIP accepts zones (`fe80::1%eth0`); Go's ParseIP and ParseCIDR do not.
  if (text.includes('%')) return undefined;
  return IpAddress.parse(text);
}

/**
 * Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address, which is a range of one address
 * (Mixer appended `/32` to bare entries, which made a bare IPv6 address a /32 network;
 * here it is the address alone). Host bits may be set (`10.1.2.3/8` is `10.0.0.0/8`), as
 * in Go. Undefined when the text is neither.
 */
export function parseIpRange(text: string): IpRange | undefined {
  const slash = text.indexOf('/');
  const address = parseIpText(slash === -1 ? text : text.slice(0, slash));
  if (address === undefined) return undefined;
  const bits = address.bytes.length * 8;
  let prefixLength = bits;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    if (!/^\d{1,9}$/.test(prefixText)) return undefined;
    prefixLength = Number(prefixText);
    if (prefixLength > bits) return undefined;
  }
  const network = Uint8Array.from(address.bytes);
  for (let bit = prefixLength; bit < bits; bit++) network[bit >> 3] &= ~(0x80 >> (bit & 7));
  // An IPv4-mapped network can only come from a prefix of 96 or more; it is that IPv4 range.
  const v4 = new IpAddress(network).toIpv4();
  if (v4 !== undefined && network.length === 16) return { network: v4, prefixLength: prefixLength - 96 };
  return { network, prefixLength };
}

function ipv4Number(bytes: Uint8Array): number {
  return ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
}

function ipv4Mask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** The first `prefixLength` bits of 16 bytes, as a string key (one char per byte). */
function ipv6Key(bytes: Uint8Array, prefixLength: number): string {
  let key = '';
  for (let i = 0; i < 16; i++) {
    const kept = prefixLength - i * 8;
    const byte = kept >= 8 ? bytes[i] : kept <= 0 ? 0 : bytes[i] & (0xff << (8 - kept));
    key += String.fromCharCode(byte);
  }
  return key;
}

/**
 * A set of ranges answering containment with one hash lookup per distinct prefix length
 * (at most 33 for IPv4 and 129 for IPv6), however many ranges it holds.
 */
export class IpRangeSet {
  private readonly v4 = new Map<number, Set<number>>();
  private readonly v6 = new Map<number, Set<string>>();
  private v4Prefixes: [mask: number, networks: Set<number>][] = [];
  private v6Prefixes: [prefixLength: number, networks: Set<string>][] = [];
  private count = 0;

  /** How many ranges were added (duplicates included). */
  get size(): number {
    return this.count;
  }

  add(range: IpRange): void {
    this.count++;
    if (range.network.length === 4) {
      let networks = this.v4.get(range.prefixLength);
      if (networks === undefined) {
        networks = new Set();
        this.v4.set(range.prefixLength, networks);
        this.v4Prefixes.push([ipv4Mask(range.prefixLength), networks]);
      }
      networks.add(ipv4Number(range.network));
    } else {
      let networks = this.v6.get(range.prefixLength);
      if (networks === undefined) {
        networks = new Set();
        this.v6.set(range.prefixLength, networks);
        this.v6Prefixes.push([range.prefixLength, networks]);
      }
      networks.add(ipv6Key(range.network, range.prefixLength));
    }
  }

  /** Whether an address (4 or 16 bytes) is in one of the ranges. */
  contains(address: IpAddress): boolean {
    const v4 = address.toIpv4();
    if (v4 !== undefined) {
      const n = ipv4Number(v4);
      for (const [mask, networks] of this.v4Prefixes) if (networks.has((n & mask) >>> 0)) return true;
      return false;
    }
    if (address.bytes.length !== 16) return false;
    for (const [prefixLength, networks] of this.v6Prefixes) {
      if (networks.has(ipv6Key(address.bytes, prefixLength))) return true;
    }
    return false;
  }
}
