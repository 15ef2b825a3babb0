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
  const out = Buffer.allocUnsafe(spooledRecordBytes(id, route, json));
  writeSpooledRecord(out, 0, id, route, json);
  return out;
}

/**
 * The bytes encodeSpooledRecord makes for these.
 * @throws RangeError when the id has more than 255 characters, the route more than 255
 *   parts or a part more than 65535 bytes
 */
export function spooledRecordBytes(id: string, route: readonly string[], json: string): number {
  if (id.length > 255) throw new RangeError(`a record id has at most 255 characters, got ${id.length}`);
  if (route.length > 255) throw new RangeError(`a route has at most 255 parts, got ${route.length}`);
  let bytes = 3 + id.length;
  for (const part of route) {
    const length = Buffer.byteLength(part, 'utf8');
    if (length > 0xffff) throw new RangeError(`a route part has at most 65535 bytes, got ${length}`);
    bytes += 2 + length;
  }
  return bytes + Buffer.byteLength(json, 'utf8');
}

/**
 * Writes the record as encodeSpooledRecord does, into `out` at `at`, which has room for
 * spooledRecordBytes() (checked by the caller, with it); returns where it ends. Lets the export
 * handler write a call's records straight into one buffer of spool frames.
 */
export function writeSpooledRecord(
  out: Buffer,
  at: number,
  id: string,
  route: readonly string[],
  json: string,
): number {
  out[at] = VERSION;
  out[at + 1] = id.length;
  at += 2 + out.write(id, at + 2, 'latin1');
  out[at++] = route.length;
  for (const part of route) {
    const length = out.write(part, at + 2, 'utf8');
    out.writeUInt16BE(length, at);
    at += 2 + length;
  }
  return at + out.write(json, at, 'utf8');
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
