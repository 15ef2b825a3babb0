/**
 * HPACK (RFC 7541), the header compression of HTTP/2, for our own HTTP/2 endpoints (the
 * policy client's, proxy/policy/http2-client-connection.ts, and the policy server's): a full
 * decoder for what a peer sends (static and dynamic tables, every representation,
 * Huffman-coded strings) and a small encoder for the header blocks we send (static and dynamic
 * table references, raw literals; no Huffman: our headers are short and repeat, so after the
 * first call they are one-byte references).
 *
 * Names and values are Latin-1 strings: one character per octet, as HTTP/2 field octets are.
 */

/** RFC 7541 Appendix A: the static table, index 1 first. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length;

/**
 * RFC 7541 Appendix B: the bit length of each symbol's Huffman code, symbols 0–255 then EOS
 * (256). The code is canonical — codes of one length are consecutive, in symbol order, and
 * follow the codes of the shorter lengths — so the lengths determine the codes.
 */
// prettier-ignore
const HUFFMAN_CODE_BITS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];
const EOS = 256;

/** The canonical codes, by symbol (exported for the tests, which check them against RFC 7541 values). */
export const HUFFMAN_CODES: readonly number[] = canonicalCodes(HUFFMAN_CODE_BITS);

function canonicalCodes(bits: readonly number[]): number[] {
  const symbols = bits.map((_, symbol) => symbol).sort((a, b) => bits[a]! - bits[b]! || a - b);
  const codes = new Array<number>(bits.length).fill(0);
  let code = 0;
  let length = bits[symbols[0]!]!;
  for (let i = 0; i < symbols.length; i++) {
    const symbol = symbols[i]!;
    if (i > 0) code = (code + 1) * 2 ** (bits[symbol]! - length);
    length = bits[symbol]!;
    codes[symbol] = code;
  }
  return codes;
}

/**
 * The decoding tree, as pairs of children: `HUFFMAN_TREE[2 * node + bit]` is the next inner
 * node (> 0), or a leaf `-(symbol + 1)`. Node 0 is the root.
 */
const HUFFMAN_TREE: Int32Array = (() => {
  const tree = new Int32Array(2 * 512);
  let nodes = 1;
  for (let symbol = 0; symbol <= EOS; symbol++) {
    const bits = HUFFMAN_CODE_BITS[symbol]!;
    const code = HUFFMAN_CODES[symbol]!;
    let node = 0;
    for (let i = bits - 1; i > 0; i--) {
      const slot = 2 * node + (Math.floor(code / 2 ** i) & 1);
      if (tree[slot] === 0) tree[slot] = nodes++;
      node = tree[slot]!;
    }
    tree[2 * node + (code & 1)] = -(symbol + 1);
  }
  return tree;
})();

/** What the decoder throws inside, caught by {@link HpackDecoder.decode}: a COMPRESSION_ERROR. */
class HpackError extends Error {}

/** RFC 7541 §4.1: an entry's size is its name and value octets plus 32. */
const ENTRY_OVERHEAD = 32;

/** The default SETTINGS_HEADER_TABLE_SIZE, which the policy client leaves as is. */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;

/**
 * Decodes the header blocks of one connection, in order (the dynamic table is connection
 * state). After an error the state is undefined: the connection must end (COMPRESSION_ERROR).
 */
export class HpackDecoder {
  /** Dynamic table, oldest first: index 62 is the last entry. */
  private readonly names: string[] = [];
  private readonly values: string[] = [];
  private size = 0;
  private maxSize: number;
  private block: Buffer = Buffer.alloc(0);
  private pos = 0;
  private scratch = Buffer.allocUnsafe(256);

  /** `settingsMaxSize`: the SETTINGS_HEADER_TABLE_SIZE we announced, the bound of size updates. */
  constructor(private readonly settingsMaxSize = DEFAULT_HEADER_TABLE_SIZE) {
    this.maxSize = settingsMaxSize;
  }

  /**
   * Decodes `block`, appending name, value, name, value… to `fields`. Returns undefined, or
   * what is wrong with the block; never throws.
   */
  decode(block: Buffer, fields: string[]): string | undefined {
    this.block = block;
    this.pos = 0;
    try {
      let fieldSeen = false;
      while (this.pos < block.length) {
        const first = block[this.pos]!;
        if (first >= 0x80) {
          const index = this.integer(7);
          if (index === 0) throw new HpackError('indexed header field with index 0');
          this.pushEntry(index, fields);
        } else if (first >= 0x40) {
          const index = this.integer(6);
          const name = index === 0 ? this.string() : this.nameAt(index);
          const value = this.string();
          fields.push(name, value);
          this.add(name, value);
        } else if (first >= 0x20) {
          if (fieldSeen) throw new HpackError('dynamic table size update after a header field');
          const size = this.integer(5);
          if (size > this.settingsMaxSize) {
            throw new HpackError(
              `dynamic table size update to ${size}, above the ${this.settingsMaxSize} allowed`,
            );
          }
          this.maxSize = size;
          this.evictTo(size);
          continue;
        } else {
          // Literal without indexing (0000) or never indexed (0001): both have a 4-bit prefix.
          const index = this.integer(4);
          const name = index === 0 ? this.string() : this.nameAt(index);
          fields.push(name, this.string());
        }
        fieldSeen = true;
      }
      return undefined;
    } catch (error) {
      if (error instanceof HpackError) return error.message;
      return `malformed header block: ${String(error)}`;
    } finally {
      this.block = EMPTY;
    }
  }

  /** The entries of the dynamic table, newest first (for tests). */
  dynamicTable(): [string, string][] {
    const entries: [string, string][] = [];
    for (let i = this.names.length - 1; i >= 0; i--) entries.push([this.names[i]!, this.values[i]!]);
    return entries;
  }

  /** The dynamic table's size in octets, as RFC 7541 §4.1 counts it (for tests). */
  dynamicTableSize(): number {
    return this.size;
  }

  private integer(prefixBits: number): number {
    const block = this.block;
    const mask = (1 << prefixBits) - 1;
    let value = block[this.pos++]! & mask;
    if (value < mask) return value;
    let shift = 0;
    for (;;) {
      if (this.pos >= block.length) throw new HpackError('truncated integer');
      const byte = block[this.pos++]!;
      // Five continuation bytes carry 35 bits, more than 2^31 - 1 needs: a sixth is an
      // over-long encoding (zero bytes that add nothing), which RFC 7541 §5.1 makes an error.
      if (shift > 28) throw new HpackError('integer encoding longer than 2^31 - 1 needs');
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (value > 0x7fffffff) throw new HpackError('integer above 2^31 - 1');
      if (byte < 0x80) return value;
    }
  }

  private string(): string {
    if (this.pos >= this.block.length) throw new HpackError('truncated string literal');
    const huffman = this.block[this.pos]! >= 0x80;
    const length = this.integer(7);
    const start = this.pos;
    const end = start + length;
    if (end > this.block.length)
      throw new HpackError(`string literal of ${length} octets past the block's end`);
    this.pos = end;
    return huffman ? this.huffman(start, end) : this.block.toString('latin1', start, end);
  }

  private huffman(start: number, end: number): string {
    // The shortest code has 5 bits: at most 8/5 symbols per octet.
    const most = Math.ceil(((end - start) * 8) / 5);
    if (this.scratch.length < most)
      this.scratch = Buffer.allocUnsafe(Math.max(most, 2 * this.scratch.length));
    const out = this.scratch;
    const block = this.block;
    let written = 0;
    let node = 0;
    // Bits read since the last symbol, and whether they were all 1 (valid padding, §5.2).
    let pendingBits = 0;
    let pendingOnes = true;
    for (let i = start; i < end; i++) {
      const byte = block[i]!;
      for (let bit = 7; bit >= 0; bit--) {
        const one = (byte >> bit) & 1;
        const next = HUFFMAN_TREE[2 * node + one]!;
        if (next < 0) {
          const symbol = -next - 1;
          if (symbol === EOS) throw new HpackError('Huffman string contains EOS');
          out[written++] = symbol;
          node = 0;
          pendingBits = 0;
          pendingOnes = true;
        } else {
          node = next;
          pendingBits++;
          if (one === 0) pendingOnes = false;
        }
      }
    }
    if (pendingBits > 7) throw new HpackError('Huffman padding longer than 7 bits');
    if (!pendingOnes) throw new HpackError('Huffman padding is not the EOS prefix');
    return out.toString('latin1', 0, written);
  }

  private nameAt(index: number): string {
    if (index <= STATIC_COUNT) return STATIC_TABLE[index - 1]![0];
    const at = this.names.length - 1 - (index - STATIC_COUNT - 1);
    if (at < 0)
      throw new HpackError(`header index ${index} beyond the tables (${STATIC_COUNT + this.names.length})`);
    return this.names[at]!;
  }

  private pushEntry(index: number, fields: string[]): void {
    if (index <= STATIC_COUNT) {
      const entry = STATIC_TABLE[index - 1]!;
      fields.push(entry[0], entry[1]);
      return;
    }
    const at = this.names.length - 1 - (index - STATIC_COUNT - 1);
    if (at < 0)
      throw new HpackError(`header index ${index} beyond the tables (${STATIC_COUNT + this.names.length})`);
    fields.push(this.names[at]!, this.values[at]!);
  }

  private add(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    // §4.4: an entry larger than the table empties it and is not added.
    this.evictTo(this.maxSize - entrySize);
    if (entrySize > this.maxSize) return;
    this.names.push(name);
    this.values.push(value);
    this.size += entrySize;
  }

  private evictTo(size: number): void {
    let evicted = 0;
    while (this.size > size && evicted < this.names.length) {
      this.size -= this.names[evicted]!.length + this.values[evicted]!.length + ENTRY_OVERHEAD;
      evicted++;
    }
    if (evicted > 0) {
      this.names.splice(0, evicted);
      this.values.splice(0, evicted);
    }
  }
}

const EMPTY = Buffer.alloc(0);

/** How the encoder sends a header that is not in a table yet. */
const enum Indexing {
  /** Added to the dynamic table: the next call with the same header sends one index. */
  Incremental,
  /** Not added: the value changes from call to call (an id), so an entry would only evict others. */
  Without,
}

/** Static entries by name, then value → index. */
const STATIC_INDEX = new Map<string, Map<string, number>>();
/** A name's first static index. */
const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  let values = STATIC_INDEX.get(name);
  if (values === undefined) STATIC_INDEX.set(name, (values = new Map()));
  if (!values.has(value)) values.set(value, i + 1);
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
});

/**
 * Encodes the request header blocks of one connection, in order. A header already in the
 * static or dynamic table is sent as its index; others as raw literals, added to the dynamic
 * table unless their value changed since the last block (ids, which would only fill it).
 * The dynamic table mirrors the server decoder's, within the server's SETTINGS_HEADER_TABLE_SIZE.
 *
 * Use: `begin()`, `header(name, value)` for each field, `end()` → the block.
 */
export class HpackEncoder {
  /** Dynamic table entries, oldest first; an entry's number counts insertions from 0. */
  private readonly entries: { name: string; value: string; size: number; number: number }[] = [];
  private readonly byNameValue = new Map<string, Map<string, number>>();
  private readonly byName = new Map<string, number>();
  private readonly lastValue = new Map<string, string>();
  private inserted = 0;
  private size = 0;
  private maxSize = DEFAULT_HEADER_TABLE_SIZE;
  /** The smallest and the last size since the last block, when they need signalling (§4.2). */
  private smallestUpdate = -1;
  private out: Buffer = Buffer.allocUnsafe(1024);
  private pos = 0;

  /**
   * Applies the server's SETTINGS_HEADER_TABLE_SIZE: the encoder uses at most that (and at
   * most 4096 octets) and signals the new size at the start of the next block.
   */
  setMaxTableSize(settingsSize: number): void {
    const size = Math.min(settingsSize, DEFAULT_HEADER_TABLE_SIZE);
    if (size === this.maxSize) return;
    this.maxSize = size;
    this.smallestUpdate = this.smallestUpdate < 0 ? size : Math.min(this.smallestUpdate, size);
    this.evictTo(size);
  }

  begin(): void {
    this.pos = 0;
    if (this.smallestUpdate >= 0) {
      if (this.smallestUpdate < this.maxSize) this.integer(0x20, 5, this.smallestUpdate);
      this.integer(0x20, 5, this.maxSize);
      this.smallestUpdate = -1;
    }
  }

  header(name: string, value: string): void {
    const staticExact = STATIC_INDEX.get(name)?.get(value);
    if (staticExact !== undefined) {
      this.integer(0x80, 7, staticExact);
      return;
    }
    const number = this.byNameValue.get(name)?.get(value);
    if (number !== undefined) {
      this.integer(0x80, 7, this.indexOf(number));
      return;
    }
    const last = this.lastValue.get(name);
    const indexing = last !== undefined && last !== value ? Indexing.Without : Indexing.Incremental;
    if (last !== value) this.lastValue.set(name, value);
    const nameNumber = this.byName.get(name);
    const nameIndex =
      STATIC_NAME_INDEX.get(name) ?? (nameNumber !== undefined ? this.indexOf(nameNumber) : 0);
    if (indexing === Indexing.Incremental) this.integer(0x40, 6, nameIndex);
    else this.integer(0x00, 4, nameIndex);
    if (nameIndex === 0) this.string(name);
    this.string(value);
    if (indexing === Indexing.Incremental) this.add(name, value);
  }

  /** The block: a view of the encoder's buffer, valid until the next `begin()`. */
  end(): Buffer {
    return this.out.subarray(0, this.pos);
  }

  private indexOf(number: number): number {
    return STATIC_COUNT + this.inserted - number;
  }

  private add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.evictTo(this.maxSize - size);
    if (size > this.maxSize) return;
    const number = this.inserted++;
    this.entries.push({ name, value, size, number });
    this.size += size;
    let values = this.byNameValue.get(name);
    if (values === undefined) this.byNameValue.set(name, (values = new Map()));
    values.set(value, number);
    this.byName.set(name, number);
  }

  private evictTo(size: number): void {
    while (this.size > size && this.entries.length > 0) {
      const entry = this.entries.shift()!;
      this.size -= entry.size;
      const values = this.byNameValue.get(entry.name)!;
      if (values.get(entry.value) === entry.number) values.delete(entry.value);
      if (values.size === 0) this.byNameValue.delete(entry.name);
      if (this.byName.get(entry.name) === entry.number) this.byName.delete(entry.name);
    }
  }

  private reserve(bytes: number): void {
    if (this.pos + bytes <= this.out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.out.length, this.pos + bytes));
    this.out.copy(grown, 0, 0, this.pos);
    this.out = grown;
  }

  private integer(pattern: number, prefixBits: number, value: number): void {
    this.reserve(6);
    const out = this.out;
    const mask = (1 << prefixBits) - 1;
    if (value < mask) {
      out[this.pos++] = pattern | value;
      return;
    }
    out[this.pos++] = pattern | mask;
    value -= mask;
    while (value >= 0x80) {
      out[this.pos++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 0x80);
    }
    out[this.pos++] = value;
  }

  private string(text: string): void {
    this.integer(0x00, 7, text.length);
    this.reserve(text.length);
    this.pos += this.out.write(text, this.pos, 'latin1');
  }
}
