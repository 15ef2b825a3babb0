/**
 * Validates one route of the proxy configuration (see proxy/README.md for the YAML form)
 * into a {@link RouteConfig}: every problem reported with its path, regular expressions
 * compiled once here. Which clusters exist is checked later, by the caller, which knows them.
 */
import type {
  DirectResponseAction,
  FaultConfig,
  ForwardAction,
  HeaderOperations,
  RedirectAction,
  RetryOn,
  RetryPolicy,
  RouteAction,
  RouteConfig,
  RouteMatch,
  StringMatch,
  ValueMatch,
  WeightedDestination,
} from './config-model';
import {
  at,
  checkHeaderName,
  compileWholeMatch,
  describe,
  readBoolean,
  readDurationMs,
  readList,
  readMapping,
  readPercent,
  readString,
  readStringMap,
  readWholeNumber,
  type Mapping,
  type Problems,
} from './config-reader';

/** Route timeout when none is given, in ms (Envoy's default). */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;
/** Request bodies up to this many bytes are kept for a retry, by default. */
export const DEFAULT_RETRY_BUFFER_LIMIT_BYTES = 64 * 1024;

const ROUTE_KEYS = [
  'name',
  'match',
  'cluster',
  'destinations',
  'redirect',
  'directResponse',
  'timeout',
  'idleTimeout',
  'retries',
  'fault',
  'rewrite',
  'requestHeaders',
  'responseHeaders',
] as const;
const ACTION_KEYS = ['cluster', 'destinations', 'redirect', 'directResponse'] as const;
const FORWARD_ONLY_KEYS = ['timeout', 'idleTimeout', 'retries', 'rewrite'] as const;
const MATCH_KEYS = ['authority', 'path', 'methods', 'headers', 'query'];
const STRING_MATCH_KEYS = ['exact', 'prefix', 'suffix', 'regex'] as const;
const VALUE_MATCH_KEYS = ['name', ...STRING_MATCH_KEYS, 'present', 'absent'];
const RETRY_KEYS = [
  'attempts',
  'perTryTimeout',
  'retryOn',
  'retriableStatusCodes',
  'backoff',
  'retryNonIdempotent',
  'budgetPercent',
  'minRetryConcurrency',
  'bufferLimitBytes',
];
const RETRY_ON: readonly RetryOn[] = ['5xx', 'gateway-error', 'connect-failure', 'reset'];
const REDIRECT_STATUSES = [301, 302, 303, 307, 308];

/** A route and the clusters it names, with where each is named (for the cross-check). */
export interface ParsedRoute {
  /** Undefined when the route has problems. */
  readonly route: RouteConfig | undefined;
  readonly clusterRefs: readonly { readonly cluster: string; readonly path: string }[];
}

/**
 * Validates the route at `path` (position `index` in its table), pushing every problem to
 * `problems`. The cluster references are returned even when the route has other problems,
 * so that an unknown cluster is reported in the same pass.
 */
export function parseRoute(raw: unknown, path: string, index: number, problems: Problems): ParsedRoute {
  const before = problems.length;
  const route = readMapping(
    raw,
    path,
    problems,
    ROUTE_KEYS,
    '{match: {path: {prefix: /}}, cluster: backend}',
  );
  if (route === undefined) return { route: undefined, clusterRefs: [] };
  const name = readString(route, 'name', path, problems, { nonEmpty: true, example: 'name: reviews-v2' });
  const match =
    route['match'] === undefined || route['match'] === null
      ? emptyMatch()
      : parseMatch(route['match'], at(path, 'match'), problems);

  const actions = ACTION_KEYS.filter((key) => route[key] !== undefined && route[key] !== null);
  const clusterRefs: { cluster: string; path: string }[] = [];
  let action: RouteAction | undefined;
  if (actions.length !== 1) {
    problems.push({
      path,
      message:
        actions.length === 0
          ? 'says nothing to do; give one of cluster, destinations, redirect or directResponse, e.g. cluster: backend'
          : `gives ${actions.join(' and ')}; keep one of them`,
    });
  } else if (actions[0] === 'cluster' || actions[0] === 'destinations') {
    action = parseForward(route, path, match, clusterRefs, problems);
  } else if (actions[0] === 'redirect') {
    action = parseRedirect(route['redirect'], at(path, 'redirect'), match, problems);
  } else {
    action = parseDirectResponse(route['directResponse'], at(path, 'directResponse'), problems);
  }
  if (action !== undefined && action.kind !== 'forward') {
    for (const key of FORWARD_ONLY_KEYS) {
      if (route[key] !== undefined && route[key] !== null) {
        problems.push({
          path: at(path, key),
          message: `applies only to routes that forward (cluster or destinations); remove it from this ${action.kind} route`,
        });
      }
    }
  }
  const requestHeaders = parseHeaderOperations(route['requestHeaders'], at(path, 'requestHeaders'), problems);
  const responseHeaders = parseHeaderOperations(
    route['responseHeaders'],
    at(path, 'responseHeaders'),
    problems,
  );
  const fault = parseFault(route['fault'], at(path, 'fault'), problems);
  if (problems.length > before || action === undefined || match === undefined)
    return { route: undefined, clusterRefs };
  return {
    route: {
      name: name ?? `route-${index}`,
      match,
      action,
      requestHeaders,
      responseHeaders,
      fault,
    },
    clusterRefs,
  };
}

function emptyMatch(): RouteMatch {
  return { authority: undefined, path: undefined, methods: undefined, headers: [], query: [] };
}

function parseMatch(raw: unknown, path: string, problems: Problems): RouteMatch | undefined {
  const before = problems.length;
  const match = readMapping(raw, path, problems, MATCH_KEYS, '{path: {prefix: /api/}, methods: [GET]}');
  if (match === undefined) return undefined;
  const authority =
    match['authority'] === undefined
      ? undefined
      : parseStringMatch(match['authority'], at(path, 'authority'), problems, 'authority');
  const pathMatch =
    match['path'] === undefined
      ? undefined
      : parseStringMatch(match['path'], at(path, 'path'), problems, 'path');
  if (pathMatch !== undefined && ('exact' in pathMatch || 'prefix' in pathMatch)) {
    const text = 'exact' in pathMatch ? pathMatch.exact : pathMatch.prefix;
    if (!text.startsWith('/')) {
      problems.push({
        path: at(at(path, 'path'), 'exact' in pathMatch ? 'exact' : 'prefix'),
        message: `must start with /, got ${JSON.stringify(text)}; e.g. prefix: /${text}`,
      });
    }
  }
  let methods: string[] | undefined;
  const rawMethods = readList(match, 'methods', path, problems, 'methods: [GET, HEAD]');
  if (rawMethods !== undefined) {
    methods = [];
    rawMethods.forEach((m, i) => {
      if (typeof m !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(m)) {
        problems.push({
          path: at(at(path, 'methods'), i),
          message: `must be an HTTP method such as GET, got ${describe(m)}`,
        });
      } else if (m !== m.toUpperCase()) {
        problems.push({
          path: at(at(path, 'methods'), i),
          message: `methods are case-sensitive and ${m} is not one a client sends; write ${m.toUpperCase()}`,
        });
      } else {
        methods!.push(m);
      }
    });
    if (rawMethods.length === 0) {
      problems.push({
        path: at(path, 'methods'),
        message: 'is empty and would match nothing; list methods, or remove it to match any',
      });
    }
  }
  const headers = parseValueMatches(match, 'headers', path, problems, true);
  const query = parseValueMatches(match, 'query', path, problems, false);
  if (problems.length > before) return undefined;
  return { authority, path: pathMatch, methods, headers, query };
}

/** `{exact: x}`, `{prefix: x}`, `{suffix: x}` or `{regex: x}`. */
function parseStringMatch(
  raw: unknown,
  path: string,
  problems: Problems,
  what: string,
): StringMatch | undefined {
  const example =
    what === 'path' ? '{prefix: /api/}' : what === 'authority' ? '{exact: reviews}' : '{exact: v2}';
  const m = readMapping(raw, path, problems, STRING_MATCH_KEYS, example);
  if (m === undefined) return undefined;
  return readOneStringMatch(m, path, problems, example, true);
}

/** Reads the one of exact/prefix/suffix/regex that `m` has; `required` reports none. */
function readOneStringMatch(
  m: Mapping,
  path: string,
  problems: Problems,
  example: string,
  required: boolean,
): StringMatch | undefined {
  const given = STRING_MATCH_KEYS.filter((k) => m[k] !== undefined && m[k] !== null);
  if (given.length === 0) {
    if (required)
      problems.push({ path, message: `give one of exact, prefix, suffix or regex, e.g. ${example}` });
    return undefined;
  }
  if (given.length > 1) {
    problems.push({ path, message: `gives ${given.join(' and ')}; keep one of them` });
    return undefined;
  }
  const key = given[0]!;
  const value = readString(m, key, path, problems, { example: `${key}: "v2"` });
  if (value === undefined) return undefined;
  switch (key) {
    case 'exact':
      return { exact: value };
    case 'prefix':
      return { prefix: value };
    case 'suffix':
      return { suffix: value };
    case 'regex': {
      const regex = compileWholeMatch(value, at(path, 'regex'), problems);
      return regex === undefined ? undefined : { regex };
    }
  }
}

function parseValueMatches(
  match: Mapping,
  key: 'headers' | 'query',
  path: string,
  problems: Problems,
  isHeader: boolean,
): ValueMatch[] {
  const example = isHeader ? '{name: x-canary, exact: "1"}' : '{name: version, exact: v2}';
  const list = readList(match, key, path, problems, `${key}: [${example}]`);
  const out: ValueMatch[] = [];
  list?.forEach((raw, i) => {
    const where = at(at(path, key), i);
    const m = readMapping(raw, where, problems, VALUE_MATCH_KEYS, example);
    if (m === undefined) return;
    const rawName = readString(m, 'name', where, problems, {
      required: true,
      nonEmpty: true,
      example: `name: ${isHeader ? 'x-canary' : 'version'}`,
    });
    const name =
      rawName === undefined
        ? undefined
        : isHeader
          ? checkHeaderName(rawName, at(where, 'name'), problems)
          : rawName;
    const conditions = [...STRING_MATCH_KEYS, 'present', 'absent'].filter(
      (k) => m[k] !== undefined && m[k] !== null,
    );
    if (conditions.length !== 1) {
      problems.push({
        path: where,
        message:
          conditions.length === 0
            ? `says nothing about ${name ?? 'the value'}; give one of exact, prefix, suffix, regex, present or absent, e.g. ${example}`
            : `gives ${conditions.join(' and ')}; keep one of them`,
      });
      return;
    }
    const condition = conditions[0]!;
    if (condition === 'present' || condition === 'absent') {
      if (m[condition] !== true) {
        problems.push({
          path: at(where, condition),
          message: `must be true, got ${describe(m[condition])}; to test the opposite, write ${condition === 'present' ? 'absent' : 'present'}: true`,
        });
        return;
      }
      if (name !== undefined) out.push({ name, kind: condition });
      return;
    }
    const value = readOneStringMatch(m, where, problems, example, true);
    if (value !== undefined && name !== undefined) out.push({ name, kind: 'value', match: value });
  });
  return out;
}

function parseForward(
  route: Mapping,
  path: string,
  match: RouteMatch | undefined,
  clusterRefs: { cluster: string; path: string }[],
  problems: Problems,
): ForwardAction | undefined {
  const before = problems.length;
  const destinations: WeightedDestination[] = [];
  if (route['cluster'] !== undefined) {
    const cluster = readString(route, 'cluster', path, problems, {
      nonEmpty: true,
      example: 'cluster: backend',
    });
    if (cluster !== undefined) {
      destinations.push({ cluster, weight: 1 });
      clusterRefs.push({ cluster, path: at(path, 'cluster') });
    }
  } else {
    const list = readList(
      route,
      'destinations',
      path,
      problems,
      'destinations: [{cluster: v1, weight: 90}, {cluster: v2, weight: 10}]',
    );
    if (list !== undefined && list.length === 0) {
      problems.push({
        path: at(path, 'destinations'),
        message: 'is empty; list at least one {cluster, weight}',
      });
    }
    let total = 0;
    list?.forEach((raw, i) => {
      const where = at(at(path, 'destinations'), i);
      const d = readMapping(raw, where, problems, ['cluster', 'weight'], '{cluster: reviews-v2, weight: 10}');
      if (d === undefined) return;
      const cluster = readString(d, 'cluster', where, problems, {
        required: true,
        nonEmpty: true,
        example: 'cluster: reviews-v2',
      });
      const weight = readWholeNumber(d, 'weight', where, problems, {
        min: 0,
        max: 1_000_000,
        required: true,
        example: 'weight: 10',
      });
      if (cluster === undefined || weight === undefined) return;
      total += weight;
      destinations.push({ cluster, weight });
      clusterRefs.push({ cluster, path: at(where, 'cluster') });
    });
    if (list !== undefined && list.length > 0 && destinations.length === list.length && total === 0) {
      problems.push({
        path: at(path, 'destinations'),
        message: 'weights add up to 0; give at least one destination a weight above 0',
      });
    }
  }
  const timeoutMs = readDurationMs(route, 'timeout', path, problems, { fallback: DEFAULT_ROUTE_TIMEOUT_MS });
  const idleTimeoutMs = readDurationMs(route, 'idleTimeout', path, problems, {});
  const retries =
    route['retries'] === undefined
      ? undefined
      : parseRetries(route['retries'], at(path, 'retries'), problems);
  let prefixRewrite: string | undefined;
  let hostRewrite: string | undefined;
  if (route['rewrite'] !== undefined) {
    const where = at(path, 'rewrite');
    const rewrite = readMapping(
      route['rewrite'],
      where,
      problems,
      ['pathPrefix', 'host'],
      '{pathPrefix: /v2/, host: reviews.internal}',
    );
    if (rewrite !== undefined) {
      prefixRewrite = readString(rewrite, 'pathPrefix', where, problems, { example: 'pathPrefix: /v2/' });
      hostRewrite = readString(rewrite, 'host', where, problems, {
        nonEmpty: true,
        example: 'host: reviews.internal',
      });
      if (rewrite['pathPrefix'] === undefined && rewrite['host'] === undefined) {
        problems.push({ path: where, message: 'is empty; give pathPrefix, host or both' });
      }
      if (prefixRewrite !== undefined) checkPrefixRoute(match, at(where, 'pathPrefix'), problems);
    }
  }
  if (problems.length > before || timeoutMs === undefined) return undefined;
  return { kind: 'forward', destinations, timeoutMs, idleTimeoutMs, retries, prefixRewrite, hostRewrite };
}

/** A prefix rewrite replaces the matched prefix, so the route must match one. */
function checkPrefixRoute(match: RouteMatch | undefined, path: string, problems: Problems): void {
  if (match !== undefined && (match.path === undefined || !('prefix' in match.path))) {
    problems.push({
      path,
      message:
        'replaces the matched path prefix, but this route matches no prefix; add match: {path: {prefix: /old/}}',
    });
  }
}

function parseRetries(raw: unknown, path: string, problems: Problems): RetryPolicy | undefined {
  const before = problems.length;
  const r = readMapping(
    raw,
    path,
    problems,
    RETRY_KEYS,
    '{attempts: 2, retryOn: [connect-failure, gateway-error]}',
  );
  if (r === undefined) return undefined;
  const attempts = readWholeNumber(r, 'attempts', path, problems, {
    min: 0,
    max: 10,
    fallback: 1,
    example: 'attempts: 2',
  });
  const perTryTimeoutMs = readDurationMs(r, 'perTryTimeout', path, problems, { fallback: 0 });
  const retryOn = new Set<RetryOn>();
  const rawOn = readList(r, 'retryOn', path, problems, 'retryOn: [5xx, connect-failure]');
  if (rawOn === undefined && r['retryOn'] === undefined) {
    retryOn.add('connect-failure').add('reset').add('gateway-error');
  }
  rawOn?.forEach((v, i) => {
    if (typeof v === 'string' && (RETRY_ON as readonly string[]).includes(v)) retryOn.add(v as RetryOn);
    else
      problems.push({
        path: at(at(path, 'retryOn'), i),
        message: `must be one of ${RETRY_ON.join(', ')}, got ${describe(v)}; to retry other status codes, list them under retriableStatusCodes`,
      });
  });
  const statuses = new Set<number>();
  readList(r, 'retriableStatusCodes', path, problems, 'retriableStatusCodes: [409]')?.forEach((v, i) => {
    if (typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 599) statuses.add(v);
    else
      problems.push({
        path: at(at(path, 'retriableStatusCodes'), i),
        message: `must be an HTTP status code from 100 to 599, got ${describe(v)}`,
      });
  });
  let backoffBaseMs: number | undefined = 25;
  let backoffMaxMs: number | undefined;
  if (r['backoff'] !== undefined) {
    const where = at(path, 'backoff');
    const b = readMapping(
      r['backoff'],
      where,
      problems,
      ['baseInterval', 'maxInterval'],
      '{baseInterval: 25ms, maxInterval: 250ms}',
    );
    if (b !== undefined) {
      backoffBaseMs = readDurationMs(b, 'baseInterval', where, problems, { fallback: 25, positive: true });
      backoffMaxMs = readDurationMs(b, 'maxInterval', where, problems, { positive: true });
      if (backoffBaseMs !== undefined && backoffMaxMs !== undefined && backoffMaxMs < backoffBaseMs) {
        problems.push({
          path: at(where, 'maxInterval'),
          message: `must be at least baseInterval (${backoffBaseMs} ms); raise it or lower baseInterval`,
        });
      }
    }
  }
  const retryNonIdempotent = readBoolean(r, 'retryNonIdempotent', path, problems, false);
  const budgetPercent = readPercent(r, 'budgetPercent', path, problems, 20);
  const minRetryConcurrency = readWholeNumber(r, 'minRetryConcurrency', path, problems, {
    min: 0,
    fallback: 3,
    example: 'minRetryConcurrency: 3',
  });
  const bufferLimitBytes = readWholeNumber(r, 'bufferLimitBytes', path, problems, {
    min: 0,
    max: 64 * 1024 * 1024,
    fallback: DEFAULT_RETRY_BUFFER_LIMIT_BYTES,
    example: 'bufferLimitBytes: 65536',
  });
  if (problems.length > before) return undefined;
  return {
    attempts: attempts!,
    perTryTimeoutMs: perTryTimeoutMs!,
    retryOn,
    retriableStatusCodes: statuses,
    backoffBaseMs: backoffBaseMs!,
    backoffMaxMs: backoffMaxMs ?? backoffBaseMs! * 10,
    retryNonIdempotent: retryNonIdempotent!,
    budgetPercent: budgetPercent!,
    minRetryConcurrency: minRetryConcurrency!,
    bufferLimitBytes: bufferLimitBytes!,
  };
}

function parseRedirect(
  raw: unknown,
  path: string,
  match: RouteMatch | undefined,
  problems: Problems,
): RedirectAction | undefined {
  const before = problems.length;
  const r = readMapping(
    raw,
    path,
    problems,
    ['scheme', 'host', 'port', 'path', 'pathPrefix', 'status', 'stripQuery'],
    '{scheme: https, status: 301}',
  );
  if (r === undefined) return undefined;
  const scheme = readString(r, 'scheme', path, problems, { example: 'scheme: https' });
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
    problems.push({
      path: at(path, 'scheme'),
      message: `must be http or https, got ${JSON.stringify(scheme)}`,
    });
  }
  const host = readString(r, 'host', path, problems, { nonEmpty: true, example: 'host: www.example.com' });
  const port = readWholeNumber(r, 'port', path, problems, { min: 1, max: 65535, example: 'port: 443' });
  const newPath = readString(r, 'path', path, problems, { nonEmpty: true, example: 'path: /new' });
  const prefixRewrite = readString(r, 'pathPrefix', path, problems, { example: 'pathPrefix: /new/' });
  if (newPath !== undefined && !newPath.startsWith('/')) {
    problems.push({ path: at(path, 'path'), message: `must start with /, got ${JSON.stringify(newPath)}` });
  }
  if (r['path'] !== undefined && r['pathPrefix'] !== undefined) {
    problems.push({ path: at(path, 'pathPrefix'), message: 'cannot be given with path; keep one of them' });
  } else if (prefixRewrite !== undefined) {
    checkPrefixRoute(match, at(path, 'pathPrefix'), problems);
  }
  const status = readWholeNumber(r, 'status', path, problems, {
    min: 300,
    max: 399,
    fallback: 301,
    example: 'status: 301',
  });
  if (status !== undefined && !REDIRECT_STATUSES.includes(status)) {
    problems.push({
      path: at(path, 'status'),
      message: `must be one of ${REDIRECT_STATUSES.join(', ')}, got ${status}`,
    });
  }
  const stripQuery = readBoolean(r, 'stripQuery', path, problems, false);
  if (problems.length > before) return undefined;
  return {
    kind: 'redirect',
    scheme,
    host,
    port,
    path: newPath,
    prefixRewrite,
    status: status!,
    stripQuery: stripQuery!,
  };
}

function parseDirectResponse(
  raw: unknown,
  path: string,
  problems: Problems,
): DirectResponseAction | undefined {
  const before = problems.length;
  const d = readMapping(raw, path, problems, ['status', 'body', 'headers'], '{status: 200, body: "ok\\n"}');
  if (d === undefined) return undefined;
  const status = readWholeNumber(d, 'status', path, problems, {
    min: 200,
    max: 599,
    required: true,
    example: 'status: 200',
  });
  const body = readString(d, 'body', path, problems, { example: 'body: "ok\\n"' }) ?? '';
  const headers: Record<string, string> = {};
  const given = readStringMap(d, 'headers', path, problems, 'headers: {content-type: text/plain}') ?? {};
  for (const [name, value] of Object.entries(given)) {
    const lower = checkManagedHeaderName(name, at(at(path, 'headers'), name), problems);
    if (lower !== undefined) headers[lower] = value;
  }
  if (problems.length > before) return undefined;
  return { kind: 'directResponse', status: status!, body, headers };
}

/** Headers the proxy itself manages on each hop; configuration may not change them. */
const MANAGED_HEADERS = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'te',
  'proxy-connection',
]);

/**
 * A header name configuration may set (lower-case), or undefined with a problem: not a valid
 * name, or one of {@link MANAGED_HEADERS} — framing and connection fields the proxy writes
 * itself (a configured content-length or transfer-encoding would corrupt the framing).
 */
function checkManagedHeaderName(name: string, where: string, problems: Problems): string | undefined {
  const lower = checkHeaderName(name, where, problems);
  if (lower !== undefined && MANAGED_HEADERS.has(lower)) {
    problems.push({
      path: where,
      message: `${lower} is managed by the proxy on each hop and cannot be changed here; remove it`,
    });
    return undefined;
  }
  return lower;
}

function parseHeaderOperations(raw: unknown, path: string, problems: Problems): HeaderOperations | undefined {
  if (raw === undefined || raw === null) return undefined;
  const before = problems.length;
  const h = readMapping(
    raw,
    path,
    problems,
    ['set', 'add', 'remove'],
    '{set: {x-env: prod}, remove: [x-debug]}',
  );
  if (h === undefined) return undefined;
  const pairs = (key: 'set' | 'add'): Array<readonly [string, string]> => {
    const map = readStringMap(h, key, path, problems, `${key}: {x-env: prod}`) ?? {};
    const out: Array<readonly [string, string]> = [];
    for (const [name, value] of Object.entries(map)) {
      const lower = checkManagedHeaderName(name, at(at(path, key), name), problems);
      if (lower !== undefined) out.push([lower, value]);
    }
    return out;
  };
  const set = pairs('set');
  const add = pairs('add');
  const remove: string[] = [];
  readList(h, 'remove', path, problems, 'remove: [x-debug]')?.forEach((v, i) => {
    const where = at(at(path, 'remove'), i);
    if (typeof v !== 'string') {
      problems.push({ path: where, message: `must be a header name, got ${describe(v)}` });
      return;
    }
    const lower = checkManagedHeaderName(v, where, problems);
    if (lower !== undefined) remove.push(lower);
  });
  if (problems.length > before) return undefined;
  return { set, add, remove };
}

function parseFault(raw: unknown, path: string, problems: Problems): FaultConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const before = problems.length;
  const f = readMapping(
    raw,
    path,
    problems,
    ['delay', 'abort'],
    '{delay: {fixed: 2s, percent: 10}, abort: {status: 503, percent: 5}}',
  );
  if (f === undefined) return undefined;
  let delay: FaultConfig['delay'];
  let abort: FaultConfig['abort'];
  if (f['delay'] !== undefined) {
    const where = at(path, 'delay');
    const d = readMapping(f['delay'], where, problems, ['fixed', 'percent'], '{fixed: 2s, percent: 10}');
    if (d !== undefined) {
      const fixedMs = readDurationMs(d, 'fixed', where, problems, { required: true });
      const percent = readPercent(d, 'percent', where, problems, 100);
      if (fixedMs !== undefined && percent !== undefined) delay = { fixedMs, percent };
    }
  }
  if (f['abort'] !== undefined) {
    const where = at(path, 'abort');
    const a = readMapping(f['abort'], where, problems, ['status', 'percent'], '{status: 503, percent: 5}');
    if (a !== undefined) {
      const status = readWholeNumber(a, 'status', where, problems, {
        min: 200,
        max: 599,
        required: true,
        example: 'status: 503',
      });
      const percent = readPercent(a, 'percent', where, problems, 100);
      if (status !== undefined && percent !== undefined) abort = { status, percent };
    }
  }
  if (f['delay'] === undefined && f['abort'] === undefined) {
    problems.push({
      path,
      message: 'is empty; give delay, abort or both, e.g. {abort: {status: 503, percent: 5}}',
    });
  }
  if (problems.length > before) return undefined;
  return { delay, abort };
}
