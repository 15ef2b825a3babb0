/** Attribute values as JSON values, the way the audit record carries them. */
import { Duration, IpAddress, Timestamp, isStringMap, type AttributeValue } from '../../../attributes';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * An attribute value as JSON: strings, booleans and safe integers as themselves; 64-bit
 * integers beyond 2^53 and non-finite numbers as strings; timestamps as RFC 3339 with
 * nanoseconds; durations as Go-style text (`1.5s`); IP addresses as text; bytes as base64;
 * string maps as objects with sorted keys.
 */
export function toJsonValue(value: AttributeValue | undefined): JsonValue {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'bigint':
      return value > MAX_SAFE || value < -MAX_SAFE ? value.toString() : Number(value);
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'undefined':
      return null;
  }
  if (value instanceof Timestamp) return formatTimestamp(value);
  if (value instanceof Duration || value instanceof IpAddress) return value.toString();
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (isStringMap(value)) {
    const out: { [key: string]: JsonValue } = {};
    for (const key of [...value.keys()].sort()) out[key] = value.get(key) ?? null;
    return out;
  }
  return String(value);
}

/** The last whole second formatTimestamp() formatted, and its text up to the seconds. */
let lastSeconds = NaN;
let lastSecondText = '';

/** RFC 3339 in UTC with nanoseconds: `2024-05-01T10:20:30.123456789Z`. */
export function formatTimestamp(timestamp: Timestamp): string {
  // Records come in bursts within one second: its text is made once (Date and toISOString
  // are a third of this function's cost otherwise).
  if (timestamp.seconds !== lastSeconds) {
    lastSecondText = new Date(timestamp.seconds * 1000).toISOString().slice(0, 19); // …T10:20:30
    lastSeconds = timestamp.seconds;
  }
  return `${lastSecondText}.${String(timestamp.nanos).padStart(9, '0')}Z`;
}
