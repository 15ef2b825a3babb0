/**
 * The audit schema shared by the export adapters (kafka, elasticsearch): the record built
 * from a logentry instance (audit-record.ts) and field-level redaction (redaction.ts).
 * README.md documents the schema.
 */
export { AUDIT_SCHEMA_VERSION, ECS_VERSION, WELL_KNOWN_VARIABLES, buildAuditRecord } from './audit-record';
export type { AuditContext, AuditRecord } from './audit-record';
export { buildMetricRecord, buildTraceSpanRecord } from './telemetry-records';
export {
  DEFAULT_REDACTION_RULES,
  HASH_PREFIX,
  MASKED,
  REDACTION_ACTIONS,
  Redactor,
  checkRedactionRules,
} from './redaction';
export type { RedactionAction, RedactionRule } from './redaction';
export { formatTimestamp, toJsonValue } from './json-value';
export type { JsonValue } from './json-value';
