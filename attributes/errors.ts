/**
 * Errors of attribute decoding. Malformed input is a typed error with a stable code;
 * the server maps every AttributeDecodeError to gRPC INVALID_ARGUMENT at its edge.
 */
export type AttributeDecodeErrorCode =
  /** A word index names no word of the global dictionary or of the message. */
  | 'WORD_INDEX_OUT_OF_RANGE'
  /** The request's `global_word_count` is larger than the dictionary this server knows. */
  | 'DICTIONARY_MISMATCH'
  /** A known attribute arrived in the map of another value type. */
  | 'TYPE_MISMATCH'
  /** The bytes end inside a field, or a length runs past the end. */
  | 'TRUNCATED'
  /** The bytes are not a valid protobuf encoding (bad wire type, overlong varint…). */
  | 'MALFORMED'
  /** A value is outside what its type allows (an IP address of 5 bytes, nanos ≥ 1e9…). */
  | 'INVALID_VALUE';

export class AttributeDecodeError extends Error {
  override readonly name = 'AttributeDecodeError';

  constructor(
    readonly code: AttributeDecodeErrorCode,
    message: string,
  ) {
    super(message);
  }
}
