/** A command line the CLI cannot run: it prints the one-line message and the usage, and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';

  constructor(
    message: string,
    /** The usage text of the command the user was calling. */
    readonly usage: string,
  ) {
    super(message);
  }
}
