/**
 * What the export adapters (kafka, elasticsearch) share: the handler that turns logentry
 * instances into audit records and spools them (export-handler.ts), the sink each adapter
 * provides, the common parameters, and the spool shared across a reload (shared-spool.ts).
 */
export { EXPORT_TEMPLATES, ExportHandler } from './export-handler';
export type { ExportSink, ExportedInstance } from './export-handler';
export {
  EXPORT_COMMON_PARAMS,
  checkExportParams,
  exportSenderSettings,
  exportSpoolSettings,
} from './export-params';
export type { ExportCommonParams } from './export-params';
export { recordId } from './record-id';
export { leaseSpool } from './shared-spool';
export type { SpoolLease, SpoolUser } from './shared-spool';
export { decodeSpooledRecord, encodeSpooledRecord } from './spooled-record';
export type { SpooledRecord } from './spooled-record';
