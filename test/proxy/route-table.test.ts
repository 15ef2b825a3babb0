/**
 * Route matching, in process: a table of routes and a table of requests with the route each
 * must select; weighted picks; the retry and fault decisions. No network.
 */
import { strict as assert } from 'node:assert';
import { formatProxyConfigError, parseProxyConfig, createSeededRandom } from '../../proxy';
import type { RetryPolicy } from '../../proxy';
import { decideFault } from '../../proxy/fault-injection';
import { backoffMs, isIdempotent, isRetriable, withinRetryBudget } from '../../proxy/retry-policy';
import { CompiledRouteTable, type RouteRequest } from '../../proxy/route-table';

function tableOf(routesYaml: string): CompiledRouteTable {
  const outcome = parseProxyConfig(
    `listeners: [{name: l, role: outbound, address: 127.0.0.1, port: 1}]
routes:
${routesYaml}
clusters: [{name: c, endpoints: [{host: 127.0.0.1, port: 2}]}, {name: d, endpoints: [{host: 127.0.0.1, port: 3}]}]`,
    'test.yaml',
  );
  if (!outcome.ok) throw new Error(outcome.errors.map(formatProxyConfigError).join('\n'));
  const listener = outcome.config.listeners[0]!;
  if (listener.protocol !== 'http') throw new Error('http listener expected');
  return new CompiledRouteTable(listener.routeTable);
}

function requestOf(
  spec: Partial<Pick<RouteRequest, 'method' | 'host' | 'path' | 'headers'>> & {
    query?: Record<string, string>;
  },
): RouteRequest {
  return {
    method: spec.method ?? 'GET',
    host: spec.host ?? 'example.com',
    path: spec.path ?? '/',
    headers: spec.headers ?? {},
    queryParameter: (name) => spec.query?.[name],
  };
}

describe('proxy route table', () => {
  const table = tableOf(`
  - {name: exact, match: {path: {exact: /exact}}, cluster: c}
  - {name: regex, match: {path: {regex: "/users/[0-9]+"}}, cluster: c}
  - {name: case-insensitive, match: {path: {regex: "(?i)/shout"}}, cluster: c}
  - {name: method, match: {path: {prefix: /m/}, methods: [POST, PUT]}, cluster: c}
  - {name: header-exact, match: {headers: [{name: x-canary, exact: "1"}]}, cluster: c}
  - {name: header-regex, match: {headers: [{name: x-user, regex: "bob|alice"}]}, cluster: c}
  - {name: header-present-absent, match: {path: {prefix: /h/}, headers: [{name: x-a, present: true}, {name: x-b, absent: true}]}, cluster: c}
  - {name: query, match: {query: [{name: v, exact: "2"}, {name: debug, present: true}]}, cluster: c}
  - {name: authority, match: {authority: {suffix: .internal}}, cluster: c}
  - {name: prefix, match: {path: {prefix: /api/}}, cluster: c}
  - {name: fallback, cluster: d}
`);
  const cases: Array<[string, Parameters<typeof requestOf>[0], string]> = [
    ['exact path', { path: '/exact' }, 'exact'],
    ['exact path is not a prefix', { path: '/exact/more' }, 'fallback'],
    ['regex matches the whole path', { path: '/users/42' }, 'regex'],
    ['regex does not match a part', { path: '/users/42/x' }, 'fallback'],
    ['a leading (?i) flag', { path: '/SHOUT' }, 'case-insensitive'],
    ['method in the list', { path: '/m/x', method: 'PUT' }, 'method'],
    ['method not in the list', { path: '/m/x', method: 'GET' }, 'fallback'],
    ['header exact', { headers: { 'x-canary': '1' } }, 'header-exact'],
    ['header exact, other value', { headers: { 'x-canary': '10' } }, 'fallback'],
    ['header regex', { headers: { 'x-user': 'alice' } }, 'header-regex'],
    ['header regex, whole value', { headers: { 'x-user': 'alice2' } }, 'fallback'],
    ['header present and absent', { path: '/h/', headers: { 'x-a': '' } }, 'header-present-absent'],
    ['header that must be absent is there', { path: '/h/', headers: { 'x-a': '1', 'x-b': '1' } }, 'fallback'],
    ['header that must be present is not', { path: '/h/', headers: {} }, 'fallback'],
    ['repeated header values are joined', { headers: { 'x-user': ['bob'] } }, 'header-regex'],
    ['query parameters', { query: { v: '2', debug: '' } }, 'query'],
    ['query parameter missing', { query: { v: '2' } }, 'fallback'],
    ['authority suffix', { host: 'reviews.internal' }, 'authority'],
    ['prefix', { path: '/api/v1' }, 'prefix'],
    ['first match wins', { path: '/api/v1', headers: { 'x-canary': '1' } }, 'header-exact'],
  ];
  for (const [title, spec, expected] of cases) {
    it(`${title} → ${expected}`, () => assert.equal(table.match(requestOf(spec))?.name, expected));
  }

  it('no route when nothing matches', () => {
    const strict = tableOf('  - {match: {path: {exact: /only}}, cluster: c}');
    assert.equal(strict.match(requestOf({ path: '/other' })), undefined);
  });

  it('weighted destinations split within statistical bounds (seeded)', () => {
    const split = tableOf('  - destinations: [{cluster: c, weight: 90}, {cluster: d, weight: 10}]');
    const route = split.routes[0]!;
    const action = route.config.action;
    if (action.kind !== 'forward') throw new Error('forward expected');
    const random = createSeededRandom(42);
    const n = 10_000;
    let d = 0;
    for (let i = 0; i < n; i++) if (route.pickCluster(action, random) === 'd') d++;
    // Binomial(10000, 0.1): mean 1000, standard deviation 30; allow four of them.
    assert.ok(Math.abs(d - 1000) < 120, `d got ${d} of ${n}`);
  });

  it('a destination of weight 0 gets nothing', () => {
    const split = tableOf('  - destinations: [{cluster: c, weight: 1}, {cluster: d, weight: 0}]');
    const route = split.routes[0]!;
    const action = route.config.action;
    if (action.kind !== 'forward') throw new Error('forward expected');
    const random = createSeededRandom(7);
    for (let i = 0; i < 1000; i++) assert.equal(route.pickCluster(action, random), 'c');
  });
});

describe('proxy retry and fault decisions', () => {
  const policy: RetryPolicy = {
    attempts: 3,
    perTryTimeoutMs: 0,
    retryOn: new Set(['gateway-error']),
    retriableStatusCodes: new Set([409]),
    backoffBaseMs: 25,
    backoffMaxMs: 250,
    retryNonIdempotent: false,
    budgetPercent: 20,
    minRetryConcurrency: 3,
    bufferLimitBytes: 1024,
  };

  it('retries what retryOn and retriableStatusCodes name', () => {
    const table: Array<[Parameters<typeof isRetriable>[1], boolean]> = [
      [{ kind: 'response', status: 502 }, true],
      [{ kind: 'response', status: 503 }, true],
      [{ kind: 'response', status: 504 }, true],
      [{ kind: 'response', status: 500 }, false],
      [{ kind: 'response', status: 409 }, true],
      [{ kind: 'response', status: 200 }, false],
      [{ kind: 'connectFailure' }, true],
      [{ kind: 'reset' }, true],
      [{ kind: 'timeout' }, true],
    ];
    for (const [outcome, expected] of table)
      assert.equal(isRetriable(policy, outcome), expected, JSON.stringify(outcome));
    const only5xx = {
      ...policy,
      retryOn: new Set(['5xx'] as const),
      retriableStatusCodes: new Set<number>(),
    };
    assert.equal(isRetriable(only5xx, { kind: 'response', status: 500 }), true);
    assert.equal(isRetriable(only5xx, { kind: 'response', status: 409 }), false);
    const connectOnly = {
      ...policy,
      retryOn: new Set(['connect-failure'] as const),
      retriableStatusCodes: new Set<number>(),
    };
    assert.equal(isRetriable(connectOnly, { kind: 'connectFailure' }), true);
    assert.equal(isRetriable(connectOnly, { kind: 'reset' }), false);
    assert.equal(isRetriable(connectOnly, { kind: 'response', status: 503 }), false);
  });

  it('knows the idempotent methods of RFC 9110', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']) assert.ok(isIdempotent(m), m);
    for (const m of ['POST', 'PATCH', 'CONNECT']) assert.ok(!isIdempotent(m), m);
  });

  it('backs off exponentially with full jitter, capped', () => {
    const always = (): number => 0.999999;
    assert.ok(Math.abs(backoffMs(policy, 1, always) - 25) < 0.01);
    assert.ok(Math.abs(backoffMs(policy, 2, always) - 50) < 0.01);
    assert.ok(Math.abs(backoffMs(policy, 3, always) - 100) < 0.01);
    assert.ok(Math.abs(backoffMs(policy, 5, always) - 250) < 0.01);
    assert.equal(
      backoffMs(policy, 3, () => 0),
      0,
    );
  });

  it('keeps retries within the budget: a share of active requests, at least minRetryConcurrency', () => {
    assert.ok(withinRetryBudget(policy, { activeRequests: 1, activeRetries: 2 }));
    assert.ok(!withinRetryBudget(policy, { activeRequests: 1, activeRetries: 3 }));
    assert.ok(withinRetryBudget(policy, { activeRequests: 100, activeRetries: 19 }));
    assert.ok(!withinRetryBudget(policy, { activeRequests: 100, activeRetries: 20 }));
  });

  it('draws fault percentages independently, reproducibly with a seed', () => {
    const fault = { delay: { fixedMs: 5, percent: 30 }, abort: { status: 503, percent: 10 } };
    const count = (seed: number): { delayed: number; aborted: number } => {
      const random = createSeededRandom(seed);
      let delayed = 0;
      let aborted = 0;
      for (let i = 0; i < 10_000; i++) {
        const d = decideFault(fault, random);
        if (d.delayMs === 5) delayed++;
        if (d.abortStatus === 503) aborted++;
      }
      return { delayed, aborted };
    };
    const a = count(1);
    assert.deepEqual(count(1), a, 'the same seed gives the same draws');
    // Binomial bounds, four standard deviations: 3000 ± 183, 1000 ± 120.
    assert.ok(Math.abs(a.delayed - 3000) < 183, `delayed ${a.delayed}`);
    assert.ok(Math.abs(a.aborted - 1000) < 120, `aborted ${a.aborted}`);
  });
});
