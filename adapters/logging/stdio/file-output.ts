/**
 * A file the handler appends to (FILE), and optionally rotates by size (ROTATED_FILE):
 * before a chunk would take the file past the limit, the file is renamed to a backup named
 * for the time of rotation, `access-2024-05-01T10-20-30.123.log` (`-1`, `-2`… added if that
 * name is taken), and a new file is started. Backups beyond the count to keep, or older
 * than the age to keep, are then removed. Chunks are whole lines, so no line is split
 * across files.
 */
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import type { AdapterLogger } from '../../contract';
import type { LineOutput } from './stream-output';

const NEWLINE = Buffer.from('\n');

/** When to rotate and which backups to keep. */
export interface RotationPolicy {
  /** A chunk that would take the file past this size starts a new file (unless the file is empty). */
  readonly maxFileBytes: number;
  /** Backups older than this are removed; 0 keeps them whatever their age. */
  readonly maxBackupAgeMs: number;
  /** At most this many backups are kept, the newest; 0 keeps them all. */
  readonly maxBackups: number;
}

/** What a file output needs besides its path. */
export interface FileOutputContext {
  /** The time backups are named for and aged by, in milliseconds since the epoch. */
  readonly now: () => number;
  readonly logger: AdapterLogger;
  /** Prefix for log messages: `stdio/accesslog.handler.istio-system`. */
  readonly label: string;
}

/** A backup found next to the file. */
interface Backup {
  readonly file: string;
  readonly stamp: string;
  readonly sequence: number;
  readonly timeMs: number;
}

export class FileOutput implements LineOutput {
  readonly description: string;
  /** How many times the file was rotated. */
  rotations = 0;
  private size: number;
  private rotateAtBytes: number;
  private broken: string | undefined;
  private closed = false;
  /** The file ends in the middle of a line (a write failed part-way). */
  private unterminated = false;
  private readonly folder: string;
  private readonly stem: string;
  private readonly extension: string;
  private readonly backupName: RegExp;

  private constructor(
    private readonly filePath: string,
    private handle: FileHandle,
    initialSize: number,
    private readonly rotation: RotationPolicy | undefined,
    private readonly context: FileOutputContext,
  ) {
    this.description = filePath;
    this.size = initialSize;
    this.rotateAtBytes = rotation?.maxFileBytes ?? Infinity;
    this.folder = path.dirname(filePath);
    this.extension = path.extname(filePath);
    this.stem = path.basename(filePath, this.extension);
    this.backupName = new RegExp(
      `^${escapeRegExp(this.stem)}-(\\d{4}-\\d{2}-\\d{2}T\\d{2}-\\d{2}-\\d{2}\\.\\d{3})(?:-(\\d+))?${escapeRegExp(this.extension)}$`,
    );
  }

  /**
   * Opens `filePath` for appending (creating the file, never its folder) and, when
   * rotating, removes backups the policy no longer keeps.
   * @throws Error saying what is wrong with the path and how to fix it
   */
  static async open(
    filePath: string,
    rotation: RotationPolicy | undefined,
    context: FileOutputContext,
  ): Promise<FileOutput> {
    let handle: FileHandle;
    try {
      handle = await fs.open(filePath, 'a');
    } catch (error) {
      throw new Error(`${context.label}: ${describeOpenError(filePath, error)}`);
    }
    let size: number;
    try {
      size = (await handle.stat()).size;
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw new Error(`${context.label}: cannot read the size of ${filePath}: ${messageOf(error)}`);
    }
    const output = new FileOutput(filePath, handle, size, rotation, context);
    if (rotation !== undefined) await output.removeOldBackups();
    return output;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.broken !== undefined) throw new Error(this.broken);
    if (this.unterminated) {
      // A write failed part-way through a line: end that line, so the next one stands alone.
      await this.writeAll(NEWLINE);
      this.unterminated = false;
    }
    if (this.size > 0 && this.size + chunk.length > this.rotateAtBytes) await this.rotate();
    await this.writeAll(chunk);
  }

  brokenReason(): string | undefined {
    return this.broken;
  }

  /** Syncs the file to disk and closes it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.broken !== undefined) return;
    try {
      await this.handle.datasync();
    } catch (error) {
      // Some files (devices, pipes) cannot be synced; what was written has reached them anyway.
      this.context.logger.warn(`${this.context.label}: could not sync ${this.filePath}: ${messageOf(error)}`);
    }
    await this.handle.close();
  }

  private async writeAll(bytes: Buffer): Promise<void> {
    let offset = 0;
    try {
      while (offset < bytes.length) {
        const { bytesWritten } = await this.handle.write(bytes, offset, bytes.length - offset);
        offset += bytesWritten;
        this.size += bytesWritten;
      }
    } catch (error) {
      if (offset > 0) this.unterminated = true;
      throw error;
    }
  }

  private async rotate(): Promise<void> {
    const backup = await this.freeBackupPath();
    await this.handle.close();
    let rotated = false;
    try {
      await fs.rename(this.filePath, backup);
      rotated = true;
    } catch (error) {
      this.context.logger.error(
        `${this.context.label}: could not rotate ${this.filePath} to ${backup}: ${messageOf(error)}; ` +
          `appending to ${this.filePath} and trying again after another ${this.rotation!.maxFileBytes} bytes`,
      );
    }
    try {
      this.handle = await fs.open(this.filePath, 'a');
      this.size = (await this.handle.stat()).size;
    } catch (error) {
      this.broken = `cannot reopen ${this.filePath} after rotating it: ${messageOf(error)}`;
      this.context.logger.error(`${this.context.label}: ${this.broken}`);
      throw new Error(this.broken);
    }
    this.rotateAtBytes = rotated ? this.rotation!.maxFileBytes : this.size + this.rotation!.maxFileBytes;
    if (rotated) {
      this.rotations++;
      await this.removeOldBackups();
    }
  }

  /** The backup name for now, with a sequence number when a backup of the same millisecond exists. */
  private async freeBackupPath(): Promise<string> {
    const stamp = new Date(this.context.now()).toISOString().slice(0, 23).replace(/:/g, '-');
    for (let sequence = 0; ; sequence++) {
      const name = `${this.stem}-${stamp}${sequence === 0 ? '' : `-${sequence}`}${this.extension}`;
      const candidate = path.join(this.folder, name);
      if (!(await exists(candidate))) return candidate;
    }
  }

  /** Removes backups beyond the count to keep and older than the age to keep. Failures are logged. */
  private async removeOldBackups(): Promise<void> {
    const { maxBackups, maxBackupAgeMs } = this.rotation!;
    if (maxBackups === 0 && maxBackupAgeMs === 0) return;
    let names: string[];
    try {
      names = await fs.readdir(this.folder);
    } catch (error) {
      this.context.logger.warn(
        `${this.context.label}: cannot list ${this.folder} to remove old backups: ${messageOf(error)}`,
      );
      return;
    }
    const backups: Backup[] = [];
    for (const file of names) {
      const match = this.backupName.exec(file);
      if (match === null) continue;
      const stamp = match[1]!;
      const timeMs = Date.parse(
        `${stamp.slice(0, 10)}T${stamp.slice(11, 19).replace(/-/g, ':')}${stamp.slice(19)}Z`,
      );
      backups.push({ file, stamp, sequence: Number(match[2] ?? 0), timeMs });
    }
    // Newest first: by the time in the name, then by sequence.
    backups.sort((a, b) => (a.stamp !== b.stamp ? (a.stamp < b.stamp ? 1 : -1) : b.sequence - a.sequence));
    const oldestKept = maxBackupAgeMs === 0 ? -Infinity : this.context.now() - maxBackupAgeMs;
    for (let i = 0; i < backups.length; i++) {
      const backup = backups[i]!;
      if ((maxBackups === 0 || i < maxBackups) && !(backup.timeMs < oldestKept)) continue;
      try {
        await fs.unlink(path.join(this.folder, backup.file));
      } catch (error) {
        this.context.logger.warn(
          `${this.context.label}: cannot remove old backup ${path.join(this.folder, backup.file)}: ${messageOf(error)}`,
        );
      }
    }
  }
}

/** What went wrong opening the file, and the fix. */
function describeOpenError(filePath: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const folder = path.dirname(path.resolve(filePath));
  switch (code) {
    case 'ENOENT':
      return `outputPath ${filePath}: the folder ${folder} does not exist; create it, or set outputPath to a file in an existing folder`;
    case 'ENOTDIR':
      return `outputPath ${filePath}: a part of ${folder} is a file, not a folder; set outputPath to a file in an existing folder`;
    case 'EISDIR':
      return `outputPath ${filePath} is a folder; set outputPath to a file in it, such as ${path.join(filePath, 'access.log')}`;
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return `outputPath ${filePath}: not allowed to write there (${code}); let the server's user write to ${folder}, or choose another outputPath`;
    default:
      return `outputPath ${filePath}: cannot open it for appending: ${messageOf(error)}`;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
