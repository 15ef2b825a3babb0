/**
 * Loads a configuration directory into a snapshot: every `*.yaml` / `*.yml` file below
 * it, each holding one or more Kubernetes-style resources. At this stage only the shape
 * of each resource is checked; any problem in any file fails the whole load, and every
 * problem is reported, with its file and line.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, visit } from 'yaml';
import type { Document, Node as YamlNode, Pair } from 'yaml';
import type { ConfigError } from './config-error';
import { ConfigLoadError } from './config-error';
import type { ConfigResource, ConfigSnapshot } from './config-resource';

/** Options of {@link loadConfigDirectory}. */
export interface LoadConfigOptions {
  /** The generation number the snapshot gets; default 1 (a first load). */
  readonly generation?: number;
}

/** What one file contributes: its resources, or the problems that keep them from loading. */
export interface ParsedConfigFile {
  readonly resources: readonly ConfigResource[];
  readonly errors: readonly ConfigError[];
}

/** At most this many alias expansions per document, so that an "alias bomb" fails instead of exhausting memory. */
const MAX_ALIAS_COUNT = 100;

const EXAMPLE_API_VERSION = 'config.istio.io/v1alpha2';

/**
 * Reads every `*.yaml` and `*.yml` file below `configDir` (recursively, in order of their
 * path relative to it) and checks the shape of every resource.
 *
 * Entries whose name starts with a dot are skipped, files and directories alike: editors'
 * swap files, and the `..data` links Kubernetes puts in a mounted ConfigMap, which would
 * otherwise load every file twice. Empty documents (a trailing `---`, a file of comments)
 * are skipped too.
 *
 * Does nothing but read files. Error file names are `configDir` joined with the file's
 * relative path, so they read as the user gave the directory.
 *
 * @returns a deeply frozen snapshot
 * @throws ConfigLoadError listing every problem, when there is at least one
 */
export async function loadConfigDirectory(
  configDir: string,
  options: LoadConfigOptions = {},
): Promise<ConfigSnapshot> {
  const errors: ConfigError[] = [];
  const relativePaths = await listYamlFiles(configDir, errors);
  const resources: ConfigResource[] = [];
  // Read concurrently, report in path order.
  const files = await Promise.all(
    relativePaths.map(async (relativePath) => {
      const file = path.join(configDir, relativePath);
      try {
        return parseConfigFile(await readFile(file, 'utf8'), file);
      } catch (error) {
        return {
          resources: [],
          errors: [{ file, line: undefined, message: describeReadError(error, 'file') }],
        };
      }
    }),
  );
  for (const parsed of files) {
    resources.push(...parsed.resources);
    errors.push(...parsed.errors);
  }
  if (errors.length > 0) throw new ConfigLoadError(configDir, errors);
  return Object.freeze({
    generation: options.generation ?? 1,
    configDir,
    resources: Object.freeze(resources),
  });
}

/**
 * Parses the text of one configuration file, which may hold several YAML documents, and
 * checks the shape of each resource. Pure: `file` is only used in resources and messages.
 */
export function parseConfigFile(text: string, file: string): ParsedConfigFile {
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  const resources: ConfigResource[] = [];
  const errors: ConfigError[] = [];
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;

  for (const document of documents) {
    if (document.errors.length > 0) {
      // A document that does not parse has no reliable shape to check further.
      for (const e of document.errors) {
        errors.push({
          file,
          line: lineAt(e.pos[0]),
          message: `invalid YAML: ${e.message}; ${syntaxFix(e.code)}`,
        });
      }
      continue;
    }
    const contents = document.contents;
    if (contents === null || (isScalar(contents) && contents.value === null)) continue; // empty document
    const line = lineAt(contents.range?.[0] ?? 0);

    const aliasError = findUnresolvedAlias(document);
    if (aliasError !== undefined) {
      errors.push({ file, line: lineAt(aliasError.offset), message: aliasError.message });
      continue;
    }

    let value: unknown;
    try {
      value = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (error) {
      errors.push({
        file,
        line,
        message: `invalid YAML: ${error instanceof Error ? error.message : String(error)}; use fewer aliases, or write the values out`,
      });
      continue;
    }

    const found = checkResourceShape(value, (keys) => keyLine(document, keys, lineAt) ?? line);
    if (typeof found === 'string') {
      errors.push({ file, line, message: found });
      continue;
    }
    if (found.errors.length > 0) {
      const byLine = [...found.errors].sort((a, b) => a.line - b.line); // stable: same line keeps check order
      for (const e of byLine) errors.push({ file, line: e.line, message: e.message });
      continue;
    }
    const root = contents;
    const lineOf = (path: string): number => pathLine(root, path, lineAt) ?? line;
    resources.push(Object.freeze({ ...found.resource, file, line, lineOf }));
  }
  return { resources, errors };
}

/** How to fix a YAML syntax error, by the yaml library's error code. */
function syntaxFix(code: string): string {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'remove or rename one of the duplicate keys';
    case 'BAD_INDENT':
      return 'indent the keys of one mapping, or the items of one list, to the same column';
    case 'TAB_AS_INDENT':
      return 'indent with spaces, not tabs';
    case 'MISSING_CHAR':
      return 'add the missing character';
    default:
      return 'fix the YAML syntax at this line';
  }
}

/** The first alias (`*name`) with no anchor (`&name`) before it, which YAML cannot resolve. */
function findUnresolvedAlias(document: Document): { offset: number; message: string } | undefined {
  let found: { offset: number; message: string } | undefined;
  visit(document, {
    Alias(_key, alias) {
      if (alias.resolve(document) !== undefined) return undefined;
      found = {
        offset: alias.range?.[0] ?? 0,
        message: `alias *${alias.source} has no anchor &${alias.source} before it; define the anchor first, or write the value out`,
      };
      return visit.BREAK;
    },
  });
  return found;
}

type ShapeCheck =
  | string
  | {
      readonly errors: readonly { line: number; message: string }[];
      readonly resource: Omit<ConfigResource, 'file' | 'line' | 'lineOf'>;
    };

/**
 * Checks one document's value: returns a message when it is not a mapping at all, else the
 * problems found (each at the line of the key it concerns) and the resource it makes.
 */
function checkResourceShape(value: unknown, lineOf: (keys: readonly string[]) => number): ShapeCheck {
  if (!isPlainObject(value)) {
    return `resource is ${article(typeName(value))}, not a mapping; write each resource as a mapping with apiVersion, kind, metadata and spec`;
  }
  const problems: { line: number; message: string }[] = [];
  /** A required, non-empty string at `keys`; returns it, or '' after recording the problem. */
  const requireString = (keys: readonly string[], fix: { missing: string; wrongType: string }): string => {
    const field = keys.join('.');
    let v: unknown = value;
    for (const key of keys) v = isPlainObject(v) ? v[key] : undefined;
    if (v === undefined || v === null) {
      problems.push({ line: lineOf(keys.slice(0, -1)), message: `resource has no ${field}; ${fix.missing}` });
    } else if (typeof v !== 'string') {
      problems.push({
        line: lineOf(keys),
        message: `${field} must be a string, got ${typeName(v)}; ${fix.wrongType}`,
      });
    } else if (v === '') {
      problems.push({ line: lineOf(keys), message: `${field} is empty; ${fix.missing}` });
    } else {
      return v;
    }
    return '';
  };

  const apiVersion = requireString(['apiVersion'], {
    missing: `set apiVersion, e.g. apiVersion: ${EXAMPLE_API_VERSION}`,
    wrongType: `write it as a string, e.g. apiVersion: ${EXAMPLE_API_VERSION}`,
  });
  const kind = requireString(['kind'], {
    missing: 'set kind, e.g. kind: rule',
    wrongType: 'write one kind as a string, e.g. kind: rule',
  });

  const metadata = value['metadata'];
  let name = '';
  let namespace: string | undefined;
  if (metadata !== undefined && metadata !== null && !isPlainObject(metadata)) {
    problems.push({
      line: lineOf(['metadata']),
      message: `metadata must be a mapping, got ${typeName(metadata)}; write metadata: { name: NAME, namespace: NAMESPACE }`,
    });
  } else {
    name = requireString(['metadata', 'name'], {
      missing: 'give every resource a name',
      wrongType: 'quote a name that YAML reads as another type, e.g. name: "42"',
    });
    const ns = isPlainObject(metadata) ? metadata['namespace'] : undefined;
    if (typeof ns === 'string') {
      namespace = ns === '' ? undefined : ns;
    } else if (ns !== undefined && ns !== null) {
      problems.push({
        line: lineOf(['metadata', 'namespace']),
        message: `metadata.namespace must be a string, got ${typeName(ns)}; quote it, or leave it out`,
      });
    }
  }

  const spec = value['spec'];
  if (spec !== undefined && spec !== null && !isPlainObject(spec)) {
    problems.push({
      line: lineOf(['spec']),
      message: `spec must be a mapping, got ${typeName(spec)}; write spec as key: value pairs`,
    });
  }

  return {
    errors: problems,
    resource: {
      apiVersion,
      kind,
      name,
      namespace,
      spec: deepFreeze(isPlainObject(spec) ? spec : {}),
    },
  };
}

/**
 * The 1-based line of the key at `keys` in the document (for `[]`, of the document's
 * content), or undefined when the path is not there as written (e.g. through an alias).
 */
function keyLine(
  document: Document,
  keys: readonly string[],
  lineAt: (offset: number) => number,
): number | undefined {
  let node: unknown = document.contents;
  let start = (node as YamlNode | null)?.range?.[0];
  for (const key of keys) {
    if (!isMap(node)) return undefined;
    const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === key);
    if (pair === undefined || !isScalar(pair.key)) return undefined;
    start = pair.key.range?.[0];
    node = pair.value;
  }
  return start === undefined ? undefined : lineAt(start);
}

/**
 * The line of the node at `path` below `root` (a parsed YAML document's contents), or of the
 * deepest ancestor found. A map key is matched whole, so `spec.attributes.source.ip.valueType`
 * finds the key `source.ip`. Shared with the proxy's configuration reader.
 */
export function pathLine(
  root: unknown,
  path: string,
  lineAt: (offset: number) => number,
): number | undefined {
  let node = root;
  let rest = path;
  let start = (root as YamlNode | null)?.range?.[0];
  while (rest !== '') {
    if (rest.startsWith('.')) rest = rest.slice(1);
    const index = /^\[(\d+)\]/.exec(rest);
    if (index !== null) {
      if (!isSeq(node)) break;
      const item = node.items[Number(index[1])] as YamlNode | undefined;
      if (item === undefined) break;
      start = item.range?.[0] ?? start;
      node = item;
      rest = rest.slice(index[0].length);
      continue;
    }
    if (!isMap(node)) break;
    let best: { key: string; pair: Pair } | undefined;
    for (const pair of node.items) {
      if (!isPair(pair) || !isScalar(pair.key)) continue;
      const key = String(pair.key.value);
      const follows = rest[key.length];
      if (rest.startsWith(key) && (follows === undefined || follows === '.' || follows === '[')) {
        if (best === undefined || key.length > best.key.length) best = { key, pair };
      }
    }
    if (best === undefined) break;
    start = (best.pair.key as YamlNode).range?.[0] ?? start;
    node = best.pair.value;
    rest = rest.slice(best.key.length);
  }
  return start === undefined ? undefined : lineAt(start);
}

/** Relative paths of the YAML files below `configDir`, sorted; problems go to `errors`. */
async function listYamlFiles(configDir: string, errors: ConfigError[]): Promise<string[]> {
  try {
    if (!(await stat(configDir)).isDirectory()) {
      errors.push({
        file: configDir,
        line: undefined,
        message: 'not a directory; give the directory that holds the configuration files',
      });
      return [];
    }
  } catch (error) {
    errors.push({ file: configDir, line: undefined, message: describeReadError(error, 'directory') });
    return [];
  }

  const found: string[] = [];
  const visited = new Set<string>(); // real paths, so that a symlink loop is walked once
  const walk = async (relativeDir: string): Promise<void> => {
    const dir = path.join(configDir, relativeDir);
    let entries;
    try {
      const real = await realpath(dir);
      if (visited.has(real)) return;
      visited.add(real);
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      errors.push({ file: dir, line: undefined, message: describeReadError(error, 'directory') });
      return;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const relativePath = path.join(relativeDir, entry.name);
      let isDirectory = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        try {
          const target = await stat(path.join(configDir, relativePath));
          isDirectory = target.isDirectory();
          isFile = target.isFile();
        } catch {
          // A dangling link to a YAML file is reported when reading it; anything else is ignored.
          isFile = true;
        }
      }
      if (isDirectory) await walk(relativePath);
      else if (isFile && /\.ya?ml$/.test(entry.name)) found.push(relativePath);
    }
  };
  await walk('');
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function describeReadError(error: unknown, what: 'file' | 'directory'): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') {
    return what === 'directory'
      ? 'configuration directory does not exist; check the path'
      : 'file does not exist (a dangling link?); remove it or fix the link';
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return `cannot read ${what}: permission denied; make it readable by the server`;
  }
  const detail = error instanceof Error ? error.message : String(error);
  return `cannot read ${what}: ${detail}; check that it is readable`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** YAML's name for the kind of a value, for messages. */
function typeName(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return 'sequence';
  if (typeof value === 'object') return 'mapping';
  return typeof value; // string, number, boolean, bigint
}

function article(noun: string): string {
  return /^[aeiou]/.test(noun) ? `an ${noun}` : noun === 'null' ? 'null' : `a ${noun}`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
