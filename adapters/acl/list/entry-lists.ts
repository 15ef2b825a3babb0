/**
 * The lists a list checker consults, compiled once per fetched list: a Set for strings, a
 * Set of case-folded strings, compiled regular expressions, or IP ranges. Also the
 * provider's formats, which are Mixer's: strings and regular expressions one per line
 * (empty lines ignored); IP addresses as a YAML document `whitelist: [ ... ]` (the key is
 * `whitelist` for blacklists too, matched ignoring case as Go's JSON decoding did).
 */
import { parse as parseYaml } from 'yaml';
import type { IpAddress } from '../../../attributes';
// compilePattern is not part of expressions/index.ts yet; this is its only user outside expressions/.
import { compilePattern } from '../../../expressions';
import { IpRangeSet, parseIpRange } from './ip-ranges';

export const ENTRY_TYPES = ['STRINGS', 'CASE_INSENSITIVE_STRINGS', 'IP_ADDRESSES', 'REGEX'] as const;
export type EntryType = (typeof ENTRY_TYPES)[number];

/** A compiled list: text lists look values up by their text, IP lists by address. */
export type EntryList =
  | { readonly kind: 'text'; readonly size: number; has(text: string): boolean }
  | { readonly kind: 'ip'; readonly size: number; has(address: IpAddress): boolean };

/** A list, or why the entries do not make one. */
export type CompiledList = { ok: true; list: EntryList } | { ok: false; problem: string };

const ASCII = /^[\x00-\x7f]*$/;

/**
 * Case folding as Mixer's `strings.ToUpper`: rune by rune, so that `ß` stays `ß` rather than
 * becoming `SS` (which JavaScript's toUpperCase would do and Go's does not).
 */
export function foldCase(text: string): string {
  if (ASCII.test(text)) return text.toUpperCase();
  let folded = '';
  for (const ch of text) {
    const upper = ch.toUpperCase();
    folded += upper.length === ch.length ? upper : ch;
  }
  return folded;
}

/** Why an IP entry is refused, for messages: undefined when it is an address or range. */
export function ipEntryProblem(entry: string): string | undefined {
  if (parseIpRange(entry) !== undefined) return undefined;
  return (
    `${JSON.stringify(entry)} is not an IP address or CIDR range; write an address such as ` +
    '10.1.2.3 or 2001:db8::1, or a range such as 10.0.0.0/8 or 2001:db8::/32'
  );
}

/** Why a regular expression entry is refused: undefined when it compiles as RE2. */
export function regexEntryProblem(entry: string): string | undefined {
  const compiled = compilePattern(entry);
  if (compiled.ok) return undefined;
  return `${JSON.stringify(entry)} is not a valid RE2 regular expression: ${compiled.problem}`;
}

/**
 * The entries of a provider's text list with their line numbers: split on newlines, a
 * trailing CR dropped (Mixer kept it, so CRLF lists never matched), empty lines skipped.
 */
function lines(body: string): [line: number, entry: string][] {
  const out: [number, string][] = [];
  body.split('\n').forEach((line, i) => {
    const entry = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (entry !== '') out.push([i + 1, entry]);
  });
  return out;
}

/** The entries of a provider's IP list (`whitelist: [...]`), or what is wrong with the document. */
function ipDocumentEntries(body: string): { entries: string[] } | { problem: string } {
  let document: unknown;
  try {
    document = parseYaml(body);
  } catch (err) {
    return { problem: `not a YAML document: ${(err as Error).message.split('\n')[0]}` };
  }
  if (document === null || document === undefined) return { entries: [] };
  if (typeof document !== 'object' || Array.isArray(document)) {
    return {
      problem: 'not a mapping with a whitelist; serve a YAML document such as "whitelist: [10.0.0.0/8]"',
    };
  }
  const record = document as Record<string, unknown>;
  const key =
    'whitelist' in record ? 'whitelist' : Object.keys(record).find((k) => k.toLowerCase() === 'whitelist');
  const list = key === undefined ? undefined : record[key];
  if (list === undefined || list === null) return { entries: [] };
  if (!Array.isArray(list)) return { problem: 'whitelist must be a list of addresses and ranges' };
  const entries: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const entry: unknown = list[i];
    if (typeof entry !== 'string')
      return { problem: `whitelist[${i}] must be a string, got ${String(entry)}` };
    entries.push(entry);
  }
  return { entries };
}

function textList(entries: Set<string>, has: (text: string) => boolean): EntryList {
  return { kind: 'text', size: entries.size, has };
}

/**
 * Compiles a list from a provider's body ('' when there is no provider) and the configured
 * overrides, which are consulted as part of the same list. Overrides are validated with the
 * configuration, so a problem here names the provider's entries.
 */
export function compileEntryList(type: EntryType, body: string, overrides: readonly string[]): CompiledList {
  switch (type) {
    case 'STRINGS': {
      const entries = new Set(lines(body).map(([, entry]) => entry));
      for (const entry of overrides) if (entry !== '') entries.add(entry);
      return { ok: true, list: textList(entries, (text) => entries.has(text)) };
    }
    case 'CASE_INSENSITIVE_STRINGS': {
      const entries = new Set(lines(body).map(([, entry]) => foldCase(entry)));
      for (const entry of overrides) if (entry !== '') entries.add(foldCase(entry));
      return { ok: true, list: textList(entries, (text) => entries.has(foldCase(text))) };
    }
    case 'REGEX': {
      const patterns: RegExp[] = [];
      const sources: [where: string, pattern: string][] = [
        ...lines(body).map(([line, entry]): [string, string] => [`line ${line}`, entry]),
        ...overrides.map((entry, i): [string, string] => [`overrides[${i}]`, entry]),
      ];
      for (const [where, source] of sources) {
        const compiled = compilePattern(source);
        if (!compiled.ok) return { ok: false, problem: `${where}: ${regexEntryProblem(source)}` };
        patterns.push(compiled.regex);
      }
      const has = (text: string): boolean => {
        for (const pattern of patterns) if (pattern.test(text)) return true;
        return false;
      };
      return { ok: true, list: { kind: 'text', size: patterns.length, has } };
    }
    case 'IP_ADDRESSES': {
      const document = body === '' ? { entries: [] } : ipDocumentEntries(body);
      if ('problem' in document) return { ok: false, problem: document.problem };
      const ranges = new IpRangeSet();
      const sources: [where: string, entry: string][] = [
        ...document.entries.map((entry, i): [string, string] => [`whitelist[${i}]`, entry]),
        ...overrides.map((entry, i): [string, string] => [`overrides[${i}]`, entry]),
      ];
      for (const [where, entry] of sources) {
        const range = parseIpRange(entry);
        if (range === undefined) return { ok: false, problem: `${where}: ${ipEntryProblem(entry)}` };
        ranges.add(range);
      }
      return {
        ok: true,
        list: { kind: 'ip', size: ranges.size, has: (address) => ranges.contains(address) },
      };
    }
  }
}
