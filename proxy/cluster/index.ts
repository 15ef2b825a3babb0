/** Upstream clusters: endpoints, load balancing, health checks, outlier detection, circuit breakers. */
export * from './contract';
export { parseClusterConfig } from './cluster-config';
export { createCluster } from './cluster';
