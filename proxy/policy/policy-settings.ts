/**
 * The proxy configuration's `policy` section: where the policy server is and how the proxy
 * asks and tells it (see policy-client.ts for what each setting does). Validated with the
 * rest of the proxy configuration, so a mistake is refused with its file and line.
 */

import { NO_QUOTA_SPECS, parseQuotaSpecs, type QuotaSpecs } from './quota-specs';

/** The `policy` section, defaults applied. */
export interface PolicySettings {
  readonly server: string;
  readonly checkTimeoutMs: number;
  readonly failPolicy: 'FAIL_CLOSE' | 'FAIL_OPEN';
  readonly cacheEntries: number;
  readonly reportBatchEntries: number;
  readonly reportBatchDelayMs: number;
  readonly reportBufferEntries: number;
  /** Further attempts of a Check the server did not answer (UNAVAILABLE), within the fail policy. */
  readonly checkRetries: number;
  /** Back-off before the first retry, doubled for each next one (with jitter), in ms. */
  readonly checkRetryBaseMs: number;
  /** Longest back-off between retries, in ms. */
  readonly checkRetryMaxMs: number;
  /** Prefetched quotas: the fewest units a fetch asks for. */
  readonly prefetchMinAmount: number;
  /** Prefetched quotas: the window whose spending sizes the next fetch, in ms. */
  readonly prefetchWindowMs: number;
  /** Prefetched quotas: how long a partial grant stops further asks, in ms. */
  readonly prefetchCloseWaitMs: number;
  /** How often an open TCP connection is reported (`connection.event` = continue), in ms. */
  readonly tcpReportIntervalMs: number;
  /** Which requests ask for which quotas (`quotas`; see quota-specs.ts). */
  readonly quotas: QuotaSpecs;
}

const DEFAULTS: Omit<PolicySettings, 'server' | 'quotas'> = {
  checkTimeoutMs: 1000,
  failPolicy: 'FAIL_CLOSE',
  cacheEntries: 10_000,
  reportBatchEntries: 100,
  reportBatchDelayMs: 1000,
  reportBufferEntries: 10_000,
  checkRetries: 2,
  checkRetryBaseMs: 20,
  checkRetryMaxMs: 200,
  prefetchMinAmount: 5,
  prefetchWindowMs: 1000,
  prefetchCloseWaitMs: 1000,
  tcpReportIntervalMs: 10_000,
};

/**
 * Reads the `policy` section; undefined when it names no server (policy off). Every
 * problem is listed, with its path, as the proxy's configuration errors are.
 */
export function parsePolicySettings(section: Readonly<Record<string, unknown>> | undefined): {
  settings?: PolicySettings;
  problems: { path: string; message: string }[];
} {
  const problems: { path: string; message: string }[] = [];
  if (section === undefined || section['server'] === undefined) return { problems };
  const server = section['server'];
  if (typeof server !== 'string' || !/^[^\s:]+:\d{1,5}$/.test(server)) {
    problems.push({
      path: 'policy.server',
      message: `must be host:port, e.g. 127.0.0.1:9091, got ${JSON.stringify(server)}`,
    });
  } else {
    const port = Number(server.slice(server.lastIndexOf(':') + 1));
    if (port < 1 || port > 65535)
      problems.push({
        path: 'policy.server',
        message: `must be host:port with a port from 1 to 65535, e.g. 127.0.0.1:9091, got ${JSON.stringify(server)}`,
      });
  }
  const whole = (name: keyof typeof DEFAULTS, min: number): number => {
    const value = section[name] ?? DEFAULTS[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      problems.push({
        path: `policy.${name}`,
        message: `must be a whole number >= ${min}, got ${JSON.stringify(value)}`,
      });
      return DEFAULTS[name] as number;
    }
    return value;
  };
  const numbers = {
    checkTimeoutMs: whole('checkTimeoutMs', 1),
    cacheEntries: whole('cacheEntries', 1),
    reportBatchEntries: whole('reportBatchEntries', 1),
    reportBatchDelayMs: whole('reportBatchDelayMs', 0),
    reportBufferEntries: whole('reportBufferEntries', 1),
    checkRetries: whole('checkRetries', 0),
    checkRetryBaseMs: whole('checkRetryBaseMs', 1),
    checkRetryMaxMs: whole('checkRetryMaxMs', 1),
    prefetchMinAmount: whole('prefetchMinAmount', 1),
    prefetchWindowMs: whole('prefetchWindowMs', 1),
    prefetchCloseWaitMs: whole('prefetchCloseWaitMs', 0),
    tcpReportIntervalMs: whole('tcpReportIntervalMs', 1),
  };
  const quotas = parseQuotaSpecs(section['quotas'], problems);
  const failPolicy = section['failPolicy'] ?? DEFAULTS.failPolicy;
  if (failPolicy !== 'FAIL_CLOSE' && failPolicy !== 'FAIL_OPEN') {
    problems.push({
      path: 'policy.failPolicy',
      message: `must be FAIL_CLOSE or FAIL_OPEN, got ${JSON.stringify(failPolicy)}`,
    });
  }
  const known = new Set(['server', 'failPolicy', ...Object.keys(DEFAULTS), 'quotas']);
  for (const key of Object.keys(section)) {
    if (!known.has(key))
      problems.push({ path: `policy.${key}`, message: `unknown key; known: ${[...known].join(', ')}` });
  }
  const settings: PolicySettings = {
    server: server as string,
    failPolicy: failPolicy as PolicySettings['failPolicy'],
    ...numbers,
    quotas: quotas ?? NO_QUOTA_SPECS,
  };
  return problems.length > 0 ? { problems } : { settings, problems };
}
