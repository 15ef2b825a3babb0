// Public surface of expressions/: CEXL, Mixer's expression language — parse, type-check, compile, evaluate.
export { compileExpression } from './expression';
export type { CompiledExpression, CompileOptions } from './expression';
export { parseExpression } from './parser';
export { checkExpression } from './checker';
export type { TypedNode } from './checker';
export { formatNode } from './ast';
export type { ExpressionNode, BinaryOperator } from './ast';
export { ExpressionError, EvaluationError } from './errors';
export type { ExpressionErrorKind } from './errors';
export { FUNCTION_SIGNATURES, globMatch } from './functions';
export { compilePattern } from './regex';
export type { CompiledPattern } from './regex';
export type { FunctionSignature } from './functions';
