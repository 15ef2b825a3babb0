/**
 * What a cluster knows about one of its endpoints: the frozen {@link Endpoint} handed to the
 * request path, and the mutable state behind it (health, ejection, counters). Internal to the
 * cluster; the request path only ever sees `endpoint`.
 */
import type { Endpoint, EndpointConfig } from './contract';

/** `host:port`, with an IPv6 host in brackets: the endpoint's id, unique in its cluster. */
export function endpointId(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class EndpointState {
  readonly endpoint: Endpoint;
  readonly id: string;
  /** Position in the cluster's configuration order. */
  readonly index: number;
  readonly weight: number;
  /** What active health checking last concluded; true when there is none. */
  healthy = true;
  /** Environment-clock time (ms) at which the current ejection ends; 0 when not ejected. */
  ejectedUntil = 0;
  /** `healthy` and not ejected: may be picked outside panic mode. Kept by the endpoint set. */
  available = true;
  /** Outlier detection's multiplier: the last ejection lasted base × this. Decays while healthy. */
  ejectionMultiplier = 0;
  /** Environment-clock time of the last return from ejection; -1 before the first ejection. */
  returnedAt = -1;
  consecutive5xx = 0;
  consecutiveGatewayErrors = 0;
  /** Attempts started and not yet finished (least-request balancing reads it). */
  activeRequests = 0;

  constructor(config: EndpointConfig, index: number) {
    this.id = endpointId(config.host, config.port);
    this.endpoint = Object.freeze({
      id: this.id,
      host: config.host,
      port: config.port,
      weight: config.weight,
    });
    this.index = index;
    this.weight = config.weight;
  }
}
