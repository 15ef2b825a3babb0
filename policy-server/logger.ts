/** Where the policy server writes what an operator should see. */
export interface PolicyServerLogger {
  /** A fault: an unexpected exception, with its stack. Called once per fault. */
  error(message: string): void;
}

/** The default logger: one line (or one stack) per message on stderr. */
export const STDERR_LOGGER: PolicyServerLogger = Object.freeze({
  error(message: string): void {
    process.stderr.write(`${message}\n`);
  },
});

/** The logger adapters get: warnings and information go to the same place as errors. */
export function adapterLogger(logger: PolicyServerLogger): {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
} {
  return Object.freeze({
    info: (message: string) => logger.error(message),
    warn: (message: string) => logger.error(message),
    error: (message: string) => logger.error(message),
  });
}
