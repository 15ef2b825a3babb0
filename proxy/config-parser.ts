/**
 * Reads a proxy configuration file into a {@link ProxyConfig}. Validation is complete in
 * one pass: every problem of the file is reported, each as `file:line: path: message`;
 * unknown keys are problems. Pure apart from reading the file in
 * {@link loadProxyConfigFile}: TLS files and the access log are opened when the proxy
 * builds listeners, not here.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseClusterConfig, type ClusterConfig, type ConfigProblem } from './cluster';
import {
  DEFAULT_REQUEST_LIMITS,
  MAX_REQUEST_HEAD_BYTES,
  MAX_REQUEST_HEADERS,
  type AccessLogConfig,
  type ListenerConfig,
  type NodeIdentity,
  type ProxyConfig,
  type RequestLimits,
  type RouteConfig,
  type RouteTable,
  type TlsConfig,
} from './config-model';
import { ProxyConfigLoadError, type ProxyConfigError } from './config-errors';
import {
  at,
  deepFreeze,
  describe,
  isMapping,
  readByteSize,
  readDurationMs,
  readList,
  readMapping,
  readString,
  readStringMap,
  readWholeNumber,
  type Mapping,
  type Problems,
} from './config-reader';
import { parseRoute, type ParsedRoute } from './route-parser';
import { parseYamlSource } from './yaml-source';
import { parsePolicySettings } from './policy/policy-settings';

const TOP_KEYS = [
  'node',
  'listeners',
  'routes',
  'routeTables',
  'clusters',
  'accessLog',
  'drainTimeout',
  'policy',
];
const LISTENER_KEYS = [
  'name',
  'role',
  'address',
  'port',
  'protocol',
  'tls',
  'routes',
  'streamIdleTimeout',
  'limits',
  'cluster',
  'idleTimeout',
];
const LIMIT_KEYS = ['requestHeadBytes', 'requestHeaders', 'requestBodyBytes'];
/** A TCP connection's idle timeout when the listener names none: an hour, as Envoy's TCP proxy. */
const DEFAULT_TCP_IDLE_TIMEOUT_MS = 3_600_000;
const NODE_KEYS = ['name', 'namespace', 'uid', 'serviceAccount', 'labels'];
/** Default time retired listeners' connections get to finish, in ms. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/** What parsing a configuration gives: the configuration, or every error. */
export type ProxyConfigOutcome =
  | {
      readonly ok: true;
      readonly config: ProxyConfig;
      /** The line of a path in the file, for problems found later (a TLS file that cannot be read). */
      readonly lineOf: (path: string) => number;
    }
  | { readonly ok: false; readonly errors: readonly ProxyConfigError[] };

/**
 * Reads and validates the configuration file at `file`.
 * @throws ProxyConfigLoadError listing every problem, including an unreadable file
 */
export async function loadProxyConfigFile(file: string): Promise<Extract<ProxyConfigOutcome, { ok: true }>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT'
        ? 'file does not exist; check the --config path'
        : `cannot read the file: ${(error as Error).message}; check that it is readable`;
    throw new ProxyConfigLoadError(file, [{ file, line: undefined, message }]);
  }
  const outcome = parseProxyConfig(text, file);
  if (!outcome.ok) throw new ProxyConfigLoadError(file, outcome.errors);
  return outcome;
}

/**
 * Validates the text of a configuration file; `file` names it in errors and resolves the
 * relative paths it contains (TLS files, the access log). Pure.
 */
export function parseProxyConfig(text: string, file: string): ProxyConfigOutcome {
  const source = parseYamlSource(text);
  if (!source.ok) {
    return { ok: false, errors: source.errors.map((e) => ({ file, line: e.line, message: e.message })) };
  }
  const problems: Problems = [];
  const config = validate(source.value, file, problems);
  if (problems.length > 0 || config === undefined) {
    const errors = problems
      .map((p, order) => ({ line: source.lineOf(p.path), order, p }))
      // Line order, then the order found (stable): problems read top to bottom, as the file.
      .sort((a, b) => a.line - b.line || a.order - b.order)
      .map(({ line, p }): ProxyConfigError => ({ file, line, path: p.path, message: p.message }));
    return { ok: false, errors };
  }
  return { ok: true, config, lineOf: source.lineOf };
}

function validate(value: unknown, file: string, problems: Problems): ProxyConfig | undefined {
  if (value === undefined) {
    problems.push({
      path: '',
      message: 'the file is empty; give at least listeners and clusters (see proxy/README.md)',
    });
    return undefined;
  }
  const root = readMapping(value, '', problems, TOP_KEYS, 'a mapping with listeners, routes and clusters');
  if (root === undefined) return undefined;
  const baseDir = path.dirname(file);

  const node = parseNode(root['node'], problems);
  const clusters = parseClusters(root, problems);
  const clusterNames = new Set<string>();
  const rawClusters = Array.isArray(root['clusters']) ? (root['clusters'] as unknown[]) : [];
  for (const c of rawClusters) if (isMapping(c) && typeof c['name'] === 'string') clusterNames.add(c['name']);

  const clusterRefs: Array<{ cluster: string; path: string }> = [];
  const parseTable = (raw: unknown, where: string, name: string): RouteTable | undefined => {
    if (!Array.isArray(raw)) {
      problems.push({
        path: where,
        message: `must be a list of routes, got ${describe(raw)}; e.g. - {match: {path: {prefix: /}}, cluster: backend}`,
      });
      return undefined;
    }
    const routes: RouteConfig[] = [];
    const names = new Map<string, number>();
    raw.forEach((r, i) => {
      const parsed: ParsedRoute = parseRoute(r, at(where, i), i, problems);
      clusterRefs.push(...parsed.clusterRefs);
      if (parsed.route === undefined) return;
      const earlier = names.get(parsed.route.name);
      if (earlier !== undefined) {
        problems.push({
          path: at(at(where, i), 'name'),
          message: `${parsed.route.name} is also the name of ${where}[${earlier}]; give each route its own name`,
        });
      }
      names.set(parsed.route.name, i);
      routes.push(parsed.route);
    });
    return { name, routes };
  };

  const defaultTable =
    root['routes'] === undefined || root['routes'] === null
      ? undefined
      : parseTable(root['routes'], 'routes', 'default');
  const tables = new Map<string, RouteTable | undefined>();
  if (root['routeTables'] !== undefined && root['routeTables'] !== null) {
    if (!isMapping(root['routeTables'])) {
      problems.push({
        path: 'routeTables',
        message: `must be a mapping of table names to lists of routes, got ${describe(root['routeTables'])}; e.g. routeTables: {api: [{cluster: api}]}`,
      });
    } else {
      for (const [name, raw] of Object.entries(root['routeTables'])) {
        tables.set(name, parseTable(raw, at('routeTables', name), name));
      }
    }
  }

  const listeners = parseListeners(root, baseDir, defaultTable, tables, parseTable, clusterNames, problems);

  for (const ref of clusterRefs) {
    if (!clusterNames.has(ref.cluster))
      problems.push({ path: ref.path, message: unknownCluster(ref.cluster, clusterNames) });
  }

  let accessLog: AccessLogConfig | undefined;
  if (root['accessLog'] !== undefined && root['accessLog'] !== null) {
    const a = readMapping(root['accessLog'], 'accessLog', problems, ['path'], '{path: stdout}');
    const where =
      a === undefined
        ? undefined
        : readString(a, 'path', 'accessLog', problems, {
            required: true,
            nonEmpty: true,
            example: 'path: stdout',
          });
    if (where !== undefined)
      accessLog = { path: where === 'stdout' ? 'stdout' : path.resolve(baseDir, where) };
  }
  const drainTimeoutMs = readDurationMs(root, 'drainTimeout', '', problems, {
    fallback: DEFAULT_DRAIN_TIMEOUT_MS,
  });
  let policy: Mapping | undefined;
  if (root['policy'] !== undefined && root['policy'] !== null) {
    if (!isMapping(root['policy'])) {
      problems.push({
        path: 'policy',
        message: `must be a mapping, got ${describe(root['policy'])}; the policy section is reserved for policy settings (Check/Report)`,
      });
    } else {
      policy = root['policy'];
      problems.push(...parsePolicySettings(policy).problems);
    }
  }
  if (problems.length > 0) return undefined;
  return deepFreeze({
    file,
    node: node!,
    listeners: listeners,
    clusters,
    accessLog,
    drainTimeoutMs: drainTimeoutMs!,
    policy: policy === undefined ? undefined : structuredClone(policy),
  });
}

function unknownCluster(name: string, known: ReadonlySet<string>): string {
  const list = [...known];
  return list.length === 0
    ? `no cluster named ${name}; define it under clusters`
    : `no cluster named ${name}; define it under clusters, or use one of ${list.join(', ')}`;
}

function parseNode(raw: unknown, problems: Problems): NodeIdentity | undefined {
  if (raw === undefined || raw === null) return { labels: {} };
  const n = readMapping(
    raw,
    'node',
    problems,
    NODE_KEYS,
    '{name: reviews-v1, namespace: default, labels: {app: reviews}}',
  );
  if (n === undefined) return undefined;
  const text = (key: string, example: string): string | undefined =>
    readString(n, key, 'node', problems, { nonEmpty: true, example });
  const identity: { -readonly [K in keyof NodeIdentity]: NodeIdentity[K] } = {
    labels: readStringMap(n, 'labels', 'node', problems, 'labels: {app: reviews, version: v1}') ?? {},
  };
  const name = text('name', 'name: reviews-v1');
  const namespace = text('namespace', 'namespace: default');
  const uid = text('uid', 'uid: kubernetes://reviews-v1.default');
  const serviceAccount = text('serviceAccount', 'serviceAccount: bookinfo-reviews');
  if (name !== undefined) identity.name = name;
  if (namespace !== undefined) identity.namespace = namespace;
  if (uid !== undefined) identity.uid = uid;
  if (serviceAccount !== undefined) identity.serviceAccount = serviceAccount;
  return identity;
}

function parseClusters(root: Mapping, problems: Problems): ClusterConfig[] {
  const list = readList(
    root,
    'clusters',
    '',
    problems,
    'clusters: [{name: backend, endpoints: [{host: 127.0.0.1, port: 8080}]}]',
  );
  const clusters: ClusterConfig[] = [];
  if (list === undefined) {
    if (root['clusters'] === undefined || root['clusters'] === null) {
      problems.push({
        path: 'clusters',
        message:
          'is required; define the upstreams, e.g. clusters: [{name: backend, endpoints: [{host: 127.0.0.1, port: 8080}]}]',
      });
    }
    return clusters;
  }
  const seen = new Map<string, number>();
  list.forEach((raw, i) => {
    const where = at('clusters', i);
    const config = parseClusterConfig(raw, where, problems as ConfigProblem[]);
    const name = isMapping(raw) && typeof raw['name'] === 'string' ? raw['name'] : undefined;
    if (name !== undefined) {
      const earlier = seen.get(name);
      if (earlier !== undefined) {
        problems.push({
          path: at(where, 'name'),
          message: `${name} is also the name of clusters[${earlier}]; give each cluster its own name`,
        });
      } else {
        seen.set(name, i);
      }
    }
    if (config !== undefined) clusters.push(config);
  });
  return clusters;
}

function parseListeners(
  root: Mapping,
  baseDir: string,
  defaultTable: RouteTable | undefined,
  tables: ReadonlyMap<string, RouteTable | undefined>,
  parseTable: (raw: unknown, where: string, name: string) => RouteTable | undefined,
  clusterNames: ReadonlySet<string>,
  problems: Problems,
): ListenerConfig[] {
  const example = '{name: outbound, role: outbound, address: 127.0.0.1, port: 15001, protocol: http}';
  const list = readList(root, 'listeners', '', problems, `listeners: [${example}]`);
  if (list === undefined || list.length === 0) {
    if (list !== undefined || root['listeners'] === undefined || root['listeners'] === null) {
      problems.push({
        path: 'listeners',
        message: `needs at least one listener, e.g. listeners: [${example}]`,
      });
    }
    return [];
  }
  const listeners: ListenerConfig[] = [];
  const names = new Map<string, number>();
  const endpoints = new Map<string, number>();
  list.forEach((raw, i) => {
    const where = at('listeners', i);
    const before = problems.length;
    const l = readMapping(raw, where, problems, LISTENER_KEYS, example);
    if (l === undefined) return;
    const name = readString(l, 'name', where, problems, {
      required: true,
      nonEmpty: true,
      example: 'name: outbound',
    });
    if (name !== undefined) {
      const earlier = names.get(name);
      if (earlier !== undefined)
        problems.push({
          path: at(where, 'name'),
          message: `${name} is also the name of listeners[${earlier}]; give each listener its own name`,
        });
      else names.set(name, i);
    }
    const role = readString(l, 'role', where, problems, { required: true, example: 'role: outbound' });
    if (role !== undefined && role !== 'inbound' && role !== 'outbound') {
      problems.push({
        path: at(where, 'role'),
        message: `must be inbound (traffic to this workload) or outbound (traffic from it), got ${JSON.stringify(role)}`,
      });
    }
    const address = readString(l, 'address', where, problems, {
      required: true,
      nonEmpty: true,
      example: 'address: 127.0.0.1',
    });
    const port = readWholeNumber(l, 'port', where, problems, {
      min: 0,
      max: 65535,
      required: true,
      example: 'port: 15001',
    });
    if (address !== undefined && port !== undefined && port !== 0) {
      const key = `${address}:${port}`;
      const earlier = endpoints.get(key);
      if (earlier !== undefined)
        problems.push({
          path: at(where, 'port'),
          message: `${key} is also where listeners[${earlier}] listens; give each listener its own address or port`,
        });
      else endpoints.set(key, i);
    }
    const protocol = readString(l, 'protocol', where, problems, { example: 'protocol: http' }) ?? 'http';
    if (protocol !== 'http' && protocol !== 'tcp') {
      problems.push({
        path: at(where, 'protocol'),
        message: `must be http (HTTP/1.1 and HTTP/2, with routes) or tcp (bytes to a cluster), got ${JSON.stringify(protocol)}`,
      });
      return;
    }
    const base = { name: name!, role: role as 'inbound' | 'outbound', address: address!, port: port! };
    if (protocol === 'tcp') {
      for (const key of ['tls', 'routes', 'streamIdleTimeout', 'limits']) {
        if (l[key] !== undefined)
          problems.push({
            path: at(where, key),
            message: `applies only to protocol http; remove it, or set protocol: http`,
          });
      }
      const cluster = readString(l, 'cluster', where, problems, {
        required: true,
        nonEmpty: true,
        example: 'cluster: postgres',
      });
      if (cluster !== undefined && !clusterNames.has(cluster))
        problems.push({ path: at(where, 'cluster'), message: unknownCluster(cluster, clusterNames) });
      const idleTimeoutMs = readDurationMs(l, 'idleTimeout', where, problems, {
        fallback: DEFAULT_TCP_IDLE_TIMEOUT_MS,
      });
      if (problems.length === before)
        listeners.push({ ...base, protocol: 'tcp', cluster: cluster!, idleTimeoutMs: idleTimeoutMs! });
      return;
    }
    if (l['idleTimeout'] !== undefined) {
      problems.push({
        path: at(where, 'idleTimeout'),
        message:
          'applies only to protocol tcp; an HTTP listener has streamIdleTimeout (and a route idleTimeout)',
      });
    }
    if (l['cluster'] !== undefined) {
      problems.push({
        path: at(where, 'cluster'),
        message:
          'applies only to protocol tcp; an http listener sends requests where its routes say (routes: [{cluster: …}])',
      });
    }
    let tls: TlsConfig | undefined;
    if (l['tls'] !== undefined && l['tls'] !== null) {
      const tw = at(where, 'tls');
      const t = readMapping(
        l['tls'],
        tw,
        problems,
        ['certFile', 'keyFile'],
        '{certFile: cert.pem, keyFile: key.pem}',
      );
      if (t !== undefined) {
        const certFile = readString(t, 'certFile', tw, problems, {
          required: true,
          nonEmpty: true,
          example: 'certFile: cert.pem',
        });
        const keyFile = readString(t, 'keyFile', tw, problems, {
          required: true,
          nonEmpty: true,
          example: 'keyFile: key.pem',
        });
        if (certFile !== undefined && keyFile !== undefined)
          tls = { certFile: path.resolve(baseDir, certFile), keyFile: path.resolve(baseDir, keyFile) };
      }
    }
    let routeTable: RouteTable | undefined;
    const routes = l['routes'];
    if (routes === undefined || routes === null) {
      routeTable = defaultTable;
      if (root['routes'] === undefined || root['routes'] === null) {
        problems.push({
          path: where,
          message:
            'has no routes; give it routes (a list, or the name of one of routeTables), or define the top-level routes',
        });
      }
    } else if (typeof routes === 'string') {
      if (!tables.has(routes)) {
        const known = [...tables.keys()];
        problems.push({
          path: at(where, 'routes'),
          message:
            known.length === 0
              ? `names route table ${routes}, but there are no routeTables; define routeTables: {${routes}: [...]}`
              : `names route table ${routes}, which is not defined; use one of ${known.join(', ')}`,
        });
      }
      routeTable = tables.get(routes);
    } else {
      routeTable = parseTable(routes, at(where, 'routes'), where);
    }
    const streamIdleTimeoutMs = readDurationMs(l, 'streamIdleTimeout', where, problems, { fallback: 0 });
    const limits = parseRequestLimits(l['limits'], at(where, 'limits'), problems);
    if (problems.length === before && routeTable !== undefined)
      listeners.push({
        ...base,
        protocol: 'http',
        tls,
        routeTable,
        streamIdleTimeoutMs: streamIdleTimeoutMs!,
        limits: limits!,
      });
  });
  return listeners;
}

/** A listener's `limits`; the defaults when absent, undefined (with problems) when wrong. */
function parseRequestLimits(value: unknown, where: string, problems: Problems): RequestLimits | undefined {
  if (value === undefined || value === null) return DEFAULT_REQUEST_LIMITS;
  const m = readMapping(
    value,
    where,
    problems,
    LIMIT_KEYS,
    '{requestHeadBytes: 64KiB, requestBodyBytes: 10MiB}',
  );
  if (m === undefined) return undefined;
  const maxHeadBytes = readByteSize(m, 'requestHeadBytes', where, problems, {
    // A request line and a Host field fit in less; HTTP/2 counts 32 bytes per field besides.
    min: 256,
    max: MAX_REQUEST_HEAD_BYTES,
    fallback: DEFAULT_REQUEST_LIMITS.maxHeadBytes,
    example: 'requestHeadBytes: 64KiB',
  });
  const maxHeaderCount = readWholeNumber(m, 'requestHeaders', where, problems, {
    min: 1,
    max: MAX_REQUEST_HEADERS,
    fallback: DEFAULT_REQUEST_LIMITS.maxHeaderCount,
    example: 'requestHeaders: 200',
  });
  const maxBodyBytes = readByteSize(m, 'requestBodyBytes', where, problems, {
    min: 0,
    fallback: DEFAULT_REQUEST_LIMITS.maxBodyBytes,
    example: 'requestBodyBytes: 10MiB',
  });
  if (maxHeadBytes === undefined || maxHeaderCount === undefined || maxBodyBytes === undefined)
    return undefined;
  return { maxHeadBytes, maxHeaderCount, maxBodyBytes };
}
