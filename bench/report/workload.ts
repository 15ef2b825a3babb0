/**
 * The workload of the Report benchmarks: the policies (bench:mesh's Check rules, and one
 * report rule) and Report batches as `switchboard proxy` sends them.
 */
import { ReportRequestEncoder } from '../../attributes';
import { RequestReportWriter } from '../../proxy/policy/request-report';
import { RequestAttributes } from '../../proxy/request-attributes';
import type { HttpRequestFacts } from '../../proxy/traffic-facts';

/** bench:mesh's policy: Check rules only. */
export const CHECK_POLICY = `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: blocked-users, namespace: istio-system }
spec: { compiledAdapter: listchecker, params: { overrides: [mallory], blacklist: true } }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: user, namespace: istio-system }
spec:
  compiledTemplate: listentry
  params:
    value: request.headers["x-user"] | "anonymous"
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: blocked-users, namespace: istio-system }
spec:
  actions: [{ handler: blocked-users, instances: [user] }]
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: refuse, namespace: istio-system }
spec: { compiledAdapter: denier, params: { status: { code: 7, message: admins only } } }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: nothing, namespace: istio-system }
spec: { compiledTemplate: checknothing }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: admin, namespace: istio-system }
spec:
  match: request.path.startsWith("/admin")
  actions: [{ handler: refuse, instances: [nothing] }]
`;

/** One report rule matching every HTTP request: an access log (Istio's accesslog variables) to noop. */
export const REPORT_RULE = `
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: sink, namespace: istio-system }
spec: { compiledAdapter: noop }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: accesslog, namespace: istio-system }
spec:
  compiledTemplate: logentry
  params:
    severity: '"Info"'
    timestamp: request.time
    variables:
      sourceIp: source.ip | ip("0.0.0.0")
      destinationIp: destination.ip | ip("0.0.0.0")
      method: request.method | ""
      url: request.path | ""
      protocol: request.scheme | "http"
      responseCode: response.code | 0
      responseSize: response.size | 0
      latency: response.duration | "0ms"
      requestId: request.id | ""
      userAgent: request.useragent | ""
      reporter: context.reporter.kind | "inbound"
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: log-everything, namespace: istio-system }
spec:
  match: context.protocol == "http"
  actions: [{ handler: sink, instances: [accesslog] }]
`;

/** The facts of request `n`, as the mesh's inbound proxy records them (wrk's request to nginx). */
function factsOf(n: number): HttpRequestFacts {
  const startTimeMs = 1_764_201_600_000 + n * 0.04;
  return {
    listenerName: 'http',
    role: 'inbound',
    node: NODE,
    protocol: 'http',
    secure: false,
    remoteAddress: '127.0.0.1',
    remotePort: 40000 + (n % 32),
    localAddress: '127.0.0.1',
    localPort: 18080,
    method: 'GET',
    authority: '127.0.0.1:18080',
    url: '/',
    urlPath: '/',
    query: undefined,
    requestHeaders: { host: '127.0.0.1:18080', 'x-user': 'alice' },
    receivedRequestHead: 'GET / HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nx-user: alice',
    requestId: `6c0ffb4c-7c2e-9a0e-a1f4-${n.toString(16).padStart(12, '0')}`,
    traceparent: '',
    startTimeMs,
    requestBytes: 0,
    status: 200,
    responseHeaders: { 'content-type': 'text/plain', 'content-length': '128' },
    forwardedResponseHead: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 128',
    forwardedResponseOps: undefined,
    forwardedResponseClose: false,
    responseBytes: 128,
    durationMs: 0.8 + (n % 7) * 0.05,
    routeName: undefined,
    clusterName: 'backend',
    endpointId: '127.0.0.1:18090',
    endpointHost: '127.0.0.1',
    endpointPort: 18090,
    attempts: 1,
    reason: undefined,
    grpcStatus: undefined,
    grpcMessage: undefined,
  };
}
const NODE = {
  name: 'web-1',
  namespace: 'default',
  uid: 'kubernetes://web-1.default',
  labels: { app: 'web' },
};

/** `count` batches, each written as the proxy's policy client writes records as they arrive. */
export function makeBatches(
  count: number,
  recordsPerBatch: number,
): { bytes: Uint8Array; records: number }[] {
  const batches: { bytes: Uint8Array; records: number }[] = [];
  const writer = new RequestReportWriter();
  let n = 0;
  while (batches.length < count) {
    const encoder = new ReportRequestEncoder();
    while (encoder.count < recordsPerBatch) {
      const facts = factsOf(n);
      const checked = new RequestAttributes(facts).set('check.cache_hit', true);
      const added = encoder.add(writer.prepare(facts, checked));
      writer.release();
      if (!added) break;
      n++;
    }
    batches.push({ bytes: encoder.finish(), records: encoder.count });
  }
  return batches;
}
