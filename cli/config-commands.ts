/**
 * The commands that work on a configuration directory without a server:
 *
 * - `switchboard validate DIR`: exit 0 when it loads; otherwise exit 1 and every error as
 *   `file:line: path: message`. No I/O beyond reading the directory (handlers are not built).
 * - `switchboard check --config DIR --attributes FILE.json [--quota NAME=AMOUNT]…`: one Check,
 *   offline, printed as the proto3 JSON of its CheckResponse, with referenced attributes by name.
 * - `switchboard report --config DIR --attributes FILE.json`: one Report, offline.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { bagFromJson, parseJson, type QuotaRequest } from '../attributes';
import { createBuiltinRegistry, type AdapterLogger } from '../adapters';
import {
  buildRuntimeConfig,
  ConfigLoadError,
  formatConfigError,
  loadConfigDirectory,
  PolicyRuntime,
  toCheckResponse,
} from '../policy-server';
import { mixer } from '../proto';
import type { CommandOutput } from './server-command';
import { UsageError } from './usage-error';

export const VALIDATE_USAGE = `Usage: switchboard validate DIR

Loads the configuration in DIR and checks every resource: shapes, references, expression
types against template fields, and each adapter's parameters. Builds no handler.
Exit 0 when valid; otherwise 1, with every error as file:line: path: message.`;

export const CHECK_USAGE = `Usage: switchboard check --config DIR --attributes FILE.json [--quota NAME=AMOUNT]...

Runs one Check against the configuration in DIR, without a server, and prints the
CheckResponse as JSON (referenced attributes by name). Attributes are a JSON object of
attribute name to value (see switchboard eval).`;

export const REPORT_USAGE = `Usage: switchboard report --config DIR --attributes FILE.json

Dispatches one Report of the attributes in FILE.json to the configuration in DIR, without a
server, and prints how many instances reached handlers.`;

export async function runValidateCommand(args: readonly string[], output: CommandOutput): Promise<number> {
  const { positionals } = parse(args, {}, VALIDATE_USAGE, 'validate');
  if (positionals.length !== 1) throw new UsageError('validate: give one directory', VALIDATE_USAGE);
  const dir = positionals[0]!;
  let errors;
  try {
    const snapshot = await loadConfigDirectory(dir);
    const built = buildRuntimeConfig(snapshot.resources, createBuiltinRegistry());
    if (built.ok) {
      output.stdout.write(`${dir}: valid (${snapshot.resources.length} resources)\n`);
      return 0;
    }
    errors = built.errors;
  } catch (error) {
    if (!(error instanceof ConfigLoadError)) throw error;
    errors = error.errors;
  }
  for (const e of errors) output.stdout.write(`${formatConfigError(e)}\n`);
  output.stderr.write(`${dir}: ${errors.length} ${errors.length === 1 ? 'error' : 'errors'}\n`);
  return 1;
}

export async function runCheckCommand(args: readonly string[], output: CommandOutput): Promise<number> {
  const { values } = parse(
    args,
    { config: { type: 'string' }, attributes: { type: 'string' }, quota: { type: 'string', multiple: true } },
    CHECK_USAGE,
    'check',
  );
  const quotas = new Map<string, QuotaRequest>();
  for (const q of (values.quota as string[] | undefined) ?? []) {
    const m = /^([^=]+)=(\d+)$/.exec(q);
    if (m === null) throw new UsageError(`check: --quota takes NAME=AMOUNT, got ${q}`, CHECK_USAGE);
    quotas.set(m[1]!, { amount: BigInt(m[2]!), bestEffort: false });
  }
  return withRuntime(values, CHECK_USAGE, 'check', output, async (runtime, attributesJson) => {
    const dispatcher = runtime.current().dispatcher;
    const bag = bagFromJson(attributesJson, dispatcher.config.manifest);
    const outcome = await dispatcher.check(bag, quotas, '');
    const response = mixer.CheckResponse.toJSON(toCheckResponse(outcome, 0)) as Record<string, unknown>;
    // Referenced attributes by name instead of dictionary indices.
    const byName = outcome.references.list().map((r) => ({
      name: r.name,
      ...(r.mapKey === undefined ? {} : { mapKey: r.mapKey }),
      condition: r.presence === 1 ? 'ABSENCE' : 'EXACT',
    }));
    const precondition = response.precondition as Record<string, unknown>;
    precondition.referencedAttributes = { attributeMatches: byName };
    precondition.validDuration = durationJson(outcome.validDurationMs);
    for (const [name, quota] of Object.entries(
      (response.quotas ?? {}) as Record<string, Record<string, unknown>>,
    )) {
      quota.referencedAttributes = { attributeMatches: byName };
      quota.validDuration = durationJson(outcome.quotas.get(name)!.validDurationMs);
    }
    output.stdout.write(`${JSON.stringify(response, null, 2)}\n`);
    return 0;
  });
}

export async function runReportCommand(args: readonly string[], output: CommandOutput): Promise<number> {
  const { values } = parse(
    args,
    { config: { type: 'string' }, attributes: { type: 'string' } },
    REPORT_USAGE,
    'report',
  );
  return withRuntime(values, REPORT_USAGE, 'report', output, async (runtime, attributesJson) => {
    const dispatcher = runtime.current().dispatcher;
    const outcome = await dispatcher.report([bagFromJson(attributesJson, dispatcher.config.manifest)]);
    output.stdout.write(`${JSON.stringify({ status: outcome.status, dispatched: outcome.dispatched })}\n`);
    return outcome.status.code === 0 ? 0 : 1;
  });
}

type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

function parse(
  args: readonly string[],
  options: Parameters<typeof parseArgs>[0] extends infer P
    ? P extends { options?: infer O }
      ? NonNullable<O>
      : never
    : never,
  usage: string,
  command: string,
): { values: Values; positionals: string[] } {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: true }) as {
      values: Values;
      positionals: string[];
    };
  } catch (error) {
    throw new UsageError(`${command}: ${(error as Error).message}`, usage);
  }
}

/** Loads the configuration with its handlers, runs `work`, closes everything. */
async function withRuntime(
  values: Values,
  usage: string,
  command: string,
  output: CommandOutput,
  work: (runtime: PolicyRuntime, attributes: ReturnType<typeof parseJson>) => Promise<number>,
): Promise<number> {
  const configDir = values.config;
  const file = values.attributes;
  if (typeof configDir !== 'string') throw new UsageError(`${command}: --config DIR is required`, usage);
  if (typeof file !== 'string') throw new UsageError(`${command}: --attributes FILE.json is required`, usage);
  let attributes;
  try {
    attributes = parseJson(readFileSync(file, 'utf8'));
  } catch (error) {
    output.stderr.write(`switchboard ${command}: ${file}: ${(error as Error).message}\n`);
    return 2;
  }
  const logger: AdapterLogger = {
    info: (m) => output.stderr.write(`${m}\n`),
    warn: (m) => output.stderr.write(`${m}\n`),
    error: (m) => output.stderr.write(`${m}\n`),
  };
  const runtime = new PolicyRuntime({ configDir, registry: createBuiltinRegistry(), logger, watch: false });
  try {
    await runtime.start();
  } catch (error) {
    if (!(error instanceof ConfigLoadError)) throw error;
    for (const e of error.errors) output.stderr.write(`${formatConfigError(e)}\n`);
    return 1;
  }
  try {
    return await work(runtime, attributes);
  } catch (error) {
    output.stderr.write(`switchboard ${command}: ${(error as Error).message}\n`);
    return 2;
  } finally {
    await runtime.close();
  }
}

/** A duration in proto3 JSON form: seconds with up to nine fractional digits, then `s`. */
function durationJson(ms: number): string {
  const whole = Math.max(0, Math.round(ms));
  const seconds = Math.floor(whole / 1000);
  const fraction = whole % 1000;
  return fraction === 0 ? `${seconds}s` : `${seconds}.${String(fraction).padStart(3, '0')}s`;
}
