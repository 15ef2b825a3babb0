/**
 * The one place where exceptions become gRPC statuses. Handlers throw (or catch and pass
 * here) and never choose a status code themselves, so every front-door method answers
 * the same fault the same way.
 */
import { AttributeDecodeError } from '../attributes';
import { StatusCode } from '../templates';
import type { GrpcFailure } from './grpc-transport';
import type { PolicyServerLogger } from './logger';

/**
 * Istio's proxies read INVALID_ARGUMENT with a message starting with this as "the server
 * does not know my dictionary", cut their global word count back to the first 111 words
 * and try again. Only errors about word indices and word counts carry it.
 */
export const INVALID_DICTIONARY_PREFIX = 'Request could not be processed due to invalid attributes: ';

/**
 * Maps an exception raised while serving `method` (e.g. `Check`) to the status the client
 * gets:
 * - AttributeDecodeError (the request's bytes or attributes are malformed) → INVALID_ARGUMENT
 *   with the decoder's message, behind {@link INVALID_DICTIONARY_PREFIX} when a word index or
 *   the word count is at fault; the client's fault, so not logged.
 * - anything else → INTERNAL, logged once here with its stack; the client sees the message.
 */
export function toGrpcFailure(error: unknown, method: string, logger: PolicyServerLogger): GrpcFailure {
  if (error instanceof AttributeDecodeError) {
    const dictionary = error.code === 'WORD_INDEX_OUT_OF_RANGE' || error.code === 'DICTIONARY_MISMATCH';
    return {
      code: StatusCode.INVALID_ARGUMENT,
      message: (dictionary ? INVALID_DICTIONARY_PREFIX : '') + error.message,
    };
  }
  const detail = error instanceof Error ? error.message : String(error);
  const stack = error instanceof Error && error.stack !== undefined ? error.stack : detail;
  logger.error(`switchboard: ${method} failed with an unexpected error: ${stack}`);
  return { code: StatusCode.INTERNAL, message: `internal error in ${method}: ${detail}` };
}
