/**
 * Compiling with the real OPA compiler: errors as configuration errors with their file (or
 * handler and policy index), line and column; both Rego syntaxes; built-ins refused when
 * the policy compiles; precompiled bundles with and without a compiler.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runOpa } from '../../../../adapters/acl/opa';
import { ConfigLoadError, createScenario, type Scenario } from '../../../../policy-server';
import { StatusCode } from '../../../../templates';
import { opaConfig, RBAC_DIR, requireOpaCompiler, TempDirs } from '../../../support/opa';

const PREFIX = 'opa: handler authz.handler.istio-system could not be built: ';

describe('adapters/acl/opa: compiling', function () {
  this.timeout(30_000);
  let opa: string;
  const temp = new TempDirs();
  const scenarios: Scenario[] = [];

  before(() => {
    opa = requireOpaCompiler();
  });
  afterEach(async () => {
    await Promise.all(scenarios.splice(0).map((s) => s.close()));
    temp.removeAll();
  });

  /** The configuration errors of a handler that does not build. */
  async function refusal(params: Record<string, unknown>): Promise<string[]> {
    try {
      scenarios.push(await createScenario({ 'authz.yaml': opaConfig(params) }));
    } catch (error) {
      assert.ok(error instanceof ConfigLoadError, String(error));
      return error.errors.map((e) => `${e.file}:${e.line}: ${e.message}`);
    }
    assert.fail('the handler was built');
  }

  async function scenario(params: Record<string, unknown>): Promise<Scenario> {
    const s = await createScenario({ 'authz.yaml': opaConfig(params) });
    scenarios.push(s);
    return s;
  }

  it('an inline policy that does not parse: the handler, policy index, line, column and the compiler message', async () => {
    const errors = await refusal({
      policy: [
        'package ok\nimport rego.v1\nallow := true',
        'package broken\nimport rego.v1\nallow if {\n  input.a ==\n}',
      ],
      checkMethod: 'data.ok.allow',
    });
    assert.deepEqual(errors, [
      `authz.yaml:1: ${PREFIX}the policy does not compile: policy[1]:5:1: rego_parse_error: unexpected } token`,
    ]);
  });

  it('a Rego file with errors: every error, with the file, line and column', async () => {
    const dir = temp.make();
    const file = path.join(dir, 'authz.rego');
    writeFileSync(
      file,
      'package authz\nimport rego.v1\nallow if {\n  input.user == unknown_var\n}\ndeny if no_such_rule\n',
    );
    const errors = await refusal({ policyFiles: [file], checkMethod: 'data.authz.allow' });
    assert.deepEqual(errors, [
      `authz.yaml:1: ${PREFIX}the policy does not compile (2 errors): ` +
        `${file}:4:3: rego_unsafe_var_error: var unknown_var is unsafe; ` +
        `${file}:6:9: rego_unsafe_var_error: var no_such_rule is unsafe`,
    ]);
  });

  it('a built-in that neither the WebAssembly module nor Switchboard provides is refused when the policy compiles', async () => {
    const errors = await refusal({
      policy: [
        'package p\nimport rego.v1\nallow if {\n  r := http.send({"method": "get", "url": "http://127.0.0.1:1"})\n  r.status_code == 200\n}',
      ],
      checkMethod: 'data.p.allow',
    });
    assert.deepEqual(errors, [
      `authz.yaml:1: ${PREFIX}the policy does not compile: policy[0]:4:8: rego_type_error: undefined function http.send`,
    ]);
  });

  it('compiles OPA 1.x syntax and Mixer-era syntax; regoVersion forces one', async () => {
    const modern = 'package p\nimport rego.v1\ndefault allow := false\nallow if input.action.method == "GET"';
    const old = 'package p\ndefault allow = false\nallow { input.action.method = "GET" }';
    for (const [policy, version] of [
      [modern, 'v1'],
      [old, 'v0'],
    ] as const) {
      const s = await scenario({ policy: [policy], checkMethod: 'data.p.allow' });
      assert.equal((await s.check({ 'request.method': 'GET' })).status.code, StatusCode.OK);
      assert.equal((await s.check({ 'request.method': 'PUT' })).status.code, StatusCode.PERMISSION_DENIED);
      const handler = (
        s.dispatcher as unknown as { handlers: Map<string, { stats(): { regoVersion: string } }> }
      ).handlers;
      assert.equal(handler.get('authz.handler.istio-system')!.stats().regoVersion, version);
    }
    const errors = await refusal({ policy: [old], checkMethod: 'data.p.allow', regoVersion: 'v1' });
    assert.deepEqual(errors, [
      `authz.yaml:1: ${PREFIX}the policy does not compile: policy[0]:3:1: rego_parse_error: \`if\` keyword is required before rule body`,
    ]);
  });

  it('an unknown checkMethod names the entrypoint', async () => {
    const errors = await refusal({
      policy: ['package p\nimport rego.v1\nallow := true'],
      checkMethod: 'data.p.permit',
    });
    assert.deepEqual(errors, [
      `authz.yaml:1: ${PREFIX}the policy does not compile: entrypoint "p/permit" does not refer to a rule or policy decision`,
    ]);
  });

  it('two data documents that set one value: both files named', async () => {
    const dir = temp.make();
    writeFileSync(path.join(dir, 'p.rego'), 'package p\nimport rego.v1\nallow := true');
    mkdirSync(path.join(dir, 'roles'));
    writeFileSync(path.join(dir, 'roles', 'a.json'), '{"admin": ["alice"]}');
    writeFileSync(path.join(dir, 'roles', 'b.yaml'), 'admin: [bob]\n');
    const errors = await refusal({ policyDir: dir, checkMethod: 'data.p.allow' });
    assert.deepEqual(errors, [
      `authz.yaml:1: ${PREFIX}${path.join(dir, 'roles', 'b.yaml')}: conflicts with ${path.join(dir, 'roles', 'a.json')}: data.roles.admin is set by both`,
    ]);
  });

  describe('precompiled bundles', () => {
    async function buildBundle(
      dir: string,
      files: string[],
      entrypoint: string,
      extra: string[] = [],
    ): Promise<string> {
      const out = path.join(dir, 'bundle.tar.gz');
      const built = await runOpa(opa, [
        'build',
        '-t',
        'wasm',
        '-e',
        entrypoint,
        ...extra,
        '-o',
        out,
        ...files,
      ]);
      assert.equal(built.code, 0, built.stderr);
      return out;
    }

    it('a .tar.gz (with its data) or a bare .wasm decides with no compiler at all', async () => {
      const dir = temp.make();
      const bundle = await buildBundle(
        dir,
        [path.join(RBAC_DIR, 'rbac.rego'), path.join(RBAC_DIR, 'data.json')],
        'rbac/decision',
      );
      const { readBundle } = await import('../../../../adapters/acl/opa');
      const wasm = path.join(dir, 'policy.wasm');
      writeFileSync(wasm, (await readBundle(readFileSync(bundle))).get('policy.wasm')!);
      const missing = path.join(dir, 'no-such-opa');
      const fromBundle = await scenario({ bundle, checkMethod: 'data.rbac.decision', opaPath: missing });
      const carol = await fromBundle.check({
        'request.headers': { 'x-user': 'carol' },
        'request.method': 'GET',
        'request.path': '/api/x',
      });
      assert.equal(carol.status.code, StatusCode.OK, 'roles come from the bundle data');
      const data = JSON.parse(readFileSync(path.join(RBAC_DIR, 'data.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      const fromWasm = await scenario({
        bundle: wasm,
        checkMethod: 'data.rbac.decision',
        opaPath: missing,
        data,
      });
      const denied = await fromWasm.check({
        'request.headers': { 'x-user': 'carol' },
        'request.method': 'POST',
        'request.path': '/api/x',
      });
      assert.equal(denied.status.message, 'authz.handler.istio-system:carol may not POST /api/x');
    });

    it('Rego without the compiler: says what is missing, where it looked, and the command that installs it', async () => {
      const missing = path.join(temp.make(), 'no-such-opa');
      const errors = await refusal({
        policy: ['package p\nimport rego.v1\nallow := true'],
        checkMethod: 'data.p.allow',
        opaPath: missing,
      });
      assert.deepEqual(errors, [
        `authz.yaml:1: ${PREFIX}the OPA compiler (opa v1.22.3) is needed for compiling the Rego policy ` +
          `(a precompiled bundle needs no compiler: see params.bundle) and was not found (looked at ${missing} (opaPath)); ` +
          "install it with: bash scripts/install-opa.sh (in Switchboard's source), or " +
          'GOBIN=~/.cache/switchboard/opa/bin go install github.com/open-policy-agent/opa@v1.22.3; ' +
          'or point SWITCHBOARD_OPA at an opa executable',
      ]);
    });

    it('a bundle calling a built-in the runtime lacks is refused when it loads, naming the built-in', async () => {
      const dir = temp.make();
      const rego = path.join(dir, 'p.rego');
      writeFileSync(rego, 'package p\nimport rego.v1\nallow if time.format(time.now_ns()) != ""');
      // Built without Switchboard's capabilities, as a bundle made elsewhere may be.
      const bundle = await buildBundle(dir, [rego], 'p/allow');
      const errors = await refusal({ bundle, checkMethod: 'data.p.allow' });
      assert.deepEqual(errors, [
        `authz.yaml:1: ${PREFIX}the policy calls built-in function time.format, which the WebAssembly runtime does not provide; remove the call or compile without it`,
      ]);
    });

    it('a checkMethod the bundle has no entrypoint for lists those it has', async () => {
      const dir = temp.make();
      const bundle = await buildBundle(dir, [path.join(RBAC_DIR, 'rbac.rego')], 'rbac/decision');
      const errors = await refusal({ bundle, checkMethod: 'data.rbac.allow' });
      assert.deepEqual(errors, [
        `authz.yaml:1: ${PREFIX}checkMethod data.rbac.allow is not an entrypoint of the compiled policy; it has data.rbac.decision (build the bundle with opa build -t wasm -e <package>/<rule>)`,
      ]);
    });

    it('a file that is not a bundle', async () => {
      const dir = temp.make();
      const bogus = path.join(dir, 'bogus.tar.gz');
      writeFileSync(bogus, 'not gzip');
      const errors = await refusal({ bundle: bogus, checkMethod: 'data.p.allow' });
      assert.deepEqual(errors, [
        `authz.yaml:1: ${PREFIX}${bogus}: not a gzipped bundle: incorrect header check`,
      ]);
    });
  });
});
