/**
 * Configuration errors. Each names the file and line it is about and says what is wrong
 * and how to fix it; a load that finds any of them fails as a whole and reports them all.
 */

/** One problem found in the configuration. */
export interface ConfigError {
  /** The file (or, for directory problems, the directory) the problem is in, as displayed. */
  readonly file: string;
  /** 1-based line of the problem; undefined when it concerns a whole file or directory. */
  readonly line: number | undefined;
  /** Where in the resource, such as `spec.params.quotas[0].validDuration`; absent for whole-resource problems. */
  readonly path?: string;
  /** What is wrong and the fix, e.g. `resource has no kind; set kind, e.g. kind: rule`. */
  readonly message: string;
}

/** `file:line: path: message`, leaving out the line or the path when there is none. */
export function formatConfigError(error: ConfigError): string {
  const where = error.line === undefined ? error.file : `${error.file}:${error.line}`;
  return error.path === undefined
    ? `${where}: ${error.message}`
    : `${where}: ${error.path}: ${error.message}`;
}

/**
 * Thrown when a configuration does not load. `errors` lists every problem of every file,
 * in file order and then line order; the message is a summary line followed by one line
 * per problem.
 */
export class ConfigLoadError extends Error {
  override readonly name = 'ConfigLoadError';
  readonly code = 'CONFIG_INVALID';

  constructor(
    /** The configuration directory, as given. */
    readonly configDir: string,
    readonly errors: readonly ConfigError[],
  ) {
    super(
      [
        `configuration in ${configDir} does not load (${errors.length} ${errors.length === 1 ? 'error' : 'errors'})`,
        ...errors.map(formatConfigError),
      ].join('\n'),
    );
  }
}
