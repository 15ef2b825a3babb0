/**
 * The functions of CEXL: their signatures, for the type checker, and their
 * implementations, for the compiler. The set and the signatures are Mixer's.
 * An implementation returns its result, or a string saying why it failed (the
 * compiler turns that into an EvaluationError with the call's column).
 */
import { IpAddress, Timestamp, ValueType, type AttributeValue } from '../attributes';
import { dnsNameProblem, emailProblem, uriProblem } from './network-names';
import { compilePattern } from './regex';

/** Failure of a function: why it could not produce a value. */
export class FunctionFailure {
  constructor(readonly problem: string) {}
}

export interface FunctionSignature {
  readonly name: string;
  /** True for methods, called as `target.name(args)`. */
  readonly method: boolean;
  /** For methods: the type of the target. */
  readonly targetType?: ValueType;
  /** Argument types; VALUE_TYPE_UNSPECIFIED means "any type, the same for every such argument". */
  readonly argumentTypes: readonly ValueType[];
  /** Return type; VALUE_TYPE_UNSPECIFIED means "the type of the generic arguments". */
  readonly returnType: ValueType;
  /** A short usage example for error messages. */
  readonly usage: string;
  /**
   * The implementation; for methods the target is the first value. Absent for the
   * functions the compiler builds itself (conditional evaluates only one branch).
   */
  readonly implementation?: (...args: never[]) => AttributeValue | FunctionFailure;
  /**
   * For a two-operand function whose operand `operand` is a constant: builds, once at
   * compile time, an implementation of the other operand alone (a glob split into its
   * prefix, a pattern compiled to its RegExp).
   */
  readonly withConstant?: {
    readonly operand: 0 | 1;
    readonly bind: (constant: never) => (other: never) => AttributeValue | FunctionFailure;
  };
}

const {
  STRING,
  INT64,
  BOOL,
  TIMESTAMP,
  IP_ADDRESS,
  EMAIL_ADDRESS,
  URI,
  DNS_NAME,
  STRING_MAP,
  VALUE_TYPE_UNSPECIFIED,
} = ValueType;

const EMPTY_STRING_MAP: ReadonlyMap<string, string> = new Map();

/** Glob match as Mixer's `match`: a trailing `*` matches a prefix, a leading `*` a suffix, else exact. */
export function globMatch(value: string, pattern: string): boolean {
  return globMatcher(pattern)(value);
}

/** The test of one glob pattern, split once. */
function globMatcher(pattern: string): (value: string) => boolean {
  if (pattern.endsWith('*')) {
    const prefix = pattern.slice(0, -1);
    return (value) => value.startsWith(prefix);
  }
  if (pattern.startsWith('*')) {
    const suffix = pattern.slice(1);
    return (value) => value.endsWith(suffix);
  }
  return (value) => value === pattern;
}

function regexMatches(pattern: string, value: string): boolean | FunctionFailure {
  const compiled = compilePattern(pattern);
  return compiled.ok
    ? compiled.regex.test(value)
    : new FunctionFailure(`invalid regular expression '${pattern}': ${compiled.problem}`);
}

const FUNCTIONS: readonly FunctionSignature[] = [
  {
    name: 'match',
    method: false,
    argumentTypes: [STRING, STRING],
    returnType: BOOL,
    usage: 'match(request.path, "/api/*")',
    implementation: (value: string, pattern: string) => globMatch(value, pattern),
    withConstant: { operand: 1, bind: globMatcher },
  },
  {
    name: 'matches',
    method: true,
    targetType: STRING,
    argumentTypes: [STRING],
    returnType: BOOL,
    usage: '"svc.*".matches(destination.service.name)',
    implementation: regexMatches,
    withConstant: {
      operand: 0,
      bind: (pattern: string) => {
        const compiled = compilePattern(pattern);
        if (!compiled.ok) return (value: string) => regexMatches(pattern, value);
        const regex = compiled.regex;
        return (value: string) => regex.test(value);
      },
    },
  },
  {
    name: 'startsWith',
    method: true,
    targetType: STRING,
    argumentTypes: [STRING],
    returnType: BOOL,
    usage: 'request.path.startsWith("/api")',
    implementation: (value: string, prefix: string) => value.startsWith(prefix),
    withConstant: { operand: 1, bind: (prefix: string) => (value: string) => value.startsWith(prefix) },
  },
  {
    name: 'endsWith',
    method: true,
    targetType: STRING,
    argumentTypes: [STRING],
    returnType: BOOL,
    usage: 'request.path.endsWith(".json")',
    implementation: (value: string, suffix: string) => value.endsWith(suffix),
    withConstant: { operand: 1, bind: (suffix: string) => (value: string) => value.endsWith(suffix) },
  },
  {
    name: 'ip',
    method: false,
    argumentTypes: [STRING],
    returnType: IP_ADDRESS,
    usage: 'ip("10.0.0.1")',
    implementation: (text: string) =>
      IpAddress.parse(text) ?? new FunctionFailure(`could not convert '${text}' to IP_ADDRESS`),
  },
  {
    name: 'timestamp',
    method: false,
    argumentTypes: [STRING],
    returnType: TIMESTAMP,
    usage: 'timestamp("2015-01-02T15:04:35Z")',
    implementation: (text: string) =>
      Timestamp.parse(text) ??
      new FunctionFailure(
        `could not convert '${text}' to TIMESTAMP: expected RFC 3339, such as 2015-01-02T15:04:35Z`,
      ),
  },
  {
    name: 'email',
    method: false,
    argumentTypes: [STRING],
    returnType: EMAIL_ADDRESS,
    usage: 'email("user@example.com")',
    implementation: (text: string) => {
      const problem = emailProblem(text);
      return problem === undefined
        ? text
        : new FunctionFailure(`could not convert '${text}' to EMAIL_ADDRESS: ${problem}`);
    },
  },
  {
    name: 'dnsName',
    method: false,
    argumentTypes: [STRING],
    returnType: DNS_NAME,
    usage: 'dnsName("reviews.default.svc.cluster.local")',
    implementation: (text: string) => {
      const problem = dnsNameProblem(text);
      return problem === undefined
        ? text
        : new FunctionFailure(`could not convert '${text}' to DNS_NAME: ${problem}`);
    },
  },
  {
    name: 'uri',
    method: false,
    argumentTypes: [STRING],
    returnType: URI,
    usage: 'uri("https://example.com/path")',
    implementation: (text: string) => {
      const problem = uriProblem(text);
      return problem === undefined
        ? text
        : new FunctionFailure(`could not convert '${text}' to URI: ${problem}`);
    },
  },
  {
    name: 'emptyStringMap',
    method: false,
    argumentTypes: [],
    returnType: STRING_MAP,
    usage: 'request.headers | emptyStringMap()',
    implementation: () => EMPTY_STRING_MAP,
  },
  {
    name: 'conditional',
    method: false,
    argumentTypes: [BOOL, VALUE_TYPE_UNSPECIFIED, VALUE_TYPE_UNSPECIFIED],
    returnType: VALUE_TYPE_UNSPECIFIED,
    usage: 'conditional(response.code == 200, "ok", "failed")',
  },
  {
    name: 'conditionalString',
    method: false,
    argumentTypes: [BOOL, STRING, STRING],
    returnType: STRING,
    usage: 'conditionalString(connection.mtls, "mtls", "plain")',
  },
  {
    name: 'toLower',
    method: false,
    argumentTypes: [STRING],
    returnType: STRING,
    usage: 'toLower(request.headers["x-user"])',
    implementation: (text: string) => text.toLowerCase(),
  },
  {
    name: 'size',
    method: false,
    argumentTypes: [STRING],
    returnType: INT64,
    // Go's len(): the length in bytes of the UTF-8 encoding.
    usage: 'size(request.path)',
    implementation: (text: string) => BigInt(Buffer.byteLength(text, 'utf8')),
  },
];

/** The functions by name. */
export const FUNCTION_SIGNATURES: ReadonlyMap<string, FunctionSignature> = new Map(
  FUNCTIONS.map((f) => [f.name, f]),
);
