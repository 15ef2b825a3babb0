/**
 * The `redisquota` configuration (`params` of a handler with `compiledAdapter: redisquota`).
 *
 * Mixer's parameters load unchanged (mixer/adapter/redisquota/config/config.proto):
 * `redisServerUrl`, `connectionPoolSize`, `quotas[]` with `name`, `maxAmount`,
 * `validDuration`, `bucketDuration`, `rateLimitAlgorithm` (FIXED_WINDOW, Mixer's default, or
 * ROLLING_WINDOW) and `overrides[]` with `dimensions` and `maxAmount`. Added: `validDuration`
 * per override, TOKEN_BUCKET with `burstSize`, `shadowMode`, `onRedisFailure` with a local
 * fallback, a key prefix, a deduplication window, Sentinel, Cluster, TLS and credentials.
 */
import { s, joinPath, type ConfigProblem, type SchemaType } from '../../schema';
import { checkWholeMilliseconds, DEFAULT_BUCKET_DURATION_MS, validateQuotaLimits } from '../common';

export const REDIS_RATE_LIMIT_ALGORITHMS = ['FIXED_WINDOW', 'ROLLING_WINDOW', 'TOKEN_BUCKET'] as const;
export type RedisRateLimitAlgorithm = (typeof REDIS_RATE_LIMIT_ALGORITHMS)[number];

/**
 * What a quota does when Redis does not answer within `timeout`: grant as asked
 * (FAIL_OPEN), deny with UNAVAILABLE (FAIL_CLOSE), or count in this process's memory a
 * share of the limit (LOCAL_FALLBACK, `fallbackPercent` of maxAmount).
 */
export const REDIS_FAILURE_POLICIES = ['FAIL_OPEN', 'FAIL_CLOSE', 'LOCAL_FALLBACK'] as const;
export type RedisFailurePolicy = (typeof REDIS_FAILURE_POLICIES)[number];

/** Mixer's redisquota default: FIXED_WINDOW (the enum's zero value). */
export const DEFAULT_REDIS_ALGORITHM: RedisRateLimitAlgorithm = 'FIXED_WINDOW';
/** Mixer's default pool size (`DefaultConfig` of redisquota in mixer/adapter/metadata/inventory.go). */
export const DEFAULT_CONNECTION_POOL_SIZE = 10;
/** Quota policy's default for adapter faults: closed, as the dispatcher's default for quota. */
export const DEFAULT_FAILURE_POLICY: RedisFailurePolicy = 'FAIL_CLOSE';
export const DEFAULT_TIMEOUT_MS = 200;
export const DEFAULT_DEDUPLICATION_WINDOW_MS = 1000;
export const DEFAULT_KEY_PREFIX = 'switchboard:quota:';

const OVERRIDE = s.object(
  {
    dimensions: s.record(s.string()),
    maxAmount: s.integer({ min: 0 }),
    /** Milliseconds; default: the quota's validDuration. */
    validDuration: s.duration({ positive: true }).optionalField(),
    /** TOKEN_BUCKET only; default: the override's maxAmount. */
    burstSize: s.integer({ min: 1 }).optionalField(),
  },
  { aliases: { max_amount: 'maxAmount', valid_duration: 'validDuration', burst_size: 'burstSize' } },
);

const QUOTA = s.object(
  {
    /** The quota instance: its full name (`requestcount.instance.istio-system`) or short name. */
    name: s.string(),
    maxAmount: s.integer({ min: 0 }),
    /** The window (FIXED_WINDOW, ROLLING_WINDOW) or the refill period of maxAmount (TOKEN_BUCKET), in ms. */
    validDuration: s.duration({ positive: true }),
    rateLimitAlgorithm: s.enumeration(REDIS_RATE_LIMIT_ALGORITHMS).default(DEFAULT_REDIS_ALGORITHM),
    /** ROLLING_WINDOW only: the granularity at which the window rolls, in ms. */
    bucketDuration: s.duration({ positive: true }).default(DEFAULT_BUCKET_DURATION_MS),
    /** TOKEN_BUCKET only: the most granted at once after a quiet period; default maxAmount. */
    burstSize: s.integer({ min: 1 }).optionalField(),
    /** Decide and count, never deny: for trying a limit on live traffic. */
    shadowMode: s.boolean().default(false),
    onRedisFailure: s.enumeration(REDIS_FAILURE_POLICIES).default(DEFAULT_FAILURE_POLICY),
    /** LOCAL_FALLBACK only: the share of maxAmount this process grants on its own, 1–100. */
    fallbackPercent: s.integer({ min: 1, max: 100 }).optionalField(),
    overrides: s.list(OVERRIDE).default(Object.freeze([])),
  },
  {
    aliases: {
      max_amount: 'maxAmount',
      valid_duration: 'validDuration',
      rate_limit_algorithm: 'rateLimitAlgorithm',
      bucket_duration: 'bucketDuration',
      burst_size: 'burstSize',
      shadow_mode: 'shadowMode',
      on_redis_failure: 'onRedisFailure',
      fallback_percent: 'fallbackPercent',
    },
  },
);

const TLS = s.object({
  /** PEM file of the CA that signed the server's certificate; default: the system's CAs. */
  caFile: s.string().default(''),
  /** PEM client certificate and key, for servers that ask for one. */
  certFile: s.string().default(''),
  keyFile: s.string().default(''),
  /** The name to check the certificate against; default the host connected to. */
  serverName: s.string().default(''),
  /** Accept any certificate. For tests only. */
  insecureSkipVerify: s.boolean().default(false),
});

export const REDISQUOTA_PARAMS = s.object(
  {
    /** `host:port` (Mixer's form), or `redis://[user:password@]host:port[/db]`, `rediss://…` for TLS. */
    redisServerUrl: s.string().default(''),
    /** Connections (clients) used in turn. */
    connectionPoolSize: s.integer({ min: 1, max: 256 }).default(DEFAULT_CONNECTION_POOL_SIZE),
    quotas: s.list(QUOTA).default(Object.freeze([])),
    /** Prefix of every key written, so several deployments can share one Redis. */
    keyPrefix: s.string().default(DEFAULT_KEY_PREFIX),
    /** How long a retried call with the same deduplication id gets the first call's answer, in ms. */
    deduplicationWindow: s.duration({ positive: true }).default(DEFAULT_DEDUPLICATION_WINDOW_MS),
    /** How long a decision may wait for Redis before the failure policy applies, in ms. */
    timeout: s.duration({ positive: true }).default(DEFAULT_TIMEOUT_MS),
    username: s.string().default(''),
    password: s.string().default(''),
    db: s.integer({ min: 0, max: 15 }).default(0),
    tls: TLS.optionalField(),
    /** A primary found through Sentinel, instead of redisServerUrl. */
    sentinel: s
      .object({
        masterName: s.string(),
        /** `host:port` of each sentinel. */
        addresses: s.list(s.string(), { minLength: 1 }),
        password: s.string().default(''),
      })
      .optionalField(),
    /** A Redis Cluster, instead of redisServerUrl: `host:port` of some of its nodes. */
    cluster: s.object({ nodes: s.list(s.string(), { minLength: 1 }) }).optionalField(),
  },
  {
    aliases: {
      redis_server_url: 'redisServerUrl',
      connection_pool_size: 'connectionPoolSize',
      key_prefix: 'keyPrefix',
      deduplication_window: 'deduplicationWindow',
    },
  },
);

export type RedisquotaParams = SchemaType<typeof REDISQUOTA_PARAMS>;
export type RedisQuotaParams = RedisquotaParams['quotas'][number];
export type RedisOverrideParams = RedisQuotaParams['overrides'][number];

/** A parsed `host:port` or redis URL. */
export interface RedisEndpoint {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly username?: string;
  readonly password?: string;
  readonly db?: number;
}

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[^:/@\s[\]]+):(\d{1,5})$/;

/** Reads `host:port` or `redis[s]://…`; a message saying what is wrong otherwise. */
export function parseRedisEndpoint(text: string): RedisEndpoint | string {
  const plain = HOST_PORT.exec(text);
  if (plain !== null) {
    const port = Number(plain[2]);
    if (port < 1 || port > 65535) return `port must be 1 to 65535, got ${port}`;
    return { host: (plain[1] as string).replace(/^\[|\]$/g, ''), port, tls: false };
  }
  if (!/^rediss?:\/\//.test(text)) {
    return `must be host:port or a redis:// or rediss:// URL, e.g. 127.0.0.1:6379, got ${JSON.stringify(text)}`;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `is not a valid URL: ${JSON.stringify(text)}`;
  }
  if (url.hostname === '') return `has no host: ${JSON.stringify(text)}`;
  const port = url.port === '' ? 6379 : Number(url.port);
  const dbText = url.pathname.replace(/^\//, '');
  const db = dbText === '' ? undefined : Number(dbText);
  if (db !== undefined && !(Number.isInteger(db) && db >= 0 && db <= 15)) {
    return `names database ${JSON.stringify(dbText)}; give a number from 0 to 15 after the slash`;
  }
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port,
    tls: url.protocol === 'rediss:',
    ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
    ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
    ...(db === undefined ? {} : { db }),
  };
}

/**
 * The rules beyond the schema: where Redis is (exactly one of redisServerUrl, sentinel,
 * cluster, each well formed), the limits' shared rules (names, whole milliseconds, buckets,
 * overrides that can apply), and the fields that belong to one algorithm or policy only.
 */
export function validateRedisquotaParams(params: RedisquotaParams): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const problem = (path: string, message: string): void => {
    problems.push({ path, message });
  };

  const sources = [
    params.redisServerUrl !== '' ? 'redisServerUrl' : undefined,
    params.sentinel !== undefined ? 'sentinel' : undefined,
    params.cluster !== undefined ? 'cluster' : undefined,
  ].filter((x) => x !== undefined);
  if (sources.length === 0) {
    problem(
      'redisServerUrl',
      'must say where Redis is: give redisServerUrl (e.g. 127.0.0.1:6379), or a sentinel or cluster section',
    );
  } else if (sources.length > 1) {
    problem(
      sources[1] as string,
      `conflicts with ${sources[0]}: give only one of redisServerUrl, sentinel, cluster`,
    );
  }
  if (params.redisServerUrl !== '') {
    const endpoint = parseRedisEndpoint(params.redisServerUrl);
    if (typeof endpoint === 'string') problem('redisServerUrl', endpoint);
  }
  params.sentinel?.addresses.forEach((address, i) =>
    checkHostPort(address, joinPath('sentinel.addresses', i), problem),
  );
  if (params.sentinel?.masterName === '') {
    problem('sentinel.masterName', 'must name the primary the sentinels monitor, e.g. mymaster');
  }
  params.cluster?.nodes.forEach((node, i) => checkHostPort(node, joinPath('cluster.nodes', i), problem));
  if (params.tls !== undefined && (params.tls.certFile === '') !== (params.tls.keyFile === '')) {
    problem('tls', 'certFile and keyFile go together: give both for a client certificate, or neither');
  }
  if (params.keyPrefix.includes('{') || params.keyPrefix.includes('}')) {
    problem(
      'keyPrefix',
      "must not contain { or }: the adapter puts each quota's name in braces as its cluster hash tag",
    );
  }
  checkWholeMilliseconds(params.deduplicationWindow, 'deduplicationWindow', problem);
  checkWholeMilliseconds(params.timeout, 'timeout', problem);

  if (params.quotas.length === 0) {
    problem(
      'quotas',
      'must list at least one quota: a redisquota handler without quotas cannot serve any instance',
    );
  }
  validateQuotaLimits(params.quotas, problem);
  params.quotas.forEach((quota, q) => {
    const at = joinPath('quotas', q);
    const tokenBucket = quota.rateLimitAlgorithm === 'TOKEN_BUCKET';
    if (!tokenBucket && quota.burstSize !== undefined) {
      problem(
        joinPath(at, 'burstSize'),
        `applies to TOKEN_BUCKET only; remove it or set rateLimitAlgorithm: TOKEN_BUCKET`,
      );
    }
    quota.overrides.forEach((override, o) => {
      if (!tokenBucket && override.burstSize !== undefined) {
        problem(
          joinPath(joinPath(joinPath(at, 'overrides'), o), 'burstSize'),
          `applies to TOKEN_BUCKET only; remove it or set ${at}.rateLimitAlgorithm: TOKEN_BUCKET`,
        );
      }
    });
    if (quota.onRedisFailure === 'LOCAL_FALLBACK' && quota.fallbackPercent === undefined) {
      problem(
        joinPath(at, 'fallbackPercent'),
        'is required with onRedisFailure: LOCAL_FALLBACK: the share of maxAmount each server grants alone, e.g. 34 for one of three replicas',
      );
    }
    if (quota.onRedisFailure !== 'LOCAL_FALLBACK' && quota.fallbackPercent !== undefined) {
      problem(
        joinPath(at, 'fallbackPercent'),
        `applies to onRedisFailure: LOCAL_FALLBACK only, got ${quota.onRedisFailure}; remove it`,
      );
    }
  });
  return problems;
}

function checkHostPort(text: string, path: string, problem: (path: string, message: string) => void): void {
  const match = HOST_PORT.exec(text);
  if (match === null || Number(match[2]) < 1 || Number(match[2]) > 65535) {
    problem(
      path,
      `must be host:port with a port from 1 to 65535, e.g. 127.0.0.1:26379, got ${JSON.stringify(text)}`,
    );
  }
}
