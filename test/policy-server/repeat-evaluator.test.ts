import { strict as assert } from 'node:assert';
import {
  AttributeBag,
  FlatStringMap,
  ReferenceRecordingBag,
  STANDARD_MANIFEST,
  ValueType,
  type Bag,
} from '../../attributes';
import { compileExpression, EvaluationError, type CompiledExpression } from '../../expressions';
import { createRepeatEvaluator } from '../../policy-server/repeat-evaluator';

/** `expression`, counting its evaluations. */
const MANIFEST = STANDARD_MANIFEST.extend([{ name: 'x.custom', valueType: ValueType.STRING }]).manifest;

function counted(source: string): { expression: CompiledExpression; evaluations: () => number } {
  const compiled = compileExpression(source, MANIFEST);
  let n = 0;
  const expression: CompiledExpression = {
    ...compiled,
    evaluate: (bag: Bag) => compiled.evaluate(bag),
    tryEvaluate: (bag: Bag) => {
      n++;
      return compiled.tryEvaluate(bag);
    },
  };
  return { expression, evaluations: () => n };
}

describe('policy-server: createRepeatEvaluator', () => {
  it('answers the last result again while what the expression reads holds the same values', () => {
    const { expression, evaluations } = counted('request.path + ":" + request.method');
    const evaluate = createRepeatEvaluator(expression);
    const bag = new AttributeBag([
      ['request.path', '/a'],
      ['request.method', 'GET'],
      ['request.id', '1'],
    ]);
    assert.equal(evaluate(bag), '/a:GET');
    bag.set('request.id', '2'); // not read by the expression
    assert.equal(evaluate(bag), '/a:GET');
    assert.equal(
      evaluate(
        new AttributeBag([
          ['request.path', '/a'],
          ['request.method', 'GET'],
        ]),
      ),
      '/a:GET',
    );
    assert.equal(evaluations(), 1);
    bag.set('request.method', 'POST');
    assert.equal(evaluate(bag), '/a:POST');
    assert.equal(evaluations(), 2);
  });

  it('evaluates again for another map object, even with the same contents: objects compare by identity', () => {
    const { expression, evaluations } = counted('request.headers["x-user"] | "anon"');
    const evaluate = createRepeatEvaluator(expression);
    const bag = new AttributeBag([['request.headers', new FlatStringMap(['x-user', 'ann'])]]);
    assert.equal(evaluate(bag), 'ann');
    bag.set('request.headers', new FlatStringMap(['x-user', 'bob']));
    assert.equal(evaluate(bag), 'bob');
    bag.set('request.headers', new FlatStringMap([]));
    assert.equal(evaluate(bag), 'anon');
    assert.equal(evaluations(), 3);
  });

  it('keeps an evaluation error as a result, and evaluates again once the attribute arrives', () => {
    const evaluate = createRepeatEvaluator(compileExpression('request.path'));
    const bag = new AttributeBag();
    assert.ok(evaluate(bag) instanceof EvaluationError);
    assert.ok(evaluate(bag) instanceof EvaluationError);
    bag.set('request.path', '/now');
    assert.equal(evaluate(bag), '/now');
  });

  it('always evaluates for a recording bag, so that every read is recorded', () => {
    const { expression, evaluations } = counted('request.path');
    const evaluate = createRepeatEvaluator(expression);
    const bag = new AttributeBag([['request.path', '/a']]);
    assert.equal(evaluate(bag), '/a');
    const recording = new ReferenceRecordingBag(bag);
    assert.equal(evaluate(recording), '/a');
    assert.deepEqual(
      recording.references.list().map((r) => r.name),
      ['request.path'],
    );
    assert.equal(evaluations(), 2);
  });

  it('always evaluates an expression over an attribute outside the global dictionary', () => {
    const { expression, evaluations } = counted('x.custom | "none"');
    const evaluate = createRepeatEvaluator(expression);
    const bag = new AttributeBag([['x.custom', 'a']]);
    assert.equal(evaluate(bag), 'a');
    bag.set('x.custom', 'b');
    assert.equal(evaluate(bag), 'b');
    assert.equal(evaluations(), 2);
  });
});
