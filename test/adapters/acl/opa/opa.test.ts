/**
 * The opa adapter end to end, through the scenario harness (configuration in, Checks in,
 * outcomes out), on policies compiled by the real OPA compiler.
 */
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createBuiltinRegistry } from '../../../../adapters';
import { OPA, type OpaStats } from '../../../../adapters/acl/opa';
import { AttributeBag } from '../../../../attributes';
import { createScenario, PolicyRuntime, type Scenario } from '../../../../policy-server';
import { StatusCode } from '../../../../templates';
import { opaConfig, RBAC_DIR, REPO_ROOT, requireOpaCompiler, TempDirs } from '../../../support/opa';

const HANDLER = 'authz.handler.istio-system';

function stats(scenario: Scenario, handler = HANDLER): OpaStats {
  const h = (
    scenario.dispatcher as unknown as { handlers: ReadonlyMap<string, { stats(): OpaStats }> }
  ).handlers.get(handler);
  assert.ok(h !== undefined, `no handler ${handler}`);
  return h.stats();
}

describe('adapters/acl/opa: decisions', function () {
  this.timeout(30_000);
  const scenarios: Scenario[] = [];
  const temp = new TempDirs();

  before(() => {
    requireOpaCompiler();
  });
  afterEach(async () => {
    await Promise.all(scenarios.splice(0).map((s) => s.close()));
    temp.removeAll();
  });

  async function scenario(
    files: Record<string, string>,
    options: Parameters<typeof createScenario>[1] = {},
  ): Promise<Scenario> {
    const s = await createScenario(files, options);
    scenarios.push(s);
    return s;
  }

  it('is named opa and takes authorization and checknothing instances', () => {
    assert.equal(OPA.name, 'opa');
    assert.deepEqual(OPA.templates, ['authorization', 'checknothing']);
  });

  describe('an RBAC policy with its roles in a data document (examples/opa/rbac)', () => {
    const rbac = (extra: Record<string, unknown> = {}) =>
      scenario({
        'rbac.yaml': opaConfig({ policyDir: RBAC_DIR, checkMethod: 'data.rbac.decision', ...extra }),
      });

    it('grants by the roles bound to the user or its group, and passes the roles on as a request header', async () => {
      const s = await rbac();
      const alice = await s.check({
        'request.headers': { 'x-user': 'alice' },
        'request.method': 'DELETE',
        'request.path': '/admin/users/7',
      });
      assert.deepEqual(alice.status, { code: 0, message: '' });
      assert.deepEqual(alice.requestHeaderOperations, [
        { name: 'x-rbac-roles', value: 'admin', operation: 'REPLACE' },
      ]);
      const bob = await s.check({
        'request.headers': { 'x-user': 'bob' },
        'request.method': 'GET',
        'request.path': '/api/reviews/1',
      });
      assert.deepEqual(bob.requestHeaderOperations, [
        { name: 'x-rbac-roles', value: 'reader,reviewer', operation: 'REPLACE' },
      ]);
      const staff = await s.check({
        'request.headers': { 'x-group': 'staff' },
        'request.method': 'HEAD',
        'request.path': '/api/ratings',
      });
      assert.equal(staff.status.code, StatusCode.OK);
    });

    it('denies with the policy reason, PERMISSION_DENIED, and what the decision read as referenced attributes', async () => {
      const s = await rbac();
      const carol = await s.check({
        'request.headers': { 'x-user': 'carol', 'x-other': 'unread' },
        'request.method': 'POST',
        'request.path': '/api/reviews/1',
        'source.uid': 'unread',
      });
      assert.deepEqual(carol.status, {
        code: StatusCode.PERMISSION_DENIED,
        message: `${HANDLER}:carol may not POST /api/reviews/1`,
      });
      assert.deepEqual(carol.requestHeaderOperations, []);
      // Exactly the attributes (and header keys) the instance read: not x-other, not source.uid.
      assert.deepEqual(carol.references.toStrings(), [
        '-destination.namespace',
        '-destination.service.host',
        '-request.headers[x-group]',
        'request.headers[x-user]',
        'request.method',
        'request.path',
      ]);
      const nobody = await s.check({ 'request.method': 'GET', 'request.path': '/' });
      assert.equal(nobody.status.message, `${HANDLER}:anonymous may not GET /`);
      assert.ok(nobody.references.toStrings().includes('-request.headers'));
    });

    it('lets proxies cache decisions for validDuration and validUseCount (default 10s and 10000)', async () => {
      const defaults = await rbac();
      const a = await defaults.check({ 'request.method': 'GET', 'request.path': '/' });
      assert.deepEqual([a.validDurationMs, a.validUseCount], [10_000, 10_000]);
      const configured = await rbac({ validDuration: '2s', validUseCount: 5 });
      const b = await configured.check({ 'request.method': 'GET', 'request.path': '/' });
      assert.deepEqual([b.validDurationMs, b.validUseCount], [2000, 5]);
    });
  });

  it("decides Istio's Mixer OPA example configuration (Mixer-era Rego, three packages) as Mixer did", async () => {
    const dir = path.join(REPO_ROOT, 'test', 'fixtures', 'opa', 'mixer-example');
    const s = await scenario({
      'attributes.yaml': readFileSync(path.join(dir, 'attributes.yaml'), 'utf8'),
      'service.yaml': readFileSync(path.join(dir, 'service.yaml'), 'utf8'),
    });
    // The cases and codes of Mixer's own test (opa_integration_test.go).
    const cases: Array<[string, Record<string, string>, number]> = [
      [
        'Not important API',
        {
          'source.uid': 'janet',
          'request.path': '/detail/alice',
          'destination.service': 'landing_page',
          'source.service': 'details',
        },
        0,
      ],
      [
        'Self permission',
        {
          'source.uid': 'janet',
          'request.path': '/detail/janet',
          'destination.service': 'landing_page',
          'source.service': 'details',
        },
        0,
      ],
      [
        'Manager permission',
        {
          'source.uid': 'janet',
          'request.path': '/reviews/alice',
          'destination.service': 'landing_page',
          'source.service': 'details',
        },
        0,
      ],
      [
        'HR permission',
        {
          'source.uid': 'ken',
          'request.path': '/reviews/janet',
          'destination.service': 'landing_page',
          'source.service': 'details',
        },
        0,
      ],
      [
        'Denied request',
        {
          'source.uid': 'janet',
          'request.path': '/detail/ken',
          'destination.service': 'landing_pages',
          'source.service': 'invalid',
        },
        7,
      ],
    ];
    for (const [name, attributes, code] of cases) {
      const outcome = await s.check(attributes);
      assert.equal(outcome.status.code, code, name);
      if (code !== 0)
        assert.equal(outcome.status.message, 'opaHandler.opa.istio-system:opa: request was rejected');
    }
    // A sensitive API of someone else's, asked by neither the owner, a manager nor HR.
    const other = await s.check({
      'source.uid': 'bob',
      'request.path': '/reviews/alice',
      'destination.service': 'landing_page',
      'source.service': 'details',
    });
    assert.equal(other.status.code, 7);
    assert.equal(stats(s, 'opaHandler.opa.istio-system').regoVersion, 'v0');
  });

  it('decides by path and method', async () => {
    const policy = `package http
import rego.v1
default allow := false
allow if {
  input.action.method in {"GET", "HEAD"}
  startswith(input.action.path, "/public/")
}
allow if {
  input.action.method in {"GET", "POST"}
  regex.match(\`^/api/v[0-9]+/items(/[0-9]+)?$\`, input.action.path)
}
allow if {
  input.action.method == "DELETE"
  glob.match("/api/*/items/*", ["/"], input.action.path)
  input.subject.user == "admin"
}`;
    const s = await scenario({
      'http.yaml': opaConfig({ policy: [policy], checkMethod: 'data.http.allow' }),
    });
    const cases: Array<[string, string, string, number]> = [
      ['GET', '/public/logo.png', '', 0],
      ['HEAD', '/public/', '', 0],
      ['POST', '/public/logo.png', '', 7],
      ['GET', '/private/x', '', 7],
      ['GET', '/api/v2/items', '', 0],
      ['POST', '/api/v10/items/42', '', 0],
      ['PUT', '/api/v2/items/42', '', 7],
      ['GET', '/api/vx/items', '', 7],
      ['DELETE', '/api/v1/items/42', 'admin', 0],
      ['DELETE', '/api/v1/items/42', 'bob', 7],
      ['DELETE', '/api/v1/items/42/x', 'admin', 7],
    ];
    for (const [method, requestPath, user, code] of cases) {
      const outcome = await s.check({
        'request.method': method,
        'request.path': requestPath,
        ...(user === '' ? {} : { 'request.headers': { 'x-user': user } }),
      });
      assert.equal(outcome.status.code, code, `${method} ${requestPath} as ${user || 'nobody'}`);
      if (code !== 0) assert.equal(outcome.status.message, `${HANDLER}:opa: request was rejected`);
    }
  });

  it('maps {allow, reason, status, headers} to the status, its message and the RouteDirective', async () => {
    const policy = `package authz
import rego.v1
user := object.get(input.subject, "user", "")
decision := {"allow": false, "status": "UNAUTHENTICATED", "reason": "log in first",
  "headers": {"response": [{"name": "www-authenticate", "value": "Bearer"}]}} if user == ""
decision := {"allow": false, "status": 9, "reason": sprintf("%s is suspended", [user])} if user == "mallory"
decision := {"allow": true, "headers": {
  "request": [{"name": "x-user-id", "value": user}, {"name": "cookie", "operation": "REMOVE"}],
  "response": {"x-served-for": user}}} if {
  user != ""
  user != "mallory"
}`;
    const s = await scenario({
      'authz.yaml': opaConfig({ policy: [policy], checkMethod: 'data.authz.decision' }),
    });
    const anonymous = await s.check({ 'request.path': '/' });
    assert.deepEqual(anonymous.status, {
      code: StatusCode.UNAUTHENTICATED,
      message: `${HANDLER}:log in first`,
    });
    assert.deepEqual(anonymous.responseHeaderOperations, [
      { name: 'www-authenticate', value: 'Bearer', operation: 'REPLACE' },
    ]);
    const mallory = await s.check({ 'request.headers': { 'x-user': 'mallory' } });
    assert.deepEqual(mallory.status, {
      code: StatusCode.FAILED_PRECONDITION,
      message: `${HANDLER}:mallory is suspended`,
    });
    const bob = await s.check({ 'request.headers': { 'x-user': 'bob' } });
    assert.equal(bob.status.code, StatusCode.OK);
    assert.deepEqual(bob.requestHeaderOperations, [
      { name: 'x-user-id', value: 'bob', operation: 'REPLACE' },
      { name: 'cookie', value: '', operation: 'REMOVE' },
    ]);
    assert.deepEqual(bob.responseHeaderOperations, [
      { name: 'x-served-for', value: 'bob', operation: 'REPLACE' },
    ]);
  });

  describe('no decision: failClose decides, and the answer is never cached', () => {
    const policies: Record<string, string> = {
      'an undefined decision': 'package p\nimport rego.v1\nallow if input.subject.user == "x"',
      'a decision that is not a boolean': 'package p\nimport rego.v1\nallow := "yes"',
      'a malformed decision object': 'package p\nimport rego.v1\nallow := {"allow": "yes"}',
      // Two values for one complete rule: the module aborts the evaluation.
      'an evaluation error':
        'package p\nimport rego.v1\nallow := true if input.action.method\nallow := false if input.action.path',
    };
    const attributes = { 'request.method': 'GET', 'request.path': '/' };
    for (const [what, policy] of Object.entries(policies)) {
      it(`${what}: denied with failClose, allowed without (Mixer's default)`, async () => {
        const closed = await scenario({
          'p.yaml': opaConfig({ policy: [policy], checkMethod: 'data.p.allow', failClose: true }),
        });
        const denied = await closed.check(attributes);
        assert.equal(denied.status.code, StatusCode.PERMISSION_DENIED);
        assert.match(denied.status.message, /^authz\.handler\.istio-system:opa: request was rejected: \S/);
        assert.deepEqual([denied.validDurationMs, denied.validUseCount], [0, 0]);
        assert.equal(stats(closed).decisions.failed, 1);
        const open = await scenario({
          'p.yaml': opaConfig({ policy: [policy], checkMethod: 'data.p.allow' }),
        });
        const allowed = await open.check(attributes);
        assert.deepEqual(allowed.status, { code: 0, message: '' });
        assert.deepEqual([allowed.validDurationMs, allowed.validUseCount], [0, 0]);
        assert.ok(
          open.log.some((line) =>
            line.startsWith(
              'warn: opa/authz.handler.istio-system: no decision for request.instance.istio-system: ',
            ),
          ),
          open.log.join('\n'),
        );
      });
    }

    it('an evaluation error names its cause, drops the instance it happened in, and the next evaluation succeeds', async () => {
      const policy =
        'package p\nimport rego.v1\nallow := true if input.action.method\nallow := false if input.action.path';
      const s = await scenario({
        'p.yaml': opaConfig({ policy: [policy], checkMethod: 'data.p.allow', failClose: true }),
      });
      const failed = await s.check({ 'request.method': 'GET', 'request.path': '/' });
      assert.match(failed.status.message, /evaluation failed: .*(conflict|multiple outputs)/i);
      const ok = await s.check({ 'request.method': 'GET' });
      assert.equal(ok.status.code, StatusCode.OK);
      const evaluator = stats(s).evaluator;
      assert.equal(evaluator.instancesDiscarded, 1);
      assert.equal(evaluator.instancesCreated, 2);
    });
  });

  it('dryRun decides and logs, but never denies', async () => {
    const dir = temp.make();
    const log = path.join(dir, 'decisions.jsonl');
    const s = await scenario({
      'dry.yaml': opaConfig({
        policyDir: RBAC_DIR,
        checkMethod: 'data.rbac.decision',
        dryRun: true,
        decisionLog: { path: log },
      }),
    });
    const refused = await s.check({
      'request.headers': { 'x-user': 'carol' },
      'request.method': 'DELETE',
      'request.path': '/api/x',
    });
    assert.deepEqual(refused.status, { code: 0, message: '' });
    const granted = await s.check({
      'request.headers': { 'x-user': 'alice' },
      'request.method': 'GET',
      'request.path': '/',
    });
    assert.deepEqual(granted.requestHeaderOperations, [], 'a dry run changes no headers');
    assert.deepEqual(stats(s).decisions, { allowed: 1, denied: 0, dryRunDenied: 1, failed: 0, timedOut: 0 });
    await s.close();
    const records = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      records.map((r) => [r.decision, r.code, r.reason, r.dryRun]),
      [
        ['deny', 7, 'carol may not DELETE /api/x', true],
        ['allow', 0, '', true],
      ],
    );
  });

  it('the decision log receives every decision, with its input, result and revision', async () => {
    const dir = temp.make();
    const log = path.join(dir, 'decisions.jsonl');
    const s = await scenario(
      {
        'rbac.yaml': opaConfig({
          policyDir: RBAC_DIR,
          checkMethod: 'data.rbac.decision',
          decisionLog: { path: log },
        }),
      },
      { clock: () => Date.UTC(2025, 0, 2, 3, 4, 5, 678) },
    );
    const users = ['alice', 'bob', 'carol', 'dave'];
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        s.check({
          'request.headers': { 'x-user': users[i % 4]! },
          'request.method': i % 3 === 0 ? 'POST' : 'GET',
          'request.path': `/api/reviews/${i}`,
        }),
      ),
    );
    const revision = stats(s).revision;
    await s.close();
    const records = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(records.length, 200);
    records.forEach((record, i) => {
      const allowed = outcomes[i]!.status.code === 0;
      assert.equal(record.time, '2025-01-02T03:04:05.678Z');
      assert.equal(record.handler, HANDLER);
      assert.equal(record.instance, 'request.instance.istio-system');
      assert.equal(record.revision, revision);
      assert.equal(record.decision, allowed ? 'allow' : 'deny');
      assert.deepEqual((record.input as { action: unknown }).action, {
        namespace: 'default',
        method: i % 3 === 0 ? 'POST' : 'GET',
        path: `/api/reviews/${i}`,
      });
      assert.equal((record.result as { allow: boolean }).allow, allowed);
      assert.equal(typeof record.evalMicros, 'number');
    });

    const quiet = path.join(dir, 'no-input.jsonl');
    const q = await scenario({
      'rbac.yaml': opaConfig({
        policyDir: RBAC_DIR,
        checkMethod: 'data.rbac.decision',
        decisionLog: { path: quiet, includeInput: false },
      }),
    });
    await q.check({ 'request.path': '/' });
    await q.close();
    assert.equal('input' in JSON.parse(readFileSync(quiet, 'utf8')), false);
  });

  it('the decision log can be a logentry handler: every decision reaches it as an opa-decision entry', async () => {
    const dir = temp.make();
    const out = path.join(dir, 'audit.jsonl');
    const s = await scenario({
      'rbac.yaml': opaConfig({
        policyDir: RBAC_DIR,
        checkMethod: 'data.rbac.decision',
        decisionLog: { handler: 'audit' },
      }),
      'audit.yaml': `apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: audit, namespace: istio-system }
spec:
  compiledAdapter: stdio
  params: { logStream: FILE, outputPath: ${JSON.stringify(out)} }
`,
    });
    const outcomes = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        s.check({
          'request.headers': { 'x-user': i % 2 === 0 ? 'alice' : 'nobody' },
          'request.method': 'DELETE',
          'request.path': `/admin/users/${i}`,
        }),
      ),
    );
    assert.equal(outcomes.filter((o) => o.status.code === 0).length, 60);
    // Closing flushes the decisions into the stdio handler before that handler closes.
    await s.close();
    assert.deepEqual(stats(s).decisionLog, {
      handler: 'audit.handler.istio-system',
      delivered: 120,
      pending: 0,
      dropped: 0,
      failedAttempts: 0,
    });
    const entries = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(entries.length, 120);
    assert.deepEqual(
      entries.map((e) => e['instance']).filter((n) => n !== 'opa-decision'),
      [],
    );
    assert.equal(entries.filter((e) => e['decision'] === 'allow').length, 60);
    const denied = entries.find((e) => e['decision'] === 'deny')!;
    assert.equal(denied['handler'], HANDLER);
    assert.equal(denied['checkedInstance'], 'request.instance.istio-system');
    assert.match(String(denied['input']), /"path":"\/admin\/users\/\d+"/);
  });

  it('refuses a decision log with both a file and a handler, or neither', async () => {
    await assert.rejects(
      scenario({
        'rbac.yaml': opaConfig({
          policyDir: RBAC_DIR,
          checkMethod: 'data.rbac.decision',
          decisionLog: { handler: 'audit', path: '/tmp/x.jsonl' },
        }),
      }),
      /decisionLog.*give either path \(a file\) or handler/,
    );
  });

  it('checknothing: the whole request as input.attributes, every attribute referenced, never cached', async () => {
    const policy = `package bag
import rego.v1
default allow := false
allow if input.attributes["request.headers"]["x-token"] == "secret"
allow if input.attributes["source.namespace"] == "trusted"`;
    const s = await scenario({
      'bag.yaml': opaConfig(
        { policy: [policy], checkMethod: 'data.bag.allow' },
        { template: 'checknothing' },
      ),
    });
    const ok = await s.check({
      'request.headers': { 'x-token': 'secret', accept: '*/*' },
      'request.size': 12,
      'source.namespace': 'other',
    });
    assert.equal(ok.status.code, StatusCode.OK);
    assert.deepEqual(ok.references.toStrings(), [
      'request.headers[accept]',
      'request.headers[x-token]',
      'request.size',
      'source.namespace',
    ]);
    assert.deepEqual([ok.validDurationMs, ok.validUseCount], [0, 0]);
    const trusted = await s.check({ 'source.namespace': 'trusted' });
    assert.equal(trusted.status.code, StatusCode.OK);
    const refused = await s.check({ 'request.headers': { 'x-token': 'guess' } });
    assert.equal(refused.status.code, StatusCode.PERMISSION_DENIED);
  });

  it('passes values of every attribute type to the policy as JSON', async () => {
    const dir = temp.make();
    const log = path.join(dir, 'log.jsonl');
    const s = await scenario({
      'bag.yaml': opaConfig(
        {
          policy: ['package bag\nimport rego.v1\nallow := true'],
          checkMethod: 'data.bag.allow',
          decisionLog: { path: log },
        },
        { template: 'checknothing' },
      ),
    });
    await s.check({
      'request.size': 12,
      'request.time': '2025-01-02T03:04:05Z',
      'response.duration': '1.5s',
      'source.ip': '10.0.0.1',
      'connection.mtls': true,
      'request.headers': { a: 'b' },
    });
    await s.close();
    assert.deepEqual((JSON.parse(readFileSync(log, 'utf8')) as { input: unknown }).input, {
      attributes: {
        'connection.mtls': true,
        'request.headers': { a: 'b' },
        'request.size': 12,
        'request.time': '2025-01-02T03:04:05Z',
        'response.duration': '1.5s',
        'source.ip': '10.0.0.1',
      },
    });
  });

  it('provides the built-ins the WebAssembly runtime lacks (time.now_ns reads the handler clock)', async () => {
    const policy = `package fn
import rego.v1
now := time.now_ns()
allow if {
  crypto.sha256(input.subject.user) == "81b637d8fcd2c6da6359e6963113a1170de795e4b725b84d1e0b4cfd9ec58ce9"
  [_, payload, _] := io.jwt.decode(input.action.properties.token)
  payload.sub == input.subject.user
  time.now_ns() == 1735787045000000000
  units.parse_bytes("1.5KiB") == 1536
}`;
    const token =
      ['{"alg":"none"}', '{"sub":"bob"}'].map((p) => Buffer.from(p).toString('base64url')).join('.') + '.';
    const s = await scenario(
      {
        'fn.yaml': opaConfig(
          { policy: [policy], checkMethod: 'data.fn.allow', failClose: true },
          {
            instanceParams: {
              subject: { user: 'request.headers["x-user"] | ""' },
              action: { properties: { token: 'request.headers["x-token"] | ""' } },
            },
          },
        ),
      },
      { clock: () => Date.UTC(2025, 0, 2, 3, 4, 5) },
    );
    const outcome = await s.check({ 'request.headers': { 'x-user': 'bob', 'x-token': token } });
    assert.deepEqual(outcome.status, { code: 0, message: '' });
  });

  it('evaluates on worker threads when asked: concurrent Checks each get their own instance, and a timeout fails closed', async () => {
    const policy = `package slow
import rego.v1
default allow := false
allow if input.action.method == "GET"
allow if {
  input.action.method == "SLOW"
  count([x | some x in numbers.range(1, 20000000); x % 7 == 0]) > 0
}`;
    const s = await scenario({
      'slow.yaml': opaConfig({
        policy: [policy],
        checkMethod: 'data.slow.allow',
        failClose: true,
        evaluationThreads: 2,
        evaluationTimeout: '200ms',
      }),
    });
    const many = await Promise.all(
      Array.from({ length: 100 }, (_, i) => s.check({ 'request.method': i % 2 === 0 ? 'GET' : 'PUT' })),
    );
    assert.deepEqual(
      many.map((o) => o.status.code),
      Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? 0 : 7)),
    );
    const slow = await s.check({ 'request.method': 'SLOW' });
    assert.equal(slow.status.code, StatusCode.PERMISSION_DENIED);
    assert.match(slow.status.message, /the evaluation did not finish within 200 ms$/);
    const after = await s.check({ 'request.method': 'GET' });
    assert.deepEqual(after.status, { code: 0, message: '' });
    const st = stats(s);
    assert.equal(st.decisions.timedOut, 1);
    assert.equal(st.evaluator.mode, 'threads');
    assert.equal(st.evaluator.instancesCreated, 3, 'the timed-out thread was replaced');
  });

  it('resolves relative paths against the folder of the file that declared the handler', async () => {
    const dir = temp.make();
    writeFileSync(
      path.join(dir, 'p.rego'),
      'package p\nimport rego.v1\nallow if input.action.method == "GET"',
    );
    const config = path.join(dir, 'config.yaml');
    writeFileSync(config, opaConfig({ policyFiles: ['p.rego'], checkMethod: 'data.p.allow' }));
    const runtime = new PolicyRuntime({
      configDir: dir,
      registry: createBuiltinRegistry(),
      logger: { info() {}, warn() {}, error() {} },
    });
    await runtime.start();
    try {
      const outcome = await runtime
        .current()
        .dispatcher.check(new AttributeBag([['request.method', 'GET']]), new Map(), '');
      assert.equal(outcome.status.code, StatusCode.OK);
    } finally {
      await runtime.close();
    }
  });
});
