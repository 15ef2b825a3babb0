/**
 * Proxy configuration validation: one fixture per bad configuration
 * (test/fixtures/proxy/bad/), each with the exact `file:line: path: message` lines it must
 * produce; a good configuration and the README's example parse.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createProxy, formatProxyConfigError, parseProxyConfig, ProxyConfigLoadError } from '../../proxy';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const BAD = path.join(REPO_ROOT, 'test', 'fixtures', 'proxy', 'bad');

/** Errors of a fixture, formatted, with the file named as the fixture's base name. */
function errorsOf(name: string): string[] {
  const outcome = parseProxyConfig(readFileSync(path.join(BAD, name), 'utf8'), name);
  assert.equal(outcome.ok, false, `${name} should not validate`);
  return outcome.ok ? [] : outcome.errors.map(formatProxyConfigError);
}

const EXPECTED: Readonly<Record<string, readonly string[]>> = {
  'unknown-key.yaml': [
    'unknown-key.yaml:6: listeners[0].protocl: unknown key; did you mean protocol? The keys here are name, role, address, port, protocol, tls, routes, streamIdleTimeout, limits, cluster, idleTimeout',
  ],
  'header-match-without-condition.yaml': [
    'header-match-without-condition.yaml:11: routes[2].match.headers[0]: says nothing about x-canary; give one of exact, prefix, suffix, regex, present or absent, e.g. {name: x-canary, exact: "1"}',
  ],
  'unknown-cluster.yaml': [
    'unknown-cluster.yaml:7: routes[0].destinations[1].cluster: no cluster named reviews-v3; define it under clusters, or use one of reviews-v1, reviews-v2',
  ],
  'bad-regex.yaml': [
    'bad-regex.yaml:5: routes[0].match.path.regex: does not compile: Unterminated group; write an RE2 regular expression, e.g. "^/users/[0-9]+$"',
  ],
  'duration-without-unit.yaml': [
    'duration-without-unit.yaml:5: routes[0].timeout: must be a duration such as 15s, 250ms or 1m30s, got the number 15; write the unit, e.g. timeout: 1s',
    'duration-without-unit.yaml:8: routes[0].retries.perTryTimeout: must be a duration such as 15s, 250ms or 1m30s, got the number 1; write the unit, e.g. perTryTimeout: 1s',
  ],
  'two-actions.yaml': ['two-actions.yaml:4: routes[0]: gives cluster and directResponse; keep one of them'],
  'no-action.yaml': [
    'no-action.yaml:4: routes[0]: says nothing to do; give one of cluster, destinations, redirect or directResponse, e.g. cluster: backend',
  ],
  'prefix-rewrite-without-prefix-match.yaml': [
    'prefix-rewrite-without-prefix-match.yaml:5: routes[0].rewrite.pathPrefix: replaces the matched path prefix, but this route matches no prefix; add match: {path: {prefix: /old/}}',
  ],
  'duplicate-listener-address.yaml': [
    'duplicate-listener-address.yaml:3: listeners[1].port: 127.0.0.1:15001 is also where listeners[0] listens; give each listener its own address or port',
  ],
  'idle-timeouts-misplaced.yaml': [
    'idle-timeouts-misplaced.yaml:6: listeners[0].streamIdleTimeout: must be a duration such as 15s, 250ms or 1m30s, got the number 5; write the unit, e.g. streamIdleTimeout: 1s',
    'idle-timeouts-misplaced.yaml:7: listeners[0].idleTimeout: applies only to protocol tcp; an HTTP listener has streamIdleTimeout (and a route idleTimeout)',
    'idle-timeouts-misplaced.yaml:14: listeners[1].streamIdleTimeout: applies only to protocol http; remove it, or set protocol: http',
    'idle-timeouts-misplaced.yaml:15: listeners[1].idleTimeout: must be a duration such as 15s, 250ms or 1m30s, got the string "forever"; write the unit, e.g. idleTimeout: 1s',
    'idle-timeouts-misplaced.yaml:18: routes[0].idleTimeout: applies only to routes that forward (cluster or destinations); remove it from this directResponse route',
    'idle-timeouts-misplaced.yaml:20: routes[1].idleTimeout: must be a duration such as 15s, 250ms or 1m30s, got the string "soon"; write the unit, e.g. idleTimeout: 1s',
  ],
  'request-limits.yaml': [
    'request-limits.yaml:7: listeners[0].limits.requestHeadBytes: must be a size from 256 to 1048576 bytes: a whole number, or one with a unit (B, KiB, MiB, GiB), got the string "64KB"; e.g. requestHeadBytes: 64KiB',
    'request-limits.yaml:8: listeners[0].limits.requestHeaders: must be a whole number from 1 to 1000, got the number 0; e.g. requestHeaders: 200',
    'request-limits.yaml:9: listeners[0].limits.requestBodyBytes: must be a size of at least 0 bytes: a whole number, or one with a unit (B, KiB, MiB, GiB), got the number -1; e.g. requestBodyBytes: 10MiB',
    'request-limits.yaml:14: listeners[1].limits.requestBodyByts: unknown key; did you mean requestBodyBytes? The keys here are requestHeadBytes, requestHeaders, requestBodyBytes',
    'request-limits.yaml:15: listeners[2].limits: applies only to protocol http; remove it, or set protocol: http',
  ],
  'tcp-listener-with-routes.yaml': [
    'tcp-listener-with-routes.yaml:2: listeners[0].cluster: is required, e.g. cluster: postgres',
    'tcp-listener-with-routes.yaml:7: listeners[0].routes: applies only to protocol http; remove it, or set protocol: http',
  ],
  'tcp-listener-without-cluster.yaml': [
    'tcp-listener-without-cluster.yaml:2: listeners[0].cluster: is required, e.g. cluster: postgres',
  ],
  'missing-clusters.yaml': [
    'missing-clusters.yaml:1: clusters: is required; define the upstreams, e.g. clusters: [{name: backend, endpoints: [{host: 127.0.0.1, port: 8080}]}]',
    'missing-clusters.yaml:4: routes[0].cluster: no cluster named backend; define it under clusters',
  ],
  'unknown-retry-on.yaml': [
    'unknown-retry-on.yaml:7: routes[0].retries.retryOn[1]: must be one of 5xx, gateway-error, connect-failure, reset, got the number 503; to retry other status codes, list them under retriableStatusCodes',
  ],
  'redirect-bad-status.yaml': [
    'redirect-bad-status.yaml:5: routes[0].redirect.status: must be one of 301, 302, 303, 307, 308, got 304',
  ],
  'managed-header.yaml': [
    'managed-header.yaml:6: routes[0].requestHeaders.set.connection: connection is managed by the proxy on each hop and cannot be changed here; remove it',
  ],
  'direct-response-managed-header.yaml': [
    'direct-response-managed-header.yaml:7: routes[0].directResponse.headers.content-length: content-length is managed by the proxy on each hop and cannot be changed here; remove it',
  ],
  'duplicate-key.yaml': [
    'duplicate-key.yaml:5: invalid YAML: Map keys must be unique; remove or rename one of the duplicate keys',
  ],
  'unknown-route-table.yaml': [
    'unknown-route-table.yaml:2: listeners[0].routes: names route table api, which is not defined; use one of web',
  ],
  'lower-case-method.yaml': [
    'lower-case-method.yaml:4: routes[0].match.methods[1]: methods are case-sensitive and post is not one a client sends; write POST',
  ],
  'empty.yaml': [
    'empty.yaml:1: the file is empty; give at least listeners and clusters (see proxy/README.md)',
  ],
  'quota-charge-zero.yaml': [
    'quota-charge-zero.yaml:8: policy.quotas.rules[0].quotas[0].charge: must be a whole number >= 1, got 0',
  ],
  'quota-unknown-mode.yaml': [
    'quota-unknown-mode.yaml:8: policy.quotas.modes.requestcount: must be exact or prefetch, got "lazy"',
  ],
  'quota-binding-unknown-spec.yaml': [
    'quota-binding-unknown-spec.yaml:12: policy.quotas.bindings[0].spec.quotaSpecs[0]: names no QuotaSpec in policy.quotas.specs; known: none',
  ],
  'policy-not-mapping.yaml': [
    'policy-not-mapping.yaml:8: policy: must be a mapping, got the string "on"; the policy section is reserved for policy settings (Check/Report)',
  ],
  'zero-weights.yaml': [
    'zero-weights.yaml:4: routes[0].destinations: weights add up to 0; give at least one destination a weight above 0',
  ],
  'present-false.yaml': [
    'present-false.yaml:6: routes[0].match.query[0].present: must be true, got false; to test the opposite, write absent: true',
  ],
  'fault-percent-out-of-range.yaml': [
    'fault-percent-out-of-range.yaml:6: routes[0].fault.abort.percent: must be a percentage from 0 to 100, got the number 150; e.g. percent: 10 or percent: 0.5',
  ],
  'many-problems.yaml': [
    'many-problems.yaml:3: node.labels.version: must be a string, got the number 1; quote it, e.g. version: "1"',
    'many-problems.yaml:5: listeners[0].role: must be inbound (traffic to this workload) or outbound (traffic from it), got "sideways"',
    'many-problems.yaml:5: listeners[0].port: must be a whole number from 0 to 65535, got the number 70000; e.g. port: 15001',
    'many-problems.yaml:7: routes[0].match.path.prefix: must start with /, got "api/"; e.g. prefix: /api/',
    'many-problems.yaml:9: routes[0].timeout: must be a duration such as 15s, 250ms or 1m30s, got the string "soon"; write the unit, e.g. timeout: 1s',
    'many-problems.yaml:10: routes[1].directResponse.status: is required, e.g. status: 200',
    'many-problems.yaml:14: accessLog.file: unknown key; the keys here are path',
    'many-problems.yaml:14: accessLog.path: is required, e.g. path: stdout',
  ],
};

describe('proxy configuration', () => {
  describe('bad configurations: every problem as file:line: path: message', () => {
    for (const [name, expected] of Object.entries(EXPECTED)) {
      it(name, () => assert.deepEqual(errorsOf(name), expected));
    }

    it('a TLS file that cannot be read is refused when the proxy starts, with its line', async () => {
      const file = path.join(BAD, 'tls-unreadable.yaml');
      const proxy = createProxy({
        configFile: file,
        watch: false,
        logger: { error: () => undefined, info: () => undefined },
      });
      await assert.rejects(proxy.start(), (error: unknown) => {
        assert.ok(error instanceof ProxyConfigLoadError);
        assert.deepEqual(error.errors.map(formatProxyConfigError), [
          `${file}:6: listeners[0].tls: cannot read ${path.join(BAD, 'no-such-cert.pem')}: ENOENT; give PEM files the proxy can read (relative paths are relative to the configuration file)`,
        ]);
        return true;
      });
      await proxy.close();
    });

    it('a missing file says so', async () => {
      const file = path.join(BAD, 'no-such-file.yaml');
      const proxy = createProxy({ configFile: file, watch: false });
      await assert.rejects(proxy.start(), /no-such-file\.yaml: file does not exist; check the --config path/);
      await proxy.close();
    });
  });

  describe('good configurations', () => {
    it('applies defaults and resolves references', () => {
      const outcome = parseProxyConfig(
        `
node: {name: reviews-v1, namespace: default, labels: {app: reviews}}
listeners:
  - {name: out, role: outbound, address: 127.0.0.1, port: 15001}
  - {name: in, role: inbound, address: 127.0.0.1, port: 15006, routes: inbound,
     limits: {requestHeadBytes: 16KiB, requestBodyBytes: 1048576}}
  - {name: db, role: outbound, address: 127.0.0.1, port: 15432, protocol: tcp, cluster: backend}
routes:
  - match: {headers: [{name: X-Canary, exact: "1"}]}
    destinations: [{cluster: backend, weight: 1}, {cluster: other, weight: 3}]
    retries: {attempts: 2}
  - cluster: backend
routeTables:
  inbound:
    - {name: local, cluster: other}
clusters:
  - {name: backend, endpoints: [{host: 127.0.0.1, port: 8080}]}
  - {name: other, protocol: http2, endpoints: [{host: 127.0.0.1, port: 8081}]}
policy: {anything: [goes, here]}
accessLog: {path: access.json}
`,
        '/etc/switchboard/proxy.yaml',
      );
      assert.ok(outcome.ok, outcome.ok ? '' : outcome.errors.map(formatProxyConfigError).join('\n'));
      const config = outcome.config;
      assert.ok(Object.isFrozen(config) && Object.isFrozen(config.listeners[0]));
      const [out, inbound, db] = config.listeners;
      assert.equal(out?.protocol, 'http');
      assert.equal(db?.protocol, 'tcp');
      if (out?.protocol !== 'http' || inbound?.protocol !== 'http')
        throw new Error('http listeners expected');
      assert.equal(out.routeTable.name, 'default');
      assert.equal(inbound.routeTable.name, 'inbound');
      assert.deepEqual(out.limits, { maxHeadBytes: 65536, maxHeaderCount: 200, maxBodyBytes: Infinity });
      assert.deepEqual(inbound.limits, { maxHeadBytes: 16384, maxHeaderCount: 200, maxBodyBytes: 1048576 });
      const first = out.routeTable.routes[0]!;
      assert.equal(first.name, 'route-0');
      assert.deepEqual(first.match.headers, [{ name: 'x-canary', kind: 'value', match: { exact: '1' } }]);
      assert.equal(first.action.kind, 'forward');
      if (first.action.kind !== 'forward') return;
      assert.equal(first.action.timeoutMs, 15_000);
      assert.equal(first.action.retries?.attempts, 2);
      assert.deepEqual([...first.action.retries!.retryOn].sort(), [
        'connect-failure',
        'gateway-error',
        'reset',
      ]);
      assert.equal(first.action.retries?.backoffBaseMs, 25);
      assert.equal(first.action.retries?.backoffMaxMs, 250);
      assert.equal(first.action.retries?.budgetPercent, 20);
      assert.equal(first.action.retries?.bufferLimitBytes, 65536);
      assert.deepEqual(config.policy, { anything: ['goes', 'here'] });
      assert.equal(config.accessLog?.path, '/etc/switchboard/access.json');
      assert.equal(config.drainTimeoutMs, 30_000);
      assert.equal(config.clusters[1]?.protocol, 'http2');
    });

    it("the README's example configuration is valid", () => {
      const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
      const section = readme.slice(readme.indexOf('## The sidecar proxy'));
      const example = /```yaml\n([\s\S]*?)```/.exec(section);
      assert.ok(example !== null, 'the README has a proxy section with a yaml block');
      const outcome = parseProxyConfig(example[1]!, 'README.md');
      assert.ok(outcome.ok, outcome.ok ? '' : outcome.errors.map(formatProxyConfigError).join('\n'));
      assert.ok(
        outcome.config.listeners.length >= 3,
        'the example shows inbound, outbound and tcp listeners',
      );
    });
  });
});
