/**
 * Records of the other report templates the export adapters take, in the same schema as the
 * audit record (audit-record.ts; README.md documents both): a `metric` instance becomes an
 * `event.kind: metric` record with its value and its dimensions as variables; a `tracespan`
 * instance an `event.kind: event` record with ECS's trace, span, source, destination and
 * http fields and its span tags as variables. Both are redacted like log entries.
 */
import type { MetricInstance, TraceSpanInstance } from '../../../templates';
import {
  AUDIT_SCHEMA_VERSION,
  ECS_VERSION,
  copyWellKnown,
  recordTimestamp,
  setPath,
  type AuditContext,
  type AuditRecord,
} from './audit-record';
import { toJsonValue, type JsonValue } from './json-value';
import type { Redactor } from './redaction';

export function buildMetricRecord(
  instance: MetricInstance,
  context: AuditContext,
  redactor: Redactor,
): AuditRecord {
  const dimensions = redactor.redact(instance.dimensions);
  const record: AuditRecord = {
    '@timestamp': recordTimestamp(undefined, context.nowMs),
    ecs: { version: ECS_VERSION },
    event: { id: context.id, kind: 'metric', dataset: `switchboard.${instance.name}` },
  };
  copyWellKnown(record, dimensions);
  const own: AuditRecord = {
    schema_version: AUDIT_SCHEMA_VERSION,
    record_type: 'metric',
    instance: instance.name,
    handler: context.handlerName,
    metric: { value: toJsonValue(instance.value) },
    variables: Object.fromEntries(dimensions),
  };
  if (instance.monitoredResourceType !== '') own['monitored_resource_type'] = instance.monitoredResourceType;
  record['switchboard'] = { ...((record['switchboard'] as AuditRecord | undefined) ?? {}), ...own };
  return record;
}

export function buildTraceSpanRecord(
  span: TraceSpanInstance,
  context: AuditContext,
  redactor: Redactor,
): AuditRecord {
  const tags = redactor.redact(span.spanTags);
  const record: AuditRecord = {
    '@timestamp': recordTimestamp(span.startTime, context.nowMs),
    ecs: { version: ECS_VERSION },
    event: { id: context.id, kind: 'event', dataset: `switchboard.${span.name}` },
  };
  copyWellKnown(record, tags);
  const set = (field: string, value: JsonValue | undefined, unless: JsonValue = ''): void => {
    if (value !== undefined && value !== unless) setPath(record, field, value);
  };
  set('trace.id', span.traceId);
  set('span.id', span.spanId);
  set('source.ip', span.sourceIp === undefined ? undefined : toJsonValue(span.sourceIp));
  set('destination.ip', span.destinationIp === undefined ? undefined : toJsonValue(span.destinationIp));
  set('http.response.status_code', toJsonValue(span.httpStatusCode), 0);
  set('http.request.bytes', toJsonValue(span.requestSize), 0);
  set('http.response.bytes', toJsonValue(span.responseSize), 0);
  if (span.startTime !== undefined && span.endTime !== undefined) {
    const nanos =
      (span.endTime.seconds - span.startTime.seconds) * 1e9 + (span.endTime.nanos - span.startTime.nanos);
    setPath(record, 'event.duration', nanos);
    setPath(record, 'event.start', toJsonValue(span.startTime));
    setPath(record, 'event.end', toJsonValue(span.endTime));
  }
  const spanFields: AuditRecord = { name: span.spanName, client: span.clientSpan };
  if (span.parentSpanId !== '') spanFields['parent_id'] = span.parentSpanId;
  if (span.sourceName !== '') spanFields['source_name'] = span.sourceName;
  if (span.destinationName !== '') spanFields['destination_name'] = span.destinationName;
  if (span.apiProtocol !== '') spanFields['api_protocol'] = span.apiProtocol;
  if (span.requestTotalSize !== 0n) spanFields['request_total_bytes'] = toJsonValue(span.requestTotalSize);
  if (span.responseTotalSize !== 0n) spanFields['response_total_bytes'] = toJsonValue(span.responseTotalSize);
  const own: AuditRecord = {
    schema_version: AUDIT_SCHEMA_VERSION,
    record_type: 'tracespan',
    instance: span.name,
    handler: context.handlerName,
    span: spanFields,
    variables: Object.fromEntries(tags),
  };
  record['switchboard'] = { ...((record['switchboard'] as AuditRecord | undefined) ?? {}), ...own };
  return record;
}
