/**
 * The `elasticsearch` export adapter: logentry, metric and tracespan instances as audit records
 * (adapters/logging/audit), accepted into the handler's durable spool and bulk-indexed into
 * dated indices, with an index template of the audit schema's mappings and a dead-letter
 * file for what Elasticsearch refuses for good. README.md has a complete configuration and
 * the delivery guarantee.
 */
import type { LogEntryHandler, MetricHandler, TraceSpanHandler } from '../../../templates';
import { defineAdapter, type Handler } from '../../contract';
import { s, type SchemaType } from '../../schema';
import { EXPORT_COMMON_PARAMS, EXPORT_TEMPLATES, ExportHandler, checkExportParams } from '../export';
import { ELASTICSEARCH_SINK_PARAMS, checkElasticsearchParams } from './config';
import { ElasticsearchSink } from './elasticsearch-sink';

/** The adapter's parameters: the sink's own, and those every export adapter has. */
export const ELASTICSEARCH_PARAMS = s.object({ ...ELASTICSEARCH_SINK_PARAMS, ...EXPORT_COMMON_PARAMS });
export type ElasticsearchParams = SchemaType<typeof ELASTICSEARCH_PARAMS>;

export const ELASTICSEARCH = defineAdapter<ElasticsearchParams>({
  name: 'elasticsearch',
  description:
    'Exports log entries, metrics and spans as audit records to Elasticsearch: durable spool, bulk indexing into dated indices with an index template, 429 retries, dead-letter file',
  templates: EXPORT_TEMPLATES,
  config: ELASTICSEARCH_PARAMS,
  validate: (params) => [...checkElasticsearchParams(params), ...checkExportParams(params)],
  build: async (params, env) =>
    (await ExportHandler.create(params, new ElasticsearchSink(params, env), env)) satisfies LogEntryHandler &
      MetricHandler &
      TraceSpanHandler &
      Handler,
});

export {
  DEFAULT_INDEX,
  ELASTICSEARCH_SINK_PARAMS,
  ELASTICSEARCH_SINK_SCHEMA,
  checkElasticsearchParams,
  defaultTemplateName,
} from './config';
export type { ElasticsearchSinkParams } from './config';
export { DEAD_LETTER_FILE_NAME, ElasticsearchConfigError, ElasticsearchSink } from './elasticsearch-sink';
export type { BulkRecord, ElasticsearchSinkStats, SinkEnvironment } from './elasticsearch-sink';
export { DeadLetterFile } from './dead-letter-file';
export type { DeadLetter } from './dead-letter-file';
export { IndexPattern } from './index-pattern';
export { AUDIT_MAPPINGS, indexTemplateBody, templateVersion } from './index-template';
export type { IndexTemplateSettings } from './index-template';
