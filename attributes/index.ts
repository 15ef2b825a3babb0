// Public surface of attributes/: value types, values, bags, references, manifests and the wire codec.
export { ValueType, valueTypeName, parseValueType, ATTRIBUTE_VALUE_TYPES } from './value-type';
export { Timestamp, Duration, IpAddress, bytesEqual, isStringMap, stringMapsEqual } from './values';
export { FlatStringMap } from './string-map';
export type { AttributeValue, StringMap } from './values';
export { AttributeBag } from './bag';
export type { Bag } from './bag';
export { Presence, ReferencedAttributes, ReferenceRecordingBag } from './references';
export type { ReferencedAttribute } from './references';
export { AttributeManifest, STANDARD_MANIFEST } from './manifest';
export type { AttributeFinder, AttributeInfo, AttributeConflict } from './manifest';
export { AttributeDecodeError } from './errors';
export type { AttributeDecodeErrorCode } from './errors';
export {
  decodeCheckRequest,
  decodeReportRequest,
  decodeReportRecords,
  encodeCheckRequest,
  encodeReportRequest,
  ReportRequestEncoder,
  encodeReferencedAttributes,
} from './wire-codec';
export type {
  DecodedCheckRequest,
  QuotaRequest,
  EncodeOptions,
  ReportRecordSink,
  ReportSetWriter,
} from './wire-codec';
export { MessageWords, WireField } from './compressed-encoder';
export { ProtoWriter } from './proto-writer';
export { parseJson, bagFromJson, valueFromJson, valueToJson, AttributeJsonError } from './json';
export type { JsonValue } from './json';
export { GLOBAL_DICTIONARY, GLOBAL_WORD_INDEX } from './global-dictionary';
export { lengthPrefixed, valueKey } from './value-key';
