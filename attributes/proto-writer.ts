/**
 * A protobuf writer for the proxy's hot encoders (Check and Report requests): one growing
 * buffer, and length-delimited fields closed in place instead of forked into chunks. A
 * nested message reserves one byte for its length; the few that outgrow 127 bytes (a
 * report's attribute set, say) are moved right by the extra bytes when they close.
 *
 * It writes exactly what `@bufbuild/protobuf`'s BinaryWriter writes for the same calls
 * (minimal varints, negative int32 as ten bytes, zigzag sint32), without its per-field
 * chunk arrays, which cost more than the encoding itself.
 */
import { WireType } from '@bufbuild/protobuf/wire';

const INITIAL_BYTES = 1024;
/** Strings shorter than this (so their length is one varint byte) may take the ASCII loop. */
const SHORT_STRING = 64;
const scratch = new DataView(new ArrayBuffer(8));
const TWO_32 = 0x1_0000_0000;

export class ProtoWriter {
  private buf: Buffer = Buffer.allocUnsafe(INITIAL_BYTES);
  private pos = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  tag(field: number, wire: WireType): this {
    return this.uint32((field << 3) | wire);
  }

  uint32(value: number): this {
    this.ensure(5);
    const buf = this.buf;
    let v = value >>> 0;
    let pos = this.pos;
    while (v > 127) {
      buf[pos++] = (v & 127) | 128;
      v >>>= 7;
    }
    buf[pos++] = v;
    this.pos = pos;
    return this;
  }

  int32(value: number): this {
    if (value >= 0) return this.uint32(value);
    // Sign-extended to 64 bits: ten bytes, as protobuf writes a negative int32.
    return this.varint64(value >>> 0, 0xffff_ffff);
  }

  sint32(value: number): this {
    return this.uint32((value << 1) ^ (value >> 31));
  }

  /** A signed 64-bit integer: a bigint the caller has checked fits, or a safe integer. */
  int64(value: bigint | number): this {
    if (typeof value === 'number') {
      if (value >= 0 && value < TWO_32) return this.uint32(value);
      if (value > 0) return this.varint64(value % TWO_32, Math.floor(value / TWO_32));
      return this.int64(BigInt(value));
    }
    if (value >= 0n && value <= 0x1f_ffff_ffff_ffffn) return this.int64(Number(value));
    const u = BigInt.asUintN(64, value);
    return this.varint64(Number(u & 0xffff_ffffn), Number(u >> 32n));
  }

  bool(value: boolean): this {
    return this.uint32(value ? 1 : 0);
  }

  double(value: number): this {
    this.ensure(8);
    scratch.setFloat64(0, value, true);
    for (let i = 0; i < 8; i++) this.buf[this.pos++] = scratch.getUint8(i);
    return this;
  }

  bytes(value: Uint8Array): this {
    this.uint32(value.length);
    this.ensure(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
    return this;
  }

  string(value: string): this {
    const length = value.length;
    if (length < SHORT_STRING) {
      // Most strings here are short ASCII (ids, paths, names): copied in a loop, without the
      // call into C++ that Buffer#write is; the first non-ASCII character hands over to it.
      this.ensure(1 + length);
      const buf = this.buf;
      const start = this.pos;
      let i = 0;
      for (; i < length; i++) {
        const code = value.charCodeAt(i);
        if (code >= 0x80) break;
        buf[start + 1 + i] = code;
      }
      if (i === length) {
        buf[start] = length;
        this.pos = start + 1 + length;
        return this;
      }
    }
    const most = length * 3;
    const mark = this.fork(most);
    this.pos += this.buf.write(value, this.pos, most, 'utf8');
    return this.join(mark);
  }

  /**
   * Opens a length-delimited field's value (after its tag): returns the mark that
   * {@link join} closes. `expected` bytes are made room for at once.
   */
  fork(expected = 0): number {
    this.ensure(1 + expected);
    return this.pos++;
  }

  /** Closes the value opened at `mark`, writing its length there. */
  join(mark: number): this {
    const length = this.pos - mark - 1;
    if (length < 128) {
      this.buf[mark] = length;
      return this;
    }
    let extra = 1;
    while (length >= 2 ** (7 * (extra + 1))) extra++;
    this.ensure(extra);
    this.buf.copyWithin(mark + 1 + extra, mark + 1, this.pos);
    this.pos += extra;
    const end = this.pos;
    this.pos = mark;
    this.uint32(length);
    this.pos = end;
    return this;
  }

  /** Forgets what was written after the first `length` bytes. */
  truncate(length: number): void {
    if (length < 0 || length > this.pos)
      throw new RangeError(`cannot truncate ${this.pos} bytes to ${length}`);
    this.pos = length;
  }

  /** The bytes written, in a buffer of their own. */
  finish(): Uint8Array {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }

  private varint64(lo: number, hi: number): this {
    this.ensure(10);
    const buf = this.buf;
    let pos = this.pos;
    // The low 28 bits, then three bits of lo and four of hi, then the rest of hi.
    for (let i = 0; i < 4; i++) {
      if (hi === 0 && lo < 128) {
        buf[pos++] = lo;
        this.pos = pos;
        return this;
      }
      buf[pos++] = (lo & 127) | 128;
      lo >>>= 7;
    }
    const middle = (lo & 0x0f) | ((hi & 7) << 4);
    hi >>>= 3;
    if (hi === 0) {
      buf[pos++] = middle;
      this.pos = pos;
      return this;
    }
    buf[pos++] = middle | 128;
    while (hi > 127) {
      buf[pos++] = (hi & 127) | 128;
      hi >>>= 7;
    }
    buf[pos++] = hi;
    this.pos = pos;
    return this;
  }

  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}
