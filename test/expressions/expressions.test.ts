import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  AttributeBag,
  ReferenceRecordingBag,
  bagFromJson,
  valueToJson,
  valueTypeName,
} from '../../attributes';
import { EvaluationError, ExpressionError, compileExpression, parseExpression } from '../../expressions';
import { CASES, TEST_MANIFEST } from './cases';

describe('expressions: the case table', () => {
  it('has at least 150 cases, errors included', () => {
    assert.ok(CASES.length >= 150, `only ${CASES.length} cases`);
    assert.ok(CASES.filter((c) => !('type' in c.want)).length >= 60);
  });

  for (const c of CASES) {
    const attrs = c.attrs === undefined ? '' : ` with ${JSON.stringify(c.attrs)}`;
    it(`${c.expr}${attrs}`, () => {
      const bag = new ReferenceRecordingBag(bagFromJson(c.attrs ?? {}, TEST_MANIFEST));
      let expression;
      try {
        expression = compileExpression(c.expr, TEST_MANIFEST);
      } catch (err) {
        if (!(err instanceof ExpressionError)) throw err;
        if ('syntax' in c.want) return assertError(err, 'syntax', c.want.syntax);
        if ('typeError' in c.want) return assertError(err, 'type', c.want.typeError);
        assert.fail(`unexpected ${err.kind} error: ${err.message}`);
      }
      assert.ok(
        !('syntax' in c.want) && !('typeError' in c.want),
        'compiled, but a compile error was expected',
      );
      const result = expression.tryEvaluate(bag);
      if ('evalError' in c.want) {
        assert.ok(result instanceof EvaluationError, `expected an evaluation error, got ${String(result)}`);
        assert.equal(result.message, c.want.evalError);
        assert.throws(() => expression.evaluate(bag), EvaluationError);
      } else {
        if (result instanceof EvaluationError) assert.fail(`evaluation failed: ${result.message}`);
        assert.equal(valueTypeName(expression.type), c.want.type);
        assert.deepEqual(valueToJson(result, expression.type), c.want.value);
      }
      if (c.refs !== undefined) assert.deepEqual(bag.references.toStrings(), [...c.refs].sort());
    });
  }
});

function assertError(err: ExpressionError, kind: string, message: string): void {
  assert.equal(err.kind, kind);
  assert.equal(err.message, message);
  assert.equal(err.message, `column ${err.column}: ${err.problem}`);
}

describe('expressions: compiled form', () => {
  it('lists the attributes an expression may read', () => {
    const e = compileExpression('m[s] == "x" || conditional(b, s2, "y") == "z"', TEST_MANIFEST);
    assert.deepEqual(e.attributes, ['b', 'm', 's', 's2']);
  });

  it('requires the expected type when one is given', () => {
    assert.throws(
      () => compileExpression('s | "x"', TEST_MANIFEST, { expectedType: 4 }),
      (err: ExpressionError) =>
        err.message === 'column 1: expression has type STRING, but BOOL is required here' &&
        err.kind === 'type',
    );
  });

  it('is immutable and reusable across bags', () => {
    const e = compileExpression('i + 1', TEST_MANIFEST);
    assert.ok(Object.isFrozen(e));
    assert.equal(e.evaluate(bagFromJson({ i: 1 }, TEST_MANIFEST)), 2n);
    assert.equal(e.evaluate(bagFromJson({ i: 5 }, TEST_MANIFEST)), 6n);
  });

  it('refuses a bag value that does not have the type the manifest declares', () => {
    const e = compileExpression('s == "20"', TEST_MANIFEST);
    const result = e.tryEvaluate(new AttributeBag([['s', 20n]]));
    assert.ok(result instanceof EvaluationError);
    assert.equal(
      result.message,
      "column 1: attribute 's' does not hold a STRING value, as the manifest declares",
    );
    assert.ok(
      compileExpression('s | "x"', TEST_MANIFEST).tryEvaluate(new AttributeBag([['s', 1]])) instanceof
        EvaluationError,
    );
  });

  it('shares one error object for an absent attribute instead of allocating per call', () => {
    const e = compileExpression('s == "a"', TEST_MANIFEST);
    const empty = bagFromJson({}, TEST_MANIFEST);
    assert.equal(e.tryEvaluate(empty), e.tryEvaluate(empty));
  });
});

describe('expressions: the parser never fails with anything but its typed error', () => {
  const fragments = [
    's',
    'i',
    'm',
    '"a"',
    '`r`',
    "'c'",
    '1',
    '-2',
    '3.5',
    'true',
    '(',
    ')',
    '[',
    ']',
    '.',
    ',',
    '==',
    '!=',
    '&&',
    '||',
    '|',
    '+',
    '-',
    '<',
    '<=',
    '>',
    '>=',
    '!',
    '/',
    '*',
    '=',
    'match',
    'startsWith',
    'ip',
    '"',
    '\\',
    ' ',
    'request.headers',
    '9999999999999999999999',
    '0x',
    '1e',
    '{',
    '#',
    'é',
    '\u0000',
  ];

  it('on random token soup', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...fragments), { maxLength: 12 }), (parts) => {
        tryParse(parts.join(''));
      }),
      { numRuns: 3000 },
    );
  });

  it('on random strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (text) => tryParse(text)),
      { numRuns: 3000 },
    );
  });

  it('and compiling random token soup either succeeds or throws an ExpressionError', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...fragments), { maxLength: 10 }), (parts) => {
        try {
          compileExpression(parts.join(' '), TEST_MANIFEST);
        } catch (err) {
          assert.ok(err instanceof ExpressionError, `not an ExpressionError: ${String(err)}`);
          assert.ok(
            err.column >= 1 && err.column <= parts.join(' ').length + 1,
            `column ${err.column} out of range`,
          );
        }
      }),
      { numRuns: 3000 },
    );
  });
});

function tryParse(text: string): void {
  try {
    parseExpression(text);
  } catch (err) {
    assert.ok(err instanceof ExpressionError, `not an ExpressionError: ${String(err)}`);
    assert.equal(err.kind, 'syntax');
    assert.ok(!err.message.includes('\n') || text.includes('\n'));
  }
}
