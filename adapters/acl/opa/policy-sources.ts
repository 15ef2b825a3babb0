/**
 * Reading a handler's policy: its Rego modules and its base document (`data`), from the
 * inline parameters, `policyFiles` and `policyDir` — or a precompiled bundle — with
 * content hashes, so that a reload can tell a Rego change (recompile) from a data-only
 * change (`setData`) from nothing at all.
 *
 * A folder is read as `opa test` and `opa eval -d` read one: Rego files anywhere below it,
 * and each JSON or YAML document merged into `data` at the path of its folder relative to
 * the root (`roles/data.json` and `roles/extra.yaml` both land under `data.roles`). Entries
 * whose names start with a dot are skipped, and so are `*_test.rego` (Rego unit tests) and
 * `*.decisions.yaml` (decision cases), which are for `switchboard policy test`.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readBundle } from './bundle-archive';
import type { RegoModule } from './compiler';
import type { OpaConfig } from './config';

/** A problem reading the policy, with the file it concerns. */
export class PolicySourceError extends Error {
  override readonly name = 'PolicySourceError';

  constructor(
    readonly file: string,
    readonly detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

/** A handler's policy as read, with hashes of its parts. */
export interface PolicySources {
  /** Rego modules to compile; empty for a bundle. */
  readonly modules: readonly RegoModule[];
  /** A precompiled module, for a bundle. */
  readonly wasm?: Buffer;
  /** Identifies the code: the modules' labels and texts, or the bundle's module. */
  readonly codeHash: string;
  /** The base document: data files, the bundle's data, and the inline `data`, merged. */
  readonly data: Record<string, unknown>;
  readonly dataHash: string;
}

/** Whether a policyDir entry is read (see the file comment). */
export function isPolicyDirEntry(name: string): boolean {
  return !name.startsWith('.') && !name.endsWith('_test.rego') && !/\.decisions\.ya?ml$/.test(name);
}

/** File names `opa test` must ignore so that it reads a folder as the server does. */
export const OPA_IGNORE_PATTERNS: readonly string[] = ['.*', '*.decisions.yaml', '*.decisions.yml'];

const DATA_FILE = /\.(json|ya?ml)$/;

function hash(parts: readonly string[]): string {
  const h = createHash('sha256');
  for (const part of parts) h.update(`${part.length}:${part}`);
  return h.digest('hex');
}

/** Parses a data document; a JSON or YAML mapping (or empty YAML: nothing). */
function parseDataDocument(file: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new PolicySourceError(
      file,
      `is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
    );
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new PolicySourceError(file, 'must hold a mapping (a JSON object) to merge into data');
  }
  return value as Record<string, unknown>;
}

/** Who set `keyPath` (or the nearest mapping above it, set whole). */
function originOf(origins: ReadonlyMap<string, string>, keyPath: string): string {
  for (let p = keyPath; p !== ''; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const found = origins.get(p);
    if (found !== undefined) return found;
  }
  return 'another document';
}

/**
 * Merges `source` into `target` at `at` (a path of keys). Mappings merge key by key; any
 * other value may be given once only.
 * @throws PolicySourceError naming both origins when two documents set one value
 */
export function mergeData(
  target: Record<string, unknown>,
  source: Record<string, unknown>,
  at: readonly string[],
  origin: string,
  origins: Map<string, string>,
): void {
  let node = target;
  const walked: string[] = [];
  for (const key of at) {
    walked.push(key);
    const next = node[key];
    if (next === undefined) node[key] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      throw new PolicySourceError(
        origin,
        `conflicts with ${originOf(origins, walked.join('.'))}: data.${walked.join('.')} is set by both`,
      );
    }
    node = node[key] as Record<string, unknown>;
  }
  for (const [key, value] of Object.entries(source)) {
    const keyPath = [...at, key].join('.');
    const existing = node[key];
    const isMapping = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
    if (existing === undefined) {
      node[key] = value;
      origins.set(keyPath, origin);
    } else if (isMapping(existing) && isMapping(value)) {
      mergeData(target, value as Record<string, unknown>, [...at, key], origin, origins);
    } else {
      throw new PolicySourceError(
        origin,
        `conflicts with ${originOf(origins, keyPath)}: data.${keyPath} is set by both`,
      );
    }
  }
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new PolicySourceError(file, describeReadError(error));
  }
}

function describeReadError(error: unknown): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'does not exist';
    case 'EACCES':
      return 'cannot be read: permission denied';
    case 'EISDIR':
      return 'is a folder, not a file';
    default:
      return `cannot be read: ${(error as Error).message}`;
  }
}

/** Every file below `dir` that policyDir reads, as paths relative to it, sorted. */
async function listPolicyDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visited = new Set<string>();
  const walk = async (relative: string, depth: number): Promise<void> => {
    const absolute = path.join(dir, relative);
    if (depth > 32 || visited.has(absolute)) return;
    visited.add(absolute);
    let entries;
    try {
      entries = await readdir(absolute, { withFileTypes: true });
    } catch (error) {
      throw new PolicySourceError(absolute, describeReadError(error));
    }
    for (const entry of entries) {
      if (!isPolicyDirEntry(entry.name)) continue;
      const child = path.join(relative, entry.name);
      let isDirectory = entry.isDirectory();
      if (entry.isSymbolicLink())
        isDirectory = (await stat(path.join(dir, child)).catch(() => undefined))?.isDirectory() ?? false;
      if (isDirectory) await walk(child, depth + 1);
      else if (entry.name.endsWith('.rego') || DATA_FILE.test(entry.name)) out.push(child);
    }
  };
  await walk('', 0);
  return out.sort();
}

/**
 * Reads the policy `config` describes; relative paths are resolved against `baseDir`.
 * @throws PolicySourceError naming the file at fault
 */
export async function readPolicySources(config: OpaConfig, baseDir: string): Promise<PolicySources> {
  const resolve = (p: string) => path.resolve(baseDir, p);
  const data: Record<string, unknown> = {};
  const origins = new Map<string, string>();
  const dataParts: string[] = [];
  const addData = (file: string, text: string, at: readonly string[]) => {
    mergeData(data, parseDataDocument(file, text), at, file, origins);
    dataParts.push(file, at.join('/'), text);
  };

  if (config.bundle !== undefined) {
    const file = resolve(config.bundle);
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (error) {
      throw new PolicySourceError(file, describeReadError(error));
    }
    let wasm = bytes;
    if (!file.endsWith('.wasm')) {
      let files;
      try {
        files = await readBundle(bytes);
      } catch (error) {
        throw new PolicySourceError(file, (error as Error).message);
      }
      const module = files.get('policy.wasm');
      if (module === undefined) {
        throw new PolicySourceError(file, 'has no policy.wasm: build it with opa build -t wasm');
      }
      wasm = module;
      const bundled = files.get('data.json');
      if (bundled !== undefined) addData(`${file}:/data.json`, bundled.toString('utf8'), []);
    }
    if (config.data !== undefined) addData('params.data', JSON.stringify(config.data), []);
    return {
      modules: [],
      wasm,
      codeHash: hash(['wasm', wasm.toString('base64')]),
      data,
      dataHash: hash(dataParts),
    };
  }

  const modules: RegoModule[] = config.policy.map((text, i) => ({ label: `policy[${i}]`, text }));
  for (const entry of config.policyFiles) {
    const file = resolve(entry);
    const text = await readText(file);
    if (file.endsWith('.rego')) modules.push({ label: file, text });
    else addData(file, text, []);
  }
  if (config.policyDir !== undefined) {
    const dir = resolve(config.policyDir);
    for (const relative of await listPolicyDir(dir)) {
      const file = path.join(dir, relative);
      const text = await readText(file);
      if (file.endsWith('.rego')) modules.push({ label: file, text });
      else {
        const folder = path.dirname(relative);
        addData(file, text, folder === '.' ? [] : folder.split(path.sep));
      }
    }
  }
  if (config.data !== undefined) addData('params.data', JSON.stringify(config.data), []);
  if (modules.length === 0) {
    throw new PolicySourceError(
      config.policyDir === undefined ? 'policyFiles' : resolve(config.policyDir),
      'holds no Rego module (.rego file)',
    );
  }
  return {
    modules,
    codeHash: hash(modules.flatMap((m) => [m.label, m.text])),
    data,
    dataHash: hash(dataParts),
  };
}

/** The files and folders whose changes matter, resolved against `baseDir`. */
export function watchedPaths(config: OpaConfig, baseDir: string): string[] {
  const out = config.policyFiles.map((p) => path.resolve(baseDir, p));
  if (config.policyDir !== undefined) out.push(path.resolve(baseDir, config.policyDir));
  if (config.bundle !== undefined) out.push(path.resolve(baseDir, config.bundle));
  return out;
}
