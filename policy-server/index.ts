// Public surface of policy-server/: configuration loading and the gRPC policy server.
export {
  createPolicyServer,
  parseAddress,
  DEFAULT_ADDRESS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
} from './policy-server';
export type { PolicyServer, PolicyServerOptions, ListeningAddress } from './policy-server';
export { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_HEADER_LIST_BYTES } from './grpc-transport';
export {
  DEFAULT_VALID_DURATION_MS,
  DEFAULT_VALID_USE_COUNT,
  GENERATION_HEADER,
  REPORT_ID_HEADER,
} from './mixer-service';
export { HEALTH_SERVICE_NAMES } from './health-service';
export { loadConfigDirectory, parseConfigFile } from './config-loader';
export type { LoadConfigOptions, ParsedConfigFile } from './config-loader';
export { createEmptySnapshot } from './config-resource';
export type { ConfigResource, ConfigSnapshot } from './config-resource';
export { ConfigLoadError, formatConfigError } from './config-error';
export type { ConfigError } from './config-error';
export { STDERR_LOGGER } from './logger';
export type { PolicyServerLogger } from './logger';
export { buildRuntimeConfig, DEFAULT_NAMESPACE } from './runtime-config';
export type { RuntimeConfig, RuntimeConfigOptions, FailurePolicy } from './runtime-config';
export { Dispatcher } from './dispatcher';
export type {
  CheckOutcome,
  ReportOutcome,
  QuotaOutcome,
  HeaderOperation,
  DispatcherStats,
} from './dispatcher';
export { PolicyRuntime } from './policy-runtime';
export type { PolicyRuntimeOptions, ConfigRefusal } from './policy-runtime';
export { createScenario, validateConfigTexts } from './scenario';
export type { Scenario, ScenarioOptions, ScenarioAttributes } from './scenario';
export { toCheckResponse } from './mixer-service';
export { encodeCheckResponse } from './check-response-encoder';
export { createAdminEndpoint, describeConfig, describeStats } from './admin-endpoint';
export type {
  AdminConfigView,
  AdminEndpoint,
  AdminEndpointOptions,
  AdminReadiness,
  AdminSource,
  AdminStatsView,
} from './admin-endpoint';
export {
  connectToSupervisor,
  createWorkerSupervisor,
  parseWorkerCount,
  supervisedWorkerSlot,
  WORKER_ADDRESS_ENV,
  WORKER_SLOT_ENV,
} from './workers';
export type {
  SupervisedListening,
  SupervisorLink,
  WorkerSupervisor,
  WorkerSupervisorOptions,
} from './workers';
export { pathLine as yamlPathLine } from './config-loader';
