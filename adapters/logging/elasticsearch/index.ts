/**
 * The `elasticsearch` export adapter: audit records (adapters/logging/audit) bulk-indexed
 * into dated indices, through the durable spool, with an index template of the audit
 * schema's mappings and a dead-letter file. README.md has a complete configuration.
 */
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
