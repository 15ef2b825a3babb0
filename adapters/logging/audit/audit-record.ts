/**
 * The audit record: what the export adapters send for each logentry instance, as JSON, in
 * one versioned schema (README.md documents every field). Field names are ECS's (Elastic
 * Common Schema 8.x) where ECS has the concept; Switchboard's own concepts live under
 * `switchboard.*`. Every variable of the instance is kept, redacted, in
 * `switchboard.variables`; the well-known variables (Istio's accesslog names, table below)
 * are also copied to their ECS fields.
 *
 * Compatibility: AUDIT_SCHEMA_VERSION changes its minor number when fields are added and
 * its major number when a field changes meaning or type or goes away.
 */
import { Duration, type AttributeValue, type Timestamp } from '../../../attributes';
import type { LogEntryInstance } from '../../../templates';
import { formatTimestamp, type JsonValue } from './json-value';
import type { RedactedVariables, Redactor } from './redaction';

export const AUDIT_SCHEMA_VERSION = '1.1.0';
/** The ECS version the ECS-named fields follow. */
export const ECS_VERSION = '8.11.0';

/** An audit record, as built: a JSON object. */
export type AuditRecord = { [key: string]: JsonValue };
type JsonObject = AuditRecord;

/**
 * Well-known variable names (compared without regard to case) and the record field each is
 * copied to. A variable absent from the instance leaves its field out.
 */
export const WELL_KNOWN_VARIABLES: ReadonlyMap<string, string> = new Map([
  ['sourceip', 'source.ip'],
  ['sourceport', 'source.port'],
  ['sourceprincipal', 'switchboard.source.principal'],
  ['sourceuser', 'source.user.name'],
  ['sourcename', 'switchboard.source.name'],
  ['sourceworkload', 'switchboard.source.workload'],
  ['sourcenamespace', 'switchboard.source.namespace'],
  ['sourceapp', 'switchboard.source.app'],
  ['destinationip', 'destination.ip'],
  ['destinationport', 'destination.port'],
  ['destinationservicehost', 'destination.address'],
  ['destinationprincipal', 'switchboard.destination.principal'],
  ['destinationname', 'switchboard.destination.name'],
  ['destinationworkload', 'switchboard.destination.workload'],
  ['destinationnamespace', 'switchboard.destination.namespace'],
  ['destinationapp', 'switchboard.destination.app'],
  ['method', 'http.request.method'],
  ['url', 'url.original'],
  ['path', 'url.path'],
  ['host', 'url.domain'],
  ['authority', 'url.domain'],
  ['protocol', 'network.protocol'],
  ['responsecode', 'http.response.status_code'],
  ['requestsize', 'http.request.bytes'],
  ['responsesize', 'http.response.bytes'],
  ['requestid', 'http.request.id'],
  ['referer', 'http.request.referrer'],
  ['useragent', 'user_agent.original'],
  ['traceid', 'trace.id'],
  ['spanid', 'span.id'],
  ['decision', 'switchboard.decision'],
  ['rule', 'switchboard.rule'],
]);

/** What the record needs besides the instance. */
export interface AuditContext {
  /** The record's own id, kept with it in the spool so a resend carries the same id. */
  readonly id: string;
  /** `name.handler.namespace`. */
  readonly handlerName: string;
  /** The time to use when the instance has no timestamp, in ms since the epoch. */
  readonly nowMs: number;
}

/**
 * The audit record of one logentry instance, variables redacted.
 * Latency (a `latency` or `duration` variable of type duration) becomes `event.duration`
 * in nanoseconds.
 */
export function buildAuditRecord(
  instance: LogEntryInstance,
  context: AuditContext,
  redactor: Redactor,
): JsonObject {
  const variables = redactor.redactToObject(instance.variables);
  const record = recordSkeleton('logentry', instance.name, instance.timestamp, context, variables);
  record['log'] = { level: instance.severity === '' ? 'info' : instance.severity.toLowerCase() };
  const latency = durationNanos(instance.variables.get('latency') ?? instance.variables.get('duration'));
  if (latency !== undefined) setPath(record, 'event.duration', latency);
  if (instance.monitoredResourceType !== '') {
    setPath(record, 'switchboard.monitored_resource_type', instance.monitoredResourceType);
  }
  return record;
}

/**
 * What every record has: `@timestamp`, `ecs`, `event` (id, kind, dataset), the well-known
 * variables copied to their fields, and `switchboard.{schema_version, record_type,
 * instance, handler, variables}`. Builders add their own fields after.
 */
export function recordSkeleton(
  recordType: 'logentry' | 'metric' | 'tracespan',
  instanceName: string,
  timestamp: Timestamp | undefined,
  context: AuditContext,
  variables: RedactedVariables,
): JsonObject {
  const record: JsonObject = {
    '@timestamp': recordTimestamp(timestamp, context.nowMs),
    ecs: { version: ECS_VERSION },
    event: {
      id: context.id,
      kind: recordType === 'metric' ? 'metric' : 'event',
      dataset: `switchboard.${instanceName}`,
    },
  };
  copyWellKnown(record, variables);
  // A well-known variable may have made `switchboard` already (switchboard.source.*): its
  // fields come first, then these, in this order.
  let own = record['switchboard'] as JsonObject | undefined;
  if (own === undefined) record['switchboard'] = own = {};
  own['schema_version'] = AUDIT_SCHEMA_VERSION;
  own['record_type'] = recordType;
  own['instance'] = instanceName;
  own['handler'] = context.handlerName;
  own['variables'] = variables;
  return record;
}

/** WELL_KNOWN_VARIABLES' fields split at the dots, once. */
const WELL_KNOWN_PATHS: ReadonlyMap<string, readonly string[]> = new Map(
  [...WELL_KNOWN_VARIABLES].map(([name, field]) => [name, field.split('.')]),
);
/**
 * Variable names as written (`sourceIp`) → their field's path, or null: a variable name is
 * lower-cased once, not once per record. Names come from configuration, so few; bounded anyway.
 */
const wellKnownByName = new Map<string, readonly string[] | null>();
const MAX_CACHED_NAMES = 4096;

function wellKnownPath(name: string): readonly string[] | null {
  let target = wellKnownByName.get(name);
  if (target === undefined) {
    target = WELL_KNOWN_PATHS.get(name.toLowerCase()) ?? null;
    if (wellKnownByName.size >= MAX_CACHED_NAMES) wellKnownByName.clear();
    wellKnownByName.set(name, target);
  }
  return target;
}

/** Copies the well-known variables (WELL_KNOWN_VARIABLES) among `variables` to their fields, in key order. */
export function copyWellKnown(record: JsonObject, variables: RedactedVariables): void {
  for (const name in variables) {
    const target = wellKnownPath(name);
    if (target === null) continue;
    const value = variables[name]!;
    if (value !== null && typeof value !== 'object') setParts(record, target, value);
  }
}

/** The record's `@timestamp`: the instance's time, or the handler's clock. */
export function recordTimestamp(timestamp: Timestamp | undefined, nowMs: number): string {
  return timestamp !== undefined
    ? formatTimestamp(timestamp)
    : new Date(nowMs).toISOString().replace('Z', '000000Z');
}

function durationNanos(value: AttributeValue | undefined): number | undefined {
  if (!(value instanceof Duration)) return undefined;
  return value.seconds * 1e9 + value.nanos;
}

/** Sets a dotted field (`http.request.method`), creating the objects on its way. */
export function setPath(record: JsonObject, dotted: string, value: JsonValue): void {
  setParts(record, dotted.split('.'), value);
}

/** setPath with the field already split: `['http', 'request', 'method']`. */
function setParts(record: JsonObject, parts: readonly string[], value: JsonValue): void {
  let node = record;
  const last = parts.length - 1;
  for (let i = 0; i < last; i++) {
    const part = parts[i]!;
    const next = node[part];
    if (typeof next === 'object' && next !== null && !Array.isArray(next)) node = next;
    else node = node[part] = {};
  }
  node[parts[last]!] = value;
}
