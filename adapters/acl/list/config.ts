/**
 * The list checker's parameters, as Mixer's `adapter.list.config.Params` (camelCase, with
 * Mixer's snake_case spellings accepted). Defaults are Mixer's (its adapter inventory):
 * refresh every 60s, keep a list 300s, answers cacheable for 300s or 10000 uses, STRINGS,
 * a whitelist.
 */
import { s, type ConfigProblem, type SchemaType } from '../../schema';
import { ENTRY_TYPES, ipEntryProblem, regexEntryProblem } from './entry-lists';

export const LIST_CONFIG = s.object(
  {
    /** Where the list is fetched from (http or https); '' for a list of overrides alone. */
    providerUrl: s.string().default(''),
    /** How often the provider is polled, in milliseconds. Default 60000; at least 1000. */
    refreshInterval: s.duration().default(60_000),
    /**
     * How long a fetched list serves without a successful refresh, in milliseconds; then
     * checks fail as faults until a refresh succeeds. Default 300000; at least refreshInterval.
     */
    ttl: s.duration().default(300_000),
    /** How long a proxy may reuse an answer, in milliseconds. Default 300000. */
    cachingInterval: s.duration().default(300_000),
    /** How many requests a proxy may answer with one answer. Default 10000. */
    cachingUseCount: s.integer({ min: 0, max: 2 ** 31 - 1 }).default(10_000),
    /** Entries consulted together with the provider's. */
    overrides: s.list(s.string()).default([]),
    /** How entries and values compare. Default STRINGS. */
    entryType: s.enumeration(ENTRY_TYPES).default('STRINGS'),
    /** A blacklist denies values in the list; a whitelist (the default) denies the others. */
    blacklist: s.boolean().default(false),
  },
  {
    aliases: {
      provider_url: 'providerUrl',
      refresh_interval: 'refreshInterval',
      caching_interval: 'cachingInterval',
      caching_use_count: 'cachingUseCount',
      entry_type: 'entryType',
    },
  },
);

export type ListConfig = SchemaType<typeof LIST_CONFIG>;

/** Mixer's floor for polling a provider. */
export const MIN_REFRESH_INTERVAL_MS = 1000;

/** Milliseconds as a short duration: `60s`, `1500ms`. */
export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

const URL_EXAMPLE = 'https://lists.example.com/allowed.txt';

/**
 * Relations the schema cannot express, as Mixer's list builder checked them, without I/O:
 * the provider URL, the polling intervals (only when there is a provider), and every
 * override as the entry type reads it.
 */
export function validateListConfig(config: ListConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (config.providerUrl !== '') {
    let scheme: string | undefined;
    try {
      scheme = new URL(config.providerUrl).protocol;
    } catch {
      scheme = undefined;
    }
    if (scheme === undefined) {
      problems.push({
        path: 'providerUrl',
        message: `must be an http or https URL such as ${URL_EXAMPLE}, got ${JSON.stringify(config.providerUrl)}`,
      });
    } else if (scheme !== 'http:' && scheme !== 'https:') {
      problems.push({
        path: 'providerUrl',
        message: `must be an http or https URL such as ${URL_EXAMPLE}, got scheme ${JSON.stringify(scheme.slice(0, -1))}`,
      });
    }
    if (config.refreshInterval < MIN_REFRESH_INTERVAL_MS) {
      problems.push({
        path: 'refreshInterval',
        message: `must be at least ${formatMs(MIN_REFRESH_INTERVAL_MS)} when providerUrl is set, got ${formatMs(config.refreshInterval)}`,
      });
    }
    if (config.ttl < config.refreshInterval) {
      problems.push({
        path: 'ttl',
        message:
          `must be at least refreshInterval (${formatMs(config.refreshInterval)}), got ${formatMs(config.ttl)}; ` +
          'twice refreshInterval or more lets the list outlive a provider outage',
      });
    }
  }
  const entryProblem =
    config.entryType === 'IP_ADDRESSES'
      ? ipEntryProblem
      : config.entryType === 'REGEX'
        ? regexEntryProblem
        : undefined;
  if (entryProblem !== undefined) {
    config.overrides.forEach((entry, i) => {
      const message = entryProblem(entry);
      if (message !== undefined) problems.push({ path: `overrides[${i}]`, message });
    });
  }
  return problems;
}
