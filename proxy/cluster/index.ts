/** Upstream clusters: endpoints, load balancing, health checks, outlier detection, circuit breakers. */
export * from './contract';
export {
  DEFAULT_CIRCUIT_BREAKERS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_ENDPOINT_WEIGHT,
  DEFAULT_EXPECTED_STATUSES,
  DEFAULT_HEALTH_CHECK,
  DEFAULT_LOAD_BALANCING_POLICY,
  DEFAULT_OUTLIER_DETECTION,
  DEFAULT_PROTOCOL,
  MAX_ENDPOINT_WEIGHT,
  parseClusterConfig,
} from './cluster-config';
export { MAX_DURATION_MS } from './config-fields';
export { createCluster } from './cluster';
export { HEALTH_CHECK_USER_AGENT } from './health-probe';
export { MAX_RING_SIZE, VIRTUAL_NODES_PER_WEIGHT } from './ring-hash';
