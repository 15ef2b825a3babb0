/**
 * The Mixer front door: `istio.mixer.v1.Mixer` Check and Report, wire-compatible with
 * Istio's Mixer. Requests reach the handlers as raw bytes and are decoded straight into
 * attribute bags by the attribute codec (no intermediate message objects); the dispatcher
 * of the configuration serving at that moment decides; Check responses are written by
 * check-response-encoder.ts, Report's are empty. This file only translates: wire to bags,
 * outcomes to wire; the transport (grpc-transport.ts) frames the bytes.
 */
import { decodeCheckRequest, decodeReportRecords, encodeReferencedAttributes } from '../attributes';
import { mixer } from '../proto';
import type { Duration } from '../proto';
import { StatusCode } from '../templates';
import { encodeCheckResponse } from './check-response-encoder';
import type { CheckOutcome, HeaderOperation, ReportOutcome } from './dispatcher';
import { toGrpcFailure } from './grpc-status';
import { responseHeaders, type GrpcReply, type UnaryAnswer, type UnaryHandler } from './grpc-transport';
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

/** The two Mixer methods, by their HTTP/2 paths, ready for the gRPC transport. */
export interface MixerMethods {
  /** Answers with the response's bytes, encoded by {@link encodeCheckResponse}. */
  readonly check: UnaryHandler;
  readonly report: UnaryHandler;
}

export const CHECK_PATH = '/istio.mixer.v1.Mixer/Check';
export const REPORT_PATH = '/istio.mixer.v1.Mixer/Report';

/** An empty ReportResponse: no fields, so no bytes. */
const REPORT_RESPONSE = new Uint8Array(0);

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

/**
 * The response header (gRPC metadata) naming the configuration generation that decided a
 * Check. Beyond Mixer, and invisible to its clients: a proxy that reads it drops cached
 * decisions of older generations, so a policy change applies at the next request. The wire
 * messages stay Mixer's.
 */
export const GENERATION_HEADER = 'x-switchboard-config-generation';

/**
 * Report request metadata: the client's id of a Report, the same when it sends that Report
 * again after a lost answer. Handlers get it (as CallContext.deduplicationId) to give the
 * records they keep stable ids, so a resend does not make a second audit document. Optional.
 */
export const REPORT_ID_HEADER = 'x-switchboard-report-id';
const REPORT_ID = /^(?:[A-Za-z0-9_-]{1,128})?$/;

/** Response headers per generation, made once each (the last one is kept). */
class GenerationHeaders {
  private generation = -1;
  private headers: GrpcReply['headers'] = {};

  of(generation: number): GrpcReply['headers'] {
    if (generation !== this.generation) {
      this.headers = responseHeaders({ [GENERATION_HEADER]: String(generation) });
      this.generation = generation;
    }
    return this.headers;
  }
}

/** A Check's response bytes; an outcome that cannot be encoded is a fault (INTERNAL). */
function answerCheck(
  outcome: CheckOutcome,
  globalWordCount: number,
  headers: GrpcReply['headers'],
  logger: PolicyServerLogger,
): UnaryAnswer {
  try {
    return { message: encodeCheckResponse(outcome, globalWordCount), headers };
  } catch (error) {
    return toGrpcFailure(error, 'Check', logger);
  }
}

function answerReport(outcome: ReportOutcome, headers: GrpcReply['headers']): UnaryAnswer {
  return outcome.status.code === StatusCode.OK
    ? { message: REPORT_RESPONSE, headers }
    : { code: outcome.status.code, message: outcome.status.message };
}

export function createMixerMethods(runtime: PolicyRuntime, logger: PolicyServerLogger): MixerMethods {
  const generationHeaders = new GenerationHeaders();
  return {
    check: (bytes) => {
      const active = runtime.current().acquire();
      let globalWordCount;
      let outcome;
      try {
        const request = decodeCheckRequest(bytes, active.dispatcher.config.manifest);
        globalWordCount = request.globalWordCount;
        outcome = active.dispatcher.check(request.attributes, request.quotas, request.deduplicationId);
      } catch (error) {
        active.release();
        return toGrpcFailure(error, 'Check', logger);
      }
      const headers = generationHeaders.of(active.generation);
      if (outcome instanceof Promise) {
        return outcome
          .then(
            (answer) => answerCheck(answer, globalWordCount, headers, logger),
            (error: unknown) => toGrpcFailure(error, 'Check', logger),
          )
          .finally(() => active.release());
      }
      // Every handler answered at once: answer in this turn, without a promise.
      active.release();
      return answerCheck(outcome, globalWordCount, headers, logger);
    },
    report: (bytes, metadata) => {
      const reportId = metadata[REPORT_ID_HEADER] ?? '';
      if (typeof reportId !== 'string' || !REPORT_ID.test(reportId)) {
        return {
          code: StatusCode.INVALID_ARGUMENT,
          message: `${REPORT_ID_HEADER} must be 1 to 128 letters, digits, '-' or '_' (got ${JSON.stringify(reportId).slice(0, 80)})`,
        };
      }
      const active = runtime.current().acquire();
      const dispatcher = active.dispatcher;
      let outcome;
      try {
        const collector = dispatcher.startReport();
        // No report rule: the records would go nowhere, so they are only checked (a malformed
        // Report is refused as ever), not applied to bags or routed. Configuration decides:
        // with a report rule, every record is routed.
        decodeReportRecords(
          bytes,
          dispatcher.config.manifest,
          dispatcher.hasReportRules ? collector : undefined,
        );
        outcome = collector.finish(reportId);
      } catch (error) {
        active.release();
        return toGrpcFailure(error, 'Report', logger);
      }
      if (outcome instanceof Promise) {
        return outcome
          .then(
            (answer) => answerReport(answer, generationHeaders.of(active.generation)),
            (error: unknown) => toGrpcFailure(error, 'Report', logger),
          )
          .finally(() => active.release());
      }
      // Every handler answered at once (or there were none): answer in this turn.
      active.release();
      return answerReport(outcome, generationHeaders.of(active.generation));
    },
  };
}
