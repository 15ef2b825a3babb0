/**
 * The tokenizer of CEXL, Mixer's expression language: the Go expression syntax
 * restricted to literals, identifiers, parentheses, calls, indexing and the
 * operators CEXL defines. Go operators that CEXL lacks are still recognised, so
 * that the parser can name them in its error.
 */
import { ExpressionError } from './errors';

export type TokenKind = 'ident' | 'int' | 'float' | 'string' | 'op' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** The source text of the token (for strings: with quotes). */
  readonly text: string;
  /** For string literals: the unquoted value. */
  readonly value?: string;
  /** 1-based column of the first character. */
  readonly column: number;
}

// Longest first, so that `<=` wins over `<` and `&&` over `&`.
const OPERATORS = [
  '&^=',
  '<<=',
  '>>=',
  '...',
  '&&',
  '||',
  '==',
  '!=',
  '<=',
  '>=',
  '<<',
  '>>',
  '&^',
  ':=',
  '<-',
  '++',
  '--',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '&=',
  '|=',
  '^=',
  '+',
  '-',
  '*',
  '/',
  '%',
  '&',
  '|',
  '^',
  '<',
  '>',
  '=',
  '!',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  ',',
  ';',
  '.',
  ':',
  '~',
];

/** Splits an expression into tokens; the last token is always `eof`. */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = source.length;
  while (i < n) {
    const c = source.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) {
      i++;
      continue;
    }
    const column = i + 1;
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(source.charCodeAt(j))) j++;
      tokens.push({ kind: 'ident', text: source.slice(i, j), column });
      i = j;
      continue;
    }
    if (isDigit(c) || (c === 46 /* . */ && isDigit(source.charCodeAt(i + 1)))) {
      const end = scanNumber(source, i);
      const text = source.slice(i, end);
      if (end < n && isIdentPart(source.charCodeAt(end))) {
        throw new ExpressionError('syntax', column, `malformed number '${text}${source[end]}'`);
      }
      tokens.push({ kind: /[.eE]/.test(text) && !/^0[xX]/.test(text) ? 'float' : 'int', text, column });
      i = end;
      continue;
    }
    if (c === 34 /* " */ || c === 96 /* ` */ || c === 39 /* ' */) {
      const { end, value } = scanString(source, i);
      tokens.push({ kind: 'string', text: source.slice(i, end), value, column });
      i = end;
      continue;
    }
    const op = OPERATORS.find((o) => source.startsWith(o, i));
    if (op === undefined) {
      throw new ExpressionError(
        'syntax',
        column,
        `unexpected character '${String.fromCodePoint(source.codePointAt(i)!)}'`,
      );
    }
    tokens.push({ kind: 'op', text: op, column });
    i += op.length;
  }
  tokens.push({ kind: 'eof', text: '', column: n + 1 });
  return tokens;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isIdentStart(c: number): boolean {
  return (
    (c >= 97 && c <= 122) ||
    (c >= 65 && c <= 90) ||
    c === 95 ||
    (c > 127 && /\p{L}/u.test(String.fromCharCode(c)))
  );
}

function isIdentPart(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || (c > 127 && /\p{Nd}/u.test(String.fromCharCode(c)));
}

function scanNumber(s: string, start: number): number {
  let i = start;
  if (s[i] === '0' && (s[i + 1] === 'x' || s[i + 1] === 'X')) {
    i += 2;
    while (/[0-9a-fA-F_]/.test(s[i] ?? '')) i++;
    return i;
  }
  while (/[0-9_]/.test(s[i] ?? '')) i++;
  if (s[i] === '.') {
    i++;
    while (/[0-9_]/.test(s[i] ?? '')) i++;
  }
  if (s[i] === 'e' || s[i] === 'E') {
    let j = i + 1;
    if (s[j] === '+' || s[j] === '-') j++;
    if (isDigit(s.charCodeAt(j))) {
      i = j;
      while (isDigit(s.charCodeAt(i))) i++;
    }
  }
  return i;
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
};

/** Scans a Go string literal: "interpreted", `raw` or 'c' (one character). */
function scanString(s: string, start: number): { end: number; value: string } {
  const quote = s[start]!;
  const column = start + 1;
  if (quote === '`') {
    const close = s.indexOf('`', start + 1);
    if (close === -1)
      throw new ExpressionError('syntax', column, 'raw string literal not terminated: add a closing `');
    return { end: close + 1, value: s.slice(start + 1, close).replace(/\r/g, '') };
  }
  let value = '';
  let i = start + 1;
  for (;;) {
    if (i >= s.length || s[i] === '\n') {
      const what = quote === '"' ? 'string literal' : 'character literal';
      throw new ExpressionError('syntax', column, `${what} not terminated: add a closing ${quote}`);
    }
    const ch = s[i]!;
    if (ch === quote) break;
    if (ch !== '\\') {
      value += ch;
      i++;
      continue;
    }
    const e = s[i + 1] ?? '';
    if (e in SIMPLE_ESCAPES) {
      value += SIMPLE_ESCAPES[e];
      i += 2;
    } else if (e === quote) {
      value += quote;
      i += 2;
    } else if (e === 'x' || e === 'u' || e === 'U' || /[0-7]/.test(e)) {
      const digits = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 3;
      const from = /[0-7]/.test(e) ? i + 1 : i + 2;
      const text = s.slice(from, from + digits);
      const radix = /[0-7]/.test(e) ? 8 : 16;
      if (text.length !== digits || !(radix === 8 ? /^[0-7]+$/ : /^[0-9a-fA-F]+$/).test(text)) {
        throw new ExpressionError('syntax', i + 1, `invalid escape sequence '\\${e}${text}'`);
      }
      const code = parseInt(text, radix);
      if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff && digits > 3)) {
        throw new ExpressionError(
          'syntax',
          i + 1,
          `escape sequence '\\${e}${text}' is not a valid Unicode code point`,
        );
      }
      // \x and octal escapes are bytes in Go; bytes above 0x7f are kept as the code point of the same number.
      value += String.fromCodePoint(code);
      i = from + digits;
    } else {
      throw new ExpressionError('syntax', i + 1, `unknown escape sequence '\\${e}'`);
    }
  }
  if (quote === "'" && [...value].length !== 1) {
    throw new ExpressionError(
      'syntax',
      column,
      `character literal must hold exactly one character, got ${[...value].length}`,
    );
  }
  return { end: i + 1, value };
}
