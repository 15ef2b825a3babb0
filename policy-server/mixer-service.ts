/**
 * The Mixer front door: `istio.mixer.v1.Mixer` Check and Report, wire-compatible with
 * Istio's Mixer. Requests reach the handlers as raw bytes and are decoded straight into
 * attribute bags by the attribute codec (no intermediate message objects); the dispatcher
 * of the configuration serving at that moment decides; Check responses are written by
 * check-response-encoder.ts, Report's with the generated protobuf code. This file only
 * translates: wire to bags, outcomes to wire.
 */
import type { handleUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { decodeCheckRequest, decodeReportRequest, encodeReferencedAttributes } from '../attributes';
import { mixer } from '../proto';
import type { Duration } from '../proto';
import { StatusCode } from '../templates';
import { encodeCheckResponse } from './check-response-encoder';
import type { CheckOutcome, HeaderOperation } from './dispatcher';
import { toServiceError } from './grpc-status';
import type { PolicyServerLogger } from './logger';
import type { PolicyRuntime } from './policy-runtime';

/**
 * How long a proxy may reuse a Check result no rule decided: 60 s, Mixer's
 * `defaultValidDuration` (mixer/pkg/runtime/dispatcher/dispatcher.go), also the validity of
 * quotas no instance serves.
 */
export const DEFAULT_VALID_DURATION_MS = 60_000;

/** How many requests a proxy may answer from such a result: 10000, Mixer's `defaultValidUseCount`. */
export const DEFAULT_VALID_USE_COUNT = 10_000;

/** A unary method served on raw request bytes. */
export interface RawUnaryMethod<Response> {
  /** The HTTP/2 path, e.g. `/istio.mixer.v1.Mixer/Check`. */
  readonly path: string;
  /** Passes the request bytes through untouched, for the codec to decode. */
  readonly requestDeserialize: (bytes: Buffer) => Buffer;
  readonly responseSerialize: (response: Response) => Buffer;
  readonly handler: handleUnaryCall<Buffer, Response>;
}

/** The two Mixer methods, ready to register on a gRPC server. */
export interface MixerMethods {
  /** Answers with the response's bytes, encoded by {@link encodeCheckResponse}. */
  readonly check: RawUnaryMethod<Buffer>;
  readonly report: RawUnaryMethod<mixer.ReportResponse>;
}

const passBytesThrough = (bytes: Buffer): Buffer => bytes;

/** Wraps encoded bytes in a Buffer without copying them. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A Duration message of a whole number of milliseconds. */
export function durationFromMillis(ms: number): Duration {
  const whole = Math.max(0, Math.round(ms));
  return { seconds: BigInt(Math.floor(whole / 1000)), nanos: (whole % 1000) * 1_000_000 };
}

const OPERATIONS = {
  REPLACE: mixer.HeaderOperation_Operation.REPLACE,
  REMOVE: mixer.HeaderOperation_Operation.REMOVE,
  APPEND: mixer.HeaderOperation_Operation.APPEND,
} as const;

function headerOperations(ops: readonly HeaderOperation[]): mixer.HeaderOperation[] {
  return ops.map((op) => ({ name: op.name, value: op.value, operation: OPERATIONS[op.operation] }));
}

/**
 * The CheckResponse of an outcome, its references in the request's own dictionary, as
 * generated message objects: for the CLI's JSON, and the reference the hand-written
 * {@link encodeCheckResponse} is tested against.
 */
export function toCheckResponse(outcome: CheckOutcome, globalWordCount: number): mixer.CheckResponse {
  const referencedAttributes = encodeReferencedAttributes(outcome.references, { globalWordCount });
  const hasHeaders =
    outcome.requestHeaderOperations.length > 0 || outcome.responseHeaderOperations.length > 0;
  const quotas: mixer.CheckResponse['quotas'] = {};
  for (const [name, q] of outcome.quotas) {
    quotas[name] = {
      validDuration: durationFromMillis(q.validDurationMs),
      grantedAmount: q.grantedAmount,
      status: { code: q.status.code, message: q.status.message, details: [] },
      referencedAttributes,
    };
  }
  return {
    precondition: {
      status: { code: outcome.status.code, message: outcome.status.message, details: [] },
      validDuration: durationFromMillis(outcome.validDurationMs),
      validUseCount: outcome.validUseCount,
      referencedAttributes,
      routeDirective: hasHeaders
        ? {
            requestHeaderOperations: headerOperations(outcome.requestHeaderOperations),
            responseHeaderOperations: headerOperations(outcome.responseHeaderOperations),
            directResponseCode: 0,
            directResponseBody: '',
          }
        : undefined,
    },
    quotas,
  };
}

/** Answers a Check with its response's bytes; an outcome that cannot be encoded is a fault. */
function answerCheck(
  outcome: CheckOutcome,
  globalWordCount: number,
  callback: sendUnaryData<Buffer>,
  logger: PolicyServerLogger,
): void {
  let bytes: Buffer;
  try {
    bytes = encodeCheckResponse(outcome, globalWordCount);
  } catch (error) {
    callback(toServiceError(error, 'Check', logger));
    return;
  }
  callback(null, bytes);
}

export function createMixerMethods(runtime: PolicyRuntime, logger: PolicyServerLogger): MixerMethods {
  const reportResponse: mixer.ReportResponse = Object.freeze({});
  return {
    check: {
      path: '/istio.mixer.v1.Mixer/Check',
      requestDeserialize: passBytesThrough,
      responseSerialize: passBytesThrough,
      handler: (call, callback) => {
        const active = runtime.current().acquire();
        let globalWordCount;
        let outcome;
        try {
          const request = decodeCheckRequest(call.request, active.dispatcher.config.manifest);
          globalWordCount = request.globalWordCount;
          outcome = active.dispatcher.check(request.attributes, request.quotas, request.deduplicationId);
        } catch (error) {
          active.release();
          callback(toServiceError(error, 'Check', logger));
          return;
        }
        if (outcome instanceof Promise) {
          outcome
            .then(
              (answer) => answerCheck(answer, globalWordCount, callback, logger),
              (error: unknown) => callback(toServiceError(error, 'Check', logger)),
            )
            .finally(() => active.release());
          return;
        }
        // Every handler answered at once: answer in this turn, without a promise.
        active.release();
        answerCheck(outcome, globalWordCount, callback, logger);
      },
    },
    report: {
      path: '/istio.mixer.v1.Mixer/Report',
      requestDeserialize: passBytesThrough,
      responseSerialize: (response) => asBuffer(mixer.ReportResponse.encode(response).finish()),
      handler: (call, callback) => {
        const active = runtime.current().acquire();
        let bags;
        try {
          bags = decodeReportRequest(call.request, active.dispatcher.config.manifest);
        } catch (error) {
          active.release();
          callback(toServiceError(error, 'Report', logger));
          return;
        }
        active.dispatcher
          .report(bags)
          .then(
            (outcome) =>
              outcome.status.code === StatusCode.OK
                ? callback(null, reportResponse)
                : callback({ code: outcome.status.code, details: outcome.status.message }),
            (error: unknown) => callback(toServiceError(error, 'Report', logger)),
          )
          .finally(() => active.release());
      },
    },
  };
}
