/**
 * The opa adapter's parts that need no compiler: parameters, the input Mixer's adapter
 * passed, what a decision means, bundles as archives, and data documents merging.
 */
import { strict as assert } from 'node:assert';
import { gzipSync } from 'node:zlib';
import { parseWithSchema } from '../../../../adapters';
import {
  attributesInput,
  authorizationInput,
  entrypointOf,
  interpretResult,
  OPA_CONFIG,
  readBundle,
  type OpaConfig,
} from '../../../../adapters/acl/opa';
import { mergeData, PolicySourceError } from '../../../../adapters/acl/opa/policy-sources';
import {
  AttributeBag,
  Duration,
  FlatStringMap,
  IpAddress,
  ReferenceRecordingBag,
  Timestamp,
} from '../../../../attributes';
import type { AuthorizationInstance } from '../../../../templates';

function parse(params: unknown): OpaConfig {
  const outcome = parseWithSchema(OPA_CONFIG, params);
  assert.ok(outcome.ok, JSON.stringify(outcome));
  return outcome.value;
}

describe('adapters/acl/opa: parameters', () => {
  it("takes Mixer's parameters unchanged, in either spelling, with Mixer's failClose default (false)", () => {
    const mixer = parse({ policy: ['package a'], check_method: 'data.a.allow', fail_close: true });
    assert.deepEqual(
      [mixer.policy, mixer.checkMethod, mixer.failClose],
      [['package a'], 'data.a.allow', true],
    );
    const defaults = parse({ policy: ['package a'], checkMethod: 'data.a.allow' });
    assert.deepEqual(
      {
        failClose: defaults.failClose,
        policyFiles: defaults.policyFiles,
        regoVersion: defaults.regoVersion,
        dryRun: defaults.dryRun,
        validDuration: defaults.validDuration,
        validUseCount: defaults.validUseCount,
        evaluationThreads: defaults.evaluationThreads,
        watch: defaults.watch,
      },
      {
        failClose: false,
        policyFiles: [],
        regoVersion: 'auto',
        dryRun: false,
        validDuration: 10_000,
        validUseCount: 10_000,
        evaluationThreads: 0,
        watch: true,
      },
    );
    const all = parse({
      policyDir: 'p',
      checkMethod: 'data.a.allow',
      data: { roles: { admin: ['alice'] } },
      decisionLog: { path: 'd.jsonl' },
      evaluationThreads: 2,
      evaluationTimeout: '50ms',
    });
    assert.deepEqual(all.decisionLog, { path: 'd.jsonl', includeInput: true });
    assert.equal(all.evaluationTimeout, 50);
    assert.ok(Object.isFrozen(all.data) && Object.isFrozen((all.data as { roles: object }).roles));
  });

  it('names the entrypoint of a checkMethod', () => {
    assert.equal(entrypointOf('data.mixerauthz.allow'), 'mixerauthz/allow');
    assert.equal(entrypointOf('data.a.b.c'), 'a/b/c');
  });
});

describe("adapters/acl/opa: input, as Mixer's adapter passed it", () => {
  const instance = (
    subject: Partial<AuthorizationInstance['subject']>,
    action: Partial<AuthorizationInstance['action']>,
  ) =>
    ({
      name: 'authz.instance.istio-system',
      subject: { user: '', groups: '', properties: new Map(), ...subject },
      action: { namespace: '', service: '', method: '', path: '', properties: new Map(), ...action },
    }) as AuthorizationInstance;

  it('leaves out empty fields and empty properties; groups is a list of the one string', () => {
    assert.deepEqual(authorizationInput(instance({}, {})), { action: {}, subject: {} });
    assert.deepEqual(
      authorizationInput(
        instance(
          { user: 'alice', groups: 'staff', properties: new Map([['iss', 'idp']]) },
          {
            namespace: 'default',
            service: 'reviews',
            method: 'GET',
            path: '/x',
            properties: new Map<string, never>([['size', 12n as never]]),
          },
        ),
      ),
      {
        subject: { user: 'alice', groups: ['staff'], properties: { iss: 'idp' } },
        action: {
          namespace: 'default',
          service: 'reviews',
          method: 'GET',
          path: '/x',
          properties: { size: 12 },
        },
      },
    );
  });

  it('checknothing: every attribute, as JSON, each one read (so referenced)', () => {
    const bag = new AttributeBag([
      ['request.size', 12n],
      ['request.time', Timestamp.parse('2025-01-02T03:04:05Z')!],
      ['response.duration', Duration.parse('250ms')!],
      ['source.ip', IpAddress.parse('10.0.0.1')!],
      ['request.headers', new FlatStringMap(['x-a', '1'])],
      ['request.total_size', 2n ** 60n],
    ]);
    const recording = new ReferenceRecordingBag(bag);
    assert.deepEqual(attributesInput(recording), {
      attributes: {
        'request.headers': { 'x-a': '1' },
        'request.size': 12,
        'request.time': '2025-01-02T03:04:05Z',
        'request.total_size': '1152921504606846976',
        'response.duration': '250ms',
        'source.ip': '10.0.0.1',
      },
    });
    assert.deepEqual(recording.references.toStrings(), [
      'request.headers[x-a]',
      'request.size',
      'request.time',
      'request.total_size',
      'response.duration',
      'source.ip',
    ]);
  });
});

describe('adapters/acl/opa: what a decision means', () => {
  it("true and false, with Mixer's message for a refusal", () => {
    assert.deepEqual(interpretResult([{ result: true }]), {
      ok: true,
      value: true,
      decision: {
        allow: true,
        reason: '',
        code: 0,
        requestHeaderOperations: [],
        responseHeaderOperations: [],
      },
    });
    const denied = interpretResult([{ result: false }]);
    assert.ok(denied.ok);
    assert.deepEqual([denied.decision.code, denied.decision.reason], [7, 'opa: request was rejected']);
  });

  it('an object: reason, status by number or name, and header operations in both forms', () => {
    const r = interpretResult([
      {
        result: {
          allow: false,
          reason: 'no',
          status: 'UNAUTHENTICATED',
          headers: {
            request: [
              { name: 'a', value: '1', operation: 'APPEND' },
              { name: 'b', operation: 'REMOVE' },
            ],
            response: { c: '3' },
          },
        },
      },
    ]);
    assert.ok(r.ok);
    assert.deepEqual(r.decision, {
      allow: false,
      reason: 'no',
      code: 16,
      requestHeaderOperations: [
        { name: 'a', value: '1', operation: 'APPEND' },
        { name: 'b', value: '', operation: 'REMOVE' },
      ],
      responseHeaderOperations: [{ name: 'c', value: '3', operation: 'REPLACE' }],
    });
    const byNumber = interpretResult([{ result: { allow: false, status: 9 } }]);
    assert.ok(byNumber.ok);
    assert.deepEqual([byNumber.decision.code, byNumber.decision.reason], [9, 'opa: request was rejected']);
  });

  it('anything else is not a decision, and says why', () => {
    const problems: Array<[unknown, string]> = [
      [[], 'the decision is undefined: no rule of the check method applied (give it a default)'],
      [
        [{ result: 'yes' }],
        'the decision must be true, false or {allow, reason, status, headers}, got "yes"',
      ],
      [[{ result: { allow: 1 } }], "the decision's allow must be true or false, got 1"],
      [[{ result: { allow: false, reason: 7 } }], "the decision's reason must be a string, got 7"],
      [
        [{ result: { allow: false, status: 'OK' } }],
        "the decision's status must be a google.rpc code other than OK (1 to 16, or a name such as PERMISSION_DENIED), got 0",
      ],
      [
        [{ result: { allow: true, why: 'x' } }],
        "the decision's fields why are not known; known: allow, reason, status, headers",
      ],
      [
        [{ result: { allow: true, headers: { request: [{ name: 'a', operation: 'SET' }] } } }],
        'the decision\'s headers.request[0].operation must be REPLACE, APPEND or REMOVE, got "SET"',
      ],
      [
        [{ result: { allow: true, headers: { request: { a: 1 } } } }],
        "the decision's headers.request.a must be a string, got 1",
      ],
      [
        [{ result: { allow: true, headers: { trailers: {} } } }],
        "the decision's headers may have request and response only, got trailers",
      ],
    ];
    for (const [resultSet, problem] of problems) {
      const r = interpretResult(resultSet);
      assert.ok(!r.ok, JSON.stringify(resultSet));
      assert.equal(r.problem, problem);
    }
  });
});

describe('adapters/acl/opa: bundles and data documents', () => {
  /** A tar archive of `files`, written out block by block. */
  function tar(files: Record<string, string>): Buffer {
    const blocks: Buffer[] = [];
    for (const [name, text] of Object.entries(files)) {
      const header = Buffer.alloc(512);
      header.write(name, 0);
      header.write(Buffer.byteLength(text).toString(8).padStart(11, '0'), 124);
      header.write('0', 156);
      blocks.push(header, Buffer.from(text), Buffer.alloc((512 - (Buffer.byteLength(text) % 512)) % 512));
    }
    blocks.push(Buffer.alloc(1024));
    return Buffer.concat(blocks);
  }

  it('reads members by name, leading slashes removed', async () => {
    const files = await readBundle(gzipSync(tar({ '/policy.wasm': 'wasm', '/data.json': '{"a":1}' })));
    assert.deepEqual([...files.keys()], ['policy.wasm', 'data.json']);
    assert.equal(files.get('data.json')!.toString(), '{"a":1}');
  });

  it('a truncated archive is an error', async () => {
    const whole = tar({ '/policy.wasm': 'x'.repeat(2000) });
    await assert.rejects(readBundle(gzipSync(whole.subarray(0, 1024))), /truncated tar archive/);
  });

  it('merges mappings key by key, and refuses one value set twice, naming both documents', () => {
    const data: Record<string, unknown> = {};
    const origins = new Map<string, string>();
    mergeData(data, { roles: { admin: ['alice'] } }, [], 'a.json', origins);
    mergeData(data, { roles: { reader: ['bob'] }, limits: 3 }, [], 'b.yaml', origins);
    mergeData(data, { extra: true }, ['roles'], 'roles/c.json', origins);
    assert.deepEqual(data, { roles: { admin: ['alice'], reader: ['bob'], extra: true }, limits: 3 });
    assert.throws(
      () => mergeData(data, { roles: { admin: ['mallory'] } }, [], 'd.json', origins),
      (error: unknown) =>
        error instanceof PolicySourceError &&
        error.message === 'd.json: conflicts with a.json: data.roles.admin is set by both',
    );
  });
});
