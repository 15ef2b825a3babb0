/**
 * A YAML file read for validation: its value as plain data, and the line where each path
 * (`routes[2].match.headers[0]`) is written, so that every problem can name its line.
 */
import { LineCounter, parseDocument } from 'yaml';
import { yamlPathLine } from '../policy-server';

/** At most this many alias expansions, so that an "alias bomb" fails instead of exhausting memory. */
const MAX_ALIAS_COUNT = 100;

/** A parsed YAML file, or its syntax errors. */
export type YamlSource =
  | {
      readonly ok: true;
      /** The document as plain data; undefined for an empty file. */
      readonly value: unknown;
      /** The 1-based line of the value at `path`, or of its nearest ancestor that is written. */
      lineOf(path: string): number;
    }
  | { readonly ok: false; readonly errors: readonly { line: number; message: string }[] };

/** Parses `text` as one YAML document. Pure. */
export function parseYamlSource(text: string): YamlSource {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;
  if (document.errors.length > 0) {
    return {
      ok: false,
      errors: document.errors.map((e) => ({
        line: lineAt(e.pos[0]),
        message: `invalid YAML: ${e.message}; ${syntaxFix(e.code)}`,
      })),
    };
  }
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    return {
      ok: false,
      errors: [
        {
          line: 1,
          message: `invalid YAML: ${(error as Error).message}; use fewer aliases, or write the values out`,
        },
      ],
    };
  }
  const root = document.contents;
  return {
    ok: true,
    value: value ?? undefined,
    lineOf: (path) => yamlPathLine(root, path, lineAt) ?? 1,
  };
}

/** How to fix a YAML syntax error, by the yaml library's error code. */
function syntaxFix(code: string): string {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'remove or rename one of the duplicate keys';
    case 'BAD_INDENT':
      return 'indent the keys of one mapping, or the items of one list, to the same column';
    case 'TAB_AS_INDENT':
      return 'indent with spaces, not tabs';
    case 'MISSING_CHAR':
      return 'add the missing character';
    case 'MULTIPLE_DOCS':
      return 'keep the whole proxy configuration in one document (no second ---)';
    default:
      return 'fix the YAML syntax at this line';
  }
}
