/**
 * A policy compiled to WebAssembly, ready to instantiate: the compiled module, its
 * entrypoints, and the check that every built-in it calls out for is one this process can
 * answer. Instances are made from the module synchronously and cheaply; see
 * evaluator.ts for how they are pooled.
 */
import { createHash } from 'node:crypto';
import { loadPolicySync, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { createBuiltins, PROVIDED_BUILTINS, SDK_BUILTINS, type BuiltinClock } from './builtins';

/** Built-ins a module may call out for: the SDK's and ours. */
const AVAILABLE_BUILTINS: ReadonlySet<string> = new Set([...SDK_BUILTINS, ...PROVIDED_BUILTINS]);

type Exports = Record<string, (...args: number[]) => number>;

/** The module instance's exports (the SDK types the instance loosely). */
function exportsOf(policy: LoadedPolicy): Exports {
  return (policy.wasmInstance as WebAssembly.Instance).exports as Exports;
}

/** Reads a JSON value the module holds at `address` (an opa_value pointer). */
function dumpJson(policy: LoadedPolicy, address: number): unknown {
  const exports = exportsOf(policy);
  const text = exports.opa_json_dump!(address);
  const memory = new Uint8Array(policy.mem.buffer);
  let end = text;
  while (memory[end] !== 0) end++;
  return JSON.parse(Buffer.from(memory.subarray(text, end)).toString('utf8'));
}

/** The names of the built-ins a module calls out for (its `builtins()` export). */
export function requiredBuiltins(policy: LoadedPolicy): string[] {
  const exports = exportsOf(policy);
  const names = dumpJson(policy, exports.builtins!()) as Record<string, number>;
  return Object.keys(names).sort();
}

/** A compiled policy module and what it offers. */
export class WasmPolicy {
  private constructor(
    readonly module: WebAssembly.Module,
    /** Entrypoint names (`mixerauthz/allow`) to their ids. */
    readonly entrypoints: Readonly<Record<string, number>>,
    /** The built-ins the module calls out for, all of them available. */
    readonly builtins: readonly string[],
    /** A short hash of the WebAssembly bytes, naming this version of the policy in logs. */
    readonly revision: string,
  ) {}

  /**
   * Compiles WebAssembly bytes and checks them by making one instance.
   * @throws Error when the bytes are not an OPA policy module, or call a built-in this
   *   process does not provide (naming it)
   */
  static async load(wasm: Uint8Array): Promise<WasmPolicy> {
    let module: WebAssembly.Module;
    try {
      module = await WebAssembly.compile(wasm);
    } catch (error) {
      throw new Error(`not a WebAssembly module: ${(error as Error).message}`);
    }
    let probe: LoadedPolicy;
    try {
      probe = loadPolicySync(module, undefined, createBuiltins({ nowMs: 0 }));
    } catch (error) {
      throw new Error(`not an OPA policy module: ${error instanceof Error ? error.message : String(error)}`);
    }
    const builtins = requiredBuiltins(probe);
    const missing = builtins.filter((name) => !AVAILABLE_BUILTINS.has(name));
    if (missing.length > 0) {
      throw new Error(
        `the policy calls built-in function${missing.length === 1 ? '' : 's'} ${missing.join(', ')}, ` +
          'which the WebAssembly runtime does not provide; remove the call or compile without it',
      );
    }
    const revision = createHash('sha256').update(wasm).digest('hex').slice(0, 12);
    return new WasmPolicy(
      module,
      Object.freeze({ ...(probe.entrypoints as Record<string, number>) }),
      builtins,
      revision,
    );
  }

  /** A new instance with its own memory and built-ins reading `clock`. */
  instantiate(clock: BuiltinClock): LoadedPolicy {
    return loadPolicySync(this.module, undefined, createBuiltins(clock));
  }
}
