/**
 * The Mixer front door: `istio.mixer.v1.Mixer` Check and Report, wire-compatible with
 * Istio's Mixer. Requests reach the handlers as raw bytes and are decoded straight into
 * attribute bags by the attribute codec (no intermediate message objects); responses are
 * encoded with the generated protobuf code.
 *
 * With no rule runtime yet, every precondition passes: Check answers OK with the default
 * validity and grants every quota in full, as Mixer did when no rule applied.
 */
import type { handleUnaryCall } from '@grpc/grpc-js';
import { decodeCheckRequest, decodeReportRequest } from '../attributes';
import type { AttributeFinder, QuotaRequest } from '../attributes';
import { mixer } from '../proto';
import type { Duration } from '../proto';
import { toServiceError } from './grpc-status';
import type { PolicyServerLogger } from './logger';

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

/** What the Mixer methods need; see PolicyServerOptions for defaults and units. */
export interface MixerServiceOptions {
  readonly validDurationMs: number;
  readonly validUseCount: number;
  /** Types the attributes of requests. */
  readonly manifest: AttributeFinder;
  readonly logger: PolicyServerLogger;
}

/** The two Mixer methods, ready to register on a gRPC server. */
export interface MixerMethods {
  readonly check: RawUnaryMethod<mixer.CheckResponse>;
  readonly report: RawUnaryMethod<mixer.ReportResponse>;
}

const passBytesThrough = (bytes: Buffer): Buffer => bytes;

/** Wraps encoded bytes in a Buffer without copying them. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A Duration message of a whole number of milliseconds. */
export function durationFromMillis(ms: number): Duration {
  return { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

export function createMixerMethods(options: MixerServiceOptions): MixerMethods {
  const { manifest, logger } = options;
  const validDuration = Object.freeze(durationFromMillis(options.validDurationMs));
  const ok = Object.freeze({ code: 0, message: '', details: [] });
  // No rule read any attribute, so the decision holds for every request: the proxy may
  // cache it under an empty key.
  const noReferences = Object.freeze({ words: [], attributeMatches: [] });
  const precondition: mixer.CheckResponse_PreconditionResult = Object.freeze({
    status: ok,
    validDuration,
    validUseCount: options.validUseCount,
    referencedAttributes: noReferences,
    routeDirective: undefined,
  });
  const reportResponse: mixer.ReportResponse = Object.freeze({});

  const grantAll = (quotas: ReadonlyMap<string, QuotaRequest>): mixer.CheckResponse['quotas'] => {
    const granted: mixer.CheckResponse['quotas'] = {};
    for (const [name, quota] of quotas) {
      granted[name] = {
        validDuration,
        grantedAmount: quota.amount,
        status: ok,
        referencedAttributes: noReferences,
      };
    }
    return granted;
  };

  return {
    check: {
      path: '/istio.mixer.v1.Mixer/Check',
      requestDeserialize: passBytesThrough,
      responseSerialize: (response) => asBuffer(mixer.CheckResponse.encode(response).finish()),
      handler: (call, callback) => {
        let response: mixer.CheckResponse;
        try {
          const request = decodeCheckRequest(call.request, manifest);
          response = { precondition, quotas: request.quotas.size === 0 ? {} : grantAll(request.quotas) };
        } catch (error) {
          callback(toServiceError(error, 'Check', logger));
          return;
        }
        callback(null, response);
      },
    },
    report: {
      path: '/istio.mixer.v1.Mixer/Report',
      requestDeserialize: passBytesThrough,
      responseSerialize: (response) => asBuffer(mixer.ReportResponse.encode(response).finish()),
      handler: (call, callback) => {
        try {
          // Decoding validates every attribute set; there is nowhere to send them yet.
          decodeReportRequest(call.request, manifest);
        } catch (error) {
          callback(toServiceError(error, 'Report', logger));
          return;
        }
        callback(null, reportResponse);
      },
    },
  };
}
