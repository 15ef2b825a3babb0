/**
 * The stdio handler: formats log entries and metrics as lines (record-format.ts) and hands
 * them to a bounded write queue (write-queue.ts) in front of stdout, stderr or a file.
 *
 * handleLogEntry and handleMetric format their records at once, then return undefined when
 * the records were accepted, or a promise that resolves when they are (the buffer was full:
 * see write-queue.ts for the backpressure policy). They throw StdioError when they accept
 * nothing: after close (CLOSED), when the output is broken for good (OUTPUT_BROKEN), when the
 * caller does not wait for room (OVERLOADED). Accepted records are written in call order.
 */
import type { Writable } from 'node:stream';
import type { AdapterEnv, Handler } from '../../contract';
import type {
  CallContext,
  LogEntryHandler,
  LogEntryInstance,
  MetricHandler,
  MetricInstance,
} from '../../../templates';
import {
  DEFAULT_MEGABYTES_BEFORE_ROTATION,
  validateStdioConfig,
  writesToFile,
  type Level,
  type StdioConfig,
} from './config';
import { StdioError } from './errors';
import { FileOutput, type RotationPolicy } from './file-output';
import { RecordFormat, formatMillis, formatTime } from './record-format';
import { StreamOutput, type LineOutput } from './stream-output';
import { WriteQueue, type WriteQueueSettings, type WriteQueueStats } from './write-queue';

/** Options of the handler that are not configuration: for tests and embedding. */
export interface StdioHandlerOptions {
  /**
   * The stream STDOUT or STDERR records go to instead of process.stdout / process.stderr.
   * The handler never ends it. Ignored for FILE and ROTATED_FILE.
   */
  readonly stream?: Writable;
  /** Bytes accepted and not yet written above which calls wait for room. Default 1 MiB. */
  readonly maxBufferedBytes?: number;
  /** Bytes held (buffered plus waiting calls) past which a call is refused. Default 16 MiB. */
  readonly maxPendingBytes?: number;
  /** The largest chunk written at once. Default 64 KiB. */
  readonly maxWriteBytes?: number;
  /** The wait before retrying a failed file write; doubles with each failure. Default 100 ms. */
  readonly minRetryDelayMs?: number;
  /** The longest wait between retries. Default 5000 ms. */
  readonly maxRetryDelayMs?: number;
}

/** What a stdio handler did, as counters (see WriteQueueStats for the queue's). */
export interface StdioStats extends WriteQueueStats {
  /** Records below outputLevel, left out by configuration. */
  readonly filteredRecords: number;
  /** How many times a ROTATED_FILE output was rotated. */
  readonly rotations: number;
}

export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
export const DEFAULT_MAX_PENDING_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_WRITE_BYTES = 64 * 1024;
export const DEFAULT_MIN_RETRY_DELAY_MS = 100;
export const DEFAULT_MAX_RETRY_DELAY_MS = 5000;

const MEBIBYTE = 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;
const LEVEL_RANK: Readonly<Record<Level, number>> = { INFO: 0, WARNING: 1, ERROR: 2 };

export class StdioHandler {
  private closing: Promise<void> | undefined;
  private filteredRecords = 0;
  private readonly severityLevels: ReadonlyMap<string, Level>;
  private readonly minimumRank: number;
  private readonly metricsWritten: boolean;
  private readonly format: RecordFormat;

  /** Use {@link createStdioHandler}. */
  constructor(
    private readonly config: StdioConfig,
    private readonly env: AdapterEnv,
    private readonly output: LineOutput,
    private readonly queue: WriteQueue,
    private readonly label: string,
  ) {
    this.severityLevels = new Map(Object.entries(config.severityLevels));
    this.minimumRank = LEVEL_RANK[config.outputLevel];
    this.metricsWritten = LEVEL_RANK[config.metricLevel] >= this.minimumRank;
    this.format = new RecordFormat(config.outputAsJson);
  }

  /**
   * One line per instance: level (its severity through severityLevels, INFO when not
   * listed), time (its timestamp; the handler's clock when it has none), instance name,
   * then its variables sorted by name.
   */
  handleLogEntry(instances: readonly LogEntryInstance[], context?: CallContext): Promise<void> | undefined {
    this.refuseIfUnusable();
    const lines: string[] = [];
    let bytes = 0;
    let now: string | undefined;
    const format = this.format;
    for (const instance of instances) {
      const level = this.severityLevels.get(instance.severity) ?? 'INFO';
      if (LEVEL_RANK[level] < this.minimumRank) {
        this.filteredRecords++;
        continue;
      }
      const timestamp = instance.timestamp;
      const time =
        timestamp !== undefined
          ? formatTime(timestamp.seconds, timestamp.nanos)
          : (now ??= formatMillis(this.env.now()));
      let line = format.head(level, time, instance.name);
      let fields = 0;
      const variables = instance.variables;
      for (const key of [...variables.keys()].sort()) {
        const value = variables.get(key);
        if (value !== undefined) line += format.field(fields++, key, value);
      }
      line += format.tail(fields);
      lines.push(line);
      bytes += Buffer.byteLength(line);
    }
    return lines.length === 0 ? undefined : this.queue.enqueue(lines, bytes, context?.signal);
  }

  /**
   * One line per instance: level (metricLevel), time (the handler's clock), instance name,
   * `value`, then its dimensions sorted by name.
   */
  handleMetric(instances: readonly MetricInstance[], context?: CallContext): Promise<void> | undefined {
    this.refuseIfUnusable();
    if (!this.metricsWritten) {
      this.filteredRecords += instances.length;
      return undefined;
    }
    if (instances.length === 0) return undefined;
    const lines: string[] = [];
    let bytes = 0;
    const time = formatMillis(this.env.now());
    const level = this.config.metricLevel;
    const format = this.format;
    for (const instance of instances) {
      let line = format.head(level, time, instance.name) + format.field(0, 'value', instance.value);
      let fields = 1;
      const dimensions = instance.dimensions;
      for (const key of [...dimensions.keys()].sort()) {
        line += format.field(fields++, key, dimensions.get(key));
      }
      line += format.tail(fields);
      lines.push(line);
      bytes += Buffer.byteLength(line);
    }
    return this.queue.enqueue(lines, bytes, context?.signal);
  }

  /**
   * Writes everything accepted (including calls still waiting for room), then releases the
   * output: a file is synced and closed; a stream is left open. Idempotent: every call
   * returns the same promise. Rejects only if closing the file fails.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  stats(): StdioStats {
    return {
      ...this.queue.stats(),
      filteredRecords: this.filteredRecords,
      rotations: this.output instanceof FileOutput ? this.output.rotations : 0,
    };
  }

  private async shutDown(): Promise<void> {
    await this.queue.drain();
    await this.output.close();
    const { failedRecords } = this.queue.stats();
    if (failedRecords > 0) {
      this.env.logger.error(
        `${this.label}: closed; ${failedRecords} accepted records could not be written to ${this.output.description}`,
      );
    }
  }

  private refuseIfUnusable(): void {
    if (this.closing !== undefined) {
      throw new StdioError('CLOSED', `${this.label}: the handler is closed and accepts no more records`);
    }
    const broken = this.output.brokenReason();
    if (broken !== undefined) {
      throw new StdioError(
        'OUTPUT_BROKEN',
        `${this.label}: cannot write to ${this.output.description} any more (${broken}); ` +
          'no records were accepted. Fix the output and reload the configuration to build a new handler.',
      );
    }
  }
}

/**
 * Builds a stdio handler: opens its output (for FILE and ROTATED_FILE, the file, for
 * appending; its folder must exist) and starts accepting records.
 * @throws Error, with the handler's name, when the configuration is invalid or the file cannot be opened
 */
export async function createStdioHandler(
  config: StdioConfig,
  env: AdapterEnv,
  options: StdioHandlerOptions = {},
): Promise<StdioHandler> {
  const label = `stdio/${env.handlerName}`;
  const problems = validateStdioConfig(config);
  if (problems.length > 0) {
    throw new Error(`${label}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`);
  }
  const settings = queueSettings(options, label);
  const output = await openOutput(config, env, options, label);
  const handler = new StdioHandler(config, env, output, new WriteQueue(output, settings, env, label), label);
  return handler satisfies LogEntryHandler & MetricHandler & Handler;
}

function openOutput(
  config: StdioConfig,
  env: AdapterEnv,
  options: StdioHandlerOptions,
  label: string,
): Promise<LineOutput> | LineOutput {
  if (!writesToFile(config)) {
    const standard = config.logStream === 'STDERR' ? process.stderr : process.stdout;
    const name = options.stream !== undefined ? 'the given stream' : config.logStream.toLowerCase();
    return new StreamOutput(options.stream ?? standard, name);
  }
  const rotation: RotationPolicy | undefined =
    config.logStream === 'ROTATED_FILE'
      ? {
          maxFileBytes: (config.maxMegabytesBeforeRotation || DEFAULT_MEGABYTES_BEFORE_ROTATION) * MEBIBYTE,
          maxBackupAgeMs: config.maxDaysBeforeRotation * DAY_MS,
          maxBackups: config.maxRotatedFiles,
        }
      : undefined;
  return FileOutput.open(config.outputPath!, rotation, { now: () => env.now(), logger: env.logger, label });
}

function queueSettings(options: StdioHandlerOptions, label: string): WriteQueueSettings {
  const limits = {
    maxBufferedBytes: options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
    maxPendingBytes: options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES,
    maxWriteBytes: options.maxWriteBytes ?? DEFAULT_MAX_WRITE_BYTES,
    minRetryDelayMs: options.minRetryDelayMs ?? DEFAULT_MIN_RETRY_DELAY_MS,
    maxRetryDelayMs: options.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS,
  };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`${label}: option ${name} must be a positive integer, got ${value}`);
    }
  }
  if (limits.maxRetryDelayMs < limits.minRetryDelayMs) {
    throw new RangeError(
      `${label}: option maxRetryDelayMs (${limits.maxRetryDelayMs}) must be >= minRetryDelayMs (${limits.minRetryDelayMs})`,
    );
  }
  if (limits.maxPendingBytes < limits.maxBufferedBytes) {
    throw new RangeError(
      `${label}: option maxPendingBytes (${limits.maxPendingBytes}) must be >= maxBufferedBytes (${limits.maxBufferedBytes})`,
    );
  }
  return limits;
}
