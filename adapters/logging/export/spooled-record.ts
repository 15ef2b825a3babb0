/**
 * What the export adapters keep in the spool for each accepted record: its id, its route
 * (where it goes, as the sink decided when the record was accepted: a Kafka topic and key,
 * an Elasticsearch index) and the audit record's JSON, so delivery neither builds nor parses
 * the record again.
 *
 * Layout: `[u8 version=1][u8 id length][id, ASCII][u8 route parts]([u16 length][UTF-8])…[JSON]`.
 */

export interface SpooledRecord {
  /** The record's `event.id`: the same each time this record is sent. */
  readonly id: string;
  readonly route: readonly string[];
  /** The audit record, UTF-8 JSON. A view into the spool's buffer: copy it to keep it. */
  readonly json: Buffer;
}

const VERSION = 1;

export function encodeSpooledRecord(id: string, route: readonly string[], json: string): Buffer {
  const parts = route.map((part) => Buffer.from(part, 'utf8'));
  if (id.length > 255) throw new RangeError(`a record id has at most 255 characters, got ${id.length}`);
  if (parts.length > 255) throw new RangeError(`a route has at most 255 parts, got ${parts.length}`);
  let header = 3 + id.length;
  for (const part of parts) {
    if (part.length > 0xffff)
      throw new RangeError(`a route part has at most 65535 bytes, got ${part.length}`);
    header += 2 + part.length;
  }
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  const out = Buffer.allocUnsafe(header + jsonBytes);
  out[0] = VERSION;
  out[1] = id.length;
  out.write(id, 2, 'latin1');
  let at = 2 + id.length;
  out[at++] = parts.length;
  for (const part of parts) {
    out.writeUInt16BE(part.length, at);
    part.copy(out, at + 2);
    at += 2 + part.length;
  }
  out.write(json, at, 'utf8');
  return out;
}

/** @throws Error when the payload is not a spooled record of a version this code reads */
export function decodeSpooledRecord(payload: Buffer): SpooledRecord {
  if (payload.length < 3 || payload[0] !== VERSION) {
    throw new Error(
      `not a spooled export record (version byte ${payload[0] ?? 'missing'}, expected ${VERSION})`,
    );
  }
  const idLength = payload[1]!;
  const id = payload.toString('latin1', 2, 2 + idLength);
  let at = 2 + idLength;
  const count = payload[at++]!;
  const route: string[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 2 > payload.length) throw new Error('a spooled export record ends inside its route');
    const length = payload.readUInt16BE(at);
    route.push(payload.toString('utf8', at + 2, at + 2 + length));
    at += 2 + length;
  }
  if (at > payload.length) throw new Error('a spooled export record ends inside its route');
  return { id, route, json: payload.subarray(at) };
}
