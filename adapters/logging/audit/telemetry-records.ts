/**
 * Records of the other report templates the export adapters take, in the same schema as the
 * audit record (audit-record.ts; README.md documents both): a `metric` instance becomes an
 * `event.kind: metric` record with its value and its dimensions as variables; a `tracespan`
 * instance an `event.kind: event` record with ECS's trace, span, source, destination and
 * http fields and its span tags as variables. Both are redacted like log entries.
 */
import type { MetricInstance, TraceSpanInstance } from '../../../templates';
import { recordSkeleton, setPath, type AuditContext, type AuditRecord } from './audit-record';
import { toJsonValue, type JsonValue } from './json-value';
import type { Redactor } from './redaction';

export function buildMetricRecord(
  instance: MetricInstance,
  context: AuditContext,
  redactor: Redactor,
): AuditRecord {
  const record = recordSkeleton(
    'metric',
    instance.name,
    undefined,
    context,
    redactor.redactToObject(instance.dimensions),
  );
  setPath(record, 'switchboard.metric.value', toJsonValue(instance.value));
  if (instance.monitoredResourceType !== '') {
    setPath(record, 'switchboard.monitored_resource_type', instance.monitoredResourceType);
  }
  return record;
}

export function buildTraceSpanRecord(
  span: TraceSpanInstance,
  context: AuditContext,
  redactor: Redactor,
): AuditRecord {
  const record = recordSkeleton(
    'tracespan',
    span.name,
    span.startTime,
    context,
    redactor.redactToObject(span.spanTags),
  );
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
    set('event.duration', nanos);
    set('event.start', toJsonValue(span.startTime));
    set('event.end', toJsonValue(span.endTime));
  }
  set('switchboard.span.name', span.spanName);
  set('switchboard.span.client', span.clientSpan, null);
  set('switchboard.span.parent_id', span.parentSpanId);
  set('switchboard.span.source_name', span.sourceName);
  set('switchboard.span.destination_name', span.destinationName);
  set('switchboard.span.api_protocol', span.apiProtocol);
  set('switchboard.span.request_total_bytes', toJsonValue(span.requestTotalSize), 0);
  set('switchboard.span.response_total_bytes', toJsonValue(span.responseTotalSize), 0);
  return record;
}
