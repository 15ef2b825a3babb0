/** Why a stdio handler refused a call. In every case, none of the call's records were accepted. */
export type StdioErrorCode =
  /** The handler is closed (or closing); build a new one. */
  | 'CLOSED'
  /** Records held (buffered and waiting) are at the hard limit: the caller is not waiting for room. */
  | 'OVERLOADED'
  /** The call's deadline passed while it waited for room in the buffer. */
  | 'DEADLINE'
  /** The output can never be written again (its stream was destroyed or failed). */
  | 'OUTPUT_BROKEN';

/** A call the stdio handler refused; `code` is stable, the message says why and what to do. */
export class StdioError extends Error {
  override readonly name = 'StdioError';

  constructor(
    readonly code: StdioErrorCode,
    message: string,
  ) {
    super(message);
  }
}
