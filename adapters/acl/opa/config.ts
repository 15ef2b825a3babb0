/**
 * The opa adapter's parameters: Mixer's `adapter.opa.config.Params` unchanged (`policy`,
 * `checkMethod`, `failClose`, with Mixer's snake_case spellings accepted), plus where
 * policies and data come from, dry-run, a decision log, how long proxies may cache a
 * decision, and how evaluation runs. README.md has the table; validation here does no I/O.
 */
import { s, type ConfigProblem, type Schema, type SchemaType } from '../../schema';

/** `data.<package>.<rule>`, as Mixer's checkMethod. */
const CHECK_METHOD = /^data(\.[A-Za-z_][A-Za-z0-9_]*)+$/;

/**
 * Any JSON mapping (the inline `data` document). The schema vocabulary has no "any", so
 * this one is written out against the Schema contract; the value is deep-frozen.
 */
function jsonMapping(optional = false): Schema<Readonly<Record<string, unknown>> | undefined> {
  const description = 'a mapping (a JSON object)';
  const parse = (input: unknown, path: string, problems: ConfigProblem[]) => {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      problems.push({
        path,
        message: `must be ${description}, got ${Array.isArray(input) ? 'a list' : String(input)}`,
      });
      return {};
    }
    return deepFreeze(input as Record<string, unknown>);
  };
  const schema: Schema<Readonly<Record<string, unknown>> | undefined> = Object.freeze({
    description,
    optional,
    defaultValue: undefined,
    parse,
    default: () => schema,
    optionalField: () => jsonMapping(true),
  });
  return schema;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export const REGO_VERSIONS = ['auto', 'v0', 'v1'] as const;

export const OPA_CONFIG = s.object(
  {
    /** Rego modules, inline (Mixer's). Errors name them `policy[0]`, `policy[1]`… */
    policy: s.list(s.string()).default([]),
    /** The decision: `data.<package>.<rule>` (Mixer's). Required. */
    checkMethod: s.string().optionalField(),
    /**
     * When the policy cannot decide (an evaluation error, a timeout, an undefined or
     * malformed decision): true denies (PERMISSION_DENIED), false (Mixer's default) allows.
     */
    failClose: s.boolean().default(false),
    /** Rego files (`.rego`) and data documents (`.json`, `.yaml`, `.yml`, merged at the root of `data`). */
    policyFiles: s.list(s.string()).default([]),
    /**
     * A folder of Rego files and data documents, read recursively as `opa test` reads it: a
     * data document is merged at the path of its folder (`roles/data.json` → `data.roles`).
     * `*_test.rego` files and `*.decisions.yaml` case files are left out (they are for
     * `switchboard policy test`).
     */
    policyDir: s.string().optionalField(),
    /** A precompiled bundle (`.tar.gz` from `opa build -t wasm`) or module (`.wasm`), instead of Rego. */
    bundle: s.string().optionalField(),
    /** A base document merged at the root of `data`. */
    data: jsonMapping().optionalField(),
    /** Which Rego syntax: `v1` (OPA 1.x), `v0` (Mixer-era, `--v0-compatible`), or `auto` (try v1, then v0). */
    regoVersion: s.enumeration(REGO_VERSIONS).default('auto'),
    /** Decide and log, but never deny. Default false. */
    dryRun: s.boolean().default(false),
    /** Where every decision goes: a file (`path`) or a handler (`handler`). Default: nowhere. */
    decisionLog: s
      .object({
        /** A file, appended to, one JSON object per line; its folder must exist. */
        path: s.string().optionalField(),
        /**
         * A handler that takes logentry instances (kafka, elasticsearch, stdio): `name` (in
         * this handler's namespace) or `name.handler.namespace`. Each decision reaches it as
         * an `opa-decision` log entry.
         */
        handler: s.string().optionalField(),
        /** Write each decision's input. Default true. */
        includeInput: s.boolean().default(true),
      })
      .optionalField(),
    /** How long a proxy may reuse a decision, in milliseconds. Default 10000 (10s). */
    validDuration: s.duration().default(10_000),
    /** How many requests a proxy may answer with one decision. Default 10000. */
    validUseCount: s.integer({ min: 0, max: 2 ** 31 - 1 }).default(10_000),
    /** The `opa` executable that compiles Rego; default: $SWITCHBOARD_OPA, ~/.cache/switchboard/opa/bin/opa, then PATH. */
    opaPath: s.string().optionalField(),
    /** Evaluate on this many worker threads instead of the event loop. Default 0 (the event loop). */
    evaluationThreads: s.integer({ min: 0, max: 64 }).default(0),
    /** With evaluationThreads, the longest one evaluation may take, in milliseconds; default none. */
    evaluationTimeout: s.duration({ positive: true }).optionalField(),
    /** Watch policyFiles / policyDir / bundle and reload on change. Default true. */
    watch: s.boolean().default(true),
  },
  {
    aliases: {
      check_method: 'checkMethod',
      fail_close: 'failClose',
      policy_files: 'policyFiles',
      policy_dir: 'policyDir',
      dry_run: 'dryRun',
      decision_log: 'decisionLog',
      valid_duration: 'validDuration',
      valid_use_count: 'validUseCount',
    },
  },
);

export type OpaConfig = SchemaType<typeof OPA_CONFIG>;

const POLICY_FILE = /\.(rego|json|ya?ml)$/;
const BUNDLE_FILE = /\.(tar\.gz|tgz|wasm)$/;

/** Relations the schema cannot express, without I/O. */
export function validateOpaConfig(config: OpaConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (config.checkMethod === undefined || config.checkMethod === '') {
    problems.push({
      path: 'checkMethod',
      message: 'is required: the decision to ask for, data.<package>.<rule>, such as data.authz.allow',
    });
  } else if (!CHECK_METHOD.test(config.checkMethod)) {
    problems.push({
      path: 'checkMethod',
      message: `must be data.<package>.<rule>, such as data.authz.allow, got ${JSON.stringify(config.checkMethod)}`,
    });
  }
  const regoSources =
    config.policy.length + config.policyFiles.length + (config.policyDir === undefined ? 0 : 1);
  if (config.bundle !== undefined && regoSources > 0) {
    problems.push({
      path: 'bundle',
      message: 'is a compiled policy: give either bundle or Rego (policy, policyFiles, policyDir), not both',
    });
  }
  if (config.bundle === undefined && regoSources === 0) {
    problems.push({
      path: 'policy',
      message: 'no policy is configured: give Rego in policy, policyFiles or policyDir, or a compiled bundle',
    });
  }
  if (config.bundle !== undefined && !BUNDLE_FILE.test(config.bundle)) {
    problems.push({
      path: 'bundle',
      message: `must be a .tar.gz bundle (opa build -t wasm) or a .wasm module, got ${JSON.stringify(config.bundle)}`,
    });
  }
  config.policyFiles.forEach((file, i) => {
    if (!POLICY_FILE.test(file))
      problems.push({
        path: `policyFiles[${i}]`,
        message: `must be a .rego file or a .json, .yaml or .yml data document, got ${JSON.stringify(file)}`,
      });
  });
  config.policy.forEach((text, i) => {
    if (text.trim() === '') problems.push({ path: `policy[${i}]`, message: 'is empty: give a Rego module' });
  });
  const log = config.decisionLog;
  if (log !== undefined && (log.path === undefined) === (log.handler === undefined)) {
    problems.push({
      path: 'decisionLog',
      message:
        'give either path (a file) or handler (a logentry handler such as kafka), ' +
        (log.path === undefined ? 'got neither' : 'not both'),
    });
  }
  if (config.evaluationTimeout !== undefined && config.evaluationThreads === 0) {
    problems.push({
      path: 'evaluationTimeout',
      message: 'needs evaluationThreads of 1 or more: an evaluation on the event loop cannot be interrupted',
    });
  }
  return problems;
}

/** `data.mixerauthz.allow` → `mixerauthz/allow`, the entrypoint's name in the module. */
export function entrypointOf(checkMethod: string): string {
  return checkMethod.replace(/^data\./, '').replaceAll('.', '/');
}
