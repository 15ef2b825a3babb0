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
import { health } from '../proto';
import { StatusCode } from '../templates';
import type { ServerStreamHandler, ServerStreamWriter, UnaryHandler } from './grpc-transport';

const ServingStatus = health.HealthCheckResponse_ServingStatus;

/** The service names the health service answers for. */
export const HEALTH_SERVICE_NAMES: readonly string[] = Object.freeze(['', 'istio.mixer.v1.Mixer']);

export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';
export const HEALTH_WATCH_PATH = '/grpc.health.v1.Health/Watch';

/** The health service's methods and the switch that sets what they answer. */
export interface HealthService {
  readonly check: UnaryHandler;
  readonly watch: ServerStreamHandler;
  /** Marks every known service SERVING and tells watchers. */
  setServing(): void;
  /** Marks every known service NOT_SERVING, tells watchers and ends their streams. Idempotent. */
  shutdown(): void;
}

/** A health service that answers NOT_SERVING until `setServing()` is called. */
export function createHealthService(): HealthService {
  let current = ServingStatus.NOT_SERVING;
  let shutDown = false;
  /** Each watcher and the service it watches. */
  const watchers = new Map<ServerStreamWriter, string>();
  const isKnown = (service: string): boolean => HEALTH_SERVICE_NAMES.includes(service);
  const encode = (status: health.HealthCheckResponse_ServingStatus): Uint8Array =>
    health.HealthCheckResponse.encode({ status }).finish();

  const notify = (): void => {
    for (const [writer, service] of watchers) {
      if (isKnown(service)) writer.write(encode(current));
    }
  };

  return {
    check: (bytes) => {
      let service: string;
      try {
        service = health.HealthCheckRequest.decode(bytes).service;
      } catch (error) {
        return {
          code: StatusCode.INVALID_ARGUMENT,
          message: `malformed HealthCheckRequest: ${String(error)}`,
        };
      }
      if (!isKnown(service)) return { code: StatusCode.NOT_FOUND, message: `unknown service "${service}"` };
      return encode(current);
    },
    watch: (bytes, writer) => {
      let service: string;
      try {
        service = health.HealthCheckRequest.decode(bytes).service;
      } catch (error) {
        writer.end({
          code: StatusCode.INVALID_ARGUMENT,
          message: `malformed HealthCheckRequest: ${String(error)}`,
        });
        return;
      }
      if (shutDown) {
        writer.write(encode(ServingStatus.NOT_SERVING));
        writer.end();
        return;
      }
      writer.write(encode(isKnown(service) ? current : ServingStatus.SERVICE_UNKNOWN));
      watchers.set(writer, service);
      writer.onCancel(() => watchers.delete(writer));
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
      for (const writer of watchers.keys()) writer.end();
      watchers.clear();
    },
  };
}
