/**
 * `switchboard policy test DIR`: Rego unit tests through the OPA compiler, decision cases
 * through the server's own path, one line per test, and the exit code.
 */
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../../cli/switchboard';
import { RBAC_DIR, requireOpaCompiler, TempDirs } from '../support/opa';

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await main(args, { stdout, stderr });
  return { code, stdout: out, stderr: err };
}

const CASES_HEADER = `checkMethod: data.shop.allow
instance:
  subject: { user: 'request.headers["x-user"] | ""' }
  action: { method: 'request.method | ""', path: 'request.path | ""' }
`;

describe('switchboard policy test', function () {
  this.timeout(60_000);
  const temp = new TempDirs();

  before(() => {
    requireOpaCompiler();
  });
  afterEach(() => temp.removeAll());

  it('the RBAC example: every unit test and decision case passes, exit 0', async () => {
    const r = await run('policy', 'test', RBAC_DIR);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(
      r.stdout,
      [
        `${RBAC_DIR}: Rego unit tests (opa test)`,
        '  PASS data.rbac_test.test_admin_may_do_anything',
        '  PASS data.rbac_test.test_reader_may_read',
        '  PASS data.rbac_test.test_reader_may_not_write',
        '  PASS data.rbac_test.test_group_grants_reading',
        '  PASS data.rbac_test.test_reviewer_paths_are_one_segment',
        '  PASS data.rbac_test.test_denial_names_caller_and_request',
        '  PASS data.rbac_test.test_grant_passes_roles_on',
        '  PASS data.rbac_test.test_data_is_a_document',
        `${path.join(RBAC_DIR, 'rbac.decisions.yaml')}: decision cases`,
        '  PASS an admin may do anything',
        '  PASS a reader may read the API',
        '  PASS a reader may not write',
        '  PASS a reviewer may post a review',
        "  PASS a reviewer's grant covers one path segment only",
        '  PASS staff read through their group',
        '  PASS nobody is anonymous',
        '15 passed, 0 failed',
        '',
      ].join('\n'),
    );
  });

  it('reports each failing test and case, with what was expected and what came, and exits 1', async () => {
    const dir = temp.make();
    writeFileSync(
      path.join(dir, 'shop.rego'),
      `package shop
import rego.v1
default allow := false
allow if input.action.method == "GET"
allow if input.subject.user == "admin"
`,
    );
    writeFileSync(
      path.join(dir, 'shop_test.rego'),
      `package shop_test
import rego.v1
test_get if data.shop.allow with input as {"action": {"method": "GET"}}
test_post if data.shop.allow with input as {"action": {"method": "POST"}}
`,
    );
    writeFileSync(
      path.join(dir, 'shop.decisions.yaml'),
      `${CASES_HEADER}cases:
- name: anyone may read
  attributes: { request.method: GET }
  expect: { allow: true }
- name: posting is refused
  attributes: { request.method: POST, request.headers: { x-user: admin } }
  expect: { allow: false }
- name: the reason
  attributes: { request.method: POST }
  expect: { allow: false, reason: no posting }
- name: the status
  attributes: { request.method: POST }
  expect: { allow: false, status: UNAUTHENTICATED }
- name: an attribute of the wrong type
  attributes: { request.method: 42 }
  expect: { allow: true }
`,
    );
    const r = await run('policy', 'test', dir);
    assert.equal(r.code, 1);
    const cases = path.join(dir, 'shop.decisions.yaml');
    assert.deepEqual(r.stdout.split('\n'), [
      `${dir}: Rego unit tests (opa test)`,
      '  PASS data.shop_test.test_get',
      `  FAIL data.shop_test.test_post (${path.join(dir, 'shop_test.rego')}:4)`,
      `${cases}: decision cases`,
      '  PASS anyone may read',
      '  FAIL posting is refused: expected deny, got allow',
      '  FAIL the reason: expected the reason "no posting", got deny (PERMISSION_DENIED) with reason "opa: request was rejected"',
      '  FAIL the status: expected UNAUTHENTICATED, got deny (PERMISSION_DENIED) with reason "opa: request was rejected"',
      "  FAIL an attribute of the wrong type: could not run: attribute 'request.method' is STRING and needs a string, got 42",
      '2 passed, 5 failed',
      '',
    ]);
  });

  it('tests Mixer-era Rego as the adapter compiles it (old syntax, no if)', async () => {
    const dir = temp.make();
    writeFileSync(
      path.join(dir, 'shop.rego'),
      'package shop\ndefault allow = false\nallow { input.action.method = "GET" }\n',
    );
    writeFileSync(
      path.join(dir, 'shop_test.rego'),
      'package shop_test\ntest_get { data.shop.allow with input as {"action": {"method": "GET"}} }\n',
    );
    writeFileSync(
      path.join(dir, 'shop.decisions.yaml'),
      `${CASES_HEADER}cases:\n- { name: get, attributes: { request.method: GET }, expect: { allow: true } }\n`,
    );
    const r = await run('policy', 'test', dir);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /PASS data\.shop_test\.test_get\n[^]*PASS get\n2 passed, 0 failed\n$/);
  });

  it('without the compiler: says what is missing and how to install it, and fails', async () => {
    const missing = path.join(temp.make(), 'no-opa');
    const r = await run('policy', 'test', RBAC_DIR, '--opa', missing);
    assert.equal(r.code, 1);
    assert.match(
      r.stdout,
      new RegExp(
        `  FAIL could not run: the OPA compiler \\(opa v1\\.22\\.3\\) is needed for running the Rego unit tests and was not found \\(looked at ${missing.replace(/[/.]/g, '\\$&')} \\(opaPath\\)\\); install it with: bash scripts/install-opa\\.sh`,
      ),
    );
    assert.match(
      r.stdout,
      /  FAIL the policy does not load: .*could not be built: the OPA compiler \(opa v1\.22\.3\) is needed for compiling the Rego policy/,
    );
    assert.match(r.stdout, /\n0 passed, 2 failed\n$/);
  });

  it('a malformed case file: every problem with its path', async () => {
    const dir = temp.make();
    writeFileSync(path.join(dir, 'p.rego'), 'package p\nimport rego.v1\nallow := true\n');
    const file = path.join(dir, 'p.decisions.yaml');
    writeFileSync(file, 'template: authorization\ncases:\n- name: x\n  expect: { allow: maybe }\nextra: 1\n');
    const r = await run('policy', 'test', dir);
    assert.equal(r.code, 1);
    assert.deepEqual(r.stdout.split('\n'), [
      `${file}: decision cases`,
      `  FAIL ${file}: extra: is not a known field; known fields: checkMethod, template, instance, handler, attributes, cases`,
      `  FAIL ${file}: checkMethod: is required: the rule that decides, such as data.authz.allow`,
      `  FAIL ${file}: instance: is required: the authorization instance's params, as in the configuration`,
      `  FAIL ${file}: cases[0].expect: must be {allow: true or false, reason?, status?}`,
      '0 passed, 4 failed',
      '',
    ]);
  });

  it('usage: a folder is required; an empty folder has nothing to test', async () => {
    assert.equal((await run('policy', 'test')).code, 2);
    assert.equal((await run('policy', 'check', RBAC_DIR)).code, 2);
    const empty = temp.make();
    const r = await run('policy', 'test', empty);
    assert.deepEqual(r, {
      code: 1,
      stdout: '',
      stderr: `switchboard policy test: ${empty} has no Rego unit tests (*_test.rego) and no decision cases (*.decisions.yaml)\n`,
    });
  });
});
