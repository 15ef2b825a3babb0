/**
 * Route templates: text with `{variable}` placeholders filled from a logentry instance's
 * variables, for the topic, the key and header values (`audit-{sourceNamespace|unknown}`).
 *
 * Why not the expression language: instance variables have no declared types when the
 * handler's configuration is checked (an instance computes them from attributes), and the
 * policy server has already evaluated the attribute expressions into them; what a route
 * needs is to pick variables and join them with literal text. A placeholder is
 * `{name}` or `{name|default}`: `name` is a variable's name, matched first exactly and then
 * without regard to case (as the audit record matches well-known names); `default` is used
 * when the instance has no such variable (an absent variable without a default expands to
 * the empty string). Parsed once when the configuration loads; expanding is a loop over
 * the parts, no regular expression.
 */
import type { AttributeValue } from '../../../attributes';
import { toJsonValue } from '../audit';

/** One piece of a template: literal text, or a variable with its default. */
type Part =
  | { readonly literal: string }
  | { readonly variable: string; readonly lowerCase: string; readonly fallback: string | undefined };

export interface RouteTemplate {
  /** The text it was parsed from. */
  readonly source: string;
  /** True when it has no placeholder (a fixed topic). */
  readonly fixed: boolean;
  /** The variables it names, in order. */
  readonly variables: readonly { readonly name: string; readonly hasDefault: boolean }[];
  /** The text with every placeholder filled from `variables`. */
  expand(variables: ReadonlyMap<string, AttributeValue>, sanitize?: (value: string) => string): string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Parses a template; returns the problem's message instead when it is malformed. */
export function parseRouteTemplate(source: string): RouteTemplate | string {
  const parts: Part[] = [];
  let at = 0;
  while (at < source.length) {
    const open = source.indexOf('{', at);
    const close = source.indexOf('}', at);
    if (close !== -1 && (open === -1 || close < open)) {
      return `has a "}" at offset ${close} that closes no "{"; placeholders are {variable} or {variable|default}`;
    }
    if (open === -1) {
      parts.push({ literal: source.slice(at) });
      break;
    }
    if (open > at) parts.push({ literal: source.slice(at, open) });
    if (close === -1) return `has a "{" at offset ${open} that is never closed`;
    const inner = source.slice(open + 1, close);
    if (inner.includes('{')) return `has a "{" inside the placeholder at offset ${open}`;
    const bar = inner.indexOf('|');
    const name = (bar === -1 ? inner : inner.slice(0, bar)).trim();
    if (!NAME.test(name)) {
      return `has a placeholder {${inner}} at offset ${open} whose variable name ${JSON.stringify(name)} is not a name (letters, digits, _ . -)`;
    }
    parts.push({
      variable: name,
      lowerCase: name.toLowerCase(),
      fallback: bar === -1 ? undefined : inner.slice(bar + 1),
    });
    at = close + 1;
  }
  const variables = parts.flatMap((p) =>
    'variable' in p ? [{ name: p.variable, hasDefault: p.fallback !== undefined }] : [],
  );
  return Object.freeze({
    source,
    fixed: variables.length === 0,
    variables: Object.freeze(variables),
    expand(vars: ReadonlyMap<string, AttributeValue>, sanitize?: (value: string) => string): string {
      let out = '';
      for (const part of parts) {
        if ('literal' in part) {
          out += part.literal;
          continue;
        }
        const value = lookup(vars, part.variable, part.lowerCase);
        const text = value === undefined ? (part.fallback ?? '') : valueText(value);
        out += sanitize === undefined ? text : sanitize(text);
      }
      return out;
    },
  });
}

function lookup(
  variables: ReadonlyMap<string, AttributeValue>,
  name: string,
  lowerCase: string,
): AttributeValue | undefined {
  const exact = variables.get(name);
  if (exact !== undefined) return exact;
  for (const [key, value] of variables) if (key.toLowerCase() === lowerCase) return value;
  return undefined;
}

/** A variable's value as text: strings as they are, other values as in the audit record. */
function valueText(value: AttributeValue): string {
  if (typeof value === 'string') return value;
  const json = toJsonValue(value);
  if (json === null) return '';
  return typeof json === 'object' ? JSON.stringify(json) : String(json);
}
