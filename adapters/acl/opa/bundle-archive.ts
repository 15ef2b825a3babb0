/**
 * OPA bundles: the gzipped tar files `opa build` writes. Their members have absolute names
 * (`/policy.wasm`, `/data.json`, `/.manifest`); this reads them into memory by name,
 * without writing anything to disk, so a hostile archive cannot place files anywhere.
 */
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';

const gunzipAsync = promisify(gunzip);

/** A bundle's members by name, leading slashes removed: `policy.wasm`, `data.json`. */
export type BundleFiles = ReadonlyMap<string, Buffer>;

const BLOCK = 512;

function field(header: Buffer, offset: number, length: number): string {
  const raw = header.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? length : end).toString('utf8');
}

function octal(header: Buffer, offset: number, length: number): number {
  const text = field(header, offset, length).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/**
 * Reads the regular files of a tar archive (ustar, with GNU long names and PAX headers).
 * @throws Error when the archive is truncated or malformed
 */
export function readTar(archive: Buffer): BundleFiles {
  const files = new Map<string, Buffer>();
  let offset = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  while (offset + BLOCK <= archive.length) {
    const header = archive.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) break;
    const size = octal(header, 124, 12);
    if (!Number.isSafeInteger(size) || size < 0) throw new Error('malformed tar header (size)');
    const type = String.fromCharCode(header[156] ?? 0);
    const dataStart = offset + BLOCK;
    const dataEnd = dataStart + size;
    if (dataEnd > archive.length) throw new Error('truncated tar archive');
    const data = archive.subarray(dataStart, dataEnd);
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0.*$/s, '');
    } else if (type === 'x') {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      paxPath = m?.[1];
    } else {
      const prefix = field(header, 345, 155);
      const name = longName ?? paxPath ?? (prefix === '' ? '' : `${prefix}/`) + field(header, 0, 100);
      longName = undefined;
      paxPath = undefined;
      if (type === '0' || type === '\0') files.set(name.replace(/^\/+/, ''), Buffer.from(data));
    }
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
  }
  return files;
}

/**
 * Reads a bundle written by `opa build` (a gzipped tar).
 * @throws Error when it is not one
 */
export async function readBundle(bytes: Buffer): Promise<BundleFiles> {
  let archive: Buffer;
  try {
    archive = await gunzipAsync(bytes);
  } catch (error) {
    throw new Error(`not a gzipped bundle: ${(error as Error).message}`);
  }
  return readTar(archive);
}
