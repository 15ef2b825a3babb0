/**
 * One record, one line: the shape Mixer's stdio adapter wrote, so tools reading Mixer's
 * access logs read ours.
 *
 * JSON (`outputAsJson: true`):
 *   {"level":"warn","time":"2017-08-21T10:04:00.000000Z","instance":"<instance name>",<fields>}
 * Console (`outputAsJson: false`):
 *   2017-08-21T10:04:00.000000Z<TAB>warn<TAB><instance name><TAB>{"key": value, "key": value}
 *
 * A log entry's fields are its variables, sorted by name; a metric's are `value` and then its
 * dimensions, sorted by name. Levels are written `info`, `warn`, `error`; times in UTC with
 * exactly six fractional digits (microseconds), as Mixer's time encoder wrote them.
 *
 * Values, by their runtime representation (see attributes/values.ts):
 *
 * | value | JSON |
 * |---|---|
 * | string (also e-mail, URI, DNS name) | string |
 * | bigint (INT64) | number; a string of digits beyond ±2^53, so no reader rounds it |
 * | number (DOUBLE) | number; `"NaN"`, `"+Inf"`, `"-Inf"` for the values JSON lacks |
 * | boolean | true / false |
 * | Timestamp | `"2017-08-21T10:04:00.123456Z"` (microseconds, as the `time` key) |
 * | Duration | Go text, `"1.5s"`, `"19ms"` |
 * | IpAddress | text, `"10.0.0.1"`, `"2001:db8::1"` |
 * | Uint8Array (BYTES) | base64 string |
 * | string map | object, keys sorted |
 * | absent | null |
 */
import { Duration, IpAddress, Timestamp, isStringMap } from '../../../attributes';
import type { Level } from './config';

const LEVEL_TEXT: Readonly<Record<Level, string>> = { INFO: 'info', WARNING: 'warn', ERROR: 'error' };
const TWO_POW_53 = 2n ** 53n;

/**
 * Writes the lines of one output format, in three steps so a record needs no intermediate
 * object: `head(…) + field(0, …) + field(1, …) + … + tail(fieldCount)`.
 */
export class RecordFormat {
  constructor(private readonly asJson: boolean) {}

  /** The start of a line: level, time and instance name. */
  head(level: Level, time: string, instance: string): string {
    return this.asJson
      ? `{"level":"${LEVEL_TEXT[level]}","time":"${time}","instance":${JSON.stringify(instance)}`
      : `${time}\t${LEVEL_TEXT[level]}\t${instance}`;
  }

  /** The `index`-th field (from 0); undefined is written as null. */
  field(index: number, key: string, value: unknown): string {
    if (this.asJson) return `,${JSON.stringify(key)}:${valueJson(value)}`;
    return `${index === 0 ? '\t{' : ', '}${JSON.stringify(key)}: ${valueJson(value)}`;
  }

  /** The end of a line with `fieldCount` fields, newline included. */
  tail(fieldCount: number): string {
    return this.asJson || fieldCount > 0 ? '}\n' : '\n';
  }
}

/** The JSON text of an attribute value, by its runtime representation (table above). */
export function valueJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'bigint':
      return value > TWO_POW_53 || value < -TWO_POW_53 ? `"${value}"` : value.toString();
    case 'number':
      if (Number.isFinite(value)) return JSON.stringify(value);
      return Number.isNaN(value) ? '"NaN"' : value > 0 ? '"+Inf"' : '"-Inf"';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return 'null';
    case 'object':
      if (value === null) return 'null';
      if (value instanceof Timestamp) return `"${formatTime(value.seconds, value.nanos)}"`;
      if (value instanceof Duration || value instanceof IpAddress) return JSON.stringify(value.toString());
      if (value instanceof Uint8Array) {
        return `"${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')}"`;
      }
      if (isStringMap(value)) {
        const keys = [...value.keys()].sort();
        let out = '{';
        for (let i = 0; i < keys.length; i++) {
          out += `${i === 0 ? '' : ','}${JSON.stringify(keys[i])}:${JSON.stringify(value.get(keys[i]!))}`;
        }
        return out + '}';
      }
      break;
  }
  // Not an attribute value; written as its text rather than failing the whole batch.
  return JSON.stringify(String(value));
}

/** A time as Mixer wrote it: UTC, `2017-08-21T10:04:00.123456Z`, nanoseconds truncated to microseconds. */
export function formatTime(seconds: number, nanos: number): string {
  const days = Math.floor(seconds / 86_400);
  const secondOfDay = seconds - days * 86_400;
  const { year, month, day } = civilDate(days);
  const hour = Math.floor(secondOfDay / 3600);
  const minute = Math.floor((secondOfDay % 3600) / 60);
  const second = secondOfDay % 60;
  const micros = Math.floor(nanos / 1000);
  return (
    `${String(year).padStart(4, '0')}-${pad2(month)}-${pad2(day)}` +
    `T${pad2(hour)}:${pad2(minute)}:${pad2(second)}.${String(micros).padStart(6, '0')}Z`
  );
}

/** A time in milliseconds since the epoch (the handler's clock), formatted as {@link formatTime}. */
export function formatMillis(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return formatTime(seconds, Math.floor((ms - seconds * 1000) * 1e6));
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * The proleptic Gregorian date of a day number (days since 1970-01-01), for any day, where
 * Date would give up beyond ±100 million days. After Howard Hinnant's `civil_from_days`.
 */
function civilDate(days: number): { year: number; month: number; day: number } {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthIndex = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1;
  const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}
