/**
 * String matchers compiled once at configuration time: each is a plain function, so a
 * request tests a route without building anything.
 */
import type { StringMatch } from './config-model';

export type StringTest = (value: string) => boolean;

export function compileStringMatch(match: StringMatch): StringTest {
  if ('exact' in match) {
    const exact = match.exact;
    return (value) => value === exact;
  }
  if ('prefix' in match) {
    const prefix = match.prefix;
    return (value) => value.startsWith(prefix);
  }
  if ('suffix' in match) {
    const suffix = match.suffix;
    return (value) => value.endsWith(suffix);
  }
  const regex = match.regex;
  return (value) => regex.test(value);
}
