/**
 * Parses one `clusters[]` entry of the proxy configuration into a frozen {@link ClusterConfig},
 * defaults applied. Every problem is returned with its full path and a message saying what
 * is wrong and what would be right; unknown keys are problems. No I/O happens here.
 *
 * ```yaml
 * name: reviews
 * protocol: http1                 # or http2 (prior knowledge, for gRPC)
 * endpoints:
 *   - { host: 10.0.0.1, port: 9080, weight: 3 }
 *   - { host: 10.0.0.2, port: 9080 }
 * loadBalancing: { policy: RING_HASH, hashOn: { header: x-user-id } }
 * connectTimeoutMs: 2000
 * healthCheck: { intervalMs: 5000, timeoutMs: 1000, http: { path: /healthz } }
 * outlierDetection: { consecutive5xx: 5, baseEjectionTimeMs: 30000 }
 * circuitBreakers: { maxConnections: 1024, maxRequests: 1024 }
 * ```
 */
import { isIP, isIPv6 } from 'node:net';
import {
  MAX_DURATION_MS,
  checkKnownKeys,
  checkWholeNumber,
  describeValue,
  fieldPath,
  isMapping,
  readChoice,
  readSection,
  readWholeNumber,
  type Mapping,
} from './config-fields';
import type {
  CircuitBreakerConfig,
  ClusterConfig,
  ConfigProblem,
  EndpointConfig,
  HashKeySource,
  HealthCheckConfig,
  LoadBalancingConfig,
  LoadBalancingPolicy,
  OutlierDetectionConfig,
} from './contract';

/** `protocol` when absent. */
export const DEFAULT_PROTOCOL = 'http1';

/** An endpoint's `weight` when absent. */
export const DEFAULT_ENDPOINT_WEIGHT = 1;

/** The largest endpoint weight: keeps weight sums exact and ring-hash rings bounded. */
export const MAX_ENDPOINT_WEIGHT = 1_000_000;

/** `loadBalancing.policy` when absent (and when `loadBalancing` is absent). */
export const DEFAULT_LOAD_BALANCING_POLICY: LoadBalancingPolicy = 'ROUND_ROBIN';

/** `connectTimeoutMs` when absent: Envoy's default connect timeout, 5 s. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

/**
 * Defaults of a `healthCheck` section. Envoy has none (it requires each); these are the
 * common choice: a check every 5 s that must answer within 1 s, three failures in a row to
 * take an endpoint out, two passes in a row to bring it back.
 */
export const DEFAULT_HEALTH_CHECK = Object.freeze({
  intervalMs: 5000,
  timeoutMs: 1000,
  unhealthyThreshold: 3,
  healthyThreshold: 2,
});

/** `healthCheck.http.expectedStatuses` when absent: Envoy's default, 200 only. */
export const DEFAULT_EXPECTED_STATUSES: readonly number[] = Object.freeze([200]);

/**
 * Defaults of an `outlierDetection` section, Envoy's: eject after 5 consecutive 5xx, for
 * 30 s times the number of ejections, at most 300 s (or the base time when that is longer),
 * never more than 10% of the cluster. The gateway-error detector is off (0) by default, as
 * Envoy does not enforce it by default: gateway errors are 5xx and already count there.
 */
export const DEFAULT_OUTLIER_DETECTION = Object.freeze({
  consecutive5xx: 5,
  consecutiveGatewayErrors: 0,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 10,
});

/** Circuit-breaker limits when absent: Envoy's defaults. */
export const DEFAULT_CIRCUIT_BREAKERS: CircuitBreakerConfig = Object.freeze({
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
});

const CLUSTER_KEYS = [
  'name',
  'protocol',
  'endpoints',
  'loadBalancing',
  'connectTimeoutMs',
  'healthCheck',
  'outlierDetection',
  'circuitBreakers',
] as const;
const ENDPOINT_KEYS = ['host', 'port', 'weight'] as const;
const LOAD_BALANCING_KEYS = ['policy', 'hashOn'] as const;
const POLICIES: readonly LoadBalancingPolicy[] = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH'];
const HASH_ON_KEYS = ['header', 'cookie', 'sourceIp'] as const;
const HEALTH_CHECK_KEYS = [
  'intervalMs',
  'timeoutMs',
  'unhealthyThreshold',
  'healthyThreshold',
  'http',
] as const;
const HTTP_CHECK_KEYS = ['path', 'expectedStatuses'] as const;
const OUTLIER_KEYS = [
  'consecutive5xx',
  'consecutiveGatewayErrors',
  'baseEjectionTimeMs',
  'maxEjectionTimeMs',
  'maxEjectionPercent',
] as const;
const BREAKER_KEYS = ['maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries'] as const;

const DURATION_MS = { min: 1, max: MAX_DURATION_MS, milliseconds: true } as const;
const AT_LEAST_ONE = { min: 1 } as const;
const AT_LEAST_ZERO = { min: 0 } as const;

/** A DNS name: dot-separated labels of letters, digits, `-` and `_` (service records use it). */
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
/** An HTTP field name (RFC 9110 token), or an HTTP/2 pseudo-header such as `:authority`. */
const HEADER_NAME = /^:?[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A cookie name (RFC 6265: a token). */
const COOKIE_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** An origin-form request target: starts with `/`, visible ASCII only. */
const REQUEST_PATH = /^\/[\x21-\x7e]*$/;

/**
 * Validates `raw`, found at `path` (such as `clusters[1]`), pushing every problem to
 * `problems`; returns the frozen config with defaults applied, or undefined when `raw` had
 * any problem. Never throws for bad input.
 */
export function parseClusterConfig(
  raw: unknown,
  path: string,
  problems: ConfigProblem[],
): ClusterConfig | undefined {
  const before = problems.length;
  if (!isMapping(raw)) {
    problems.push({
      path,
      message: `must be a mapping with name and endpoints, got ${describeValue(raw)}`,
    });
    return undefined;
  }
  checkKnownKeys(raw, path, CLUSTER_KEYS, problems);

  const name = raw['name'];
  if (typeof name !== 'string' || name.trim() === '') {
    problems.push({
      path: fieldPath(path, 'name'),
      message:
        name === undefined
          ? 'is required: give the cluster a name, such as name: backend'
          : `must be a non-empty string, such as name: backend, got ${describeValue(name)}`,
    });
  }
  const protocol = readChoice(raw, path, 'protocol', ['http1', 'http2'], DEFAULT_PROTOCOL, problems);
  const endpoints = readEndpoints(raw['endpoints'], fieldPath(path, 'endpoints'), problems);
  const loadBalancing = readLoadBalancing(raw, path, problems);
  const connectTimeoutMs = readWholeNumber(
    raw,
    path,
    'connectTimeoutMs',
    DURATION_MS,
    DEFAULT_CONNECT_TIMEOUT_MS,
    problems,
  );
  const healthCheckRaw = readSection(raw, path, 'healthCheck', problems);
  const healthCheck =
    healthCheckRaw && readHealthCheck(healthCheckRaw, fieldPath(path, 'healthCheck'), problems);
  const outlierRaw = readSection(raw, path, 'outlierDetection', problems);
  const outlierDetection =
    outlierRaw && readOutlierDetection(outlierRaw, fieldPath(path, 'outlierDetection'), problems);
  const breakersRaw = readSection(raw, path, 'circuitBreakers', problems);
  const circuitBreakers =
    breakersRaw === undefined
      ? DEFAULT_CIRCUIT_BREAKERS
      : readCircuitBreakers(breakersRaw, fieldPath(path, 'circuitBreakers'), problems);

  if (problems.length > before) return undefined;
  const config: ClusterConfig = {
    name: name as string,
    protocol,
    endpoints,
    loadBalancing,
    connectTimeoutMs,
    ...(healthCheck === undefined ? {} : { healthCheck }),
    ...(outlierDetection === undefined ? {} : { outlierDetection }),
    circuitBreakers,
  };
  return Object.freeze(config);
}

function readEndpoints(value: unknown, path: string, problems: ConfigProblem[]): readonly EndpointConfig[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push({
      path,
      message:
        value === undefined
          ? 'is required: list the upstream endpoints, such as endpoints: [{host: 10.0.0.1, port: 8080}]'
          : `must be a non-empty list of endpoints, such as [{host: 10.0.0.1, port: 8080}], got ${describeValue(value)}`,
    });
    return [];
  }
  const endpoints: EndpointConfig[] = [];
  // host:port (host lower-cased) → index of its first appearance, to name the duplicate.
  const firstIndex = new Map<string, number>();
  value.forEach((entry: unknown, i) => {
    const at = `${path}[${i}]`;
    const endpoint = readEndpoint(entry, at, problems);
    if (endpoint === undefined) return;
    const key = `${endpoint.host.toLowerCase()}|${endpoint.port}`;
    const first = firstIndex.get(key);
    if (first !== undefined) {
      problems.push({
        path: at,
        message:
          `duplicates endpoints[${first}] (${endpoint.host} port ${endpoint.port}); ` +
          'list each endpoint once and give it a larger weight for a larger share',
      });
      return;
    }
    firstIndex.set(key, i);
    endpoints.push(endpoint);
  });
  return Object.freeze(endpoints);
}

function readEndpoint(value: unknown, path: string, problems: ConfigProblem[]): EndpointConfig | undefined {
  if (!isMapping(value)) {
    problems.push({
      path,
      message: `must be a mapping with host and port, such as {host: 10.0.0.1, port: 8080}, got ${describeValue(value)}`,
    });
    return undefined;
  }
  const before = problems.length;
  checkKnownKeys(value, path, ENDPOINT_KEYS, problems);
  const host = value['host'];
  const hostProblem = checkHost(host);
  if (hostProblem !== undefined) problems.push({ path: fieldPath(path, 'host'), message: hostProblem });
  const port = value['port'];
  if (port === undefined) {
    problems.push({
      path: fieldPath(path, 'port'),
      message: 'is required: give a whole number from 1 to 65535',
    });
  } else {
    checkWholeNumber(port, fieldPath(path, 'port'), { min: 1, max: 65535 }, problems);
  }
  const weight = readWholeNumber(
    value,
    path,
    'weight',
    { min: 1, max: MAX_ENDPOINT_WEIGHT },
    DEFAULT_ENDPOINT_WEIGHT,
    problems,
  );
  if (problems.length > before) return undefined;
  return Object.freeze({ host: host as string, port: port as number, weight });
}

/** Why `host` is not a host name or IP address, or undefined when it is one. */
function checkHost(host: unknown): string | undefined {
  if (host === undefined) return 'is required: give a host name or IP address, such as host: 10.0.0.1';
  if (typeof host === 'string') {
    if (host.startsWith('[') && host.endsWith(']') && isIPv6(host.slice(1, -1))) {
      return `must be written without brackets, such as ${host.slice(1, -1)}, got ${JSON.stringify(host)}`;
    }
    if (isIP(host) !== 0 || HOST_NAME.test(host)) return undefined;
    if (/^[^:]+:\d+$/.test(host)) {
      return `must be a host name or IP address without a port (the port goes in port), got ${JSON.stringify(host)}`;
    }
  }
  return `must be a host name or IP address (IPv6 without brackets), got ${describeValue(host)}`;
}

function readLoadBalancing(raw: Mapping, path: string, problems: ConfigProblem[]): LoadBalancingConfig {
  const section = readSection(raw, path, 'loadBalancing', problems);
  if (section === undefined) return Object.freeze({ policy: DEFAULT_LOAD_BALANCING_POLICY });
  const at = fieldPath(path, 'loadBalancing');
  checkKnownKeys(section, at, LOAD_BALANCING_KEYS, problems);
  const policy = readChoice(section, at, 'policy', POLICIES, DEFAULT_LOAD_BALANCING_POLICY, problems);
  // A misspelt policy is its own problem; hashOn is judged only against a valid one.
  const policyValid = section['policy'] === undefined || POLICIES.includes(section['policy'] as never);
  const rawHashOn = section['hashOn'];
  if (rawHashOn === undefined) {
    if (policy === 'RING_HASH') {
      problems.push({
        path: fieldPath(at, 'hashOn'),
        message:
          'is required when policy is RING_HASH: give header: <name>, cookie: <name> or sourceIp: true, ' +
          'such as hashOn: {header: x-user-id}',
      });
    }
    return Object.freeze({ policy });
  }
  if (policy !== 'RING_HASH' && policyValid) {
    problems.push({
      path: fieldPath(at, 'hashOn'),
      message: `applies only to policy RING_HASH, got policy ${policy}; set policy: RING_HASH or remove hashOn`,
    });
  }
  const hashOn = readHashOn(rawHashOn, fieldPath(at, 'hashOn'), problems);
  return Object.freeze(hashOn === undefined ? { policy } : { policy, hashOn });
}

function readHashOn(value: unknown, path: string, problems: ConfigProblem[]): HashKeySource | undefined {
  if (!isMapping(value)) {
    problems.push({
      path,
      message: `must be a mapping with one of header, cookie or sourceIp, such as {header: x-user-id}, got ${describeValue(value)}`,
    });
    return undefined;
  }
  const before = problems.length;
  checkKnownKeys(value, path, HASH_ON_KEYS, problems);
  const given = HASH_ON_KEYS.filter((key) => value[key] !== undefined);
  if (given.length !== 1) {
    // With only a misspelt key the unknown-key problem already says what is wrong.
    if (given.length > 1 || problems.length === before) {
      problems.push({
        path,
        message: `must set exactly one of header, cookie or sourceIp, got ${given.length === 0 ? 'none' : given.join(' and ')}`,
      });
    }
    return undefined;
  }
  const key = given[0]!;
  const source = value[key];
  if (key === 'header') {
    if (typeof source === 'string' && HEADER_NAME.test(source)) {
      // Node gives header names in lower case; hashing looks them up so.
      return Object.freeze({ header: source.toLowerCase() });
    }
    problems.push({
      path: fieldPath(path, 'header'),
      message: `must be a header name, such as x-user-id, got ${describeValue(source)}`,
    });
    return undefined;
  }
  if (key === 'cookie') {
    if (typeof source === 'string' && COOKIE_NAME.test(source)) return Object.freeze({ cookie: source });
    problems.push({
      path: fieldPath(path, 'cookie'),
      message: `must be a cookie name, such as session-id, got ${describeValue(source)}`,
    });
    return undefined;
  }
  if (source === true) return Object.freeze({ sourceIp: true as const });
  problems.push({
    path: fieldPath(path, 'sourceIp'),
    message: `must be true (hash on the client's IP address), got ${describeValue(source)}`,
  });
  return undefined;
}

function readHealthCheck(raw: Mapping, path: string, problems: ConfigProblem[]): HealthCheckConfig {
  checkKnownKeys(raw, path, HEALTH_CHECK_KEYS, problems);
  const d = DEFAULT_HEALTH_CHECK;
  const intervalMs = readWholeNumber(raw, path, 'intervalMs', DURATION_MS, d.intervalMs, problems);
  const timeoutMs = readWholeNumber(raw, path, 'timeoutMs', DURATION_MS, d.timeoutMs, problems);
  const unhealthyThreshold = readWholeNumber(
    raw,
    path,
    'unhealthyThreshold',
    AT_LEAST_ONE,
    d.unhealthyThreshold,
    problems,
  );
  const healthyThreshold = readWholeNumber(
    raw,
    path,
    'healthyThreshold',
    AT_LEAST_ONE,
    d.healthyThreshold,
    problems,
  );
  const httpRaw = readSection(raw, path, 'http', problems);
  const http = httpRaw && readHttpCheck(httpRaw, fieldPath(path, 'http'), problems);
  return Object.freeze({
    intervalMs,
    timeoutMs,
    unhealthyThreshold,
    healthyThreshold,
    ...(http === undefined ? {} : { http }),
  });
}

function readHttpCheck(
  raw: Mapping,
  path: string,
  problems: ConfigProblem[],
): NonNullable<HealthCheckConfig['http']> {
  checkKnownKeys(raw, path, HTTP_CHECK_KEYS, problems);
  const requestPath = raw['path'];
  if (requestPath === undefined) {
    problems.push({
      path: fieldPath(path, 'path'),
      message: 'is required: give the path to GET, such as path: /healthz',
    });
  } else if (typeof requestPath !== 'string' || !REQUEST_PATH.test(requestPath)) {
    problems.push({
      path: fieldPath(path, 'path'),
      message: `must be a path starting with / without spaces, such as /healthz, got ${describeValue(requestPath)}`,
    });
  }
  let expectedStatuses = DEFAULT_EXPECTED_STATUSES;
  const statuses = raw['expectedStatuses'];
  if (statuses !== undefined) {
    const at = fieldPath(path, 'expectedStatuses');
    if (!Array.isArray(statuses) || statuses.length === 0) {
      problems.push({
        path: at,
        message: `must be a non-empty list of HTTP status codes, such as [200, 204], got ${describeValue(statuses)}`,
      });
    } else {
      statuses.forEach((status: unknown, i) =>
        checkWholeNumber(status, `${at}[${i}]`, { min: 100, max: 599 }, problems),
      );
      expectedStatuses = Object.freeze([...new Set(statuses as number[])]);
    }
  }
  return Object.freeze({ path: requestPath as string, expectedStatuses });
}

function readOutlierDetection(raw: Mapping, path: string, problems: ConfigProblem[]): OutlierDetectionConfig {
  checkKnownKeys(raw, path, OUTLIER_KEYS, problems);
  const d = DEFAULT_OUTLIER_DETECTION;
  const consecutive5xx = readWholeNumber(
    raw,
    path,
    'consecutive5xx',
    AT_LEAST_ZERO,
    d.consecutive5xx,
    problems,
  );
  const consecutiveGatewayErrors = readWholeNumber(
    raw,
    path,
    'consecutiveGatewayErrors',
    AT_LEAST_ZERO,
    d.consecutiveGatewayErrors,
    problems,
  );
  if (consecutive5xx === 0 && consecutiveGatewayErrors === 0) {
    problems.push({
      path,
      message:
        'turns both detectors off (consecutive5xx and consecutiveGatewayErrors are 0), so nothing is ever ejected; ' +
        'set one of them ≥ 1 or remove outlierDetection',
    });
  }
  const baseEjectionTimeMs = readWholeNumber(
    raw,
    path,
    'baseEjectionTimeMs',
    DURATION_MS,
    d.baseEjectionTimeMs,
    problems,
  );
  // Envoy's rule: the cap defaults to 300 s, or to the base time when that is longer.
  const maxEjectionTimeMs = readWholeNumber(
    raw,
    path,
    'maxEjectionTimeMs',
    DURATION_MS,
    Math.max(d.maxEjectionTimeMs, baseEjectionTimeMs),
    problems,
  );
  if (maxEjectionTimeMs < baseEjectionTimeMs) {
    problems.push({
      path: fieldPath(path, 'maxEjectionTimeMs'),
      message: `must be ≥ baseEjectionTimeMs (${baseEjectionTimeMs}), got ${maxEjectionTimeMs}`,
    });
  }
  const maxEjectionPercent = readWholeNumber(
    raw,
    path,
    'maxEjectionPercent',
    { min: 0, max: 100 },
    d.maxEjectionPercent,
    problems,
  );
  return Object.freeze({
    consecutive5xx,
    consecutiveGatewayErrors,
    baseEjectionTimeMs,
    maxEjectionTimeMs,
    maxEjectionPercent,
  });
}

function readCircuitBreakers(raw: Mapping, path: string, problems: ConfigProblem[]): CircuitBreakerConfig {
  checkKnownKeys(raw, path, BREAKER_KEYS, problems);
  const d = DEFAULT_CIRCUIT_BREAKERS;
  return Object.freeze({
    maxConnections: readWholeNumber(raw, path, 'maxConnections', AT_LEAST_ONE, d.maxConnections, problems),
    maxPendingRequests: readWholeNumber(
      raw,
      path,
      'maxPendingRequests',
      AT_LEAST_ONE,
      d.maxPendingRequests,
      problems,
    ),
    maxRequests: readWholeNumber(raw, path, 'maxRequests', AT_LEAST_ONE, d.maxRequests, problems),
    maxRetries: readWholeNumber(raw, path, 'maxRetries', AT_LEAST_ONE, d.maxRetries, problems),
  });
}
