/**
 * Parses one `clusters[]` entry of the proxy configuration into a {@link ClusterConfig}.
 * (A first version: endpoints and ROUND_ROBIN; the cluster work extends it.)
 */
import type { ClusterConfig, ConfigProblem, EndpointConfig } from './contract';

const DEFAULT_LIMIT = 1024;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates `raw` found at `path` (such as `clusters[1]`), pushing every problem to
 * `problems`; returns the frozen config, or undefined when there were problems.
 */
export function parseClusterConfig(
  raw: unknown,
  path: string,
  problems: ConfigProblem[],
): ClusterConfig | undefined {
  const before = problems.length;
  if (!isRecord(raw)) {
    problems.push({ path, message: 'a cluster must be a mapping with name and endpoints' });
    return undefined;
  }
  const name = raw['name'];
  if (typeof name !== 'string' || name === '') {
    problems.push({ path: `${path}.name`, message: 'must be a non-empty string, e.g. name: backend' });
  }
  const protocol = raw['protocol'] ?? 'http1';
  if (protocol !== 'http1' && protocol !== 'http2') {
    problems.push({ path: `${path}.protocol`, message: `must be http1 or http2, got ${String(protocol)}` });
  }
  const endpoints: EndpointConfig[] = [];
  const rawEndpoints = raw['endpoints'];
  if (!Array.isArray(rawEndpoints) || rawEndpoints.length === 0) {
    problems.push({
      path: `${path}.endpoints`,
      message: 'must be a non-empty list, e.g. endpoints: [{host: 127.0.0.1, port: 8080}]',
    });
  } else {
    rawEndpoints.forEach((e: unknown, i) => {
      const at = `${path}.endpoints[${i}]`;
      if (!isRecord(e) || typeof e['host'] !== 'string' || e['host'] === '') {
        problems.push({ path: `${at}.host`, message: 'must be a host name or IP address' });
        return;
      }
      const port = e['port'];
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
        problems.push({
          path: `${at}.port`,
          message: `must be a whole number from 1 to 65535, got ${String(port)}`,
        });
        return;
      }
      const weight = e['weight'] ?? 1;
      if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1) {
        problems.push({ path: `${at}.weight`, message: `must be a whole number ≥ 1, got ${String(weight)}` });
        return;
      }
      endpoints.push(Object.freeze({ host: e['host'], port, weight }));
    });
  }
  if (problems.length > before) return undefined;
  return Object.freeze({
    name: name as string,
    protocol: protocol as 'http1' | 'http2',
    endpoints: Object.freeze(endpoints),
    loadBalancing: Object.freeze({ policy: 'ROUND_ROBIN' as const }),
    connectTimeoutMs: 5000,
    circuitBreakers: Object.freeze({
      maxConnections: DEFAULT_LIMIT,
      maxPendingRequests: DEFAULT_LIMIT,
      maxRequests: DEFAULT_LIMIT,
      maxRetries: 3,
    }),
  });
}
