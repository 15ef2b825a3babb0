/**
 * The `kafka` adapter: audit-log export to Apache Kafka. Each logentry (metric, tracespan)
 * instance becomes an audit record (adapters/logging/audit), is appended to the handler's durable spool before
 * the Report is answered, and is produced to a topic (fixed or chosen per record from its
 * variables) with the idempotent producer and `acks: all`. See README.md for a complete
 * configuration and the delivery guarantee.
 */
import { defineAdapter } from '../../contract';
import type { ConfigProblem } from '../../schema';
import { s, type SchemaType } from '../../schema';
import { EXPORT_COMMON_PARAMS, EXPORT_TEMPLATES, ExportHandler, checkExportParams } from '../export';
import { KAFKA_SINK_PARAMS, checkKafkaSinkParams } from './config';
import { KafkaSink } from './kafka-sink';

export const KAFKA_PARAMS = s.object({ ...KAFKA_SINK_PARAMS, ...EXPORT_COMMON_PARAMS });
export type KafkaParams = SchemaType<typeof KAFKA_PARAMS>;

export const KAFKA = defineAdapter<KafkaParams>({
  name: 'kafka',
  description:
    'Exports log entries, metrics and trace spans as audit records to Apache Kafka, through a durable spool',
  templates: [...EXPORT_TEMPLATES],
  config: KAFKA_PARAMS,
  validate: (params): ConfigProblem[] => [...checkKafkaSinkParams(params), ...checkExportParams(params)],
  // An ExportHandler: it implements the logentry, metric and tracespan handler interfaces.
  build: (params, env) => ExportHandler.create(params, new KafkaSink(params, env), env),
});

export {
  DEFAULT_MAX_REQUEST_BYTES,
  KAFKA_COMPRESSIONS,
  KAFKA_SINK_PARAMS,
  KAFKA_SINK_SCHEMA,
  RESERVED_HEADERS,
  SASL_MECHANISMS,
  checkKafkaSinkParams,
} from './config';
export type { KafkaCompression, KafkaSinkParams, SaslMechanism } from './config';
export { KafkaSink, TopicMissingError } from './kafka-sink';
export type { KafkaSinkEnvironment, KafkaSinkStats } from './kafka-sink';
export { parseRouteTemplate } from './route-template';
export type { RouteTemplate } from './route-template';
