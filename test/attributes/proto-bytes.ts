/**
 * A tiny protobuf byte builder for writing test requests by hand, independent of the codec
 * under test and of the generated classes. Every helper returns plain byte arrays that
 * concatenate; field numbers are those of mixer/v1/{attributes,mixer}.proto.
 */

export type Bytes = number[];

/** Varint of an unsigned value, or of a negative one as its 64-bit two's complement (10 bytes). */
export function varint(value: number | bigint): Bytes {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: Bytes = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** Varint of a zigzag-encoded sint32. */
export function zigzag(n: number): Bytes {
  return varint(((n << 1) ^ (n >> 31)) >>> 0);
}

export function tag(field: number, wireType: number): Bytes {
  return varint(field * 8 + wireType);
}

/** A varint field (int64, uint32, bool, enum; negative int32 as 10 bytes, as protobuf does). */
export function varintField(field: number, value: number | bigint | boolean): Bytes {
  return [...tag(field, 0), ...varint(typeof value === 'boolean' ? (value ? 1 : 0) : value)];
}

/** A sint32 field. */
export function sintField(field: number, value: number): Bytes {
  return [...tag(field, 0), ...zigzag(value)];
}

/** A length-delimited field holding the concatenation of `parts`. */
export function lengthField(field: number, ...parts: Bytes[]): Bytes {
  const content = parts.flat();
  return [...tag(field, 2), ...varint(content.length), ...content];
}

export function stringField(field: number, text: string): Bytes {
  return lengthField(field, [...Buffer.from(text, 'utf8')]);
}

export function doubleField(field: number, value: number): Bytes {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(value);
  return [...tag(field, 1), ...b];
}

export function toBytes(...parts: Bytes[]): Uint8Array {
  return Uint8Array.from(parts.flat());
}

// CompressedAttributes (fields 1–9): each helper is one field occurrence.

export function words(...list: string[]): Bytes {
  return list.flatMap((w) => stringField(1, w));
}
export function strings(name: number, value: number): Bytes {
  return lengthField(2, sintField(1, name), sintField(2, value));
}
export function int64s(name: number, value: bigint): Bytes {
  return lengthField(3, sintField(1, name), varintField(2, value));
}
export function doubles(name: number, value: number): Bytes {
  return lengthField(4, sintField(1, name), doubleField(2, value));
}
export function bools(name: number, value: boolean): Bytes {
  return lengthField(5, sintField(1, name), varintField(2, value));
}
/** A Timestamp or Duration value: seconds (int64) and nanos (int32). */
export function secondsNanos(seconds: number | bigint, nanos: number): Bytes {
  return [...(seconds === 0 ? [] : varintField(1, seconds)), ...(nanos === 0 ? [] : varintField(2, nanos))];
}
export function timestamps(name: number, seconds: number | bigint, nanos: number): Bytes {
  return lengthField(6, sintField(1, name), lengthField(2, secondsNanos(seconds, nanos)));
}
export function durations(name: number, seconds: number | bigint, nanos: number): Bytes {
  return lengthField(7, sintField(1, name), lengthField(2, secondsNanos(seconds, nanos)));
}
export function bytes(name: number, value: Bytes): Bytes {
  return lengthField(8, sintField(1, name), lengthField(2, value));
}
/** A string map: key index → value index pairs. */
export function stringMaps(name: number, ...entries: [number, number][]): Bytes {
  const map = entries.flatMap(([k, v]) => lengthField(1, sintField(1, k), sintField(2, v)));
  return lengthField(9, sintField(1, name), lengthField(2, map));
}

// CheckRequest and ReportRequest.

export function checkRequest(
  attributes: Bytes,
  globalWordCount = 0,
  extra: { deduplicationId?: string; quotas?: [string, bigint, boolean][] } = {},
): Uint8Array {
  return toBytes(
    lengthField(1, attributes),
    globalWordCount === 0 ? [] : varintField(2, globalWordCount),
    extra.deduplicationId === undefined ? [] : stringField(3, extra.deduplicationId),
    ...(extra.quotas ?? []).map(([name, amount, bestEffort]) =>
      lengthField(
        4,
        stringField(1, name),
        lengthField(2, varintField(1, amount), varintField(2, bestEffort)),
      ),
    ),
  );
}

export function reportRequest(
  sets: Bytes[],
  options: { defaultWords?: string[]; globalWordCount?: number; semantics?: number } = {},
): Uint8Array {
  return toBytes(
    ...sets.map((set) => lengthField(1, set)),
    ...(options.defaultWords ?? []).map((w) => stringField(2, w)),
    options.globalWordCount === undefined ? [] : varintField(3, options.globalWordCount),
    options.semantics === undefined ? [] : varintField(4, options.semantics),
  );
}
