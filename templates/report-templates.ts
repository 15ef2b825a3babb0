/**
 * The report templates: their instances are dispatched on Report, in batches (every
 * instance a handler gets from one Report call). Fields and types are Mixer's.
 */
import { ValueType, type AttributeValue, type IpAddress, type Timestamp } from '../attributes';
import type { CallContext } from './results';
import { ANY, MAP, defineTemplate, field, valueField, type InstanceBase } from './template';

const STRING = valueField(ValueType.STRING);
const INT64 = valueField(ValueType.INT64);
const TIMESTAMP = valueField(ValueType.TIMESTAMP);

type Dimensions = ReadonlyMap<string, AttributeValue>;

/** `reportnothing`: no fields; for adapters that only count reports. */
export const REPORTNOTHING = defineTemplate({
  name: 'reportnothing',
  variety: 'report',
  description: 'a report with no data',
  fields: [],
  handlerMethod: 'handleReportNothing',
});
export type ReportNothingInstance = InstanceBase;
export interface ReportNothingHandler {
  handleReportNothing(
    instances: readonly ReportNothingInstance[],
    context: CallContext,
  ): Promise<void> | void;
}

/** `logentry`: one log record (access logs, audit logs). */
export const LOGENTRY = defineTemplate({
  name: 'logentry',
  variety: 'report',
  description: 'a log record: named variables, a time and a severity',
  fields: [
    field('variables', MAP),
    field('timestamp', TIMESTAMP),
    field('severity', STRING),
    field('monitored_resource_type', STRING),
    field('monitored_resource_dimensions', MAP),
  ],
  handlerMethod: 'handleLogEntry',
});
export interface LogEntryInstance extends InstanceBase {
  readonly variables: Dimensions;
  readonly timestamp: Timestamp | undefined;
  readonly severity: string;
  readonly monitoredResourceType: string;
  readonly monitoredResourceDimensions: Dimensions;
}
export interface LogEntryHandler {
  handleLogEntry(instances: readonly LogEntryInstance[], context: CallContext): Promise<void> | void;
}

/** `metric`: one measurement with its dimensions. */
export const METRIC = defineTemplate({
  name: 'metric',
  variety: 'report',
  description: 'a measurement and the dimensions it is recorded under',
  fields: [
    field('value', ANY),
    field('dimensions', MAP),
    field('monitored_resource_type', STRING),
    field('monitored_resource_dimensions', MAP),
  ],
  handlerMethod: 'handleMetric',
});
export interface MetricInstance extends InstanceBase {
  readonly value: AttributeValue | undefined;
  readonly dimensions: Dimensions;
  readonly monitoredResourceType: string;
  readonly monitoredResourceDimensions: Dimensions;
}
export interface MetricHandler {
  handleMetric(instances: readonly MetricInstance[], context: CallContext): Promise<void> | void;
}

/** `tracespan`: one span of a distributed trace. */
export const TRACESPAN = defineTemplate({
  name: 'tracespan',
  variety: 'report',
  description: 'a span of a distributed trace',
  fields: [
    field('trace_id', STRING),
    field('span_id', STRING),
    field('parent_span_id', STRING),
    field('span_name', STRING),
    field('start_time', TIMESTAMP),
    field('end_time', TIMESTAMP),
    field('span_tags', MAP),
    field('http_status_code', INT64),
    field('client_span', valueField(ValueType.BOOL)),
    field('rewrite_client_span_id', valueField(ValueType.BOOL)),
    field('source_name', STRING),
    field('source_ip', valueField(ValueType.IP_ADDRESS)),
    field('destination_name', STRING),
    field('destination_ip', valueField(ValueType.IP_ADDRESS)),
    field('request_size', INT64),
    field('request_total_size', INT64),
    field('response_size', INT64),
    field('response_total_size', INT64),
    field('api_protocol', STRING),
  ],
  handlerMethod: 'handleTraceSpan',
});
export interface TraceSpanInstance extends InstanceBase {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly spanName: string;
  readonly startTime: Timestamp | undefined;
  readonly endTime: Timestamp | undefined;
  readonly spanTags: Dimensions;
  readonly httpStatusCode: bigint;
  readonly clientSpan: boolean;
  readonly rewriteClientSpanId: boolean;
  readonly sourceName: string;
  readonly sourceIp: IpAddress | undefined;
  readonly destinationName: string;
  readonly destinationIp: IpAddress | undefined;
  readonly requestSize: bigint;
  readonly requestTotalSize: bigint;
  readonly responseSize: bigint;
  readonly responseTotalSize: bigint;
  readonly apiProtocol: string;
}
export interface TraceSpanHandler {
  handleTraceSpan(instances: readonly TraceSpanInstance[], context: CallContext): Promise<void> | void;
}

/** `edge`: one observed call between two workloads, for service graphs. */
export const EDGE = defineTemplate({
  name: 'edge',
  variety: 'report',
  description: 'a call from one workload to another, for service graphs',
  fields: [
    field('timestamp', TIMESTAMP),
    field('source_workload_namespace', STRING),
    field('source_workload_name', STRING),
    field('source_owner', STRING),
    field('source_uid', STRING),
    field('destination_workload_namespace', STRING),
    field('destination_workload_name', STRING),
    field('destination_owner', STRING),
    field('destination_uid', STRING),
    field('destination_service_namespace', STRING),
    field('destination_service_name', STRING),
    field('context_protocol', STRING),
    field('api_protocol', STRING),
  ],
  handlerMethod: 'handleEdge',
});
export interface EdgeInstance extends InstanceBase {
  readonly timestamp: Timestamp | undefined;
  readonly sourceWorkloadNamespace: string;
  readonly sourceWorkloadName: string;
  readonly sourceOwner: string;
  readonly sourceUid: string;
  readonly destinationWorkloadNamespace: string;
  readonly destinationWorkloadName: string;
  readonly destinationOwner: string;
  readonly destinationUid: string;
  readonly destinationServiceNamespace: string;
  readonly destinationServiceName: string;
  readonly contextProtocol: string;
  readonly apiProtocol: string;
}
export interface EdgeHandler {
  handleEdge(instances: readonly EdgeInstance[], context: CallContext): Promise<void> | void;
}
