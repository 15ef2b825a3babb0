/**
 * `npx tsc -p . && node dist/bench/wire-codec.js`: the cost of the attribute wire codec on
 * a typical Check (30 attributes, 10 request headers, as an inbound sidecar sends it) and
 * on a batch of 10 delta-encoded reports.
 *
 * Prints nanoseconds per call (median of the rounds, and the best round: noise on a shared
 * machine only ever adds time) and ratios against baselines measured in the same run: the
 * generated ts-proto decoder, which stops at the message objects before any bag exists,
 * and the generated encoder. Not a test: nothing here asserts a speed.
 * Options: BENCH_SECONDS (default 1 per round).
 */
import {
  AttributeBag,
  decodeCheckRequest,
  decodeReportRequest,
  Duration,
  encodeCheckRequest,
  encodeReportRequest,
  IpAddress,
  Timestamp,
} from '../attributes';
import { mixer } from '../proto';

const ROUND_SECONDS = Number(process.env.BENCH_SECONDS ?? '1');
const ROUNDS = 5;

/** A Check as an inbound sidecar sends it: 30 attributes, 10 request headers. */
function typicalCheckBag(): AttributeBag {
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

/** Ten reports of one connection's requests: each differs in id, path, code, sizes and times. */
function typicalReportBatch(): AttributeBag[] {
  const bags: AttributeBag[] = [];
  for (let i = 0; i < 10; i++) {
    bags.push(
      typicalCheckBag()
        .set('request.id', `6c0ffb4c-7c2e-9a0e-a1f4-2d4d9c5e2b${10 + i}`)
        .set('request.path', `/reviews/${i}`)
        .set('response.code', i % 5 === 0 ? 503n : 200n)
        .set('response.size', BigInt(300 + i))
        .set('request.time', new Timestamp(1764201600 + i, 0))
        .set('response.time', new Timestamp(1764201600 + i, 4_500_000)),
    );
  }
  return bags;
}

/** Runs fn in batches for about ROUND_SECONDS; returns nanoseconds per call. */
function measure(fn: () => unknown): number {
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

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function main(): void {
  const bag = typicalCheckBag();
  // Buffers, as @grpc/grpc-js hands request bytes to a deserializer.
  const check = Buffer.from(
    encodeCheckRequest({
      attributes: bag,
      deduplicationId: 'bench-1',
      quotas: new Map([['requestcount', { amount: 1n, bestEffort: false }]]),
    }),
  );
  const batch = typicalReportBatch();
  const report = Buffer.from(encodeReportRequest(batch));
  const checkMessage = mixer.CheckRequest.decode(check);

  let sink = 0;
  const cases: Record<string, () => unknown> = {
    decodeCheck: () => (sink += decodeCheckRequest(check).attributes.size),
    generatedDecodeCheck: () => (sink += mixer.CheckRequest.decode(check).attributes!.words.length),
    encodeCheck: () => (sink += encodeCheckRequest({ attributes: bag }).length),
    generatedEncodeCheck: () => (sink += mixer.CheckRequest.encode(checkMessage).finish().length),
    decodeReport: () => (sink += decodeReportRequest(report).length),
    generatedDecodeReport: () => (sink += mixer.ReportRequest.decode(report).attributes.length),
  };
  const samples: Record<string, number[]> = {};
  for (const [name, fn] of Object.entries(cases)) {
    samples[name] = [];
    measure(fn); // warm up
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of Object.entries(cases)) samples[name]!.push(measure(fn));
  }
  const ns = (name: string) => median(samples[name]!);
  const best = (name: string) => Math.min(...samples[name]!);
  const line = (label: string, name: string, baseline: string) =>
    console.log(
      `${label.padEnd(32)}${ns(name).toFixed(0).padStart(7)} ns (best ${best(name).toFixed(0).padStart(6)})` +
        `   baseline ${ns(baseline).toFixed(0).padStart(7)} ns   ours/baseline ${(ns(name) / ns(baseline)).toFixed(2)}x time`,
    );
  console.log(`Check: ${check.length} bytes, ${bag.size} attributes, 10 headers`);
  console.log(`Report: ${report.length} bytes, ${batch.length} delta-encoded sets`);
  console.log(`median of ${ROUNDS} rounds of ${ROUND_SECONDS}s, one core (node ${process.version})`);
  console.log('baseline: the generated ts-proto codec (message objects only, no bag)');
  line('decodeCheckRequest (to a bag)', 'decodeCheck', 'generatedDecodeCheck');
  line('encodeCheckRequest (from a bag)', 'encodeCheck', 'generatedEncodeCheck');
  line('decodeReportRequest (10 bags)', 'decodeReport', 'generatedDecodeReport');
  if (sink === -1) console.log(sink);
}

main();
