/**
 * Attribute manifests: the vocabulary of attribute names and their value types.
 * The standard Istio vocabulary is built in; `attributemanifest` resources extend it.
 */
import { ValueType } from './value-type';

/** What the manifest knows of one attribute. */
export interface AttributeInfo {
  readonly name: string;
  readonly valueType: ValueType;
  readonly description?: string;
}

/** Looks attributes up by name; expressions type-check against one of these. */
export interface AttributeFinder {
  /** The attribute's declaration, or undefined when the vocabulary has no such attribute. */
  find(name: string): AttributeInfo | undefined;
}

/** An immutable set of attribute declarations. */
export class AttributeManifest implements AttributeFinder {
  private readonly byName: ReadonlyMap<string, AttributeInfo>;

  constructor(attributes: Iterable<AttributeInfo>) {
    const byName = new Map<string, AttributeInfo>();
    for (const a of attributes) byName.set(a.name, Object.freeze({ ...a }));
    this.byName = byName;
  }

  find(name: string): AttributeInfo | undefined {
    return this.byName.get(name);
  }

  /** Every declaration, in the order given. */
  list(): AttributeInfo[] {
    return [...this.byName.values()];
  }

  get size(): number {
    return this.byName.size;
  }

  /**
   * A new manifest with these declarations added. A name declared again with the same
   * type is accepted; with another type it is a conflict, returned rather than thrown so
   * that configuration validation can report every conflict at once.
   */
  extend(attributes: Iterable<AttributeInfo>): {
    manifest: AttributeManifest;
    conflicts: AttributeConflict[];
  } {
    const merged = new Map(this.byName);
    const conflicts: AttributeConflict[] = [];
    for (const a of attributes) {
      const existing = merged.get(a.name);
      if (existing !== undefined && existing.valueType !== a.valueType) {
        conflicts.push({ name: a.name, declared: existing.valueType, redeclared: a.valueType });
        continue;
      }
      merged.set(a.name, a);
    }
    return { manifest: new AttributeManifest(merged.values()), conflicts };
  }
}

/** An attribute declared twice with different types. */
export interface AttributeConflict {
  readonly name: string;
  readonly declared: ValueType;
  readonly redeclared: ValueType;
}

const { STRING, INT64, BOOL, TIMESTAMP, IP_ADDRESS, DURATION, STRING_MAP } = ValueType;

/**
 * The standard Istio attribute vocabulary, as Istio's proxies and Kubernetes metadata
 * provided it (the `istio-proxy` and `kubernetes` manifests of Istio's Mixer).
 */
const STANDARD_ATTRIBUTES: ReadonlyArray<readonly [string, ValueType, string]> = [
  // Where the request came from.
  ['source.uid', STRING, 'platform-specific unique identifier of the source workload instance'],
  ['source.ip', IP_ADDRESS, 'IP address of the source workload instance'],
  ['source.labels', STRING_MAP, 'labels of the source workload instance'],
  ['source.name', STRING, 'name of the source workload instance'],
  ['source.namespace', STRING, 'namespace of the source workload instance'],
  ['source.owner', STRING, 'reference to the workload controlling the source workload instance'],
  ['source.principal', STRING, 'authority under which the source workload instance is running'],
  ['source.serviceAccount', STRING, 'service account of the source workload instance'],
  ['source.services', STRING, 'services the source workload instance belongs to'],
  ['source.user', STRING, 'deprecated: use source.principal'],
  ['source.workload.uid', STRING, 'unique identifier of the source workload'],
  ['source.workload.name', STRING, 'name of the source workload'],
  ['source.workload.namespace', STRING, 'namespace of the source workload'],
  // Where the request goes.
  ['destination.uid', STRING, 'platform-specific unique identifier of the server instance'],
  ['destination.ip', IP_ADDRESS, 'IP address of the server instance'],
  ['destination.port', INT64, 'port of the server instance'],
  ['destination.labels', STRING_MAP, 'labels of the server instance'],
  ['destination.metadata', STRING_MAP, 'platform metadata of the server instance'],
  ['destination.name', STRING, 'name of the server instance'],
  ['destination.namespace', STRING, 'namespace of the server instance'],
  ['destination.owner', STRING, 'reference to the workload controlling the server instance'],
  ['destination.principal', STRING, 'authority under which the server instance is running'],
  ['destination.serviceAccount', STRING, 'service account of the server instance'],
  ['destination.service.uid', STRING, 'unique identifier of the destination service'],
  ['destination.service.name', STRING, 'short name of the destination service'],
  ['destination.service.namespace', STRING, 'namespace of the destination service'],
  ['destination.service.host', STRING, 'host name of the destination service'],
  ['destination.workload.uid', STRING, 'unique identifier of the destination workload'],
  ['destination.workload.name', STRING, 'name of the destination workload'],
  ['destination.workload.namespace', STRING, 'namespace of the destination workload'],
  ['destination.container.name', STRING, 'container name of the server instance'],
  ['origin.ip', IP_ADDRESS, 'IP address of the proxy client, for ingress'],
  ['origin.uid', STRING, 'unique identifier of the proxy client'],
  ['origin.user', STRING, 'principal of the proxy client'],
  // The request.
  ['request.headers', STRING_MAP, 'HTTP request headers, keys in lower case'],
  ['request.id', STRING, 'request id, statistically unique'],
  ['request.host', STRING, 'HTTP Host or HTTP/2 :authority'],
  ['request.method', STRING, 'HTTP method'],
  ['request.path', STRING, 'HTTP path, with query string'],
  ['request.url_path', STRING, 'HTTP path, without query string'],
  ['request.query_params', STRING_MAP, 'query parameters'],
  ['request.reason', STRING, 'request reason, for auditing'],
  ['request.referer', STRING, 'HTTP referer header'],
  ['request.scheme', STRING, 'URI scheme of the request'],
  ['request.size', INT64, 'request size in bytes (body)'],
  ['request.total_size', INT64, 'request size in bytes, headers included'],
  ['request.time', TIMESTAMP, 'time the destination received the request'],
  ['request.useragent', STRING, 'HTTP User-Agent header'],
  ['request.api_key', STRING, 'API key of the request'],
  ['request.auth.principal', STRING, 'authenticated principal of the request'],
  ['request.auth.audiences', STRING, 'intended audience(s) of the credential'],
  ['request.auth.presenter', STRING, 'authorized presenter of the credential'],
  ['request.auth.claims', STRING_MAP, 'claims of the origin JWT'],
  ['request.auth.raw_claims', STRING, 'raw claims of the origin JWT'],
  // The response.
  ['response.code', INT64, 'HTTP response status code'],
  ['response.duration', DURATION, 'time spent generating the response'],
  ['response.headers', STRING_MAP, 'HTTP response headers, keys in lower case'],
  ['response.size', INT64, 'response body size in bytes'],
  ['response.total_size', INT64, 'response size in bytes, headers included'],
  ['response.time', TIMESTAMP, 'time the destination produced the response'],
  ['response.grpc_status', STRING, 'gRPC status code of the response'],
  ['response.grpc_message', STRING, 'gRPC status message of the response'],
  // The connection.
  ['connection.id', STRING, 'identifier of a TCP connection'],
  ['connection.event', STRING, 'TCP connection event: open, continue or close'],
  [
    'connection.received.bytes',
    INT64,
    'bytes received by the destination on this connection since the last report',
  ],
  [
    'connection.received.bytes_total',
    INT64,
    'bytes received by the destination over the connection lifetime',
  ],
  ['connection.sent.bytes', INT64, 'bytes sent by the destination on this connection since the last report'],
  ['connection.sent.bytes_total', INT64, 'bytes sent by the destination over the connection lifetime'],
  ['connection.duration', DURATION, 'time the connection has been open'],
  ['connection.mtls', BOOL, 'whether the request came over mutual TLS'],
  ['connection.requested_server_name', STRING, 'requested server name (SNI)'],
  // The context.
  ['context.protocol', STRING, 'protocol of the request or connection: http, http2, grpc, tcp'],
  ['context.time', TIMESTAMP, 'time of the Check or Report'],
  ['context.timestamp', TIMESTAMP, 'time of the Check or Report (older name)'],
  ['context.proxy_error_code', STRING, 'proxy response flags'],
  ['context.reporter.local', BOOL, 'deprecated: use context.reporter.kind'],
  ['context.reporter.kind', STRING, 'which side reported: inbound or outbound'],
  ['context.reporter.uid', STRING, 'identifier of the reporting proxy'],
  // API attributes.
  ['api.service', STRING, 'public service name'],
  ['api.version', STRING, 'API version'],
  ['api.operation', STRING, 'operation identifier'],
  ['api.protocol', STRING, 'protocol of the API call: http, https or grpc'],
  // Results of policy, for reports.
  ['check.error_code', INT64, 'error code of the Check call'],
  ['check.error_message', STRING, 'error message of the Check call'],
  ['check.cache_hit', BOOL, 'whether the Check was answered from the proxy cache'],
  ['quota.cache_hit', BOOL, 'whether the quota was answered from the proxy cache'],
  ['rbac.permissive.response_code', STRING, 'response of the permissive RBAC policy'],
  ['rbac.permissive.effective_policy_id', STRING, 'effective permissive RBAC policy'],
];

/** The built-in manifest: the standard Istio attribute vocabulary. */
export const STANDARD_MANIFEST: AttributeManifest = new AttributeManifest(
  STANDARD_ATTRIBUTES.map(([name, valueType, description]) => ({ name, valueType, description })),
);
