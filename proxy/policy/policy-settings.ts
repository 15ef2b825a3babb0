/**
 * The proxy configuration's `policy` section: where the policy server is and how the proxy
 * asks and tells it (see policy-client.ts for what each setting does). Validated with the
 * rest of the proxy configuration, so a mistake is refused with its file and line.
 */

/** The `policy` section, defaults applied. */
export interface PolicySettings {
  readonly server: string;
  readonly checkTimeoutMs: number;
  readonly failPolicy: 'FAIL_CLOSE' | 'FAIL_OPEN';
  readonly cacheEntries: number;
  readonly reportBatchEntries: number;
  readonly reportBatchDelayMs: number;
  readonly reportBufferEntries: number;
}

const DEFAULTS: Omit<PolicySettings, 'server'> = {
  checkTimeoutMs: 1000,
  failPolicy: 'FAIL_CLOSE',
  cacheEntries: 10_000,
  reportBatchEntries: 100,
  reportBatchDelayMs: 1000,
  reportBufferEntries: 10_000,
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
  };
  const failPolicy = section['failPolicy'] ?? DEFAULTS.failPolicy;
  if (failPolicy !== 'FAIL_CLOSE' && failPolicy !== 'FAIL_OPEN') {
    problems.push({
      path: 'policy.failPolicy',
      message: `must be FAIL_CLOSE or FAIL_OPEN, got ${JSON.stringify(failPolicy)}`,
    });
  }
  const known = new Set(['server', 'failPolicy', ...Object.keys(DEFAULTS)]);
  for (const key of Object.keys(section)) {
    if (!known.has(key))
      problems.push({ path: `policy.${key}`, message: `unknown key; known: ${[...known].join(', ')}` });
  }
  const settings: PolicySettings = {
    server: server as string,
    failPolicy: failPolicy as PolicySettings['failPolicy'],
    ...numbers,
  };
  return problems.length > 0 ? { problems } : { settings, problems };
}
