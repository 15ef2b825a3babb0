/**
 * Rego to WebAssembly with the OPA compiler, in a child process: `opa build -t wasm -e
 * <entrypoint>… --capabilities <file>`. The modules are written to a private temporary
 * folder exactly as they were read (so what compiles is what was hashed, even if a file
 * changes meanwhile), and errors are mapped back to their own names — a file path, or
 * `policy[1]` for a handler's inline policy — with line and column, from `opa check
 * --format json`.
 *
 * Both Rego syntaxes compile: OPA 1.x's, and the older one of Mixer-era policies
 * (`allow { … }`, `allow = true { … }`), with `--v0-compatible`. `auto` tries 1.x first
 * and falls back to the old syntax when that compiles instead.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readBundle } from './bundle-archive';
import { capabilitiesFile } from './capabilities';
import { runOpa } from './opa-cli';

/** One Rego module: its name in messages, and its text. */
export interface RegoModule {
  /** A file path, or `policy[0]` for an inline policy. */
  readonly label: string;
  readonly text: string;
}

/** Which Rego syntax the modules are in. */
export type RegoVersion = 'auto' | 'v0' | 'v1';

/** One compile error, where and what. */
export interface CompileProblem {
  /** The module's label; undefined for errors that concern no module (an unknown entrypoint). */
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  /** The compiler's error code, such as `rego_parse_error`. */
  readonly code?: string;
  readonly message: string;
}

/** Formats a problem as `file:line:column: code: message`. */
export function formatCompileProblem(p: CompileProblem): string {
  const where =
    p.file === undefined
      ? ''
      : `${p.file}${p.line === undefined ? '' : `:${p.line}`}${p.column === undefined ? '' : `:${p.column}`}: `;
  return `${where}${p.code === undefined ? '' : `${p.code}: `}${p.message}`;
}

/** The policy does not compile. */
export class PolicyCompileError extends Error {
  override readonly name = 'PolicyCompileError';

  constructor(readonly problems: readonly CompileProblem[]) {
    super(
      problems.length === 1
        ? `the policy does not compile: ${formatCompileProblem(problems[0]!)}`
        : `the policy does not compile (${problems.length} errors): ${problems.map(formatCompileProblem).join('; ')}`,
    );
  }
}

/** What compiled, and how. */
export interface CompiledRego {
  readonly wasm: Buffer;
  /** The syntax the modules compiled as. */
  readonly regoVersion: 'v0' | 'v1';
}

export interface CompileOptions {
  /** The `opa` executable. */
  readonly opa: string;
  readonly modules: readonly RegoModule[];
  /** Entrypoints as paths: `mixerauthz/allow` for `data.mixerauthz.allow`. */
  readonly entrypoints: readonly string[];
  readonly regoVersion: RegoVersion;
  /** Limit on each run of the compiler, in milliseconds. Default 120000. */
  readonly timeoutMs?: number;
}

/** Messages by which a module in the old syntax gives itself away under OPA 1.x. */
const OLD_SYNTAX = /`(if|contains)` keyword is required/;

/**
 * Compiles the modules to one WebAssembly module with the given entrypoints.
 * @throws PolicyCompileError listing every error, with its module, line and column
 * @throws Error when the compiler cannot be run
 */
export async function compileRego(options: CompileOptions): Promise<CompiledRego> {
  const dir = await mkdtemp(path.join(tmpdir(), 'switchboard-opa-build-'));
  try {
    const names = options.modules.map((_m, i) => `m${i}.rego`);
    await Promise.all(options.modules.map((m, i) => writeFile(path.join(dir, names[i]!), m.text)));
    const labels = new Map(names.map((n, i) => [n, options.modules[i]!.label]));
    const attempt = (version: 'v0' | 'v1') => build(options, dir, names, version, labels);
    if (options.regoVersion !== 'auto') {
      const only = await attempt(options.regoVersion);
      if ('wasm' in only) return only;
      throw new PolicyCompileError(only.problems);
    }
    const modern = await attempt('v1');
    if ('wasm' in modern) return modern;
    const old = await attempt('v0');
    if ('wasm' in old) return old;
    // Neither compiled: the errors of the syntax the modules seem to be written in.
    const looksOld = modern.problems.some((p) => OLD_SYNTAX.test(p.message));
    throw new PolicyCompileError(looksOld ? old.problems : modern.problems);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function build(
  options: CompileOptions,
  dir: string,
  names: readonly string[],
  version: 'v0' | 'v1',
  labels: ReadonlyMap<string, string>,
): Promise<CompiledRego | { problems: CompileProblem[] }> {
  const capabilities = await capabilitiesFile();
  const common = ['--capabilities', capabilities, ...(version === 'v0' ? ['--v0-compatible'] : [])];
  const output = `bundle-${version}.tar.gz`;
  const entrypoints = options.entrypoints.flatMap((e) => ['-e', e]);
  const built = await runOpa(
    options.opa,
    ['build', '-t', 'wasm', ...entrypoints, ...common, '-o', output, ...names],
    { cwd: dir, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) },
  );
  if (built.code === 0) {
    const files = await readBundle(await readFile(path.join(dir, output)));
    const wasm = files.get('policy.wasm');
    if (wasm === undefined) throw new Error('opa build wrote a bundle without policy.wasm');
    return { wasm, regoVersion: version };
  }
  if (built.code === null) {
    return {
      problems: [{ message: `the compiler did not finish within ${options.timeoutMs ?? 120_000} ms` }],
    };
  }
  // `opa check` reports the same errors with their columns, as JSON.
  const checked = await runOpa(options.opa, ['check', '--format', 'json', ...common, ...names], { cwd: dir });
  const problems = parseCheckOutput(checked.stdout + checked.stderr, labels);
  return {
    problems: problems.length > 0 ? problems : parseBuildOutput(`${built.stdout}\n${built.stderr}`, labels),
  };
}

/** Errors from `opa check --format json`, files renamed to their labels. */
export function parseCheckOutput(output: string, labels: ReadonlyMap<string, string>): CompileProblem[] {
  const start = output.indexOf('{');
  if (start < 0) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(output.slice(start));
  } catch {
    return [];
  }
  const errors = (parsed as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return [];
  return errors.map((e: { message?: unknown; code?: unknown; location?: Record<string, unknown> }) => {
    const file = typeof e.location?.file === 'string' ? e.location.file : undefined;
    return {
      ...(file === undefined ? {} : { file: labels.get(path.basename(file)) ?? file }),
      ...(typeof e.location?.row === 'number' ? { line: e.location.row } : {}),
      ...(typeof e.location?.col === 'number' ? { column: e.location.col } : {}),
      ...(typeof e.code === 'string' ? { code: e.code } : {}),
      message: typeof e.message === 'string' ? e.message : JSON.stringify(e),
    };
  });
}

/** Errors from `opa build`'s text output (`m0.rego:9: rego_parse_error: …` or `error: …`), which it writes to stdout. */
export function parseBuildOutput(output: string, labels: ReadonlyMap<string, string>): CompileProblem[] {
  const problems: CompileProblem[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim().replace(/^error: /i, '');
    if (line === '' || /^\d+ errors? occurred/.test(line)) continue;
    const m = /^(m\d+\.rego):(\d+): (\w+): (.*)$/.exec(line);
    if (m !== null) {
      problems.push({ file: labels.get(m[1]!) ?? m[1]!, line: Number(m[2]), code: m[3]!, message: m[4]! });
    } else {
      problems.push({ message: line.replace(/\bm\d+\.rego\b/g, (name) => labels.get(name) ?? name) });
    }
  }
  return problems.length > 0 ? problems : [{ message: 'the compiler failed without a message' }];
}
