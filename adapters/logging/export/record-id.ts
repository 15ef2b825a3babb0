/**
 * Record ids (`event.id`): 32 hexadecimal digits, given when a record is accepted and kept
 * with it in the spool.
 *
 * When the Report carried a report id (`x-switchboard-report-id`, sent by Switchboard's
 * proxy and the same when it resends a Report whose answer it lost), the id is derived from
 * it, the handler, the template and the record's place in the call: a resent Report gives
 * its records the ids they had, so Elasticsearch overwrites rather than duplicates them.
 * Without one, the id is random: a version 4 UUID without its dashes.
 */
import { createHash, randomFillSync } from 'node:crypto';

export function recordId(deduplicationId: string | undefined, index: number): string {
  if (deduplicationId === undefined || deduplicationId === '') return randomUuidHex();
  return createHash('sha256').update(`${deduplicationId}#${index}`).digest('hex').slice(0, 32);
}

/** Random bytes for this many ids, drawn at once (as crypto.randomUUID does for its own). */
const IDS_PER_DRAW = 256;
const randomPool = Buffer.allocUnsafe(16 * IDS_PER_DRAW);
let nextId = IDS_PER_DRAW;

/**
 * `randomUUID().replaceAll('-', '')`, without the dashed string and its copy: one per record
 * on the Report path.
 */
function randomUuidHex(): string {
  if (nextId === IDS_PER_DRAW) {
    randomFillSync(randomPool);
    nextId = 0;
  }
  const at = 16 * nextId++;
  randomPool[at + 6] = (randomPool[at + 6]! & 0x0f) | 0x40; // version 4
  randomPool[at + 8] = (randomPool[at + 8]! & 0x3f) | 0x80; // RFC 4122 variant
  return randomPool.toString('hex', at, at + 16);
}
