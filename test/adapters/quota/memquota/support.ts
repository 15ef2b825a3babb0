/** Helpers for the memquota tests: a handler on a clock the test moves, built from YAML params. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { createAdapterEnv, parseWithSchema, type AdapterLogger } from '../../../../adapters';
import { MEMQUOTA, MemquotaHandler, type MemquotaParams } from '../../../../adapters/quota/memquota';
import type { AttributeValue } from '../../../../attributes';
import type { QuotaInstance, QuotaResult } from '../../../../templates';

// Compiled to dist/test/adapters/quota/memquota/; the README and examples stay in the source tree.
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..', '..', '..');

/** The first YAML block of the adapter's README. */
export function readmeExample(): string {
  const readme = readFileSync(path.join(REPO_ROOT, 'adapters', 'quota', 'memquota', 'README.md'), 'utf8');
  const block = /```yaml\n([\s\S]*?)```/.exec(readme);
  if (block === null) throw new Error('README.md has no yaml block');
  return block[1]!;
}

/** The params of every memquota handler among YAML resources. */
export function memquotaHandlerParams(yaml: string): unknown[] {
  return parseAllDocuments(yaml)
    .map(
      (document) =>
        document.toJS() as { kind?: string; spec?: { compiledAdapter?: string; params?: unknown } },
    )
    .filter((resource) => resource?.kind === 'handler' && resource.spec?.compiledAdapter === 'memquota')
    .map((resource) => resource.spec!.params);
}

export const SILENT: AdapterLogger = { info() {}, warn() {}, error() {} };

/** Parses params (YAML text or a plain object) as the configuration store would: schema, then validate. */
export function parseParams(params: string | object): MemquotaParams {
  const input: unknown = typeof params === 'string' ? parseYaml(params) : params;
  const outcome = parseWithSchema(MEMQUOTA.config, input);
  if (!outcome.ok) throw new Error(`params do not parse: ${JSON.stringify(outcome.problems)}`);
  const problems = MEMQUOTA.validate!(outcome.value);
  if (problems.length > 0) throw new Error(`params do not validate: ${JSON.stringify(problems)}`);
  return outcome.value;
}

/** A handler whose clock is `clock.now`, starting at `startMs`. */
export class Harness {
  nowMs: number;
  readonly handler: MemquotaHandler;
  private readonly dispose: () => void;

  constructor(params: string | object, startMs = 1_000_000) {
    this.nowMs = startMs;
    const owned = createAdapterEnv('quota.handler.istio-system', SILENT, () => this.nowMs);
    this.handler = MEMQUOTA.build(parseParams(params), owned.env) as MemquotaHandler;
    this.dispose = () => owned.dispose();
  }

  advance(ms: number): this {
    this.nowMs += ms;
    return this;
  }

  /** Moves the clock to `ms` after the start of the bucket or window grid, for boundary tests. */
  at(ms: number): this {
    this.nowMs = ms;
    return this;
  }

  ask(
    amount: number,
    options: {
      instance?: string;
      dimensions?: Record<string, AttributeValue>;
      bestEffort?: boolean;
      deduplicationId?: string;
    } = {},
  ): QuotaResult {
    const args = {
      amount,
      bestEffort: options.bestEffort ?? false,
      deduplicationId: options.deduplicationId ?? '',
    };
    return this.handler.handleQuota(instanceOf(options.instance, options.dimensions), args, CONTEXT);
  }

  /** The granted amount only. */
  take(amount: number, options: Parameters<Harness['ask']>[1] = {}): number {
    return this.ask(amount, options).grantedAmount;
  }

  async close(): Promise<void> {
    await this.handler.close();
    this.dispose();
  }
}

export function instanceOf(
  name = 'requestcount.instance.istio-system',
  dimensions: Record<string, AttributeValue> = {},
): QuotaInstance {
  return { name, dimensions: new Map(Object.entries(dimensions)) };
}

export const CONTEXT = { signal: new AbortController().signal };
