/**
 * The standard gRPC health service (`grpc.health.v1.Health`), so that load balancers and
 * Kubernetes probes can ask whether the policy server is up.
 *
 * Known services are the whole server (`""`) and `istio.mixer.v1.Mixer`. `Check` answers
 * SERVING once the server has started and NOT_SERVING while it shuts down; for any other
 * service name it fails with NOT_FOUND, as the health protocol asks. `Watch` streams: it
 * sends the current status at once (SERVICE_UNKNOWN for an unknown service), then every
 * change; when the server shuts down it sends NOT_SERVING and ends the stream, so that
 * watchers never hold a graceful shutdown open.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { handleServerStreamingCall, handleUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import { health } from '../proto';

const ServingStatus = health.HealthCheckResponse_ServingStatus;

/** The service names the health service answers for. */
export const HEALTH_SERVICE_NAMES: readonly string[] = Object.freeze(['', 'istio.mixer.v1.Mixer']);

type WatchCall = ServerWritableStream<health.HealthCheckRequest, health.HealthCheckResponse>;

/** The health service's methods and the switch that sets what they answer. */
export interface HealthService {
  readonly check: {
    readonly path: string;
    readonly requestDeserialize: (bytes: Buffer) => health.HealthCheckRequest;
    readonly responseSerialize: (response: health.HealthCheckResponse) => Buffer;
    readonly handler: handleUnaryCall<health.HealthCheckRequest, health.HealthCheckResponse>;
  };
  readonly watch: {
    readonly path: string;
    readonly requestDeserialize: (bytes: Buffer) => health.HealthCheckRequest;
    readonly responseSerialize: (response: health.HealthCheckResponse) => Buffer;
    readonly handler: handleServerStreamingCall<health.HealthCheckRequest, health.HealthCheckResponse>;
  };
  /** Marks every known service SERVING and tells watchers. */
  setServing(): void;
  /** Marks every known service NOT_SERVING, tells watchers and ends their streams. Idempotent. */
  shutdown(): void;
}

/** A health service that answers NOT_SERVING until `setServing()` is called. */
export function createHealthService(): HealthService {
  let current = ServingStatus.NOT_SERVING;
  let shutDown = false;
  const watchers = new Set<WatchCall>();
  const isKnown = (service: string): boolean => HEALTH_SERVICE_NAMES.includes(service);
  const requestDeserialize = (bytes: Buffer): health.HealthCheckRequest =>
    health.HealthCheckRequest.decode(bytes);
  const responseSerialize = (response: health.HealthCheckResponse): Buffer =>
    Buffer.from(health.HealthCheckResponse.encode(response).finish());

  const notify = (): void => {
    for (const call of watchers) {
      if (isKnown(call.request.service)) call.write({ status: current });
    }
  };

  return {
    check: {
      path: '/grpc.health.v1.Health/Check',
      requestDeserialize,
      responseSerialize,
      handler: (call, callback) => {
        if (!isKnown(call.request.service)) {
          callback({ code: GrpcStatus.NOT_FOUND, details: `unknown service "${call.request.service}"` });
          return;
        }
        callback(null, { status: current });
      },
    },
    watch: {
      path: '/grpc.health.v1.Health/Watch',
      requestDeserialize,
      responseSerialize,
      handler: (call) => {
        if (shutDown) {
          call.write({ status: ServingStatus.NOT_SERVING });
          call.end();
          return;
        }
        call.write({ status: isKnown(call.request.service) ? current : ServingStatus.SERVICE_UNKNOWN });
        watchers.add(call);
        call.on('cancelled', () => watchers.delete(call));
      },
    },
    setServing(): void {
      if (shutDown || current === ServingStatus.SERVING) return;
      current = ServingStatus.SERVING;
      notify();
    },
    shutdown(): void {
      if (shutDown) return;
      shutDown = true;
      current = ServingStatus.NOT_SERVING;
      notify();
      for (const call of watchers) call.end();
      watchers.clear();
    },
  };
}
