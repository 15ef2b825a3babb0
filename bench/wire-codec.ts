/**
 * `npm run bench:codec`: the cost of the attribute wire codec on
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
  encodeCheckRequest,
  encodeReportRequest,
  Timestamp,
} from '../attributes';
import { mixer } from '../proto';
import { measure, median, ROUND_SECONDS, ROUNDS, typicalCheckBag } from './bench-kit';

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
