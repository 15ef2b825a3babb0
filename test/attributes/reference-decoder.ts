/**
 * The decoding rules written the slow, obvious way over the ts-proto generated messages:
 * the oracle the hand-written decoder is cross-checked against. It decides the same
 * outcomes (bag, or error code) but not the same messages.
 */
import {
  AttributeBag,
  AttributeDecodeError,
  Duration,
  GLOBAL_DICTIONARY,
  IpAddress,
  Timestamp,
  ValueType,
  type AttributeFinder,
  type AttributeValue,
} from '../../attributes';
import type { CompressedAttributes } from '../../proto/generated/mixer/v1/attributes.pb';

type MapName =
  'strings' | 'int64s' | 'doubles' | 'bools' | 'timestamps' | 'durations' | 'bytes' | 'stringMaps';

const ACCEPTS: Record<MapName, ValueType[]> = {
  strings: [ValueType.STRING, ValueType.EMAIL_ADDRESS, ValueType.URI, ValueType.DNS_NAME],
  int64s: [ValueType.INT64],
  doubles: [ValueType.DOUBLE],
  bools: [ValueType.BOOL],
  timestamps: [ValueType.TIMESTAMP],
  durations: [ValueType.DURATION],
  bytes: [ValueType.BYTES, ValueType.IP_ADDRESS],
  stringMaps: [ValueType.STRING_MAP],
};

function fail(code: AttributeDecodeError['code']): never {
  throw new AttributeDecodeError(code, code);
}

export function referenceDecode(
  message: CompressedAttributes,
  globalWordCount: number,
  manifest: AttributeFinder,
  defaultWords: string[] = [],
): AttributeBag {
  if (globalWordCount > GLOBAL_DICTIONARY.length) fail('INVALID_VALUE');
  const words = message.words.length > 0 ? message.words : defaultWords;
  const limit = globalWordCount === 0 ? GLOBAL_DICTIONARY.length : globalWordCount;
  const word = (index: number): string => {
    const w = index < 0 ? words[-index - 1] : index < limit ? GLOBAL_DICTIONARY[index] : undefined;
    return w ?? fail('WORD_INDEX_OUT_OF_RANGE');
  };
  const bag = new AttributeBag();
  const add = (
    map: MapName,
    convert: (value: never, type: ValueType | undefined, name: string) => AttributeValue,
  ) => {
    for (const [key, value] of Object.entries(message[map])) {
      const name = word(Number(key));
      const type = manifest.find(name)?.valueType;
      if (type !== undefined && !ACCEPTS[map].includes(type)) fail('TYPE_MISMATCH');
      const converted = convert(value as never, type, name);
      if (bag.has(name)) fail('MALFORMED');
      bag.set(name, converted);
    }
  };
  add('strings', (v: number) => word(v));
  add('int64s', (v: bigint) => v);
  add('doubles', (v: number) => v);
  add('bools', (v: boolean) => v);
  add('timestamps', (v: { seconds: bigint; nanos: number }) => {
    if (v.seconds < -62135596800n || v.seconds > 253402300799n || v.nanos < 0 || v.nanos > 999999999) {
      fail('INVALID_VALUE');
    }
    return new Timestamp(Number(v.seconds), v.nanos);
  });
  add('durations', (v: { seconds: bigint; nanos: number }) => {
    const s = v.seconds;
    if (s < -315576000000n || s > 315576000000n || Math.abs(v.nanos) > 999999999) fail('INVALID_VALUE');
    if ((s > 0n && v.nanos < 0) || (s < 0n && v.nanos > 0)) fail('INVALID_VALUE');
    return new Duration(Number(s), v.nanos);
  });
  add('bytes', (v: Uint8Array, type) => {
    const copy = new Uint8Array(v);
    if (type !== ValueType.IP_ADDRESS) return copy;
    if (copy.length !== 4 && copy.length !== 16) fail('INVALID_VALUE');
    return new IpAddress(copy);
  });
  add('stringMaps', (v: { entries: Record<number, number> }) => {
    const map = new Map<string, string>();
    for (const [k, value] of Object.entries(v.entries)) map.set(word(Number(k)), word(value));
    return map;
  });
  return bag;
}
