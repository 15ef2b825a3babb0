import { HandlerFullError } from '../../contract';

/**
 * Why a spool refused an append (a full spool throws SpoolFullError instead). In every
 * case, none of the call's records were accepted.
 */
export type SpoolErrorCode =
  /** The spool is closed (or closing); open a new one. */
  | 'CLOSED'
  /** Writing to the spool's directory failed (disk full, permissions): see the message. */
  | 'WRITE_FAILED';

/** An append the spool refused; `code` is stable, the message says why and what to do. */
export class SpoolError extends Error {
  override readonly name = 'SpoolError';

  constructor(
    readonly code: SpoolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The spool holds its maximum size and its overflow policy is `REFUSE`; none of the call's
 * records were accepted. A HandlerFullError, so the server answers RESOURCE_EXHAUSTED and
 * the proxy keeps the records and sends them again later.
 */
export class SpoolFullError extends HandlerFullError {
  override readonly name = 'SpoolFullError';
  readonly code = 'FULL';
}
