/**
 * The expression table shared by the expression tests: an expression, the attributes
 * it runs against (JSON, typed by TEST_MANIFEST), and what must come out — a typed
 * value, a syntax or type error at compile time, or an evaluation error — each
 * error with its exact message. Optional `refs` assert the referenced attributes
 * in Mixer's compact notation (`name`, `-name`, `map[key]`, `-map[key]`).
 */
import { STANDARD_MANIFEST, ValueType, type JsonValue } from '../../attributes';

const {
  STRING,
  INT64,
  DOUBLE,
  BOOL,
  TIMESTAMP,
  DURATION,
  IP_ADDRESS,
  EMAIL_ADDRESS,
  URI,
  DNS_NAME,
  STRING_MAP,
} = ValueType;

/** The standard vocabulary plus short names of every type, for compact cases. */
export const TEST_MANIFEST = STANDARD_MANIFEST.extend(
  (
    [
      ['s', STRING],
      ['s2', STRING],
      ['i', INT64],
      ['i2', INT64],
      ['f', DOUBLE],
      ['f2', DOUBLE],
      ['b', BOOL],
      ['b2', BOOL],
      ['t', TIMESTAMP],
      ['t2', TIMESTAMP],
      ['du', DURATION],
      ['du2', DURATION],
      ['ipa', IP_ADDRESS],
      ['ipb', IP_ADDRESS],
      ['em', EMAIL_ADDRESS],
      ['em2', EMAIL_ADDRESS],
      ['dn', DNS_NAME],
      ['dn2', DNS_NAME],
      ['u', URI],
      ['u2', URI],
      ['m', STRING_MAP],
      ['m2', STRING_MAP],
    ] as const
  ).map(([name, valueType]) => ({ name, valueType })),
).manifest;

export type Expected =
  | { readonly type: string; readonly value: unknown }
  | { readonly syntax: string }
  | { readonly typeError: string }
  | { readonly evalError: string };

export interface Case {
  readonly expr: string;
  readonly attrs?: { [name: string]: JsonValue };
  readonly want: Expected;
  readonly refs?: readonly string[];
}

const ok = (type: string, value: unknown): Expected => ({ type, value });
const T = ok('BOOL', true);
const F = ok('BOOL', false);
const syntax = (message: string): Expected => ({ syntax: message });
const typeError = (message: string): Expected => ({ typeError: message });
const evalError = (message: string): Expected => ({ evalError: message });

const OPS = 'CEXL has == != && || + < <= > >= and the default operator |';

const HEADERS = { 'x-user': 'bob', 'x-forwarded-for': '10.1.2.3', 'content-type': 'application/json' };

export const CASES: readonly Case[] = [
  // Literals.
  { expr: '"hello"', want: ok('STRING', 'hello') },
  { expr: '`raw\\n`', want: ok('STRING', 'raw\\n') },
  { expr: '"tab\\there"', want: ok('STRING', 'tab\there') },
  { expr: '"\\u00e9t\\u00e9"', want: ok('STRING', 'été') },
  { expr: "'x'", want: ok('STRING', 'x') },
  { expr: '42', want: ok('INT64', 42) },
  { expr: '-7', want: ok('INT64', -7) },
  { expr: '9223372036854775807', want: ok('INT64', '9223372036854775807') },
  { expr: '-9223372036854775808', want: ok('INT64', '-9223372036854775808') },
  { expr: '3.25', want: ok('DOUBLE', 3.25) },
  { expr: '1e3', want: ok('DOUBLE', 1000) },
  { expr: '.5', want: ok('DOUBLE', 0.5) },
  { expr: 'true', want: T },
  { expr: 'FALSE', want: F },
  { expr: '"19ms"', want: ok('DURATION', '19ms') },
  { expr: '"1.5s"', want: ok('DURATION', '1.5s') },
  { expr: '"2h45m"', want: ok('DURATION', '2h45m0s') },
  { expr: '("x")', want: ok('STRING', 'x') },

  // Attributes, absence and defaults.
  { expr: 's', attrs: { s: 'v' }, want: ok('STRING', 'v'), refs: ['s'] },
  { expr: 'i', attrs: { i: 3 }, want: ok('INT64', 3) },
  { expr: 'i', attrs: { i: '9007199254740993' }, want: ok('INT64', '9007199254740993') },
  { expr: 'f', attrs: { f: 2.5 }, want: ok('DOUBLE', 2.5) },
  { expr: 'b', attrs: { b: true }, want: T },
  { expr: 't', attrs: { t: '2015-01-02T15:04:35Z' }, want: ok('TIMESTAMP', '2015-01-02T15:04:35Z') },
  { expr: 't', attrs: { t: '2015-01-02T17:04:35.5+02:00' }, want: ok('TIMESTAMP', '2015-01-02T15:04:35.5Z') },
  { expr: 'du', attrs: { du: '1m30s' }, want: ok('DURATION', '1m30s') },
  { expr: 'ipa', attrs: { ipa: '2001:db8:0:0:0:0:0:1' }, want: ok('IP_ADDRESS', '2001:db8::1') },
  { expr: 'm', attrs: { m: { a: '1' } }, want: ok('STRING_MAP', { a: '1' }) },
  {
    expr: 'destination.service.name',
    attrs: { 'destination.service.name': 'reviews' },
    want: ok('STRING', 'reviews'),
  },
  {
    expr: 's',
    want: evalError(`column 1: attribute 's' is absent; give a default with |, as in s | "unknown"`),
    refs: ['-s'],
  },
  { expr: 'i', want: evalError(`column 1: attribute 'i' is absent; give a default with |, as in i | 0`) },
  {
    expr: 'b == true',
    want: evalError(`column 1: attribute 'b' is absent; give a default with |, as in b | false`),
  },
  {
    expr: 'm["k"]',
    want: evalError(`column 1: attribute 'm' is absent; give a default with |, as in m | emptyStringMap()`),
  },
  { expr: 's | "dflt"', want: ok('STRING', 'dflt'), refs: ['-s'] },
  { expr: 's | "dflt"', attrs: { s: 'v' }, want: ok('STRING', 'v'), refs: ['s'] },
  { expr: 's | s2 | "z"', attrs: { s2: 'two' }, want: ok('STRING', 'two'), refs: ['-s', 's2'] },
  { expr: 's | s2 | "z"', want: ok('STRING', 'z'), refs: ['-s', '-s2'] },
  {
    expr: 's | s2',
    attrs: {},
    want: evalError(`column 5: attribute 's2' is absent; give a default with |, as in s2 | "unknown"`),
  },
  { expr: 'i | 7', want: ok('INT64', 7) },
  { expr: 'du | "10ms"', want: ok('DURATION', '10ms') },
  { expr: 's | "10ms"', want: ok('STRING', '10ms') },
  { expr: 'm | emptyStringMap()', want: ok('STRING_MAP', {}) },
  { expr: '(m | emptyStringMap())["k"] | "none"', want: ok('STRING', 'none') },

  // String maps.
  { expr: 'm["x-user"]', attrs: { m: HEADERS }, want: ok('STRING', 'bob'), refs: ['m[x-user]'] },
  { expr: 'm["missing"]', attrs: { m: HEADERS }, want: ok('STRING', ''), refs: ['-m[missing]'] },
  { expr: 'm["missing"] == "bob"', attrs: { m: HEADERS }, want: F },
  {
    expr: 'm["missing"] | "anon"',
    attrs: { m: HEADERS },
    want: ok('STRING', 'anon'),
    refs: ['-m[missing]'],
  },
  { expr: 'm["x-user"] | "anon"', attrs: { m: HEADERS }, want: ok('STRING', 'bob') },
  { expr: 'm["k"] | "anon"', want: ok('STRING', 'anon'), refs: ['-m'] },
  {
    expr: 'm[s]',
    attrs: { m: HEADERS, s: 'x-user' },
    want: ok('STRING', 'bob'),
    refs: ['m[x-user]', 's'],
  },
  { expr: 'm[s] | "d"', attrs: { m: HEADERS }, want: ok('STRING', 'd'), refs: ['-s'] },
  {
    expr: 'm[s]',
    attrs: { m: HEADERS },
    want: evalError(`column 3: attribute 's' is absent; give a default with |, as in s | "unknown"`),
  },
  { expr: 'm[m2["k"]]', attrs: { m: HEADERS, m2: { k: 'x-user' } }, want: ok('STRING', 'bob') },
  {
    expr: 'request.headers["x-forwarded-for"] | "unknown"',
    attrs: { 'request.headers': HEADERS },
    want: ok('STRING', '10.1.2.3'),
  },
  { expr: 'm["a"] + m["b"]', attrs: { m: { a: 'x', b: 'y' } }, want: ok('STRING', 'xy') },

  // Equality by type.
  { expr: 's == "v"', attrs: { s: 'v' }, want: T },
  { expr: '"v" == s', attrs: { s: 'v' }, want: T },
  { expr: 's != "v"', attrs: { s: 'v' }, want: F },
  { expr: 's == s2', attrs: { s: 'a', s2: 'a' }, want: T },
  { expr: 'i == 2', attrs: { i: 2 }, want: T },
  { expr: 'i != 2', attrs: { i: 2 }, want: F },
  { expr: 'i == 9007199254740993', attrs: { i: '9007199254740992' }, want: F },
  { expr: 'i == 9007199254740993', attrs: { i: '9007199254740993' }, want: T },
  { expr: 'f == 2.5', attrs: { f: 2.5 }, want: T },
  { expr: 'b == false', attrs: { b: false }, want: T },
  { expr: 'b != b2', attrs: { b: false, b2: true }, want: T },
  { expr: 't == t2', attrs: { t: '2015-01-02T15:04:35Z', t2: '2015-01-02T16:04:35+01:00' }, want: T },
  { expr: 't == timestamp("2015-01-02T15:04:35Z")', attrs: { t: '2015-01-02T15:04:35Z' }, want: T },
  { expr: 'du == "20ms"', attrs: { du: '20ms' }, want: T },
  { expr: 'du == du2', attrs: { du: '1s', du2: '1000ms' }, want: T },
  { expr: 'ipa == ip("10.0.0.1")', attrs: { ipa: '10.0.0.1' }, want: T },
  { expr: 'ipa == ip("::ffff:10.0.0.1")', attrs: { ipa: '10.0.0.1' }, want: T },
  { expr: 'ipa == ip("2001:db8::1")', attrs: { ipa: '2001:DB8:0::1' }, want: T },
  { expr: 'ipa == ipb', attrs: { ipa: '10.0.0.1', ipb: '10.0.0.2' }, want: F },
  { expr: 'em == email("User@EXAMPLE.com")', attrs: { em: 'User@example.com' }, want: T },
  { expr: 'em == email("user@example.com")', attrs: { em: 'User@example.com' }, want: F },
  { expr: 'em == em2', attrs: { em: '"istio"@istio.io', em2: 'istio@istio.io' }, want: T },
  { expr: 'dn == dnsName("Reviews.Default.svc.")', attrs: { dn: 'reviews.default.svc' }, want: T },
  { expr: 'dn == dn2', attrs: { dn: 'a.example.com', dn2: 'b.example.com' }, want: F },
  { expr: 'u == uri("HTTP://Example.com/a?b=1")', attrs: { u: 'http://example.com/a?b=1' }, want: T },
  { expr: 'u == uri("http://example.com/A")', attrs: { u: 'http://example.com/a' }, want: F },
  { expr: 'u == uri("http://example.com:8080/")', attrs: { u: 'http://example.com/' }, want: F },
  { expr: 'm == m2', attrs: { m: { a: '1' }, m2: { a: '1' } }, want: T },
  { expr: 'm == m2', attrs: { m: { a: '1' }, m2: { a: '2' } }, want: F },
  { expr: 'm == emptyStringMap()', attrs: { m: {} }, want: T },

  // Ordering.
  { expr: 'i < 3', attrs: { i: 2 }, want: T },
  { expr: 'i <= 2', attrs: { i: 2 }, want: T },
  { expr: 'i > 2', attrs: { i: 2 }, want: F },
  { expr: 'i >= 3', attrs: { i: 2 }, want: F },
  { expr: 'i < i2', attrs: { i: '-9223372036854775808', i2: '9223372036854775807' }, want: T },
  { expr: 'f < 2.5', attrs: { f: 2.25 }, want: T },
  { expr: 's < "b"', attrs: { s: 'a' }, want: T },
  { expr: 's >= "b"', attrs: { s: 'ab' }, want: F },
  { expr: 't < t2', attrs: { t: '1977-02-04T12:00:00Z', t2: '1999-12-31T23:59:00Z' }, want: T },
  { expr: 't > t2', attrs: { t: '1977-02-04T12:00:00Z', t2: '1999-12-31T23:59:00Z' }, want: F },
  { expr: 't <= t2', attrs: { t: '1999-12-31T23:59:00Z', t2: '1999-12-31T23:59:00Z' }, want: T },
  { expr: 't >= timestamp("2000-01-01T00:00:00Z")', attrs: { t: '1999-12-31T23:59:00Z' }, want: F },
  { expr: 'du < "20ms"', attrs: { du: '19ms' }, want: T },
  { expr: 'du > "1h"', attrs: { du: '61m' }, want: T },
  { expr: 'response.duration >= "10ms"', attrs: { 'response.duration': '9.999ms' }, want: F },

  // Logic.
  { expr: 'b && b2', attrs: { b: true, b2: true }, want: T },
  { expr: 'b && b2', attrs: { b: true, b2: false }, want: F },
  { expr: 'b && b2', attrs: { b: false }, want: F, refs: ['b'] },
  { expr: 'b || b2', attrs: { b: true }, want: T, refs: ['b'] },
  { expr: 'b || b2', attrs: { b: false, b2: true }, want: T, refs: ['b', 'b2'] },
  {
    expr: 'b || b2',
    attrs: { b: false },
    want: evalError(`column 6: attribute 'b2' is absent; give a default with |, as in b2 | false`),
  },
  {
    expr: 'b && b2',
    attrs: { b2: true },
    want: evalError(`column 1: attribute 'b' is absent; give a default with |, as in b | false`),
  },
  { expr: 'i == 20 || m["foo"] == "bar"', attrs: { i: 20, m: { foo: 'bar' } }, want: T, refs: ['i'] },
  {
    expr: 'i == 20 || m["foo"] == "bar"',
    attrs: { i: 2, m: { foo: 'bar' } },
    want: T,
    refs: ['i', 'm[foo]'],
  },
  { expr: 'i == 20 || m["foo"] == "bar"', attrs: { i: 2, m: { foo: 'baz' } }, want: F },
  { expr: 'true && false || true', want: T },
  { expr: 'false || true && false', want: F },
  { expr: '(b | false) || (b2 | true)', want: T },
  { expr: 's == "a" && i > 1 || f < 0.5', attrs: { s: 'a', i: 0, f: 0.1 }, want: T },

  // Addition.
  { expr: 's + "-" + s2', attrs: { s: 'a', s2: 'b' }, want: ok('STRING', 'a-b') },
  { expr: 'i + 1', attrs: { i: 41 }, want: ok('INT64', 42) },
  { expr: 'i + i2', attrs: { i: '9007199254740992', i2: 1 }, want: ok('INT64', '9007199254740993') },
  { expr: 'i + 1', attrs: { i: '9223372036854775807' }, want: ok('INT64', '-9223372036854775808') },
  { expr: 'f + 0.5', attrs: { f: 1 }, want: ok('DOUBLE', 1.5) },
  { expr: '1 + 2 == 3', want: T },
  { expr: '"a" + "b" | "c"', want: ok('STRING', 'ab') },

  // Functions.
  { expr: 'match(s, "/api/*")', attrs: { s: '/api/v1' }, want: T },
  { expr: 'match(s, "/api/*")', attrs: { s: '/web' }, want: F },
  { expr: 'match(s, "*.json")', attrs: { s: 'a.json' }, want: T },
  { expr: 'match(s, "exact")', attrs: { s: 'exact' }, want: T },
  { expr: 'match(s, "exact")', attrs: { s: 'exactly' }, want: F },
  { expr: 'match(s, "*")', attrs: { s: '' }, want: T },
  {
    expr: 'match(request.path, "/api/*")',
    want: evalError(
      `column 7: attribute 'request.path' is absent; give a default with |, as in request.path | "unknown"`,
    ),
  },
  { expr: '"svc.*".matches(s)', attrs: { s: 'svc1' }, want: T },
  { expr: '"^svc$".matches(s)', attrs: { s: 'svc1' }, want: F },
  { expr: '"(?i)^SVC".matches(s)', attrs: { s: 'svc1' }, want: T },
  { expr: '"^[[:digit:]]+$".matches(s)', attrs: { s: '12345' }, want: T },
  { expr: '"\\\\Aab\\\\z".matches(s)', attrs: { s: 'ab' }, want: T },
  { expr: 's2.matches(s)', attrs: { s: 'abc', s2: 'b+' }, want: T },
  {
    expr: 's2.matches(s)',
    attrs: { s: 'abc', s2: '(' },
    want: evalError(`column 4: invalid regular expression '(': Unterminated group`),
  },
  { expr: 's.startsWith("/api")', attrs: { s: '/api/v1' }, want: T },
  { expr: 's.endsWith(".json")', attrs: { s: '/a.json' }, want: T },
  { expr: '"abc".startsWith("b")', want: F },
  { expr: 'm["x-user"].startsWith("b")', attrs: { m: HEADERS }, want: T },
  { expr: '(s | "x").endsWith("x")', want: T },
  { expr: 'toLower(s)', attrs: { s: 'MiXeD' }, want: ok('STRING', 'mixed') },
  { expr: 'toLower(s) == "mixed"', attrs: { s: 'MIXED' }, want: T },
  { expr: 'size(s)', attrs: { s: 'héllo' }, want: ok('INT64', 6) },
  { expr: 'size("")', want: ok('INT64', 0) },
  { expr: 'size(s) > 3', attrs: { s: 'abcd' }, want: T },
  { expr: 'conditional(b, "yes", "no")', attrs: { b: true }, want: ok('STRING', 'yes') },
  { expr: 'conditional(b, "yes", "no")', attrs: { b: false }, want: ok('STRING', 'no') },
  {
    expr: 'conditional(b, i, 0)',
    attrs: { b: true },
    want: evalError(`column 16: attribute 'i' is absent; give a default with |, as in i | 0`),
  },
  { expr: 'conditional(b, i, 0)', attrs: { b: false }, want: ok('INT64', 0), refs: ['b'] },
  { expr: 'conditional(b, "10s", "1s")', attrs: { b: true }, want: ok('DURATION', '10s') },
  { expr: 'conditional(b, "10s", s)', attrs: { b: true, s: 'x' }, want: ok('STRING', '10s') },
  { expr: 'conditionalString(b, "a", "b")', attrs: { b: false }, want: ok('STRING', 'b') },
  { expr: 'ip("10.0.0.1")', want: ok('IP_ADDRESS', '10.0.0.1') },
  { expr: 'ip("::1")', want: ok('IP_ADDRESS', '::1') },
  { expr: 'ip(s)', attrs: { s: 'fe80::1:2' }, want: ok('IP_ADDRESS', 'fe80::1:2') },
  { expr: 'ip("10.0.0.256")', want: evalError(`column 1: could not convert '10.0.0.256' to IP_ADDRESS`) },
  {
    expr: 'ip(s)',
    attrs: { s: 'nope' },
    want: evalError(`column 1: could not convert 'nope' to IP_ADDRESS`),
  },
  { expr: 'timestamp("2015-01-02T15:04:35Z")', want: ok('TIMESTAMP', '2015-01-02T15:04:35Z') },
  {
    expr: 'timestamp("2015-02-30T00:00:00Z")',
    want: evalError(
      `column 1: could not convert '2015-02-30T00:00:00Z' to TIMESTAMP: expected RFC 3339, such as 2015-01-02T15:04:35Z`,
    ),
  },
  { expr: 'email("user@example.com")', want: ok('EMAIL_ADDRESS', 'user@example.com') },
  {
    expr: 'email("Bob <bob@example.com>")',
    want: evalError(
      `column 1: could not convert 'Bob <bob@example.com>' to EMAIL_ADDRESS: display names and angle brackets are not allowed`,
    ),
  },
  {
    expr: 'email("nobody")',
    want: evalError(`column 1: could not convert 'nobody' to EMAIL_ADDRESS: it needs the form local@domain`),
  },
  {
    expr: 'dnsName("reviews.default.svc.cluster.local")',
    want: ok('DNS_NAME', 'reviews.default.svc.cluster.local'),
  },
  {
    expr: 'dnsName("bad..name")',
    want: evalError(`column 1: could not convert 'bad..name' to DNS_NAME: it has an empty label`),
  },
  {
    expr: 'dnsName("-bad.example")',
    want: evalError(
      `column 1: could not convert '-bad.example' to DNS_NAME: label '-bad' may hold only letters, digits and inner hyphens`,
    ),
  },
  { expr: 'uri("https://example.com/path?q=1")', want: ok('URI', 'https://example.com/path?q=1') },
  { expr: 'uri("")', want: evalError(`column 1: could not convert '' to URI: it is empty`) },
  {
    expr: 'uri("http://x/%zz")',
    want: evalError(`column 1: could not convert 'http://x/%zz' to URI: it has an invalid percent escape`),
  },
  { expr: 'emptyStringMap()', want: ok('STRING_MAP', {}) },

  // Syntax errors.
  { expr: '', want: syntax('column 1: empty expression') },
  { expr: '   ', want: syntax('column 1: empty expression') },
  { expr: 'a / b', want: syntax(`column 3: unsupported operator '/': ${OPS}`) },
  { expr: 'a * 2', want: syntax(`column 3: unsupported operator '*': ${OPS}`) },
  { expr: 'i % 2', want: syntax(`column 3: unsupported operator '%': ${OPS}`) },
  { expr: 'i - 1', want: syntax(`column 3: unsupported operator '-': ${OPS}`) },
  { expr: 's = "a"', want: syntax(`column 3: unsupported operator '=': ${OPS}`) },
  { expr: 's := "a"', want: syntax(`column 3: unsupported operator ':=': ${OPS}`) },
  { expr: '!b', want: syntax(`column 1: unsupported operator '!': ${OPS}`) },
  { expr: 'i & 1', want: syntax(`column 3: unsupported operator '&': ${OPS}`) },
  { expr: 'i << 1', want: syntax(`column 3: unsupported operator '<<': ${OPS}`) },
  { expr: 'i ^ 1', want: syntax(`column 3: unsupported operator '^': ${OPS}`) },
  {
    expr: '-i',
    want: syntax(`column 1: unsupported operator '-': only a number literal may be negated, as in -1`),
  },
  { expr: 's ==', want: syntax('column 5: unexpected end of expression where an operand was expected') },
  {
    expr: '(s',
    want: syntax("column 3: unexpected end of expression to close the parenthesis: expected ')'"),
  },
  { expr: 's)', want: syntax("column 2: unexpected ')' after a complete expression") },
  { expr: 's s2', want: syntax("column 3: unexpected 's2' after a complete expression") },
  { expr: '"abc', want: syntax('column 1: string literal not terminated: add a closing "') },
  { expr: '`abc', want: syntax('column 1: raw string literal not terminated: add a closing `') },
  { expr: "'ab'", want: syntax('column 1: character literal must hold exactly one character, got 2') },
  { expr: '"\\q"', want: syntax("column 2: unknown escape sequence '\\q'") },
  { expr: '"\\x4"', want: syntax("column 2: invalid escape sequence '\\x4\"'") },
  {
    expr: '9223372036854775808',
    want: syntax('column 1: integer literal 9223372036854775808 is out of the INT64 range'),
  },
  { expr: '0x1F', want: syntax("column 1: integer literal '0x1F' must be decimal digits only") },
  { expr: '12abc', want: syntax("column 1: malformed number '12a'") },
  { expr: 'm[]', want: syntax('column 3: empty index: write m["key"]') },
  { expr: 'm["a"', want: syntax("column 6: unexpected end of expression to close the index: expected ']'") },
  {
    expr: 'match(s, "a"',
    want: syntax("column 13: unexpected end of expression in the arguments: expected ',' or ')'"),
  },
  {
    expr: 'match(s "a")',
    want: syntax("column 9: unexpected '\"a\"' in the arguments: expected ',' or ')'"),
  },
  { expr: 's.', want: syntax("column 3: unexpected end of expression after '.': expected a name") },
  {
    expr: '(s).x',
    want: syntax("column 5: '.x' must name a method call, as in .x(…): only attribute names may be dotted"),
  },
  { expr: 'a.b(1)(2)', want: syntax('column 7: only a function name may be called, as in match(a, "b*")') },
  { expr: '()', want: syntax('column 2: empty parentheses') },
  { expr: 's # x', want: syntax("column 3: unexpected character '#'") },
  { expr: '{}', want: syntax(`column 1: unsupported operator '{': ${OPS}`) },

  // Type errors.
  { expr: 'nosuch', want: typeError("column 1: unknown attribute 'nosuch'") },
  {
    expr: 'source.nmae == "a"',
    want: typeError("column 1: unknown attribute 'source.nmae'; did you mean 'source.name'?"),
  },
  { expr: 's == unknown.thing', want: typeError("column 6: unknown attribute 'unknown.thing'") },
  { expr: 'nosuch(s)', want: typeError("column 1: unknown function 'nosuch'") },
  { expr: 'mach(s, "a")', want: typeError("column 1: unknown function 'mach'; did you mean 'match'?") },
  {
    expr: 'true == i',
    want: typeError('column 6: both sides of == must have the same type, got BOOL and INT64'),
  },
  {
    expr: '3.14 == i',
    want: typeError('column 6: both sides of == must have the same type, got DOUBLE and INT64'),
  },
  {
    expr: 's != 1',
    want: typeError('column 3: both sides of != must have the same type, got STRING and INT64'),
  },
  {
    expr: 'i == 1.0',
    want: typeError('column 3: both sides of == must have the same type, got INT64 and DOUBLE'),
  },
  {
    expr: 's | 1',
    want: typeError('column 3: both sides of | must have the same type, got STRING and INT64'),
  },
  {
    expr: 'i | "x"',
    want: typeError('column 3: both sides of | must have the same type, got INT64 and STRING'),
  },
  {
    expr: 'du == "abc"',
    want: typeError('column 4: both sides of == must have the same type, got DURATION and STRING'),
  },
  {
    expr: 'ipa == "10.0.0.1"',
    want: typeError('column 5: both sides of == must have the same type, got IP_ADDRESS and STRING'),
  },
  {
    expr: 'dn == "example.com"',
    want: typeError('column 4: both sides of == must have the same type, got DNS_NAME and STRING'),
  },
  { expr: 's && b', want: typeError('column 1: && needs BOOL operands, got STRING on the left') },
  { expr: 'b || 1', want: typeError('column 6: || needs BOOL operands, got INT64 on the right') },
  { expr: 'b < b2', want: typeError('column 3: < is not defined for BOOL values') },
  { expr: 'ipa > ipb', want: typeError('column 5: > is not defined for IP_ADDRESS values') },
  { expr: 'm <= m2', want: typeError('column 3: <= is not defined for STRING_MAP values') },
  {
    expr: 'b + b2',
    want: typeError('column 3: + is not defined for BOOL values; it adds STRING, INT64 and DOUBLE'),
  },
  {
    expr: 'du + du2',
    want: typeError('column 4: + is not defined for DURATION values; it adds STRING, INT64 and DOUBLE'),
  },
  { expr: 's["k"]', want: typeError('column 2: only a STRING_MAP can be indexed, got STRING') },
  { expr: 'm[1]', want: typeError('column 3: a map key must be a STRING, got INT64') },
  {
    expr: 'match(s)',
    want: typeError('column 1: match takes 2 arguments, got 1; use it as match(request.path, "/api/*")'),
  },
  {
    expr: 'match(s, "a", "b")',
    want: typeError('column 1: match takes 2 arguments, got 3; use it as match(request.path, "/api/*")'),
  },
  {
    expr: 'emptyStringMap(1)',
    want: typeError(
      'column 1: emptyStringMap takes 0 arguments, got 1; use it as request.headers | emptyStringMap()',
    ),
  },
  { expr: 'match(i, "a")', want: typeError('column 7: argument 1 of match must be a STRING, got INT64') },
  { expr: 'ip(1)', want: typeError('column 4: argument 1 of ip must be a STRING, got INT64') },
  {
    expr: 's.startsWith(1)',
    want: typeError('column 14: argument 1 of startsWith must be a STRING, got INT64'),
  },
  {
    expr: 'i.startsWith("1")',
    want: typeError('column 1: startsWith must be called on a STRING, got INT64'),
  },
  {
    expr: 'startsWith(s, "a")',
    want: typeError(
      'column 1: startsWith is a method: call it on a value, as in request.path.startsWith("/api")',
    ),
  },
  {
    expr: 's.match("a")',
    want: typeError('column 3: match is a function, not a method: call it as match(request.path, "/api/*")'),
  },
  { expr: '"(".matches(s)', want: typeError('column 1: invalid regular expression "(": Unterminated group') },
  {
    expr: 'conditional(s, "a", "b")',
    want: typeError('column 13: argument 1 of conditional must be a BOOL, got STRING'),
  },
  {
    expr: 'conditional(b, "a", 1)',
    want: typeError(
      'column 21: argument 3 of conditional must have the type of argument 2, STRING; got INT64',
    ),
  },
  { expr: 'size(i)', want: typeError('column 6: argument 1 of size must be a STRING, got INT64') },
  { expr: 'toLower(m)', want: typeError('column 9: argument 1 of toLower must be a STRING, got STRING_MAP') },
];
