/**
 * The value types of attributes and expressions. The numbers are those of Istio's
 * `istio.policy.v1beta1.ValueType`, so manifests and templates written for Mixer keep
 * their meaning; BYTES has no Mixer number and takes one after the last of them.
 */
export enum ValueType {
  VALUE_TYPE_UNSPECIFIED = 0,
  STRING = 1,
  INT64 = 2,
  DOUBLE = 3,
  BOOL = 4,
  TIMESTAMP = 5,
  IP_ADDRESS = 6,
  EMAIL_ADDRESS = 7,
  URI = 8,
  DNS_NAME = 9,
  DURATION = 10,
  STRING_MAP = 11,
  BYTES = 12,
}

const VALUE_TYPES_BY_NAME: ReadonlyMap<string, ValueType> = new Map(
  Object.entries(ValueType).filter((entry): entry is [string, ValueType] => typeof entry[1] === 'number'),
);

/** The name of a value type as written in manifests and printed by the CLI, such as `STRING_MAP`. */
export function valueTypeName(type: ValueType): string {
  return ValueType[type] ?? `VALUE_TYPE_${type}`;
}

/** Parses a value type name (`STRING`, `INT64`, …); undefined when the name is not one. */
export function parseValueType(name: string): ValueType | undefined {
  const type = VALUE_TYPES_BY_NAME.get(name);
  return type === ValueType.VALUE_TYPE_UNSPECIFIED ? undefined : type;
}

/** Every value type an attribute may have, in declaration order. */
export const ATTRIBUTE_VALUE_TYPES: readonly ValueType[] = [
  ValueType.STRING,
  ValueType.INT64,
  ValueType.DOUBLE,
  ValueType.BOOL,
  ValueType.TIMESTAMP,
  ValueType.IP_ADDRESS,
  ValueType.EMAIL_ADDRESS,
  ValueType.URI,
  ValueType.DNS_NAME,
  ValueType.DURATION,
  ValueType.STRING_MAP,
  ValueType.BYTES,
];
