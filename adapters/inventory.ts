/**
 * The built-in adapters, listed once. Adding an adapter to Switchboard means adding it
 * here; nothing is discovered by scanning files.
 */
import { DENIER } from './acl/denier';
import { LISTCHECKER } from './acl/list';
import { OPA } from './acl/opa';
import type { AdapterInfo } from './contract';
import { ELASTICSEARCH } from './logging/elasticsearch';
import { KAFKA } from './logging/kafka';
import { STDIO } from './logging/stdio';
import { NOOP } from './noop';
import { MEMQUOTA } from './quota/memquota';
import { REDISQUOTA } from './quota/redis';
import { AdapterRegistry } from './registry';

export const BUILTIN_ADAPTERS: readonly AdapterInfo<unknown>[] = [
  DENIER,
  LISTCHECKER,
  NOOP,
  OPA,
  MEMQUOTA,
  REDISQUOTA,
  STDIO,
  ELASTICSEARCH,
  KAFKA,
] as readonly AdapterInfo<unknown>[];

/** A registry with every built-in adapter. */
export function createBuiltinRegistry(): AdapterRegistry {
  const registry = new AdapterRegistry();
  for (const adapter of BUILTIN_ADAPTERS) registry.register(adapter);
  return registry;
}
