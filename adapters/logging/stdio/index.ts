/**
 * The `stdio` adapter: log entries and metrics as JSON lines (or Mixer's console lines) to
 * stdout, stderr, a file, or a file rotated by size. Switchboard's embedded default for
 * access and audit logs. See README.md for its parameters and an example.
 */
import { defineAdapter } from '../../contract';
import { LOGENTRY, METRIC } from '../../../templates';
import { STDIO_CONFIG, validateStdioConfig, type StdioConfig } from './config';
import { createStdioHandler } from './handler';

export const STDIO = defineAdapter<StdioConfig>({
  name: 'stdio',
  description: 'Writes log entries and metrics as JSON lines to stdout, stderr or a (rotated) file',
  templates: [LOGENTRY.name, METRIC.name],
  config: STDIO_CONFIG,
  validate: validateStdioConfig,
  build: (config, env) => createStdioHandler(config, env),
});

export { STDIO_CONFIG, DEFAULT_SEVERITY_LEVELS, LEVELS, LOG_STREAMS, validateStdioConfig } from './config';
export type { Level, LogStream, StdioConfig } from './config';
export {
  createStdioHandler,
  StdioHandler,
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_MAX_PENDING_BYTES,
  DEFAULT_MAX_WRITE_BYTES,
} from './handler';
export type { StdioHandlerOptions, StdioStats } from './handler';
export { StdioError } from './errors';
export type { StdioErrorCode } from './errors';
// The bounded line queue and the file output, for other adapters that write JSON lines (opa's decision log).
export { WriteQueue } from './write-queue';
export type { WriteQueueSettings, WriteQueueStats } from './write-queue';
export { FileOutput } from './file-output';
