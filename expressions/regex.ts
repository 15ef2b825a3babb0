/**
 * Regular expressions written for Mixer are Go (RE2) syntax. This translates the RE2
 * forms that JavaScript spells differently, and refuses those it cannot express, so
 * a pattern means the same here as it did there. Patterns compile once, at
 * configuration time when they are constants.
 */

/** A compiled pattern, or the reason it does not compile. */
export type CompiledPattern = { ok: true; regex: RegExp } | { ok: false; problem: string };

const cache = new Map<string, CompiledPattern>();
const MAX_CACHED_PATTERNS = 1000;

/**
 * Compiles an RE2 pattern for unanchored matching (as Go's regexp.MatchString).
 * Results are cached (bounded) so that patterns computed at runtime compile once too.
 */
export function compilePattern(pattern: string): CompiledPattern {
  let compiled = cache.get(pattern);
  if (compiled === undefined) {
    compiled = translate(pattern);
    if (cache.size >= MAX_CACHED_PATTERNS) cache.clear();
    cache.set(pattern, compiled);
  }
  return compiled;
}

function translate(pattern: string): CompiledPattern {
  let flags = 'u';
  let source = pattern;
  // Leading flag groups such as (?i) or (?is) apply to the whole pattern.
  const leading = /^\(\?([imsU]+)\)/.exec(source);
  if (leading !== null) {
    for (const f of leading[1]!) {
      if (f === 'U') return { ok: false, problem: 'the ungreedy flag (?U) has no JavaScript equivalent' };
      if (!flags.includes(f)) flags += f;
    }
    source = source.slice(leading[0].length);
  }
  if (/\(\?[imsU-]+[:)]/.test(source)) {
    return {
      ok: false,
      problem: 'inline flags are supported only at the start of the pattern, as in (?i)abc',
    };
  }
  source = source
    .replace(/\(\?P</g, '(?<')
    .replace(/\\A/g, '^')
    .replace(/\\z/g, '$(?![\\s\\S])')
    .replace(/\[\[:(\w+):\]\]/g, (whole, cls: string) => POSIX_CLASSES[cls] ?? whole);
  if (/\(\?[=!<][^P]/.test(pattern) && !/\(\?P?<\w+>/.test(pattern)) {
    return { ok: false, problem: 'lookaround assertions are not part of RE2 syntax' };
  }
  try {
    return { ok: true, regex: new RegExp(source, flags) };
  } catch (err) {
    return {
      ok: false,
      problem: (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, ''),
    };
  }
}

const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alnum: '[0-9A-Za-z]',
  alpha: '[A-Za-z]',
  ascii: '[\\x00-\\x7F]',
  blank: '[\\t ]',
  cntrl: '[\\x00-\\x1F\\x7F]',
  digit: '[0-9]',
  lower: '[a-z]',
  space: '[\\t\\n\\v\\f\\r ]',
  upper: '[A-Z]',
  word: '[0-9A-Za-z_]',
  xdigit: '[0-9A-Fa-f]',
};
