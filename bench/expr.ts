/**
 * `npm run bench:expr`: the cost of the Check hot path's first two steps — decoding a
 * typical 30-attribute CheckRequest and evaluating ten typical match expressions on it.
 *
 * Prints nanoseconds per decode and per evaluation, decodes+evaluations per second on
 * one core, and ratios against baselines measured in the same run: the generated
 * ts-proto decoder (which stops at the message, before any bag exists) and the same ten
 * conditions hand-written in TypeScript (the floor for a closure compiler).
 * Not a test: nothing here asserts a speed. Options: BENCH_SECONDS (default 1 per round).
 */
import { STANDARD_MANIFEST, decodeCheckRequest, encodeCheckRequest, type Bag } from '../attributes';
import { compileExpression } from '../expressions';
import { mixer } from '../proto';
import { measure, median, ROUND_SECONDS, ROUNDS, typicalCheckBag } from './bench-kit';

const EXPRESSIONS = [
  'destination.service.name == "reviews"',
  'match(request.path, "/reviews/*")',
  'request.headers["x-user"] == "jason"',
  'source.labels["app"] == "productpage" && destination.labels["version"] == "v2"',
  'request.method == "GET" || request.method == "HEAD"',
  'destination.namespace == "default" && context.reporter.kind == "inbound"',
  '(request.headers["x-api-key"] | "") == ""',
  'destination.port == 9080 && connection.mtls',
  'source.principal.startsWith("cluster.local/ns/default/")',
  '"^/reviews/[0-9]+$".matches(request.url_path)',
];

/** The same ten conditions, written by hand: the baseline for evaluation. */
function handWritten(bag: Bag): number {
  const get = (n: string) => bag.get(n);
  const header = (m: string, k: string) => (get(m) as ReadonlyMap<string, string>).get(k);
  let trues = 0;
  if (get('destination.service.name') === 'reviews') trues++;
  if ((get('request.path') as string).startsWith('/reviews/')) trues++;
  if ((header('request.headers', 'x-user') ?? '') === 'jason') trues++;
  if (header('source.labels', 'app') === 'productpage' && header('destination.labels', 'version') === 'v2')
    trues++;
  if (get('request.method') === 'GET' || get('request.method') === 'HEAD') trues++;
  if (get('destination.namespace') === 'default' && get('context.reporter.kind') === 'inbound') trues++;
  if ((header('request.headers', 'x-api-key') ?? '') === '') trues++;
  if (get('destination.port') === 9080n && get('connection.mtls') === true) trues++;
  if ((get('source.principal') as string).startsWith('cluster.local/ns/default/')) trues++;
  if (/^\/reviews\/[0-9]+$/u.test(get('request.url_path') as string)) trues++;
  return trues;
}

function main(): void {
  // A Buffer, as @grpc/grpc-js hands request bytes to a deserializer.
  const bytes = Buffer.from(
    encodeCheckRequest({
      attributes: typicalCheckBag(),
      deduplicationId: 'bench-1',
      quotas: new Map([['requestcount', { amount: 1n, bestEffort: false }]]),
    }),
  );
  const compiled = EXPRESSIONS.map((e) => compileExpression(e, STANDARD_MANIFEST));
  const bag = decodeCheckRequest(bytes).attributes;
  const results = compiled.map((e) => e.evaluate(bag));
  if (results.some((r) => r !== true) || handWritten(bag) !== 10) {
    throw new Error(
      `benchmark expressions must all hold on the typical Check, got ${JSON.stringify(results)}`,
    );
  }

  let sink = 0;
  const decode = () => (sink += decodeCheckRequest(bytes).attributes.size);
  const decodeGenerated = () => (sink += mixer.CheckRequest.decode(bytes).attributes!.words.length);
  const evaluateTen = () => {
    for (let i = 0; i < compiled.length; i++) if (compiled[i]!.tryEvaluate(bag) === true) sink++;
  };
  const evaluateByHand = () => (sink += handWritten(bag));
  const both = () => {
    const b = decodeCheckRequest(bytes).attributes;
    for (let i = 0; i < compiled.length; i++) if (compiled[i]!.tryEvaluate(b) === true) sink++;
  };

  const samples: Record<string, number[]> = { decode: [], generated: [], ten: [], hand: [], both: [] };
  measure(both); // warm up every path once
  measure(decodeGenerated);
  measure(evaluateByHand);
  for (let round = 0; round < ROUNDS; round++) {
    samples.decode!.push(measure(decode));
    samples.generated!.push(measure(decodeGenerated));
    samples.ten!.push(measure(evaluateTen));
    samples.hand!.push(measure(evaluateByHand));
    samples.both!.push(measure(both));
  }
  const ns = (k: string) => median(samples[k]!);
  const best = (k: string) => Math.min(...samples[k]!);
  const row = (label: string, k: string, extra = '') =>
    console.log(
      `${label.padEnd(28)}${ns(k).toFixed(0).padStart(7)} ns  (best round ${best(k).toFixed(0).padStart(6)} ns)${extra}`,
    );
  const ratio = (k: string, base: string) => `   ours/baseline ${(ns(k) / ns(base)).toFixed(2)}x time`;
  console.log(
    `CheckRequest: ${bytes.length} bytes, 30 attributes, 10 headers; ${EXPRESSIONS.length} expressions`,
  );
  console.log(
    `median of ${ROUNDS} rounds of ${ROUND_SECONDS}s (and the best round), one core, node ${process.version}`,
  );
  row('decode into a bag', 'decode');
  row('  baseline: ts-proto decode', 'generated', ratio('decode', 'generated'));
  row('ten evaluations', 'ten', `   ${(ns('ten') / 10).toFixed(0)} ns each`);
  row('  baseline: hand-written', 'hand', ratio('ten', 'hand'));
  row('decode + ten evaluations', 'both', '   aim: under 5000 ns');
  console.log(
    `decodes+evaluations/s/core  ${(1e9 / ns('both')).toFixed(0).padStart(7)}      (best round ${(1e9 / best('both')).toFixed(0)})`,
  );
  if (sink === -1) console.log(sink);
}

main();
