/**
 * The adapter contract, after Mixer's: an adapter is an info object — its name, the
 * templates it supports, a schema for its configuration — whose `build` turns a validated
 * configuration into a handler. A handler implements the handler method of every template
 * the adapter supports (`handleListEntry`, `handleQuota`, `handleLogEntry`…, see templates/)
 * and `close`.
 *
 * Lifecycle: the configuration store parses and validates (schema, then `validate`) without
 * I/O when configuration loads; `build` runs for handlers that are new or changed and may
 * connect; the handler serves calls until a configuration no longer has it (or has it
 * changed), then `close` is called once the new configuration serves. Calls never overlap
 * `close`.
 */
import type { ConfigProblem, Schema } from './schema';

/** Where an adapter logs. One line per call; no trailing newline. */
export interface AdapterLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** A timer owned by a handler's environment. */
export interface TimerHandle {
  cancel(): void;
}

/** What a handler gets from the server besides its configuration. */
export interface AdapterEnv {
  /** The handler's fully qualified name, `name.handler.namespace`, for messages. */
  readonly handlerName: string;
  readonly logger: AdapterLogger;
  /**
   * The configuration file that declared the handler (the configuration directory joined
   * with its relative path), when there is one. Adapters that take file paths resolve
   * relative ones against its folder, so a configuration directory can carry its own files.
   */
  readonly configFile?: string;
  /**
   * The directory where this handler may keep durable state (the export adapters' spool):
   * `<server data dir>/handlers/<handlerName>`, so a server restarted with the same
   * `--data-dir` gives the same handler the same directory. Not created until a handler
   * creates it; a handler that keeps nothing never touches it.
   */
  readonly dataDir: string;
  /** The current time in milliseconds since the epoch; tests give handlers a clock they control. */
  now(): number;
  /**
   * The handler of the running configuration with this qualified name
   * (`name.handler.namespace`), looked up at each call so a handler rebuilt by a reload is
   * found; undefined when there is none. For handlers that pass records on to another
   * handler (opa's decision log into an export handler). A handler that has named another
   * here is closed before it at shutdown, so it can flush into it.
   */
  findHandler(qualifiedName: string): Handler | undefined;
  /**
   * Timers owned by the environment: they do not keep the process alive, and every one
   * still pending is cancelled when the handler closes, so no callback outlives it.
   */
  schedule(callback: () => void, delayMs: number): TimerHandle;
  every(callback: () => void, intervalMs: number): TimerHandle;
}

/** What every handler has; template methods come from the templates' handler interfaces. */
export interface Handler {
  /** Releases what the handler holds, after flushing what it buffers. Idempotent. */
  close(): Promise<void>;
}

/** An adapter: the unit users configure with a `handler` resource. */
export interface AdapterInfo<Config = unknown> {
  /** The name handlers give as `compiledAdapter` (or as their legacy kind): `denier`. */
  readonly name: string;
  readonly description: string;
  /** Names of the templates its handlers accept instances of. */
  readonly templates: readonly string[];
  /** The configuration (`params`): parsed, defaulted and frozen before validate and build. */
  readonly config: Schema<Config>;
  /** Checks beyond the schema (relations between fields), without I/O; every problem, with its path. */
  validate?(config: Config): ConfigProblem[];
  /**
   * Builds a handler. May connect to a backend; a rejection here is a configuration error
   * reported against the handler resource.
   */
  build(config: Config, env: AdapterEnv): Promise<Handler> | Handler;
}

/**
 * What a handler throws (or rejects with) when it is full and accepted none of the call's
 * records, so the caller should keep them and send them again later: the server answers
 * RESOURCE_EXHAUSTED (not UNAVAILABLE, which says the handler failed). The export
 * adapters' spool throws it when full under its REFUSE policy.
 */
export class HandlerFullError extends Error {
  override readonly name: string = 'HandlerFullError';
}

/** Declares an adapter, keeping its configuration type. */
export function defineAdapter<Config>(info: AdapterInfo<Config>): AdapterInfo<Config> {
  return Object.freeze(info);
}
