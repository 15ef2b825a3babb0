// Public surface of proxy/: the sidecar proxy's configuration, data path and runtime.
export { parseProxyConfig, loadProxyConfigFile, DEFAULT_DRAIN_TIMEOUT_MS } from './config-parser';
export type { ProxyConfigOutcome } from './config-parser';
export { formatProxyConfigError, ProxyConfigLoadError } from './config-errors';
export type { ProxyConfigError } from './config-errors';
export type * from './config-model';
