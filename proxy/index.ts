// Public surface of proxy/: the sidecar proxy's configuration, data path and runtime.
export { createProxy } from './proxy';
export type {
  ListeningAddress,
  Proxy,
  ProxyConfigRefusal,
  ProxyOptions,
  ProxyStats,
  ReloadOutcome,
} from './proxy';
export { parseProxyConfig, loadProxyConfigFile, DEFAULT_DRAIN_TIMEOUT_MS } from './config-parser';
export type { ProxyConfigOutcome } from './config-parser';
export { formatProxyConfigError, ProxyConfigLoadError } from './config-errors';
export type { ProxyConfigError } from './config-errors';
export type * from './config-model';
export { createSeededRandom, DEFAULT_ENVIRONMENT } from './environment';
export type { ProxyEnvironment } from './environment';
export { NO_HOOK, whilePolicyConfigured } from './traffic-hook';
export type { RequestVerdict, TrafficHook } from './traffic-hook';
export type { ProxyCounters, ProxyLogger } from './proxy-generation';
export type { HttpRequestFacts, ListenerFacts, ProxyReason, TcpConnectionFacts } from './traffic-facts';
export { bagOf, completedRequestAttributes, RequestAttributes } from './request-attributes';
export type { CheckAttributes } from './request-attributes';
export { RESPONSE_FLAGS } from './traffic-facts';
export { REASON_HEADER, OVERFLOW_HEADER } from './local-reply';
export { DEFAULT_ROUTE_TIMEOUT_MS, DEFAULT_RETRY_BUFFER_LIMIT_BYTES } from './route-parser';
export {
  connectProxyWorker,
  createProxySupervisor,
  proxyWorkerSlot,
  PROXY_WORKER_SLOT_ENV,
} from './proxy-workers';
export type {
  ProxySupervisor,
  ProxySupervisorOptions,
  ProxyWorkerLink,
  SupervisedProxy,
} from './proxy-workers';
export { PolicyClient } from './policy/policy-client';
export type { PolicyClientStats, PolicyClientView } from './policy/policy-client';
export { REPORT_ID_HEADER } from './policy/policy-client';
export { createProxyAdminEndpoint, proxyAdminSource } from './admin-endpoint';
export type {
  ProxyAdminEndpoint,
  ProxyAdminOptions,
  ProxyAdminSource,
  ProxyAdminStats,
  ReadyView,
} from './admin-endpoint';
export { parsePolicySettings } from './policy/policy-settings';
export type { PolicySettings } from './policy/policy-settings';
export { DecisionCache } from './policy/decision-cache';
