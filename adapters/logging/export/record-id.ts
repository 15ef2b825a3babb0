/**
 * Record ids (`event.id`): 32 hexadecimal digits, given when a record is accepted and kept
 * with it in the spool.
 *
 * When the Report carried a report id (`x-switchboard-report-id`, sent by Switchboard's
 * proxy and the same when it resends a Report whose answer it lost), the id is derived from
 * it, the handler, the template and the record's place in the call: a resent Report gives
 * its records the ids they had, so Elasticsearch overwrites rather than duplicates them.
 * Without one, the id is random.
 */
import { createHash, randomUUID } from 'node:crypto';

export function recordId(deduplicationId: string | undefined, index: number): string {
  if (deduplicationId === undefined || deduplicationId === '') return randomUUID().replaceAll('-', '');
  return createHash('sha256').update(`${deduplicationId}#${index}`).digest('hex').slice(0, 32);
}
