/**
 * Mixer's own expression test table, as Mixer's compiled expression path actually
 * decided it (test/fixtures/mixer/: produced by running Istio's code at a6eefdf7).
 * Every case must decide here as it did there: the same type and value, the same
 * evaluation failures, the same referenced attributes, the same compile failures —
 * except the documented widenings below, where Mixer refused an expression at
 * compile time that we accept.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AttributeBag,
  AttributeManifest,
  Duration,
  IpAddress,
  ReferenceRecordingBag,
  Timestamp,
  ValueType,
  bytesEqual,
  parseValueType,
  valueTypeName,
  type AttributeValue,
} from '../../attributes';
import { EvaluationError, ExpressionError, compileExpression } from '../../expressions';

const FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'mixer');

interface Tagged {
  readonly type: string;
  readonly value?: unknown;
  readonly unixNanos?: string;
  readonly hex?: string;
}

interface TableCase {
  readonly index: number;
  readonly E: string;
  readonly manifest: string;
  readonly I: Record<string, Tagged> | null;
  readonly Fns: unknown[] | null;
}

interface ActualCase {
  readonly index: number;
  readonly E: string;
  readonly outcome: 'success' | 'evalError' | 'compileError';
  readonly compileError: string | null;
  readonly evalError: string | null;
  readonly type: string;
  readonly result: Tagged | null;
  readonly referenced: string[] | null;
}

const table = JSON.parse(readFileSync(join(FIXTURES, 'expressions.json'), 'utf8')) as {
  manifests: Record<string, Record<string, string>>;
  cases: TableCase[];
};
const actual = JSON.parse(readFileSync(join(FIXTURES, 'expressions-actual.json'), 'utf8')) as {
  cases: ActualCase[];
};
/** Expressions beyond the table, run through the same path of Mixer's, against its default manifest. */
const probes = JSON.parse(readFileSync(join(FIXTURES, 'expressions-probes.json'), 'utf8')) as {
  cases: Array<ActualCase & { I: Record<string, Tagged> | null }>;
};

const DURATION_COMPARISON =
  "Mixer's type checker accepted comparisons of durations, then its code generator had none; we compare them";
const DURATION_LITERAL_AS_STRING =
  'Mixer typed every duration-like string literal DURATION; where a STRING is required we read it as the string it is';
const NEGATIVE_LITERAL = 'Mixer had no unary minus, so no negative literal; we read -1 as a number';

/** Expressions Mixer refused at compile time and we accept, each with the reason. */
const WIDENINGS: ReadonlyMap<string, string> = new Map([
  ['adur == "10s"', DURATION_COMPARISON],
  ['adur == "10000ms"', DURATION_COMPARISON],
  ['"10s" == "10s"', DURATION_COMPARISON],
  ['adur < bdur', DURATION_COMPARISON],
  ['adur > "1s"', DURATION_COMPARISON],
  ['abc == "10s"', DURATION_LITERAL_AS_STRING],
  ['abc == "0"', DURATION_LITERAL_AS_STRING],
  ['abc | "5ms"', DURATION_LITERAL_AS_STRING],
  ['ar["k"] == "10s"', DURATION_LITERAL_AS_STRING],
  ['-1', NEGATIVE_LITERAL],
  ['ai == -1', NEGATIVE_LITERAL],
]);

/** Expressions Mixer compiled and failed on every evaluation, which we refuse when they are compiled. */
const REFUSED_EARLIER: ReadonlyMap<string, string> = new Map([
  ['"(".matches(abc)', 'a constant regular expression that does not compile is a configuration error'],
]);

const manifests = new Map(
  Object.entries(table.manifests).map(([name, attrs]) => [
    name,
    new AttributeManifest(
      Object.entries(attrs).map(([n, t]) => ({ name: n, valueType: parseValueType(t)! })),
    ),
  ]),
);

function fromTagged(tagged: Tagged, type: ValueType | undefined): unknown {
  switch (tagged.type) {
    case 'string':
    case 'bool':
    case 'float64':
      return tagged.value;
    case 'int64':
      return BigInt(tagged.value as string);
    case 'int':
      // Mixer's one deliberately wrong-typed input: a Go int where INT64 is declared.
      return Number(tagged.value);
    case 'timestamp': {
      const nanos = BigInt(tagged.unixNanos!);
      const seconds = nanos / 1_000_000_000n - (nanos % 1_000_000_000n < 0n ? 1n : 0n);
      return new Timestamp(Number(seconds), Number(nanos - seconds * 1_000_000_000n));
    }
    case 'duration':
      return Duration.fromNanos(BigInt(tagged.value as string));
    case 'bytes':
    case 'ip': {
      const bytes = Uint8Array.from(Buffer.from(tagged.hex!, 'hex'));
      return type === ValueType.IP_ADDRESS ? new IpAddress(bytes) : bytes;
    }
    case 'map':
    case 'stringmap':
      return new Map(Object.entries(tagged.value as Record<string, string>));
    default:
      throw new Error(`no conversion for tagged type ${tagged.type}`);
  }
}

/** Compares our value with Mixer's tagged result. */
function assertSameValue(ours: AttributeValue, theirs: Tagged): void {
  switch (theirs.type) {
    case 'bytes':
    case 'ip': {
      const expected = new IpAddress(Uint8Array.from(Buffer.from(theirs.hex!, 'hex')));
      assert.ok(ours instanceof IpAddress, `expected an IP address, got ${String(ours)}`);
      assert.ok(
        IpAddress.equal(ours, expected) || bytesEqual(ours.bytes, expected.bytes),
        `${ours} != ${expected}`,
      );
      return;
    }
    case 'timestamp':
    case 'duration':
      assert.equal(String(ours), String(fromTagged(theirs, undefined)));
      return;
    default:
      assert.deepEqual(ours, fromTagged(theirs, undefined));
  }
}

const runnable = actual.cases.filter((c) => table.cases[c.index]!.Fns === null);

describe("expressions: Mixer's table, as Mixer decided it", () => {
  it('covers the whole table except the two cases that register Go functions of their own', () => {
    assert.equal(actual.cases.length, 423);
    assert.equal(actual.cases.length - runnable.length, 2);
  });

  for (const c of runnable) {
    const t = table.cases[c.index]!;
    it(`#${c.index} ${c.E} → ${outcomeText(c)}`, () => assertDecidesAsMixer(c, t.manifest, t.I));
  }
});

describe('expressions: probes beyond the table, as Mixer decided them', () => {
  it('has the probes', () => assert.ok(probes.cases.length >= 90));

  it('lists only widenings and early refusals that Mixer did otherwise', () => {
    const all = [...runnable, ...probes.cases];
    for (const [expression, outcome] of [
      ...[...WIDENINGS.keys()].map((e) => [e, 'compileError'] as const),
      ...[...REFUSED_EARLIER.keys()].map((e) => [e, 'evalError'] as const),
    ]) {
      const cases = all.filter((c) => c.E === expression);
      assert.ok(cases.length > 0, `no Mixer case ${expression}`);
      for (const c of cases) assert.equal(c.outcome, outcome, expression);
    }
  });

  for (const c of probes.cases) {
    it(`${c.E} with ${JSON.stringify(c.I ?? {})} → ${outcomeText(c)}`, () =>
      assertDecidesAsMixer(c, 'defaultAttrs', c.I));
  }
});

function outcomeText(c: ActualCase): string {
  return c.outcome === 'success' ? `${c.outcome} ${JSON.stringify(c.result)}` : c.outcome;
}

function assertDecidesAsMixer(
  c: ActualCase,
  manifestName: string,
  inputs: Record<string, Tagged> | null,
): void {
  const manifest = manifests.get(manifestName)!;
  let expression;
  try {
    expression = compileExpression(c.E, manifest);
  } catch (err) {
    if (!(err instanceof ExpressionError)) throw err;
    if (REFUSED_EARLIER.has(c.E)) return;
    assert.equal(c.outcome, 'compileError', `we refused what Mixer compiled: ${err.message}`);
    return;
  }
  if (c.outcome === 'compileError') {
    assert.ok(WIDENINGS.has(c.E), `we compiled what Mixer refused: ${c.compileError}`);
    return;
  }
  const bag = new AttributeBag();
  for (const [name, tagged] of Object.entries(inputs ?? {})) {
    bag.set(name, fromTagged(tagged, manifest.find(name)?.valueType) as AttributeValue);
  }
  const recording = new ReferenceRecordingBag(bag);
  const result = expression.tryEvaluate(recording);
  if (c.outcome === 'evalError') {
    assert.ok(
      result instanceof EvaluationError,
      `expected an evaluation error (${c.evalError}), got ${String(result)}`,
    );
  } else {
    if (result instanceof EvaluationError)
      assert.fail(`Mixer gave ${JSON.stringify(c.result)}, we failed: ${result.message}`);
    assert.equal(valueTypeName(expression.type), c.type);
    assertSameValue(result, c.result!);
  }
  if (c.referenced !== null) {
    // Mixer's test bag recorded a present string map itself when fetched; its server bag (and
    // ours) records only the keys looked up in it, which is what reaches the proxy's cache.
    const expected = c.referenced.filter((r) => manifest.find(r)?.valueType !== ValueType.STRING_MAP);
    assert.deepEqual(recording.references.toStrings(), expected.sort());
  }
}
