/**
 * The stdio adapter's parameters, as Mixer's `adapter.stdio.config.Params` (istio/istio
 * `mixer/adapter/stdio/config/config.proto`), with Mixer's defaults (its adapter inventory's
 * `DefaultConfig`). Field names are Mixer's JSON names; the proto's snake_case names are
 * accepted too, and enumeration values may be given by name or by number, as Mixer's
 * configuration loader accepted them (Istio's published samples write `warning: 1`).
 */
import type { ConfigProblem, Schema } from '../../schema';
import { s, type SchemaType } from '../../schema';

/** Where records go. */
export const LOG_STREAMS = ['STDOUT', 'STDERR', 'FILE', 'ROTATED_FILE'] as const;
export type LogStream = (typeof LOG_STREAMS)[number];

/** How important a record is; a record below `outputLevel` is not written. */
export const LEVELS = ['INFO', 'WARNING', 'ERROR'] as const;
export type Level = (typeof LEVELS)[number];

/** Mixer's default mapping from a log entry's severity text to a level. */
export const DEFAULT_SEVERITY_LEVELS: Readonly<Record<string, Level>> = Object.freeze({
  INFORMATIONAL: 'INFO',
  informational: 'INFO',
  INFO: 'INFO',
  info: 'INFO',
  WARNING: 'WARNING',
  warning: 'WARNING',
  WARN: 'WARNING',
  warn: 'WARNING',
  ERROR: 'ERROR',
  error: 'ERROR',
  ERR: 'ERROR',
  err: 'ERROR',
  FATAL: 'ERROR',
  fatal: 'ERROR',
});

/** `maxMegabytesBeforeRotation` when it is absent or 0. */
export const DEFAULT_MEGABYTES_BEFORE_ROTATION = 100;

const INT32_MAX = 2_147_483_647;

export const STDIO_CONFIG = s.object(
  {
    /** Default STDOUT, as Mixer's inventory and enumeration have it (a comment in its proto says STDERR). */
    logStream: protoEnumeration(LOG_STREAMS).default('STDOUT'),
    /** Severity text → level. Given, it replaces the default map whole, as in Mixer. Unknown severities are INFO. */
    severityLevels: s.record(protoEnumeration(LEVELS)).default(DEFAULT_SEVERITY_LEVELS),
    /** The level every metric record gets. */
    metricLevel: protoEnumeration(LEVELS).default('INFO'),
    /** JSON lines (true), or Mixer's console form: `time<TAB>level<TAB>instance<TAB>{fields}`. */
    outputAsJson: s.boolean().default(true),
    /** Records below this level are not written. */
    outputLevel: protoEnumeration(LEVELS).default('INFO'),
    /** The file FILE and ROTATED_FILE append to; its folder must exist. */
    outputPath: s.string().optionalField(),
    /** ROTATED_FILE: size in MiB at which the file is renamed to a backup; 0 means 100. */
    maxMegabytesBeforeRotation: s
      .integer({ min: 0, max: INT32_MAX })
      .default(DEFAULT_MEGABYTES_BEFORE_ROTATION),
    /** ROTATED_FILE: backups older than this many days (by the time in their name) are removed; 0 keeps them. */
    maxDaysBeforeRotation: s.integer({ min: 0, max: INT32_MAX }).default(30),
    /** ROTATED_FILE: at most this many backups are kept, the newest; 0 keeps them all. */
    maxRotatedFiles: s.integer({ min: 0, max: INT32_MAX }).default(1000),
  },
  {
    aliases: {
      log_stream: 'logStream',
      severity_levels: 'severityLevels',
      metric_level: 'metricLevel',
      output_as_json: 'outputAsJson',
      output_level: 'outputLevel',
      output_path: 'outputPath',
      max_megabytes_before_rotation: 'maxMegabytesBeforeRotation',
      max_days_before_rotation: 'maxDaysBeforeRotation',
      max_rotated_files: 'maxRotatedFiles',
      maxBackupsBeforeRemoval: 'maxRotatedFiles',
    },
  },
);

/** The parsed, defaulted and frozen parameters. */
export type StdioConfig = SchemaType<typeof STDIO_CONFIG>;

/** Whether records go to a file this handler opens. */
export function writesToFile(config: StdioConfig): boolean {
  return config.logStream === 'FILE' || config.logStream === 'ROTATED_FILE';
}

/**
 * Checks the relations between parameters, without I/O. Whether the folder exists and
 * the file can be opened is found when the handler is built.
 */
export function validateStdioConfig(config: StdioConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const outputPath = config.outputPath ?? '';
  if (writesToFile(config)) {
    if (outputPath === '') {
      problems.push({
        path: 'outputPath',
        message: `is required when logStream is ${config.logStream}: give the file to append to, such as /var/log/switchboard/access.log`,
      });
    } else if (outputPath.endsWith('/')) {
      problems.push({
        path: 'outputPath',
        message: `names a folder (${JSON.stringify(outputPath)}): give a file in it, such as ${outputPath}access.log`,
      });
    } else if (outputPath.includes('\0')) {
      problems.push({ path: 'outputPath', message: 'contains a NUL character: give a plain file path' });
    }
  } else if (outputPath !== '') {
    problems.push({
      path: 'outputPath',
      message: `applies only when logStream is FILE or ROTATED_FILE, and logStream is ${config.logStream}: remove outputPath, or set logStream to FILE`,
    });
  }
  return problems;
}

/**
 * A protobuf enumeration: one of `names`, or its number (the index in `names`), as Mixer's
 * JSON configuration decoding accepted both.
 */
function protoEnumeration<const V extends string>(names: readonly V[]): Schema<V> {
  const expected = `one of ${names.join(', ')} (or its number, 0 to ${names.length - 1})`;
  const make = (optional: boolean, defaultValue: V | undefined): Schema<V> => ({
    description: expected,
    optional,
    defaultValue,
    parse(input: unknown, path: string, problems: ConfigProblem[]): V {
      if (typeof input === 'string' && (names as readonly string[]).includes(input)) return input as V;
      if (typeof input === 'number' && Number.isInteger(input) && input >= 0 && input < names.length) {
        return names[input]!;
      }
      problems.push({ path, message: `must be ${expected}, got ${describe(input)}` });
      return names[0]!;
    },
    default: (value: V): Schema<V> => make(true, value),
    optionalField: (): Schema<V | undefined> => make(true, undefined) as Schema<V | undefined>,
  });
  return make(false, undefined);
}

function describe(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  if (typeof input === 'string') return JSON.stringify(input);
  return String(input);
}
