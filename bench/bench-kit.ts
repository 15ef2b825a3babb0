/**
 * What the benchmarks share: the typical Check they measure and the timing loop.
 * BENCH_SECONDS sets the length of one round (default 1).
 */
import { AttributeBag, Duration, IpAddress, Timestamp } from '../attributes';

export const ROUND_SECONDS = Number(process.env.BENCH_SECONDS ?? '1');
export const ROUNDS = 5;

/** A Check as an inbound sidecar sends it: 30 attributes, 10 request headers. */
export function typicalCheckBag(): AttributeBag {
  return new AttributeBag([
    ['source.uid', 'kubernetes://productpage-v1-6b746f74dc-9stvs.default'],
    ['source.ip', IpAddress.parse('10.40.0.12')!],
    ['source.namespace', 'default'],
    ['source.principal', 'cluster.local/ns/default/sa/bookinfo-productpage'],
    ['source.labels', new Map([['app', 'productpage'], ['version', 'v1']])], // prettier-ignore
    ['source.workload.name', 'productpage-v1'],
    ['destination.uid', 'kubernetes://reviews-v2-7bf8c9648f-7ldzx.default'],
    ['destination.ip', IpAddress.parse('10.40.0.17')!],
    ['destination.port', 9080n],
    ['destination.namespace', 'default'],
    ['destination.principal', 'cluster.local/ns/default/sa/bookinfo-reviews'],
    ['destination.labels', new Map([['app', 'reviews'], ['version', 'v2']])], // prettier-ignore
    ['destination.service.name', 'reviews'],
    ['destination.service.host', 'reviews.default.svc.cluster.local'],
    ['destination.workload.name', 'reviews-v2'],
    [
      'request.headers',
      new Map([
        [':authority', 'reviews:9080'],
        [':method', 'GET'],
        [':path', '/reviews/0'],
        ['user-agent', 'python-requests/2.22.0'],
        ['accept', '*/*'],
        ['x-request-id', '6c0ffb4c-7c2e-9a0e-a1f4-2d4d9c5e2b11'],
        ['x-b3-traceid', '7d3e1f6a2b9c4d5e'],
        ['x-b3-spanid', '2b9c4d5e7d3e1f6a'],
        ['x-forwarded-proto', 'http'],
        ['x-user', 'jason'],
      ]),
    ],
    ['request.host', 'reviews:9080'],
    ['request.method', 'GET'],
    ['request.path', '/reviews/0'],
    ['request.url_path', '/reviews/0'],
    ['request.scheme', 'http'],
    ['request.useragent', 'python-requests/2.22.0'],
    ['request.id', '6c0ffb4c-7c2e-9a0e-a1f4-2d4d9c5e2b11'],
    ['request.size', 0n],
    ['request.time', new Timestamp(1764201600, 123456789)],
    ['context.protocol', 'http'],
    ['context.reporter.kind', 'inbound'],
    ['context.time', new Timestamp(1764201600, 123500000)],
    ['connection.mtls', true],
    ['response.duration', new Duration(0, 4_500_000)],
  ]);
}

/** Runs fn in batches for about ROUND_SECONDS; returns nanoseconds per call. */
export function measure(fn: () => unknown): number {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(ROUND_SECONDS * 1e9));
  const start = process.hrtime.bigint();
  let calls = 0;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 1000; i++) fn();
    calls += 1000;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / calls;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
