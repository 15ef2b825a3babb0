/** The syntax tree of an expression, as the parser produces it. Columns are 1-based. */
import type { ValueType } from '../attributes';

/** The binary operators of CEXL. `|` is the default operator: its left side if present, else its right. */
export type BinaryOperator = '||' | '&&' | '==' | '!=' | '<' | '<=' | '>' | '>=' | '+' | '|';

export interface LiteralNode {
  readonly kind: 'literal';
  /** STRING, INT64, DOUBLE or BOOL. */
  readonly type: ValueType;
  readonly value: string | bigint | number | boolean;
  readonly column: number;
}

export interface AttributeNode {
  readonly kind: 'attribute';
  /** The dotted name, such as `request.headers`. */
  readonly name: string;
  readonly column: number;
}

export interface BinaryNode {
  readonly kind: 'binary';
  readonly op: BinaryOperator;
  readonly left: ExpressionNode;
  readonly right: ExpressionNode;
  /** Column of the operator. */
  readonly column: number;
}

export interface IndexNode {
  readonly kind: 'index';
  readonly target: ExpressionNode;
  readonly key: ExpressionNode;
  /** Column of the `[`. */
  readonly column: number;
}

export interface CallNode {
  readonly kind: 'call';
  readonly name: string;
  /** The receiver of a method call (`target.name(args)`); undefined for a plain function call. */
  readonly target?: ExpressionNode;
  readonly args: readonly ExpressionNode[];
  /** Column of the function or method name. */
  readonly column: number;
}

export type ExpressionNode = LiteralNode | AttributeNode | BinaryNode | IndexNode | CallNode;

/** Writes a node back as text, fully parenthesised; used in messages and tests. */
export function formatNode(node: ExpressionNode): string {
  switch (node.kind) {
    case 'literal':
      return typeof node.value === 'string' ? JSON.stringify(node.value) : String(node.value);
    case 'attribute':
      return node.name;
    case 'binary':
      return `(${formatNode(node.left)} ${node.op} ${formatNode(node.right)})`;
    case 'index':
      return `${formatNode(node.target)}[${formatNode(node.key)}]`;
    case 'call': {
      const args = node.args.map(formatNode).join(', ');
      return node.target === undefined
        ? `${node.name}(${args})`
        : `${formatNode(node.target)}.${node.name}(${args})`;
    }
  }
}
