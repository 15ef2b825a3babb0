/**
 * A minimal protobuf wire-format reader for the hand-written decoders of the Check and
 * Report requests. It reads straight from the request bytes, allocates nothing of its own
 * per field, and reports every defect of the input as an {@link AttributeDecodeError} that
 * names the byte offset, so no malformed request can surface as a RangeError or a crash.
 *
 * Reading is bounded by `limit`: the end of the message being read. Callers entering an
 * embedded message save `limit`, set it to the message's end, and restore it afterwards.
 */
import { AttributeDecodeError } from './errors';

/** Wire types of the protobuf encoding. */
export const enum WireType {
  VARINT = 0,
  FIXED64 = 1,
  LENGTH_DELIMITED = 2,
  START_GROUP = 3,
  END_GROUP = 4,
  FIXED32 = 5,
}

const TWO_POW_32 = 4294967296;

export class WireReader {
  readonly buf: Buffer;
  /** Offset of the next byte to read. */
  pos = 0;
  /** End of the message being read (exclusive). */
  limit: number;
  /** Offset of the tag most recently read by {@link readTag}, for error messages. */
  tagStart = 0;
  /** The tag most recently read by {@link readTag}. */
  tag = 0;
  /** Low and high 32 bits of the varint most recently read by {@link readVarint64}. */
  lo = 0;
  hi = 0;

  constructor(bytes: Uint8Array) {
    // A Buffer view over the same memory: its string and float readers are the fastest available.
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.limit = this.buf.length;
  }

  /** Whether the current message has bytes left. */
  more(): boolean {
    return this.pos < this.limit;
  }

  /**
   * Reads a field tag and returns it (field number << 3 | wire type). Rejects field number
   * 0, tags beyond 32 bits and the wire types that do not exist (6 and 7).
   */
  readTag(): number {
    this.tagStart = this.pos;
    const tag = this.readVarint32();
    this.tag = tag;
    if (this.hi !== 0) {
      throw malformed(`the tag at byte ${this.tagStart} is larger than 32 bits`);
    }
    if (tag >>> 3 === 0) throw malformed(`field number 0 at byte ${this.tagStart}`);
    if ((tag & 7) > 5)
      throw malformed(`field ${tag >>> 3} at byte ${this.tagStart} has invalid wire type ${tag & 7}`);
    return tag;
  }

  /**
   * Reads a varint and returns its low 32 bits as an unsigned number; `hi` is left non-zero
   * when higher bits were set (callers of uint32/int32/sint32 fields ignore them, as
   * protobuf does).
   */
  readVarint32(): number {
    const buf = this.buf;
    const pos = this.pos;
    if (pos < this.limit) {
      const b = buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        this.hi = 0;
        return b;
      }
    }
    this.readVarint64();
    return this.lo;
  }

  /** Reads a varint of up to 64 bits into `lo` and `hi` (unsigned 32-bit halves). */
  readVarint64(): void {
    const buf = this.buf;
    const start = this.pos;
    const limit = this.limit;
    let pos = start;
    let lo = 0;
    let hi = 0;
    let b: number;
    // Bytes 1–4 carry bits 0–27.
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= limit) throw this.truncatedVarint(start);
      b = buf[pos++]!;
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    // Byte 5 carries bits 28–34: four into lo, three into hi.
    if (pos >= limit) throw this.truncatedVarint(start);
    b = buf[pos++]!;
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      // Bytes 6–10 carry bits 35–63 into hi.
      for (let shift = 3; ; shift += 7) {
        if (pos >= limit) throw this.truncatedVarint(start);
        b = buf[pos++]!;
        // The tenth byte holds bit 63 alone; anything more (a value bit or an eleventh byte) overflows.
        if (pos - start === 10 && b > 1) throw malformed(`the varint at byte ${start} overflows 64 bits`);
        hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
      }
    }
    this.pos = pos;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** Reads a varint as a signed 64-bit integer, exactly. */
  readInt64(): bigint {
    this.readVarint64();
    const hi = this.hi;
    // Below 2^53 the number is exact and BigInt(number) is the cheap conversion.
    if (hi < 0x200000) return BigInt(hi * TWO_POW_32 + this.lo);
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(this.lo));
  }

  /**
   * Reads a varint as a signed 64-bit integer converted to a number; exact when the
   * magnitude is at most 2^53, which every valid timestamp and duration satisfies.
   */
  readInt64AsNumber(): number {
    this.readVarint64();
    return (this.hi | 0) * TWO_POW_32 + this.lo;
  }

  /** Reads a varint as protobuf's int32 (the low 32 bits, two's complement). */
  readInt32(): number {
    return this.readVarint32() | 0;
  }

  /** Reads a varint as protobuf's sint32 (zigzag-encoded low 32 bits). */
  readSint32(): number {
    const n = this.readVarint32();
    return (n >>> 1) ^ -(n & 1);
  }

  /** Reads a varint as protobuf's bool: true when any bit is set. */
  readBool(): boolean {
    this.readVarint64();
    return (this.lo | this.hi) !== 0;
  }

  /** Reads a little-endian double (wire type FIXED64). */
  readDouble(): number {
    const pos = this.pos;
    if (this.limit - pos < 8) throw this.truncatedFixed(8, pos);
    this.pos = pos + 8;
    return this.buf.readDoubleLE(pos);
  }

  /**
   * Reads the length of a length-delimited field and returns the offset where its content
   * ends; `pos` is left at the start of the content.
   */
  readLength(): number {
    const length = this.readVarint32();
    if (this.hi !== 0 || length > this.limit - this.pos) {
      throw new AttributeDecodeError(
        'TRUNCATED',
        `truncated input: field ${this.tag >>> 3} at byte ${this.tagStart} is ${this.hi !== 0 ? 'over 4 GiB' : `${length} bytes`} long ` +
          `but ${this.where()} ends at byte ${this.limit}`,
      );
    }
    return this.pos + length;
  }

  /** Reads a length-delimited field as UTF-8 text (invalid sequences become U+FFFD, as in ts-proto). */
  readString(): string {
    const end = this.readLength();
    const start = this.pos;
    this.pos = end;
    return decodeText(this.buf, start, end);
  }

  /** Skips the value of a field whose tag was just read. */
  skip(tag: number): void {
    switch (tag & 7) {
      case WireType.VARINT:
        this.readVarint64();
        return;
      case WireType.FIXED64:
        if (this.limit - this.pos < 8) throw this.truncatedFixed(8, this.pos);
        this.pos += 8;
        return;
      case WireType.LENGTH_DELIMITED:
        this.pos = this.readLength();
        return;
      case WireType.FIXED32:
        if (this.limit - this.pos < 4) throw this.truncatedFixed(4, this.pos);
        this.pos += 4;
        return;
      case WireType.START_GROUP:
        this.skipGroup(tag >>> 3);
        return;
      default:
        throw malformed(
          `end-group of field ${tag >>> 3} at byte ${this.tagStart} has no matching start-group`,
        );
    }
  }

  /**
   * Skips a (deprecated) group up to its end-group tag. Iterative, with the open groups on
   * a stack, so that deeply nested groups cannot overflow the call stack.
   */
  private skipGroup(field: number): void {
    const fields = [field];
    const starts = [this.tagStart];
    while (fields.length > 0) {
      const open = fields.length - 1;
      if (this.pos >= this.limit) {
        throw new AttributeDecodeError(
          'TRUNCATED',
          `truncated input: group of field ${fields[open]} at byte ${starts[open]} is not closed before ${this.where()} ends at byte ${this.limit}`,
        );
      }
      const tag = this.readTag();
      const wireType = tag & 7;
      if (wireType === WireType.END_GROUP) {
        if (tag >>> 3 !== fields[open]) {
          throw malformed(
            `group of field ${fields[open]} at byte ${starts[open]} is closed by field ${tag >>> 3} at byte ${this.tagStart}`,
          );
        }
        fields.pop();
        starts.pop();
      } else if (wireType === WireType.START_GROUP) {
        fields.push(tag >>> 3);
        starts.push(this.tagStart);
      } else {
        this.skip(tag);
      }
    }
  }

  /**
   * Throws unless the tag just read has the wire type its field requires. `name` is the
   * field's name for the message (`CompressedAttributes.strings`), built by the caller only
   * on this failure path.
   */
  wrongWireType(tag: number, expected: WireType, name: string): AttributeDecodeError {
    return malformed(
      `${name} (field ${tag >>> 3}) at byte ${this.tagStart} has wire type ${tag & 7}, expected ${expected}`,
    );
  }

  private where(): string {
    return this.limit === this.buf.length ? 'the input' : 'its message';
  }

  private truncatedVarint(start: number): AttributeDecodeError {
    return new AttributeDecodeError(
      'TRUNCATED',
      `truncated input: the varint at byte ${start} runs past the end of ${this.where()} at byte ${this.limit}`,
    );
  }

  private truncatedFixed(size: number, start: number): AttributeDecodeError {
    return new AttributeDecodeError(
      'TRUNCATED',
      `truncated input: the ${size}-byte value at byte ${start} runs past the end of ${this.where()} at byte ${this.limit}`,
    );
  }
}

function malformed(what: string): AttributeDecodeError {
  return new AttributeDecodeError('MALFORMED', `malformed input: ${what}`);
}

type SliceableBuffer = Buffer & { utf8Slice(start: number, end: number): string };

/**
 * UTF-8 text of buf[start, end), invalid sequences replaced by U+FFFD (as TextDecoder and
 * ts-proto do). Node's undocumented but long-standing `utf8Slice` skips the argument
 * handling of `toString`, which costs more than decoding a short word; `toString` is the
 * fallback should it ever go.
 */
export const decodeText: (buf: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as Partial<SliceableBuffer>).utf8Slice === 'function'
    ? (buf, start, end) => (buf as SliceableBuffer).utf8Slice(start, end)
    : (buf, start, end) => buf.toString('utf8', start, end);

/**
 * Decodes `count` words whose (start, end) offsets in `buf` are at offsets[0 … 2·count-1], in
 * order. Decoding the whole span the words occupy at once, then cutting it, costs a
 * fraction of decoding each word on its own. The cut is exact when the span decodes to one
 * UTF-16 unit per byte: a valid multi-byte sequence gives fewer units than bytes, and an
 * invalid sequence gives one U+FFFD however long it is, so one unit per byte means every
 * byte is ASCII or an invalid byte standing alone, which decodes the same inside its word.
 * Otherwise (non-ASCII text) each word is decoded on its own.
 */
export function decodeWords(buf: Buffer, offsets: ArrayLike<number>, count: number): string[] {
  const words = new Array<string>(count);
  if (count === 0) return words;
  const spanStart = offsets[0]!;
  const spanEnd = offsets[2 * count - 1]!;
  const span = decodeText(buf, spanStart, spanEnd);
  if (span.length === spanEnd - spanStart) {
    for (let i = 0; i < count; i++) {
      words[i] = span.substring(offsets[2 * i]! - spanStart, offsets[2 * i + 1]! - spanStart);
    }
  } else {
    for (let i = 0; i < count; i++) words[i] = decodeText(buf, offsets[2 * i]!, offsets[2 * i + 1]!);
  }
  return words;
}
