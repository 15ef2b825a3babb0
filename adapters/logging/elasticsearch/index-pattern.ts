/**
 * The `index` parameter: the name of the index a record goes to, as a pattern compiled once
 * at configuration time.
 *
 * Text outside braces is kept as written. A brace holds either
 * - a date format of the tokens `yyyy`, `MM`, `dd`, `HH` and the separators `.`, `-`, `_`
 *   (`{yyyy.MM.dd}`, `{yyyy-MM}`): the date of the record's `@timestamp`, in UTC; or
 * - a field of the audit record by its dotted path, with an optional fallback after `|`
 *   (`{switchboard.destination.namespace|unknown}`, `{switchboard.variables.tenant|none}`):
 *   its value, lower-cased, with the characters an index name may not hold replaced by `_`.
 *   A field that is absent (or not a string, number or boolean) gives the fallback, by
 *   default `unknown`.
 *
 * So `audit-{yyyy.MM.dd}` writes daily indices, and
 * `audit-{switchboard.destination.namespace|none}-{yyyy.MM}` one index per namespace and month.
 * The index template matches every index the pattern can name: each brace becomes `*`.
 */
import type { ConfigProblem } from '../../schema';

type Part =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'date'; readonly tokens: readonly string[] }
  | { readonly kind: 'field'; readonly path: readonly string[]; readonly fallback: string };

const DATE_TOKEN = /yyyy|MM|dd|HH|[.\-_]/g;
/** Characters Elasticsearch refuses in index names (and `#`, `:` which it deprecates). */
const FORBIDDEN = /[\\/*?"<>| ,#:A-Z]/;
const FORBIDDEN_DYNAMIC = /[\\/*?"<>| ,#:]/g;
const MAX_INDEX_BYTES = 255;

/** The UTC date parts of a record's `@timestamp` (`2026-11-27T05:06:07.123456789Z`). */
interface DateParts {
  readonly yyyy: string;
  readonly MM: string;
  readonly dd: string;
  readonly HH: string;
}

const RFC3339_PREFIX = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})/;

export class IndexPattern {
  private constructor(
    readonly source: string,
    private readonly parts: readonly Part[],
  ) {}

  /**
   * Compiles `source`, or returns its problems (path `index`).
   * @param path where the pattern is in the configuration, for messages
   */
  static compile(source: string, path = 'index'): IndexPattern | ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const parts: Part[] = [];
    let at = 0;
    while (at < source.length) {
      const open = source.indexOf('{', at);
      const close = source.indexOf('}', at);
      if (close !== -1 && (open === -1 || close < open)) {
        problems.push({ path, message: `has a "}" without its "{" at character ${close + 1}: ${source}` });
        break;
      }
      if (open === -1) {
        parts.push({ kind: 'text', text: source.slice(at) });
        break;
      }
      if (open > at) parts.push({ kind: 'text', text: source.slice(at, open) });
      const end = source.indexOf('}', open);
      if (end === -1) {
        problems.push({ path, message: `has a "{" without its "}" at character ${open + 1}: ${source}` });
        break;
      }
      const inside = source.slice(open + 1, end);
      const part = compilePlaceholder(inside);
      if (typeof part === 'string') problems.push({ path, message: `{${inside}}: ${part}` });
      else parts.push(part);
      at = end + 1;
    }
    for (const part of parts) {
      if (part.kind === 'text' && FORBIDDEN.test(part.text)) {
        problems.push({
          path,
          message: `${JSON.stringify(part.text)} may not be in an index name: use lower case, and none of \\ / * ? " < > | space , # :`,
        });
      }
    }
    const first = parts[0];
    if (first?.kind === 'text' && /^[-_+.]/.test(first.text)) {
      problems.push({
        path,
        message: `must not begin with -, _, + or . (Elasticsearch refuses such index names)`,
      });
    }
    if (first === undefined)
      problems.push({ path, message: 'must not be empty: give a name such as audit-{yyyy.MM.dd}' });
    if (first !== undefined && first.kind !== 'text') {
      problems.push({
        path,
        message: `must begin with plain text, such as audit-${source}, so that its index template matches only its own indices`,
      });
    }
    return problems.length > 0 ? problems : new IndexPattern(source, parts);
  }

  /** Whether the name depends on the record's date. */
  get dated(): boolean {
    return this.parts.some((part) => part.kind === 'date');
  }

  /** The index template's pattern: every brace as `*` (`audit-{yyyy.MM.dd}` → `audit-*`). */
  get templatePattern(): string {
    return this.parts
      .map((part) => (part.kind === 'text' ? part.text : '*'))
      .join('')
      .replace(/\*+/g, '*');
  }

  /**
   * The index of a record. Never throws: a `@timestamp` that is not RFC 3339 gives the date
   * of `nowMs`; an absent field gives its fallback.
   */
  indexFor(record: Readonly<Record<string, unknown>>, nowMs: number): string {
    let date: DateParts | undefined;
    let name = '';
    for (const part of this.parts) {
      if (part.kind === 'text') name += part.text;
      else if (part.kind === 'date') {
        date ??= dateParts(record['@timestamp'], nowMs);
        for (const token of part.tokens) name += token in date ? date[token as keyof DateParts] : token;
      } else name += fieldValue(record, part.path) ?? part.fallback;
    }
    // Elasticsearch counts bytes; a long field value is cut rather than refused.
    while (Buffer.byteLength(name) > MAX_INDEX_BYTES) name = name.slice(0, -1);
    return name;
  }
}

function compilePlaceholder(inside: string): Part | string {
  if (inside === '')
    return 'is empty: give a date format such as {yyyy.MM.dd} or a field such as {switchboard.destination.namespace}';
  if (/^(yyyy|MM|dd|HH)/.test(inside)) {
    const tokens = inside.match(DATE_TOKEN) ?? [];
    if (tokens.join('') !== inside) {
      return 'is not a date format of yyyy, MM, dd and HH separated by . - or _ (such as {yyyy.MM.dd})';
    }
    return { kind: 'date', tokens };
  }
  const bar = inside.indexOf('|');
  const path = bar === -1 ? inside : inside.slice(0, bar);
  const fallback = bar === -1 ? 'unknown' : inside.slice(bar + 1);
  if (!/^[@\w]+(\.[\w-]+)*$/.test(path)) {
    return 'is neither a date format (such as yyyy.MM.dd) nor a dotted field path of the audit record (such as switchboard.destination.namespace)';
  }
  if (FORBIDDEN.test(fallback)) return `its fallback ${JSON.stringify(fallback)} may not be in an index name`;
  return { kind: 'field', path: path.split('.'), fallback };
}

function dateParts(timestamp: unknown, nowMs: number): DateParts {
  const match = typeof timestamp === 'string' ? RFC3339_PREFIX.exec(timestamp) : null;
  if (match !== null) return { yyyy: match[1]!, MM: match[2]!, dd: match[3]!, HH: match[4]! };
  const now = new Date(nowMs).toISOString();
  return { yyyy: now.slice(0, 4), MM: now.slice(5, 7), dd: now.slice(8, 10), HH: now.slice(11, 13) };
}

function fieldValue(record: Readonly<Record<string, unknown>>, path: readonly string[]): string | undefined {
  let node: unknown = record;
  for (const key of path) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  if (typeof node !== 'string' && typeof node !== 'number' && typeof node !== 'boolean') return undefined;
  const text = String(node).toLowerCase().replace(FORBIDDEN_DYNAMIC, '_');
  return text === '' ? undefined : text;
}
