// Public surface of adapters/: the adapter contract, configuration schemas, the registry and the built-in inventory.
export { defineAdapter, HandlerFullError } from './contract';
export type { AdapterEnv, AdapterInfo, AdapterLogger, Handler, TimerHandle } from './contract';
export { s, parseWithSchema, joinPath } from './schema';
export type { ConfigProblem, ParseOutcome, Schema, SchemaType } from './schema';
export { AdapterRegistry } from './registry';
export { createAdapterEnv, DEFAULT_DATA_DIR, handlerDataDir } from './environment';
export type { OwnedEnvironment } from './environment';
export { BUILTIN_ADAPTERS, createBuiltinRegistry } from './inventory';
