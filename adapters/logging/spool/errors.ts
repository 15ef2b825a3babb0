/** Why a spool refused an append. In every case, none of the call's records were accepted. */
export type SpoolErrorCode =
  /** The spool is closed (or closing); open a new one. */
  | 'CLOSED'
  /**
   * The spool holds its maximum size and its overflow policy is `REFUSE`: the caller should
   * answer RESOURCE_EXHAUSTED so the proxy keeps the records and sends them again later.
   */
  | 'FULL'
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
