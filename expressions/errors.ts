/**
 * Errors of the expression language. Static problems (syntax and types) are
 * ExpressionErrors, raised when an expression is compiled — at configuration time.
 * Runtime problems (an absent attribute, a string that is not an IP address) are
 * EvaluationErrors, returned by `tryEvaluate` or thrown by `evaluate`.
 * Columns are 1-based positions in the expression text.
 */

/** Which stage found a static problem. */
export type ExpressionErrorKind = 'syntax' | 'type';

/** A syntax or type error in an expression, found when it is compiled. */
export class ExpressionError extends Error {
  override readonly name = 'ExpressionError';

  constructor(
    readonly kind: ExpressionErrorKind,
    /** 1-based column of the offending token. */
    readonly column: number,
    /** What is wrong, without the column. */
    readonly problem: string,
  ) {
    super(`column ${column}: ${problem}`);
  }
}

/** A failure while evaluating an expression against a bag. */
export class EvaluationError extends Error {
  override readonly name = 'EvaluationError';

  constructor(
    readonly column: number,
    readonly problem: string,
  ) {
    super(`column ${column}: ${problem}`);
  }
}
