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
 *
 * Rotation: when a batch would take the file beyond `rotateBytes`, the file is renamed to
 * `<name>.<UTC time>.jsonl` (a counter added if that name is taken) and a new one begun. A
 * batch is never split across files, and rotated files are never deleted here: they hold
 * records that are nowhere else, so removing them (after indexing them again) is the
 * operator's call.
 */
import { mkdir, open, rename, stat } from 'node:fs/promises';
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

/** Rotate beyond this many bytes, by default. */
export const DEFAULT_DEAD_LETTER_ROTATE_BYTES = 64 * 1024 * 1024;

export class DeadLetterFile {
  private writing: Promise<void> = Promise.resolve();
  /** The file's size as last known; undefined until read from disk. */
  private size: number | undefined;

  constructor(
    readonly file: string,
    private readonly rotateBytes = DEFAULT_DEAD_LETTER_ROTATE_BYTES,
  ) {}

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
    const next = this.writing.then(() => this.write(Buffer.concat(lines), nowMs));
    this.writing = next.catch(() => undefined);
    return next;
  }

  private async write(bytes: Buffer, nowMs: number): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true });
    this.size ??= (await sizeOf(this.file)) ?? 0;
    if (this.size > 0 && this.size + bytes.length > this.rotateBytes) {
      await rename(this.file, await this.rotatedName(nowMs));
      this.size = 0;
    }
    const handle = await open(this.file, 'a', 0o600);
    try {
      await handle.write(bytes);
      await handle.datasync();
      this.size += bytes.length;
    } catch (error) {
      this.size = undefined;
      throw error;
    } finally {
      await handle.close();
    }
  }

  /** `dead-letter.2026-11-27T05-20-11Z.jsonl`, or with `.2`, `.3`… when taken. */
  private async rotatedName(nowMs: number): Promise<string> {
    const extension = path.extname(this.file);
    const base = this.file.slice(0, this.file.length - extension.length);
    const time = new Date(nowMs).toISOString().slice(0, 19).replaceAll(':', '-') + 'Z';
    for (let n = 1; ; n++) {
      const name = `${base}.${time}${n === 1 ? '' : `.${n}`}${extension || '.jsonl'}`;
      if ((await sizeOf(name)) === undefined) return name;
    }
  }
}

/** A file's size; undefined when there is no such file. */
async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
