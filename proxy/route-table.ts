/**
 * Route tables compiled for the request path: each route's conditions become a few plain
 * tests (string matchers built once), weighted destinations a cumulative table, so that
 * matching a request allocates nothing but the lazily parsed query string.
 */
import type { ForwardAction, RouteConfig, RouteTable, ValueMatch } from './config-model';
import { compileStringMatch, type StringTest } from './string-match';

/** What routing looks at; header names lower-case, as Node gives them. */
export interface RouteRequest {
  readonly method: string;
  /** Host from Host or :authority, lower-cased, without the port. */
  readonly host: string;
  /** The path without the query string. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** Query parameters (first value of each name); parsed only when a route asks. */
  queryParameter(name: string): string | undefined;
}

interface ValueTest {
  readonly name: string;
  /** undefined: must be absent; null: must be present; else the value must pass. */
  readonly test: StringTest | null | undefined;
}

/** A route ready for requests. */
export class CompiledRoute {
  readonly name: string;
  private readonly authority: StringTest | undefined;
  private readonly path: StringTest | undefined;
  private readonly methods: ReadonlySet<string> | undefined;
  private readonly headers: readonly ValueTest[];
  private readonly query: readonly ValueTest[];
  /** Cumulative weights of the destinations, for {@link pickCluster}. */
  private readonly cumulative: readonly number[];
  private readonly totalWeight: number;
  /** The length of the matched prefix a rewrite replaces; 0 when the route rewrites none. */
  readonly matchedPrefixLength: number;

  constructor(readonly config: RouteConfig) {
    this.name = config.name;
    const m = config.match;
    this.authority = m.authority === undefined ? undefined : compileStringMatch(m.authority);
    this.path = m.path === undefined ? undefined : compileStringMatch(m.path);
    this.methods = m.methods === undefined ? undefined : new Set(m.methods);
    this.headers = m.headers.map(compileValueTest);
    this.query = m.query.map(compileValueTest);
    this.matchedPrefixLength = m.path !== undefined && 'prefix' in m.path ? m.path.prefix.length : 0;
    const cumulative: number[] = [];
    let total = 0;
    if (config.action.kind === 'forward') {
      for (const d of config.action.destinations) cumulative.push((total += d.weight));
    }
    this.cumulative = cumulative;
    this.totalWeight = total;
  }

  /** Whether every condition of the route holds for `request`. */
  matches(request: RouteRequest): boolean {
    if (this.methods !== undefined && !this.methods.has(request.method)) return false;
    if (this.path !== undefined && !this.path(request.path)) return false;
    if (this.authority !== undefined && !this.authority(request.host)) return false;
    for (let i = 0; i < this.headers.length; i++) {
      const h = this.headers[i]!;
      const raw = request.headers[h.name];
      const value = raw === undefined ? undefined : typeof raw === 'string' ? raw : raw.join(', ');
      if (!passes(h, value)) return false;
    }
    for (let i = 0; i < this.query.length; i++) {
      const q = this.query[i]!;
      if (!passes(q, request.queryParameter(q.name))) return false;
    }
    return true;
  }

  /**
   * The cluster of a forwarding route: with one destination, that one; with several, one
   * with probability weight / total, from `random` in [0, 1).
   */
  pickCluster(action: ForwardAction, random: () => number): string {
    const destinations = action.destinations;
    if (destinations.length === 1) return destinations[0]!.cluster;
    const point = random() * this.totalWeight;
    const cumulative = this.cumulative;
    for (let i = 0; i < cumulative.length; i++) if (point < cumulative[i]!) return destinations[i]!.cluster;
    return destinations[destinations.length - 1]!.cluster;
  }
}

function compileValueTest(match: ValueMatch): ValueTest {
  return {
    name: match.name,
    test:
      match.kind === 'absent' ? undefined : match.kind === 'present' ? null : compileStringMatch(match.match),
  };
}

function passes(t: ValueTest, value: string | undefined): boolean {
  if (t.test === undefined) return value === undefined;
  if (value === undefined) return false;
  return t.test === null || t.test(value);
}

/** A route table ready for requests: the first matching route wins. */
export class CompiledRouteTable {
  readonly name: string;
  readonly routes: readonly CompiledRoute[];

  constructor(table: RouteTable) {
    this.name = table.name;
    this.routes = table.routes.map((r) => new CompiledRoute(r));
  }

  /** The first route that matches, or undefined (the proxy answers 404). */
  match(request: RouteRequest): CompiledRoute | undefined {
    const routes = this.routes;
    for (let i = 0; i < routes.length; i++) if (routes[i]!.matches(request)) return routes[i];
    return undefined;
  }
}
