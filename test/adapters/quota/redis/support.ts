/** Helpers for the redisquota tests: handlers built from YAML params against real Redis. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  createAdapterEnv,
  parseWithSchema,
  type AdapterLogger,
  type ConfigProblem,
} from '../../../../adapters';
import { REDISQUOTA, RedisquotaHandler, type RedisquotaParams } from '../../../../adapters/quota/redis';
import type { AttributeValue } from '../../../../attributes';
import type { QuotaResult } from '../../../../templates';
import { rawCommand } from '../../../support/redis-servers';

// Compiled to dist/test/adapters/quota/redis/; the README stays in the source tree.
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..', '..', '..');

/** The first YAML block of the adapter's README. */
export function readmeExample(): string {
  const readme = readFileSync(path.join(REPO_ROOT, 'adapters', 'quota', 'redis', 'README.md'), 'utf8');
  const block = /```yaml\n([\s\S]*?)```/.exec(readme);
  if (block === null) throw new Error('README.md has no yaml block');
  return block[1]!;
}

/** Every problem the configuration store would report for these params: the schema's, else validate's. */
export function problemsOf(params: string | object): ConfigProblem[] {
  const outcome = parseWithSchema(REDISQUOTA.config, typeof params === 'string' ? parseYaml(params) : params);
  if (!outcome.ok) return outcome.problems;
  return REDISQUOTA.validate!(outcome.value);
}

export function parseParams(params: string | object): RedisquotaParams {
  const outcome = parseWithSchema(REDISQUOTA.config, typeof params === 'string' ? parseYaml(params) : params);
  if (!outcome.ok) throw new Error(`params do not parse: ${JSON.stringify(outcome.problems)}`);
  const problems = REDISQUOTA.validate!(outcome.value);
  if (problems.length > 0) throw new Error(`params do not validate: ${JSON.stringify(problems)}`);
  return outcome.value;
}

/** A logger that keeps every line, by level. */
export class RecordingLogger implements AdapterLogger {
  readonly lines: string[] = [];
  info(message: string): void {
    this.lines.push(`info: ${message}`);
  }
  warn(message: string): void {
    this.lines.push(`warn: ${message}`);
  }
  error(message: string): void {
    this.lines.push(`error: ${message}`);
  }
}

let keyPrefixSerial = 0;

/** A handler on real Redis, with a key prefix of its own so that tests never share counters. */
export class RedisHarness {
  private constructor(
    readonly handler: RedisquotaHandler,
    readonly logger: RecordingLogger,
    private readonly dispose: () => void,
  ) {}

  /** `params` without keyPrefix; the harness adds a unique one. */
  static async build(params: object): Promise<RedisHarness> {
    const logger = new RecordingLogger();
    const withPrefix = { keyPrefix: `test:${process.pid}:${Date.now()}:${keyPrefixSerial++}:`, ...params };
    const owned = createAdapterEnv('quota.handler.istio-system', logger, () => Date.now());
    const handler = (await REDISQUOTA.build(parseParams(withPrefix), owned.env)) as RedisquotaHandler;
    return new RedisHarness(handler, logger, () => owned.dispose());
  }

  ask(
    amount: number,
    options: {
      instance?: string;
      dimensions?: Record<string, AttributeValue>;
      bestEffort?: boolean;
      deduplicationId?: string;
    } = {},
  ): Promise<QuotaResult> {
    return this.handler.handleQuota(
      {
        name: options.instance ?? 'requestcount.instance.istio-system',
        dimensions: new Map(Object.entries(options.dimensions ?? {})),
      },
      { amount, bestEffort: options.bestEffort ?? false, deduplicationId: options.deduplicationId ?? '' },
      { signal: new AbortController().signal },
    );
  }

  /** Asks `times` times for `amount` one after the other; the amounts granted. */
  async askMany(
    times: number,
    amount = 1,
    options: Parameters<RedisHarness['ask']>[1] = {},
  ): Promise<number[]> {
    const granted: number[] = [];
    for (let i = 0; i < times; i++) granted.push((await this.ask(amount, options)).grantedAmount);
    return granted;
  }

  async close(): Promise<void> {
    await this.handler.close();
    this.dispose();
  }
}

/** Redis's clock, in milliseconds. */
export async function redisTimeMs(port: number): Promise<number> {
  const reply = await rawCommand(port, 'TIME');
  const numbers = reply
    .split('\r\n')
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
  return numbers[0]! * 1000 + Math.floor(numbers[1]! / 1000);
}

/**
 * Waits until Redis's clock is `offsetMs` into a window of `windowMs` (e.g. 100 ms into
 * the next one), so boundary tests start where they mean to.
 */
export async function waitUntilWindowOffset(port: number, windowMs: number, offsetMs: number): Promise<void> {
  const now = await redisTimeMs(port);
  const into = now % windowMs;
  const wait = into <= offsetMs ? offsetMs - into : windowMs - into + offsetMs;
  await new Promise((resolve) => setTimeout(resolve, wait));
}

export function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
