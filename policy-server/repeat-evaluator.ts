/**
 * Expressions evaluated again only when what they read changed. A Report's records arrive
 * delta-encoded and are decoded into one bag in place, so a record holds the very values
 * (the same objects) of the record before it except where its delta changed them: an
 * expression over unchanged attributes has the result it had. Values are immutable and
 * expressions pure, so comparing what the expression may read (`Object.is`: strings and
 * numbers by value, 0 apart from -0 as their encodings are, objects by identity) tells when
 * the last result holds.
 */
import { AttributeBag, GLOBAL_WORD_INDEX, type AttributeValue, type Bag } from '../attributes';
import type { CompiledExpression, EvaluationError } from '../expressions';

/** Evaluates an expression for a bag: its value, or why it has none. */
export type Evaluator = (bag: Bag) => AttributeValue | EvaluationError;

/** Beyond this many attributes the comparison costs about what evaluating does. */
const MAX_COMPARED_ATTRIBUTES = 6;

/**
 * An evaluator of `expression` that, for an AttributeBag, answers the last result again
 * when every attribute the expression may read holds the same value as last time. Other
 * bags (a ReferenceRecordingBag, which must see every read) are always evaluated. Plain
 * evaluation when the expression reads nothing, an attribute outside the global dictionary,
 * or many attributes. One evaluator keeps one result: synchronous callers only.
 */
export function createRepeatEvaluator(expression: CompiledExpression): Evaluator {
  const names = expression.attributes;
  const slots: number[] = [];
  for (const name of names) {
    const slot = GLOBAL_WORD_INDEX.get(name);
    if (slot === undefined) break;
    slots.push(slot);
  }
  if (slots.length === 0 || slots.length !== names.length || slots.length > MAX_COMPARED_ATTRIBUTES) {
    return (bag) => expression.tryEvaluate(bag);
  }
  const read = new Array<AttributeValue | undefined>(slots.length);
  let result: AttributeValue | EvaluationError | undefined;
  return (bag) => {
    if (!(bag instanceof AttributeBag)) return expression.tryEvaluate(bag);
    if (result !== undefined) {
      let same = true;
      for (let i = 0; i < slots.length; i++) {
        if (!Object.is(bag.getGlobalWord(slots[i]!), read[i])) {
          same = false;
          break;
        }
      }
      if (same) return result;
    }
    for (let i = 0; i < slots.length; i++) read[i] = bag.getGlobalWord(slots[i]!);
    result = expression.tryEvaluate(bag);
    return result;
  };
}
