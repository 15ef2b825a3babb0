/** fast-check arbitraries of attribute bags whose values fit the standard manifest. */
import fc from 'fast-check';
import {
  AttributeBag,
  Duration,
  GLOBAL_DICTIONARY,
  IpAddress,
  STANDARD_MANIFEST,
  Timestamp,
  ValueType,
  type AttributeValue,
} from '../../attributes';

/** Strings as words: dictionary words (global indices), ASCII, and any Unicode text. */
export const word: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...GLOBAL_DICTIONARY),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
);

const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });

const timestamp = fc
  .record({
    seconds: fc.oneof(
      fc.integer({ min: -62135596800, max: 253402300799 }),
      fc.integer({ min: -10, max: 10 }),
    ),
    nanos: fc.integer({ min: 0, max: 999999999 }),
  })
  .map(({ seconds, nanos }) => new Timestamp(seconds, nanos));

const duration = fc
  .record({
    seconds: fc.integer({ min: 0, max: 315576000000 }),
    nanos: fc.integer({ min: 0, max: 999999999 }),
    negative: fc.boolean(),
  })
  .map(({ seconds, nanos, negative }) =>
    negative ? new Duration(0 - seconds, 0 - nanos) : new Duration(seconds, nanos),
  );

const ip = fc
  .oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 }))
  .map((bytes) => new IpAddress(bytes));

const stringMap = fc
  .uniqueArray(fc.tuple(word, word), { selector: ([key]) => key, maxLength: 6 })
  .map((entries) => new Map(entries));

/** A value of the given type, in its runtime representation. */
export function valueOf(type: ValueType): fc.Arbitrary<AttributeValue> {
  switch (type) {
    case ValueType.INT64:
      return int64;
    case ValueType.DOUBLE:
      return fc.double();
    case ValueType.BOOL:
      return fc.boolean();
    case ValueType.TIMESTAMP:
      return timestamp;
    case ValueType.DURATION:
      return duration;
    case ValueType.IP_ADDRESS:
      return ip;
    case ValueType.BYTES:
      return fc.uint8Array({ maxLength: 10 });
    case ValueType.STRING_MAP:
      return stringMap;
    default:
      return word;
  }
}

const knownAttributes = STANDARD_MANIFEST.list();

/** One attribute: a name of the manifest with a value of its type, or an unknown name with any value but an IP. */
export const attribute: fc.Arbitrary<[string, AttributeValue]> = fc.oneof(
  fc
    .constantFrom(...knownAttributes)
    .chain((info) => valueOf(info.valueType).map((v): [string, AttributeValue] => [info.name, v])),
  fc
    .tuple(
      word.filter((name) => STANDARD_MANIFEST.find(name) === undefined),
      fc.constantFrom(
        ValueType.STRING,
        ValueType.INT64,
        ValueType.DOUBLE,
        ValueType.BOOL,
        ValueType.TIMESTAMP,
        ValueType.DURATION,
        ValueType.BYTES,
        ValueType.STRING_MAP,
      ),
    )
    .chain(([name, type]) => valueOf(type).map((v): [string, AttributeValue] => [name, v])),
);

export const bag: fc.Arbitrary<AttributeBag> = fc
  .uniqueArray(attribute, { selector: ([name]) => name, maxLength: 12 })
  .map((entries) => new AttributeBag(entries));

/** A batch of reports: bags that evolve from one to the next, as a proxy's reports do. */
export const reportBatch: fc.Arbitrary<AttributeBag[]> = fc
  .tuple(
    bag,
    fc.array(
      fc.record({
        set: fc.uniqueArray(attribute, { selector: ([name]) => name, maxLength: 4 }),
        // Now and then a step drops an attribute, which delta encoding cannot express.
        remove: fc.option(fc.nat(), { freq: 6 }),
      }),
      { maxLength: 5 },
    ),
  )
  .map(([first, steps]) => {
    const bags = [first];
    for (const { set, remove } of steps) {
      const next = bags[bags.length - 1]!.clone();
      for (const [name, value] of set) next.set(name, value);
      const names = [...next.names()];
      if (remove !== null && names.length > 0) next.delete(names[remove % names.length]!);
      bags.push(next);
    }
    return bags;
  });
