/**
 * The dead-letter file: records Elasticsearch refused for good (a 4xx item, such as a
 * mapping conflict), kept as JSON lines so nothing accepted is lost without a trace and an
 * operator can fix the cause and index them again:
 *
 *   {"time":"…","index":"audit-2026.11.27","id":"…","status":400,
 *    "reason":{"type":"document_parsing_exception","reason":"…"},"record":{…}}
 *
 * A batch's dead letters are appended and synced to disk before the batch is acknowledged
 * to the spool, so a record leaves the spool only once it is in Elasticsearch or here.
 */
import { mkdir, open } from 'node:fs/promises';
import * as path from 'node:path';

export interface DeadLetter {
  readonly index: string;
  readonly id: string;
  readonly status: number;
  /** Elasticsearch's `error` object of the item (type, reason, caused_by…). */
  readonly reason: unknown;
  /** The audit record's JSON as it was sent. */
  readonly json: Buffer;
}

export class DeadLetterFile {
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {}

  /** Appends and syncs the letters (one write, in the order given); calls are serialized. */
  append(letters: readonly DeadLetter[], nowMs: number): Promise<void> {
    const time = new Date(nowMs).toISOString();
    const lines: Buffer[] = [];
    for (const letter of letters) {
      const head = JSON.stringify({
        time,
        index: letter.index,
        id: letter.id,
        status: letter.status,
        reason: letter.reason,
      });
      // The record is spliced in as the bytes it was sent as: no parse and re-serialize.
      lines.push(Buffer.from(`${head.slice(0, -1)},"record":`), letter.json, Buffer.from('}\n'));
    }
    const next = this.writing.then(() => this.write(Buffer.concat(lines)));
    this.writing = next.catch(() => undefined);
    return next;
  }

  private async write(bytes: Buffer): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true });
    const handle = await open(this.file, 'a', 0o600);
    try {
      await handle.write(bytes);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }
}
