/**
 * `switchboard policy test DIR`: tests a Rego policy folder two ways, and reports each test.
 *
 * 1. Its Rego unit tests (`*_test.rego`), with the OPA compiler: `opa test DIR`, reading
 *    the folder as the opa adapter reads it (`*.decisions.yaml` ignored).
 * 2. Its decision cases: every `*.decisions.yaml` below DIR lists requests (attributes) and
 *    the answer each must get (allow or deny, and the denial's reason or status). Each case
 *    goes the way a Check goes in the server: the case file's instance is built from the
 *    attributes by the dispatcher, handed to the opa adapter, and decided by the policy
 *    compiled to WebAssembly — so the mapping from attributes to input is tested too.
 *
 * A decision case file:
 *
 * ```yaml
 * checkMethod: data.rbac.decision      # the handler's checkMethod
 * template: authorization              # or checknothing; default authorization
 * instance:                            # the instance's params, as in the configuration
 *   subject: { user: 'request.headers["x-user"] | ""' }
 *   action: { method: 'request.method | ""', path: 'request.path | ""' }
 * handler: { failClose: true }         # more opa params (default: policyDir is DIR)
 * attributes: { source.groups: STRING } # attributes beyond Istio's vocabulary, with their types
 * cases:
 * - name: readers may read
 *   attributes: { request.headers: { x-user: carol }, request.method: GET, request.path: /api/x }
 *   expect: { allow: true }
 * - name: readers may not write
 *   attributes: { request.headers: { x-user: carol }, request.method: POST, request.path: /api/x }
 *   expect: { allow: false, reason: carol may not POST /api/x, status: PERMISSION_DENIED }
 * ```
 *
 * Exit codes: 0 when everything passed, 1 when a test or case failed (or could not run), 2
 * for a command line that cannot be run.
 */
import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { OPA_IGNORE_PATTERNS, OpaMissingError, requireOpa, runOpa } from '../adapters/acl/opa';
import { ConfigLoadError, createScenario, formatConfigError, type Scenario } from '../policy-server';
import { StatusCode } from '../templates';
import type { CommandOutput } from './server-command';
import { UsageError } from './usage-error';

export const POLICY_USAGE = `Usage: switchboard policy test DIR [--opa PATH]

Tests the Rego policy in DIR: its Rego unit tests (*_test.rego) with the OPA compiler
(opa test), and its decision cases (*.decisions.yaml: attributes in, the expected allow or
deny and reason out), each through the path a Check takes in the server: the instance,
the opa adapter, the policy compiled to WebAssembly. Prints a line per test and case.
Exit 0 when all pass, 1 when any fails.

Options:
  --opa PATH   the opa executable (default: $SWITCHBOARD_OPA, ~/.cache/switchboard/opa/bin/opa, PATH)`;

/** What a run found: one line per test or case, and whether each passed. */
interface Tally {
  passed: number;
  failed: number;
}

export async function runPolicyCommand(args: readonly string[], output: CommandOutput): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'test') {
    throw new UsageError(
      sub === undefined ? 'policy: give a subcommand: test' : `policy: unknown subcommand '${sub}'`,
      POLICY_USAGE,
    );
  }
  let values: { opa?: string };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      options: { opa: { type: 'string' } },
      strict: true,
      allowPositionals: true,
    }));
  } catch (error) {
    throw new UsageError(`policy test: ${(error as Error).message}`, POLICY_USAGE);
  }
  if (positionals.length !== 1) throw new UsageError('policy test: give one folder', POLICY_USAGE);
  const dir = positionals[0]!;
  const files = await listFiles(dir).catch((error: unknown) => {
    output.stderr.write(`switchboard policy test: ${dir}: ${(error as Error).message}\n`);
    return undefined;
  });
  if (files === undefined) return 1;
  const tally: Tally = { passed: 0, failed: 0 };
  const testFiles = files.filter((f) => f.endsWith('_test.rego'));
  const caseFiles = files.filter((f) => /\.decisions\.ya?ml$/.test(f));
  if (testFiles.length === 0 && caseFiles.length === 0) {
    output.stderr.write(
      `switchboard policy test: ${dir} has no Rego unit tests (*_test.rego) and no decision cases (*.decisions.yaml)\n`,
    );
    return 1;
  }
  if (testFiles.length > 0) await runRegoTests(dir, values.opa, output, tally);
  for (const file of caseFiles) await runDecisionCases(file, dir, values.opa, output, tally);
  output.stdout.write(`${tally.passed} passed, ${tally.failed} failed\n`);
  return tally.failed === 0 ? 0 : 1;
}

/** Every file below `dir` the adapter would read or the tests use (dot entries skipped), sorted. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    if (depth > 32) return;
    for (const entry of await readdir(d, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(full, depth + 1);
      else out.push(full);
    }
  };
  await walk(dir, 0);
  return out.sort();
}

// ---------------------------------------------------------------------------------------
// Rego unit tests

interface OpaTestResult {
  readonly location?: { file?: string; row?: number };
  readonly package?: string;
  readonly name?: string;
  readonly fail?: boolean;
  readonly skip?: boolean;
  readonly error?: { message?: string };
}

async function runRegoTests(
  dir: string,
  opaPath: string | undefined,
  output: CommandOutput,
  tally: Tally,
): Promise<void> {
  output.stdout.write(`${dir}: Rego unit tests (opa test)\n`);
  let opa: string;
  try {
    opa = requireOpa(opaPath, 'running the Rego unit tests');
  } catch (error) {
    if (!(error instanceof OpaMissingError)) throw error;
    output.stdout.write(`  FAIL could not run: ${error.message}\n`);
    tally.failed++;
    return;
  }
  const ignore = OPA_IGNORE_PATTERNS.flatMap((p) => ['--ignore', p]);
  const run = (old: boolean) =>
    runOpa(opa, ['test', '--format', 'json', ...ignore, ...(old ? ['--v0-compatible'] : []), dir]);
  let result = await run(false);
  // Mixer-era syntax, as the adapter's regoVersion auto reads it.
  if (/`(if|contains)` keyword is required/.test(result.stdout + result.stderr)) result = await run(true);
  let tests: OpaTestResult[];
  try {
    tests = JSON.parse(result.stdout) as OpaTestResult[];
    if (!Array.isArray(tests)) throw new Error('not a list');
  } catch {
    output.stdout.write(`  FAIL opa test: ${(result.stdout + result.stderr).trim()}\n`);
    tally.failed++;
    return;
  }
  // opa runs tests in parallel: report them in file and line order.
  const at = (t: OpaTestResult) =>
    `${t.location?.file ?? ''}:${String(t.location?.row ?? 0).padStart(8, '0')}`;
  tests.sort((a, b) => (at(a) < at(b) ? -1 : at(a) > at(b) ? 1 : 0));
  for (const t of tests) {
    const name = `${t.package ?? 'data'}.${t.name ?? '?'}`;
    const where = t.location?.file === undefined ? '' : ` (${t.location.file}:${t.location.row ?? '?'})`;
    if (t.skip === true) {
      output.stdout.write(`  SKIP ${name}${where}\n`);
    } else if (t.fail === true || t.error !== undefined) {
      output.stdout.write(
        `  FAIL ${name}${where}${t.error?.message === undefined ? '' : `: ${t.error.message}`}\n`,
      );
      tally.failed++;
    } else {
      output.stdout.write(`  PASS ${name}\n`);
      tally.passed++;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Decision cases

/** One case, as written. */
interface DecisionCase {
  readonly name: string;
  readonly attributes: Record<string, unknown>;
  readonly allow: boolean;
  readonly reason?: string;
  readonly status?: number;
}

/** A case file, checked. */
interface CaseFile {
  readonly checkMethod: string;
  readonly template: 'authorization' | 'checknothing';
  readonly instance: unknown;
  readonly handler: Record<string, unknown>;
  readonly attributes: Record<string, string>;
  readonly cases: readonly DecisionCase[];
}

const HANDLER_NAME = 'policy-under-test';
const QUALIFIED_HANDLER = `${HANDLER_NAME}.handler.istio-system`;
const CODES = StatusCode as Readonly<Record<string, number>>;

/** Reads and checks a case file; every problem, with its path in the file. */
function checkCaseFile(raw: unknown): { file?: CaseFile; problems: string[] } {
  const problems: string[] = [];
  const isMapping = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isMapping(raw)) return { problems: ['must be a mapping with checkMethod, instance and cases'] };
  const known = new Set(['checkMethod', 'template', 'instance', 'handler', 'attributes', 'cases']);
  for (const key of Object.keys(raw))
    if (!known.has(key))
      problems.push(`${key}: is not a known field; known fields: ${[...known].join(', ')}`);
  const handler = raw.handler ?? {};
  if (!isMapping(handler)) problems.push('handler: must be a mapping of opa parameters');
  const checkMethod = raw.checkMethod ?? (isMapping(handler) ? handler.checkMethod : undefined);
  if (typeof checkMethod !== 'string')
    problems.push('checkMethod: is required: the rule that decides, such as data.authz.allow');
  const template = raw.template ?? 'authorization';
  if (template !== 'authorization' && template !== 'checknothing')
    problems.push(`template: must be authorization or checknothing, got ${JSON.stringify(template)}`);
  if (template === 'authorization' && !isMapping(raw.instance))
    problems.push("instance: is required: the authorization instance's params, as in the configuration");
  const attributes = raw.attributes ?? {};
  if (!isMapping(attributes) || !Object.values(attributes).every((t) => typeof t === 'string'))
    problems.push('attributes: must map attribute names to value types, such as source.groups: STRING');
  const cases: DecisionCase[] = [];
  if (!Array.isArray(raw.cases) || raw.cases.length === 0)
    problems.push('cases: must be a list of {name, attributes, expect}');
  else {
    raw.cases.forEach((c: unknown, i) => {
      const at = `cases[${i}]`;
      if (!isMapping(c)) return void problems.push(`${at}: must be {name, attributes, expect}`);
      const name = typeof c.name === 'string' ? c.name : `case ${i + 1}`;
      const expect = c.expect;
      if (!isMapping(expect) || typeof expect.allow !== 'boolean')
        return void problems.push(`${at}.expect: must be {allow: true or false, reason?, status?}`);
      if (expect.reason !== undefined && typeof expect.reason !== 'string')
        problems.push(`${at}.expect.reason: must be a string`);
      let status: number | undefined;
      if (expect.status !== undefined) {
        status =
          typeof expect.status === 'string'
            ? CODES[expect.status]
            : typeof expect.status === 'number'
              ? expect.status
              : undefined;
        if (status === undefined)
          problems.push(`${at}.expect.status: must be a google.rpc code, such as PERMISSION_DENIED or 7`);
      }
      if (c.attributes !== undefined && !isMapping(c.attributes))
        problems.push(`${at}.attributes: must be a mapping of attribute names to values`);
      cases.push({
        name,
        attributes: isMapping(c.attributes) ? c.attributes : {},
        allow: expect.allow,
        ...(typeof expect.reason === 'string' ? { reason: expect.reason } : {}),
        ...(status === undefined ? {} : { status }),
      });
    });
  }
  if (problems.length > 0) return { problems };
  return {
    problems,
    file: {
      checkMethod: checkMethod as string,
      template: template as CaseFile['template'],
      instance: raw.instance ?? {},
      handler: handler as Record<string, unknown>,
      attributes: attributes as Record<string, string>,
      cases,
    },
  };
}

/** The configuration a case file stands for: the opa handler on DIR, the instance, a rule for every request. */
function caseConfiguration(file: CaseFile, dir: string): string {
  const sources = ['policy', 'policyFiles', 'policyDir', 'bundle'];
  const ownSource = sources.some((key) => key in file.handler);
  const params = {
    ...(ownSource ? {} : { policyDir: path.resolve(dir) }),
    ...file.handler,
    checkMethod: file.checkMethod,
    watch: false,
  };
  const manifest =
    Object.keys(file.attributes).length === 0
      ? []
      : [
          `apiVersion: config.istio.io/v1alpha2
kind: attributemanifest
metadata: { name: decision-cases, namespace: istio-system }
spec:
  attributes: ${JSON.stringify(Object.fromEntries(Object.entries(file.attributes).map(([n, t]) => [n, { valueType: t }])))}
`,
        ];
  return [
    ...manifest,
    `apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: ${HANDLER_NAME}, namespace: istio-system }
spec:
  compiledAdapter: opa
  params: ${JSON.stringify(params)}
`,
    `apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: request, namespace: istio-system }
spec:
  compiledTemplate: ${file.template}
  params: ${JSON.stringify(file.template === 'checknothing' ? {} : file.instance)}
`,
    `apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: decide, namespace: istio-system }
spec:
  actions:
  - handler: ${HANDLER_NAME}
    instances: [request]
`,
  ].join('---\n');
}

async function runDecisionCases(
  caseFile: string,
  dir: string,
  opaPath: string | undefined,
  output: CommandOutput,
  tally: Tally,
): Promise<void> {
  output.stdout.write(`${caseFile}: decision cases\n`);
  const fail = (message: string): void => {
    output.stdout.write(`  FAIL ${message}\n`);
    tally.failed++;
  };
  let raw: unknown;
  try {
    raw = parseYaml(await readFile(caseFile, 'utf8'));
  } catch (error) {
    return fail(`cannot read the cases: ${(error as Error).message.split('\n')[0]!}`);
  }
  const { file, problems } = checkCaseFile(raw);
  if (file === undefined) {
    for (const p of problems) fail(`${caseFile}: ${p}`);
    return;
  }
  const handler =
    opaPath === undefined || 'opaPath' in file.handler ? file.handler : { ...file.handler, opaPath };
  let scenario: Scenario;
  try {
    // Named as if it sat beside the case file: relative paths in `handler` resolve there.
    const configName = path.join(path.dirname(path.resolve(caseFile)), '(decision cases).yaml');
    scenario = await createScenario(
      { [configName]: caseConfiguration({ ...file, handler }, dir) },
      { logger: quietLogger() },
    );
  } catch (error) {
    if (!(error instanceof ConfigLoadError)) throw error;
    return fail(
      `the policy does not load: ${error.errors.map((e) => formatConfigError({ ...e, file: caseFile })).join('; ')}`,
    );
  }
  try {
    for (const c of file.cases) {
      let verdict: string | undefined;
      try {
        const outcome = await scenario.check(c.attributes as never);
        verdict = judge(c, outcome.status);
      } catch (error) {
        verdict = `could not run: ${(error as Error).message}`;
      }
      if (verdict === undefined) {
        output.stdout.write(`  PASS ${c.name}\n`);
        tally.passed++;
      } else {
        fail(`${c.name}: ${verdict}`);
      }
    }
  } finally {
    await scenario.close();
  }
}

/** Why the answer is not what the case expects, or undefined when it is. */
function judge(c: DecisionCase, status: { code: number; message: string }): string | undefined {
  const allowed = status.code === StatusCode.OK;
  const prefix = `${QUALIFIED_HANDLER}:`;
  const reason = status.message.startsWith(prefix) ? status.message.slice(prefix.length) : status.message;
  const got = allowed ? 'allow' : `deny (${codeName(status.code)}) with reason ${JSON.stringify(reason)}`;
  if (c.allow !== allowed) return `expected ${c.allow ? 'allow' : 'deny'}, got ${got}`;
  if (!c.allow && c.reason !== undefined && c.reason !== reason)
    return `expected the reason ${JSON.stringify(c.reason)}, got ${got}`;
  if (!c.allow && c.status !== undefined && c.status !== status.code)
    return `expected ${codeName(c.status)}, got ${got}`;
  return undefined;
}

function codeName(code: number): string {
  return Object.entries(CODES).find(([, v]) => v === code)?.[0] ?? String(code);
}

/** Adapter logs are not test output; a failed case says what went wrong. */
function quietLogger() {
  return { info: () => undefined, warn: () => undefined, error: () => undefined };
}
