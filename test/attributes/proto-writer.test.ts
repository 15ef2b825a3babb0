/**
 * ProtoWriter (the hot encoders' writer) against @bufbuild/protobuf's BinaryWriter: the same
 * calls give the same bytes, nested messages of every length class included.
 */
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { ProtoWriter } from '../../attributes/proto-writer';

/** One field, written by both writers. */
type Field =
  | { readonly kind: 'int32'; readonly value: number }
  | { readonly kind: 'sint32'; readonly value: number }
  | { readonly kind: 'uint32'; readonly value: number }
  | { readonly kind: 'int64'; readonly value: bigint }
  | { readonly kind: 'int64n'; readonly value: number }
  | { readonly kind: 'double'; readonly value: number }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'bytes'; readonly value: Uint8Array }
  | { readonly kind: 'nested'; readonly fields: readonly Field[] };

const leaf: fc.Arbitrary<Field> = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((value) => ({ kind: 'int32' as const, value })),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((value) => ({ kind: 'sint32' as const, value })),
  fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((value) => ({ kind: 'uint32' as const, value })),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((value) => ({ kind: 'int64' as const, value })),
  fc.maxSafeInteger().map((value) => ({ kind: 'int64n' as const, value })),
  fc.double().map((value) => ({ kind: 'double' as const, value })),
  fc.boolean().map((value) => ({ kind: 'bool' as const, value })),
  fc.string({ unit: 'grapheme', maxLength: 120 }).map((value) => ({ kind: 'string' as const, value })),
  // ASCII, at the short-string loop's bounds (63, 64), and ASCII that turns non-ASCII late.
  fc.string({ unit: 'binary-ascii', maxLength: 70 }).map((value) => ({ kind: 'string' as const, value })),
  fc
    .tuple(fc.string({ unit: 'binary-ascii', maxLength: 66 }), fc.constantFrom('é', '€', '😀'))
    .map(([ascii, tail]) => ({ kind: 'string' as const, value: ascii + tail })),
  fc.uint8Array({ maxLength: 300 }).map((value) => ({ kind: 'bytes' as const, value })),
);

const field: fc.Arbitrary<Field> = fc.letrec<{ field: Field }>((tie) => ({
  field: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('field'), { maxLength: 12 }).map((fields) => ({ kind: 'nested' as const, fields })),
  ),
})).field;

function writeBoth(fields: readonly Field[], ours: ProtoWriter, theirs: BinaryWriter): void {
  fields.forEach((f, i) => {
    const number = (i % 20) + 1;
    switch (f.kind) {
      case 'int32':
      case 'sint32':
      case 'uint32':
        ours.tag(number, WireType.Varint)[f.kind](f.value);
        theirs.tag(number, WireType.Varint)[f.kind](f.value);
        return;
      case 'int64':
      case 'int64n':
        ours.tag(number, WireType.Varint).int64(f.value);
        theirs.tag(number, WireType.Varint).int64(f.value);
        return;
      case 'double':
        ours.tag(number, WireType.Bit64).double(f.value);
        theirs.tag(number, WireType.Bit64).double(f.value);
        return;
      case 'bool':
        ours.tag(number, WireType.Varint).bool(f.value);
        theirs.tag(number, WireType.Varint).bool(f.value);
        return;
      case 'string':
        ours.tag(number, WireType.LengthDelimited).string(f.value);
        theirs.tag(number, WireType.LengthDelimited).string(f.value);
        return;
      case 'bytes':
        ours.tag(number, WireType.LengthDelimited).bytes(f.value);
        theirs.tag(number, WireType.LengthDelimited).bytes(f.value);
        return;
      case 'nested': {
        const mark = ours.tag(number, WireType.LengthDelimited).fork();
        theirs.tag(number, WireType.LengthDelimited).fork();
        writeBoth(f.fields, ours, theirs);
        ours.join(mark);
        theirs.join();
      }
    }
  });
}

describe('attributes: ProtoWriter', () => {
  it('writes the bytes BinaryWriter writes, for any fields and nesting', () => {
    fc.assert(
      fc.property(fc.array(field, { maxLength: 30 }), (fields) => {
        const ours = new ProtoWriter();
        const theirs = new BinaryWriter();
        writeBoth(fields, ours, theirs);
        assert.deepEqual(Buffer.from(ours.finish()), Buffer.from(theirs.finish()));
      }),
      { numRuns: 500 },
    );
  });

  it('writes strings of every length around the short-string loop, ASCII or not, as BinaryWriter', () => {
    for (let length = 0; length <= 130; length++) {
      for (const value of ['a'.repeat(length), `${'a'.repeat(length)}é`, `é${'a'.repeat(length)}`]) {
        const ours = new ProtoWriter().tag(1, WireType.LengthDelimited).string(value);
        const theirs = new BinaryWriter().tag(1, WireType.LengthDelimited).string(value);
        assert.deepEqual(Buffer.from(ours.finish()), Buffer.from(theirs.finish()), `length ${value.length}`);
      }
    }
  });

  it('moves a nested message that outgrows its one length byte, at each varint length', () => {
    for (const size of [0, 127, 128, 16_383, 16_384, 2_097_152]) {
      const ours = new ProtoWriter();
      const theirs = new BinaryWriter();
      const payload = new Uint8Array(size).fill(7);
      const mark = ours.tag(1, WireType.LengthDelimited).fork();
      ours.tag(2, WireType.Varint).uint32(1);
      ours.tag(3, WireType.LengthDelimited).bytes(payload);
      ours.join(mark);
      ours.tag(4, WireType.Varint).int32(-1);
      theirs.tag(1, WireType.LengthDelimited).fork().tag(2, WireType.Varint).uint32(1);
      theirs.tag(3, WireType.LengthDelimited).bytes(payload).join();
      theirs.tag(4, WireType.Varint).int32(-1);
      assert.ok(Buffer.from(ours.finish()).equals(Buffer.from(theirs.finish())), `size ${size}`);
    }
  });
});
