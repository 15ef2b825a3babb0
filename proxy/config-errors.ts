/**
 * Errors of a proxy configuration file. Each names the file and line it is about, the path
 * of the value inside the file (`routes[2].match.headers[0]`), what is wrong and how to fix
 * it; a file that has any of them does not load, and every one is reported.
 */
import type { ConfigError } from '../policy-server';

/** One problem of a proxy configuration, located: the same shape as the policy server's. */
export type ProxyConfigError = ConfigError;

/** `file:line: path: message`, leaving out the line or the path when there is none. */
export function formatProxyConfigError(error: ProxyConfigError): string {
  const where = error.line === undefined ? error.file : `${error.file}:${error.line}`;
  return error.path === undefined || error.path === ''
    ? `${where}: ${error.message}`
    : `${where}: ${error.path}: ${error.message}`;
}

/**
 * Thrown when a proxy configuration does not load. `errors` lists every problem in line
 * order; the message is a summary line followed by one line per problem.
 */
export class ProxyConfigLoadError extends Error {
  override readonly name = 'ProxyConfigLoadError';
  readonly code = 'PROXY_CONFIG_INVALID';

  constructor(
    /** The configuration file, as given. */
    readonly file: string,
    readonly errors: readonly ProxyConfigError[],
  ) {
    super(
      [
        `proxy configuration ${file} does not load (${errors.length} ${errors.length === 1 ? 'error' : 'errors'})`,
        ...errors.map(formatProxyConfigError),
      ].join('\n'),
    );
  }
}
