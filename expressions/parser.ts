/**
 * The parser of CEXL: precedence climbing over Go's binary precedence levels
 * (`||` < `&&` < comparisons < `+ |`). Go syntax that CEXL does not support is
 * reported as such, with its column, rather than as a generic syntax error.
 */
import { ValueType } from '../attributes';
import type { BinaryOperator, ExpressionNode } from './ast';
import { ExpressionError } from './errors';
import { tokenize, type Token } from './lexer';

const PRECEDENCE: Readonly<Record<string, number>> = {
  '||': 1,
  '&&': 2,
  '==': 3,
  '!=': 3,
  '<': 3,
  '<=': 3,
  '>': 3,
  '>=': 3,
  '+': 4,
  '|': 4,
  '-': 4,
  '^': 4,
  '*': 5,
  '/': 5,
  '%': 5,
  '<<': 5,
  '>>': 5,
  '&': 5,
  '&^': 5,
};

const SUPPORTED_BINARY = new Set<string>(['||', '&&', '==', '!=', '<', '<=', '>', '>=', '+', '|']);

const OPERATOR_LIST = '== != && || + < <= > >= and the default operator |';

const INT64_MAX = 2n ** 63n - 1n;

/**
 * Parses an expression into its syntax tree.
 * @throws ExpressionError (kind `syntax`) naming the problem and its column
 */
export function parseExpression(source: string): ExpressionNode {
  const parser = new Parser(tokenize(source));
  if (parser.peek().kind === 'eof') throw new ExpressionError('syntax', 1, 'empty expression');
  const node = parser.parseBinary(1);
  const rest = parser.peek();
  if (rest.kind !== 'eof') throw parser.unexpected(rest, 'after a complete expression');
  return node;
}

class Parser {
  private position = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  peek(): Token {
    return this.tokens[this.position]!;
  }

  private next(): Token {
    return this.tokens[this.position++]!;
  }

  private isOp(text: string): boolean {
    const t = this.peek();
    return t.kind === 'op' && t.text === text;
  }

  private expectOp(text: string, context: string): Token {
    const t = this.peek();
    if (t.kind !== 'op' || t.text !== text) throw this.unexpected(t, `${context}: expected '${text}'`);
    return this.next();
  }

  unexpected(t: Token, context: string): ExpressionError {
    if (t.kind === 'eof')
      return new ExpressionError('syntax', t.column, `unexpected end of expression ${context}`.trim());
    if (t.kind === 'op' && !SUPPORTED_BINARY.has(t.text) && !'()[],.'.includes(t.text)) {
      return unsupportedOperator(t);
    }
    return new ExpressionError('syntax', t.column, `unexpected '${t.text}' ${context}`.trim());
  }

  parseBinary(minPrecedence: number): ExpressionNode {
    let left = this.parseUnary();
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'op') return left;
      const precedence = PRECEDENCE[t.text];
      if (precedence === undefined) {
        if (
          t.text === '=' ||
          (t.text.endsWith('=') && t.text.length > 1 && !['==', '!=', '<=', '>='].includes(t.text)) ||
          t.text === '++' ||
          t.text === '--' ||
          t.text === ':='
        ) {
          throw unsupportedOperator(t);
        }
        return left;
      }
      if (precedence < minPrecedence) return left;
      if (!SUPPORTED_BINARY.has(t.text)) throw unsupportedOperator(t);
      this.next();
      const right = this.parseBinary(precedence + 1);
      left = { kind: 'binary', op: t.text as BinaryOperator, left, right, column: t.column };
    }
  }

  private parseUnary(): ExpressionNode {
    const t = this.peek();
    if (t.kind === 'op' && t.text === '-') {
      const number = this.tokens[this.position + 1]!;
      if ((number.kind === 'int' || number.kind === 'float') && number.column === t.column + 1) {
        this.next();
        this.next();
        return this.parsePostfix(this.numberLiteral(number, true, t.column));
      }
      throw new ExpressionError(
        'syntax',
        t.column,
        `unsupported operator '-': only a number literal may be negated, as in -1`,
      );
    }
    if (t.kind === 'op' && ['!', '^', '+', '&', '*', '<-'].includes(t.text)) throw unsupportedOperator(t);
    return this.parsePostfix(this.parsePrimary());
  }

  private parsePrimary(): ExpressionNode {
    const t = this.next();
    switch (t.kind) {
      case 'int':
      case 'float':
        return this.numberLiteral(t, false, t.column);
      case 'string':
        return { kind: 'literal', type: ValueType.STRING, value: t.value!, column: t.column };
      case 'ident': {
        const lower = t.text.toLowerCase();
        if (lower === 'true' || lower === 'false') {
          return { kind: 'literal', type: ValueType.BOOL, value: lower === 'true', column: t.column };
        }
        return { kind: 'attribute', name: t.text, column: t.column };
      }
      case 'op':
        if (t.text === '(') {
          if (this.isOp(')')) throw new ExpressionError('syntax', this.peek().column, 'empty parentheses');
          const inner = this.parseBinary(1);
          this.expectOp(')', 'to close the parenthesis');
          return withParenthesised(inner);
        }
        throw this.unexpected(t, 'where an operand was expected');
      case 'eof':
        throw this.unexpected(t, 'where an operand was expected');
    }
  }

  private numberLiteral(t: Token, negative: boolean, column: number): ExpressionNode {
    const text = (negative ? '-' : '') + t.text;
    if (t.kind === 'int') {
      if (!/^-?\d+$/.test(text)) {
        throw new ExpressionError('syntax', column, `integer literal '${text}' must be decimal digits only`);
      }
      const value = BigInt(text);
      if (value > INT64_MAX || value < -INT64_MAX - 1n) {
        throw new ExpressionError('syntax', column, `integer literal ${text} is out of the INT64 range`);
      }
      return { kind: 'literal', type: ValueType.INT64, value, column };
    }
    if (t.text.includes('_'))
      throw new ExpressionError('syntax', column, `float literal '${text}' must not contain '_'`);
    const value = Number(text);
    if (!Number.isFinite(value))
      throw new ExpressionError('syntax', column, `float literal ${text} is out of the DOUBLE range`);
    return { kind: 'literal', type: ValueType.DOUBLE, value, column };
  }

  private parsePostfix(start: ExpressionNode): ExpressionNode {
    let node = start;
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'op') return node;
      if (t.text === '.') {
        this.next();
        const name = this.next();
        if (name.kind !== 'ident') throw this.unexpected(name, "after '.': expected a name");
        if (this.isOp('(')) {
          node = {
            kind: 'call',
            name: name.text,
            target: node,
            args: this.parseArguments(),
            column: name.column,
          };
        } else if (node.kind === 'attribute' && !parenthesised.has(node)) {
          node = { kind: 'attribute', name: `${node.name}.${name.text}`, column: node.column };
        } else {
          throw new ExpressionError(
            'syntax',
            name.column,
            `'.${name.text}' must name a method call, as in .${name.text}(…): only attribute names may be dotted`,
          );
        }
      } else if (t.text === '(') {
        if (node.kind !== 'attribute' || parenthesised.has(node) || node.name.includes('.')) {
          throw new ExpressionError(
            'syntax',
            t.column,
            'only a function name may be called, as in match(a, "b*")',
          );
        }
        node = { kind: 'call', name: node.name, args: this.parseArguments(), column: node.column };
      } else if (t.text === '[') {
        this.next();
        if (this.isOp(']'))
          throw new ExpressionError('syntax', this.peek().column, 'empty index: write m["key"]');
        const key = this.parseBinary(1);
        this.expectOp(']', 'to close the index');
        node = { kind: 'index', target: node, key, column: t.column };
      } else {
        return node;
      }
    }
  }

  private parseArguments(): ExpressionNode[] {
    this.expectOp('(', 'to open the arguments');
    const args: ExpressionNode[] = [];
    if (this.isOp(')')) {
      this.next();
      return args;
    }
    for (;;) {
      args.push(this.parseBinary(1));
      if (this.isOp(',')) {
        this.next();
        continue;
      }
      const t = this.peek();
      if (t.kind === 'op' && t.text === ')') {
        this.next();
        return args;
      }
      throw this.unexpected(t, "in the arguments: expected ',' or ')'");
    }
  }
}

// Nodes written in parentheses: `(a.b).c` is not the attribute `a.b.c`, and `(f)(x)` is not a call.
const parenthesised = new WeakSet<ExpressionNode>();

function withParenthesised(node: ExpressionNode): ExpressionNode {
  if (node.kind === 'attribute') {
    const copy = { ...node };
    parenthesised.add(copy);
    return copy;
  }
  return node;
}

function unsupportedOperator(t: Token): ExpressionError {
  return new ExpressionError(
    'syntax',
    t.column,
    `unsupported operator '${t.text}': CEXL has ${OPERATOR_LIST}`,
  );
}
