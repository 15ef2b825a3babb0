/**
 * The adapter scenario harness: configuration YAML in, calls in, results out — the whole
 * runtime (configuration store, handlers, dispatcher) without a server, so that an
 * adapter (ours or a user's) gets end-to-end tests in a few lines:
 *
 * ```ts
 * const scenario = await createScenario({ 'config.yaml': yaml }, { registry });
 * const outcome = await scenario.check({ 'destination.labels': { app: 'ratings' } });
 * await scenario.close();
 * ```
 */
import { bagFromJson, type Bag, type JsonValue, type QuotaRequest } from '../attributes';
import { createBuiltinRegistry, type AdapterLogger, type AdapterRegistry } from '../adapters';
import { ConfigLoadError, type ConfigError } from './config-error';
import { parseConfigFile } from './config-loader';
import type { ConfigResource } from './config-resource';
import { Dispatcher, type CheckOutcome, type ReportOutcome } from './dispatcher';
import { HandlerSet } from './handler-set';
import { buildRuntimeConfig } from './runtime-config';

export interface ScenarioOptions {
  /** Adapters; default the built-in ones. */
  readonly registry?: AdapterRegistry;
  readonly defaultNamespace?: string;
  readonly handlerTimeoutMs?: number;
  /** The handlers' clock (ms); default Date.now. */
  readonly clock?: () => number;
  /** Where adapters log; default: kept in `Scenario.log`. */
  readonly logger?: AdapterLogger;
}

/** Attributes as JSON typed by the configuration's manifest (see attributes/json.ts), or a bag. */
export type ScenarioAttributes = Readonly<Record<string, JsonValue>> | Bag;

export interface Scenario {
  readonly dispatcher: Dispatcher;
  /** What adapters logged, when no logger was given. */
  readonly log: string[];
  /** One Check; quotas as name → amount (all or nothing) or full requests. */
  check(
    attributes: ScenarioAttributes,
    quotas?: Readonly<Record<string, number | QuotaRequest>>,
    deduplicationId?: string,
  ): Promise<CheckOutcome>;
  /** One Report of one or more attribute sets. */
  report(...attributes: ScenarioAttributes[]): Promise<ReportOutcome>;
  close(): Promise<void>;
}

/** Parses and validates configuration files given as text; every error, as the server reports them. */
export function validateConfigTexts(
  files: Readonly<Record<string, string>>,
  options: ScenarioOptions = {},
): ConfigError[] {
  const { resources, errors } = parseTexts(files);
  if (errors.length > 0) return errors;
  const built = buildRuntimeConfig(resources, options.registry ?? createBuiltinRegistry(), options);
  return built.ok ? [] : built.errors;
}

/**
 * Builds the runtime for configuration files given as text (file name → YAML).
 * @throws ConfigLoadError listing every problem when the configuration does not load
 */
export async function createScenario(
  files: Readonly<Record<string, string>>,
  options: ScenarioOptions = {},
): Promise<Scenario> {
  const log: string[] = [];
  const logger: AdapterLogger = options.logger ?? {
    info: (m) => log.push(`info: ${m}`),
    warn: (m) => log.push(`warn: ${m}`),
    error: (m) => log.push(`error: ${m}`),
  };
  const { resources, errors } = parseTexts(files);
  if (errors.length > 0) throw new ConfigLoadError('(scenario)', errors);
  const built = buildRuntimeConfig(resources, options.registry ?? createBuiltinRegistry(), options);
  if (!built.ok) throw new ConfigLoadError('(scenario)', built.errors);
  const handlers = new HandlerSet(logger, options.clock);
  const prepared = await handlers.prepare(built.config);
  if (!prepared.ok) throw new ConfigLoadError('(scenario)', prepared.errors);
  prepared.prepared.commit();
  const dispatcher = new Dispatcher(built.config, prepared.prepared.handlers, {
    logger,
    ...(options.handlerTimeoutMs === undefined ? {} : { handlerTimeoutMs: options.handlerTimeoutMs }),
  });
  const toBag = (attributes: ScenarioAttributes): Bag =>
    typeof (attributes as Bag).get === 'function' && typeof (attributes as Bag).names === 'function'
      ? (attributes as Bag)
      : bagFromJson(attributes as Record<string, JsonValue>, built.config.manifest);
  return {
    dispatcher,
    log,
    check(attributes, quotas = {}, deduplicationId = '') {
      const requests = new Map<string, QuotaRequest>(
        Object.entries(quotas).map(([name, q]) => [
          name,
          typeof q === 'number' ? { amount: BigInt(q), bestEffort: false } : q,
        ]),
      );
      // The dispatcher answers synchronous handlers without a promise; a scenario always with one.
      return Promise.resolve(dispatcher.check(toBag(attributes), requests, deduplicationId));
    },
    report(...attributes) {
      return dispatcher.report(attributes.map(toBag));
    },
    close: () => handlers.close(),
  };
}

function parseTexts(files: Readonly<Record<string, string>>): {
  resources: ConfigResource[];
  errors: ConfigError[];
} {
  const resources: ConfigResource[] = [];
  const errors: ConfigError[] = [];
  for (const [file, text] of Object.entries(files)) {
    const parsed = parseConfigFile(text, file);
    resources.push(...parsed.resources);
    errors.push(...parsed.errors);
  }
  return { resources, errors };
}
