/**
 * The OPA capabilities file the compiler is given (`opa build --capabilities`), so that a
 * policy calling a built-in that neither the WebAssembly module nor this process can
 * evaluate is refused when it compiles — with the file, line and column of the call —
 * instead of failing at its first request.
 *
 * The file is generated (capabilities.generated.ts) from the compiler itself: every
 * built-in of `opa capabilities --current` is called in one probe policy compiled to
 * WebAssembly; those the module does not call out for are compiled in, and the rest are
 * allowed only when the SDK or builtins.ts provides them. Regenerate it after changing
 * builtins.ts or the OPA version with `npm run gen:opa-capabilities`;
 * test/adapters/acl/opa/capabilities.test.ts fails while it is stale.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PROVIDED_BUILTINS, SDK_BUILTINS } from './builtins';
import { readBundle } from './bundle-archive';
import { WASM_CAPABILITIES } from './capabilities.generated';
import { requireOpa, runOpa } from './opa-cli';
import { requiredBuiltins } from './wasm-policy';
import { loadPolicySync } from '@open-policy-agent/opa-wasm';

/** The shape of an OPA capabilities document, as far as this code reads it. */
export interface OpaCapabilities {
  readonly builtins: readonly { readonly name: string; readonly [key: string]: unknown }[];
  readonly [key: string]: unknown;
}

let written: Promise<string> | undefined;

/**
 * The path of a file holding the capabilities, written once per content into the system's
 * temporary folder (shared by processes, replaced atomically) and reused.
 */
export function capabilitiesFile(): Promise<string> {
  written ??= (async () => {
    const text = JSON.stringify(WASM_CAPABILITIES);
    const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
    const file = path.join(tmpdir(), `switchboard-opa-capabilities-${hash}.json`);
    const existing = await readFile(file, 'utf8').catch(() => undefined);
    if (existing !== text) {
      const partial = `${file}.${process.pid}.${Date.now()}`;
      await writeFile(partial, text);
      await rename(partial, file);
    }
    return file;
  })();
  written.catch(() => {
    written = undefined;
  });
  return written;
}

/** Operators and compiler internals: always compiled in, never called by name in a probe. */
function isInternal(builtin: { readonly name: string; readonly [key: string]: unknown }): boolean {
  return builtin.infix !== undefined || builtin.name.startsWith('internal.');
}

/** How the probe calls a built-in, or undefined when it cannot be called as a plain function. */
function probeCall(builtin: { readonly name: string; readonly decl?: unknown }): string | undefined {
  if (builtin.name === 'walk') return 'walk(input, [p, v])';
  if (!/^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$/.test(builtin.name)) return undefined;
  const args = ((builtin.decl as { args?: unknown[] } | undefined)?.args ?? []).map((_a, i) => `input.a${i}`);
  return `${builtin.name}(${args.join(', ')})`;
}

/**
 * Derives the capabilities from the compiler at `opa`: see the file comment.
 * @throws Error when the compiler fails
 */
export async function generateCapabilities(opa: string): Promise<OpaCapabilities> {
  const current = await runOpa(opa, ['capabilities', '--current']);
  if (current.code !== 0) throw new Error(`opa capabilities --current failed: ${current.stderr}`);
  const all = JSON.parse(current.stdout) as OpaCapabilities;
  const probed = new Map<string, string>();
  for (const builtin of all.builtins) {
    if (isInternal(builtin)) continue;
    const call = probeCall(builtin as { name: string; decl?: unknown });
    if (call !== undefined) probed.set(builtin.name, call);
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'switchboard-opa-probe-'));
  try {
    // Old (v0) syntax, so that deprecated built-ins are probed too.
    const rules = [...probed.values()].map((call, i) => `r${i} { ${call} }`);
    await writeFile(path.join(dir, 'probe.rego'), `package probe\n${rules.join('\n')}\n`);
    const build = await runOpa(
      opa,
      ['build', '-t', 'wasm', '-e', 'probe', '--v0-compatible', '-o', 'probe.tar.gz', 'probe.rego'],
      { cwd: dir },
    );
    if (build.code !== 0) throw new Error(`compiling the probe failed: ${build.stderr}`);
    const files = await readBundle(await readFile(path.join(dir, 'probe.tar.gz')));
    const wasm = files.get('policy.wasm');
    if (wasm === undefined) throw new Error('the probe bundle has no policy.wasm');
    // No built-ins are passed: the probe is only instantiated, never evaluated.
    const calledOut = new Set(requiredBuiltins(loadPolicySync(await WebAssembly.compile(wasm))));
    const provided = new Set([...SDK_BUILTINS, ...PROVIDED_BUILTINS]);
    const known = new Set(all.builtins.map((b) => b.name));
    const unknown = [...provided].filter((name) => !known.has(name));
    if (unknown.length > 0)
      throw new Error(`built-ins provided but unknown to this opa: ${unknown.join(', ')}`);
    const builtins = all.builtins
      .filter((b) => isInternal(b) || (probed.has(b.name) && !calledOut.has(b.name)) || provided.has(b.name))
      .map((b) => withoutDescriptions(b) as OpaCapabilities['builtins'][number]);
    return { ...all, builtins };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Drops `description` fields (documentation only) to keep the generated file small. */
function withoutDescriptions(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutDescriptions);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (k !== 'description') out[k] = withoutDescriptions(v);
  return out;
}

/** The source text of capabilities.generated.ts for `capabilities`. */
export function generatedSource(capabilities: OpaCapabilities, opaVersion: string): string {
  return (
    `// Generated by \`npm run gen:opa-capabilities\` (adapters/acl/opa/capabilities.ts) from opa ${opaVersion}.\n` +
    `// Do not edit: the built-ins the WebAssembly module compiles in, plus those the SDK and builtins.ts provide.\n` +
    `export const WASM_CAPABILITIES: unknown = ${JSON.stringify(capabilities, null, 2)};\n`
  );
}

/** `node dist/adapters/acl/opa/capabilities.js`: regenerates capabilities.generated.ts in the source tree. */
async function main(): Promise<void> {
  const opa = requireOpa(undefined, 'generating the capabilities file');
  const version = (await runOpa(opa, ['version'])).stdout.split('\n')[0] ?? 'unknown';
  const capabilities = await generateCapabilities(opa);
  const target = path.join(
    __dirname,
    '..',
    '..',
    '..',
    '..',
    'adapters',
    'acl',
    'opa',
    'capabilities.generated.ts',
  );
  await writeFile(target, generatedSource(capabilities, version.replace(/^Version:\s*/, '')));
  process.stdout.write(`wrote ${target}: ${capabilities.builtins.length} built-ins\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
