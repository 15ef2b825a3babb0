/**
 * The dispatcher's own logic (routing, combination, quotas, failure policies), with
 * in-test adapters whose answers the configuration sets. Real adapters have their own
 * scenario tests.
 */
import { strict as assert } from 'node:assert';
import { AdapterRegistry, HandlerFullError, defineAdapter, s } from '../../adapters';
import { bagFromJson, type JsonValue, type QuotaRequest } from '../../attributes';
import { createScenario, type CheckOutcome, type Scenario } from '../../policy-server';
import {
  StatusCode,
  type CheckResult,
  type QuotaArgs,
  type QuotaInstance,
  type QuotaResult,
} from '../../templates';

const calls: string[] = [];
const quotaCalls: Array<{ instance: string; args: QuotaArgs; dimensions: Record<string, string> }> = [];
const reports: Array<{ handler: string; instances: string[] }> = [];

const FAKE = defineAdapter({
  name: 'fake',
  description: 'answers as configured',
  templates: ['checknothing', 'listentry', 'quota', 'logentry'],
  config: s.object({
    code: s.integer().default(0),
    message: s.string().default(''),
    validDuration: s.duration().default(60_000),
    validUseCount: s.integer().default(10_000),
    delayMs: s.integer().default(0),
    fail: s.boolean().default(false),
    // Refuse report records as a full spool does.
    full: s.boolean().default(false),
    grant: s.integer().default(-1),
    // Answer in the call itself, as lists and in-memory quotas do, rather than with a promise.
    sync: s.boolean().default(false),
  }),
  build(config, env) {
    const result = (): CheckResult => {
      if (config.fail) throw new Error('backend unreachable');
      return {
        status: { code: config.code, message: config.message },
        validDurationMs: config.validDuration,
        validUseCount: config.validUseCount,
      };
    };
    const answer = (what: string): CheckResult | Promise<CheckResult> => {
      calls.push(`${env.handlerName}:${what}`);
      if (config.sync) return result();
      return (async () => {
        if (config.delayMs > 0) await new Promise((r) => setTimeout(r, config.delayMs));
        return result();
      })();
    };
    return {
      handleCheckNothing: () => answer('checknothing'),
      handleListEntry: (i: { value: unknown }) => answer(`listentry(${String(i.value)})`),
      handleQuota(instance: QuotaInstance, args: QuotaArgs): QuotaResult | Promise<QuotaResult> {
        const grant = (r: CheckResult): QuotaResult => {
          quotaCalls.push({
            instance: instance.name,
            args,
            dimensions: Object.fromEntries([...instance.dimensions].map(([k, v]) => [k, String(v)])),
          });
          const granted = config.grant < 0 ? args.amount : Math.min(config.grant, args.amount);
          return {
            status:
              granted > 0 ? r.status : { code: StatusCode.RESOURCE_EXHAUSTED, message: 'quota exhausted' },
            grantedAmount: granted,
            validDurationMs: r.validDurationMs,
          };
        };
        const r = answer('quota');
        return r instanceof Promise ? r.then(grant) : grant(r);
      },
      async handleLogEntry(
        instances: ReadonlyArray<{ name: string; variables: ReadonlyMap<string, unknown> }>,
      ) {
        if (config.fail) throw new Error('sink down');
        if (config.full) throw new HandlerFullError('spool full');
        reports.push({
          handler: env.handlerName,
          instances: instances.map((i) => `${i.name}:${String(i.variables.get('path'))}`),
        });
      },
      close: async () => undefined,
    };
  },
});

function registry(): AdapterRegistry {
  return new AdapterRegistry().register(FAKE);
}

const handler = (name: string, params: string, namespace = 'istio-system', extra = ''): string => `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  compiledAdapter: fake
  params: ${params}
${extra}`;

const instance = (name: string, template: string, params: string, namespace = 'istio-system'): string => `
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  compiledTemplate: ${template}
  params: ${params}
`;

const rule = (
  name: string,
  match: string,
  actions: string,
  namespace = 'istio-system',
  extra = '',
): string => `
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  match: ${JSON.stringify(match)}
  actions: ${actions}
${extra}`;

describe('policy-server: dispatcher', () => {
  let scenario: Scenario | undefined;
  const start = async (yaml: string[], timeoutMs?: number): Promise<Scenario> => {
    scenario = await createScenario(
      { 'config.yaml': yaml.join('\n---\n') },
      { registry: registry(), ...(timeoutMs === undefined ? {} : { handlerTimeoutMs: timeoutMs }) },
    );
    return scenario;
  };
  beforeEach(() => {
    calls.length = 0;
    quotaCalls.length = 0;
    reports.length = 0;
  });
  afterEach(async () => {
    await scenario?.close();
    scenario = undefined;
  });

  it('answers OK with Mixer defaults when no rule applies, and grants unserved quotas in full', async () => {
    const sc = await start([handler('allow', '{}'), instance('nothing', 'checknothing', '{}')]);
    const outcome = await sc.check({ 'request.path': '/x' }, { requestcount: 5 });
    assert.deepEqual(outcome.status, { code: 0, message: '' });
    assert.equal(outcome.validDurationMs, 60_000);
    assert.equal(outcome.validUseCount, 10_000);
    assert.deepEqual(
      [...outcome.quotas],
      [['requestcount', { status: { code: 0, message: '' }, grantedAmount: 5n, validDurationMs: 60_000 }]],
    );
    assert.deepEqual(calls, []);
  });

  it('combines: the first failing status in rule order, every failing message, the smallest validity', async () => {
    const sc = await start([
      handler('ok', '{ validDuration: 30s, validUseCount: 50 }'),
      handler('deny1', '{ code: 7, message: "no entry", validDuration: 10s, validUseCount: 200 }'),
      handler('deny2', '{ code: 16, message: "who are you", validDuration: 20s, validUseCount: 5 }'),
      instance('nothing', 'checknothing', '{}'),
      rule('r1', 'true', '[{ handler: ok, instances: [nothing] }]'),
      rule('r2', 'true', '[{ handler: deny1, instances: [nothing] }]'),
      rule('r3', 'true', '[{ handler: deny2, instances: [nothing] }]'),
    ]);
    const outcome = await sc.check({}, { requestcount: 1 });
    assert.deepEqual(outcome.status, {
      code: StatusCode.PERMISSION_DENIED,
      message: 'deny1.handler.istio-system:no entry, deny2.handler.istio-system:who are you',
    });
    assert.equal(outcome.validDurationMs, 10_000);
    assert.equal(outcome.validUseCount, 5);
    assert.equal(outcome.quotas.size, 0, 'no quota results when the check fails');
    assert.deepEqual(quotaCalls, []);
  });

  it('applies a rule only when its match holds; a match that fails to evaluate does not apply', async () => {
    const sc = await start([
      handler('deny', '{ code: 7, message: "denied" }'),
      instance('nothing', 'checknothing', '{}'),
      rule(
        'r',
        'destination.labels["app"] == "ratings" && source.name == "bad"',
        '[{ handler: deny, instances: [nothing] }]',
      ),
    ]);
    assert.equal(
      (await sc.check({ 'destination.labels': { app: 'ratings' }, 'source.name': 'bad' })).status.code,
      7,
    );
    assert.equal(
      (await sc.check({ 'destination.labels': { app: 'ratings' }, 'source.name': 'good' })).status.code,
      0,
    );
    const absent = await sc.check({ 'destination.labels': { app: 'ratings' } });
    assert.equal(
      absent.status.code,
      0,
      'source.name absent: the match fails to evaluate, the rule does not apply',
    );
    assert.deepEqual(
      absent.references.toStrings(),
      // Absent attributes are part of the decision too. (No rule lives outside the default
      // namespace, so the request's namespace is not read.)
      ['-source.name', 'destination.labels[app]'],
    );
  });

  it('routes by namespace: the default namespace for all, others by destination, or by source when outbound', async () => {
    const sc = await start([
      handler('denyb', '{ code: 7, message: "bookinfo only" }', 'bookinfo'),
      instance('nothing', 'checknothing', '{}', 'bookinfo'),
      rule('r', '', '[{ handler: denyb, instances: [nothing] }]', 'bookinfo'),
    ]);
    assert.equal((await sc.check({ 'destination.namespace': 'bookinfo' })).status.code, 7);
    assert.equal((await sc.check({ 'destination.namespace': 'default' })).status.code, 0);
    assert.equal(
      (
        await sc.check({
          'destination.namespace': 'bookinfo',
          'context.reporter.kind': 'outbound',
          'source.namespace': 'default',
        })
      ).status.code,
      0,
    );
    assert.equal(
      (
        await sc.check({
          'destination.namespace': 'default',
          'context.reporter.kind': 'outbound',
          'source.namespace': 'bookinfo',
        })
      ).status.code,
      7,
    );
    assert.equal(
      (await sc.check({ 'destination.namespace': 'bookinfo', 'context.reporter.kind': 'inbound' })).status
        .code,
      7,
    );
  });

  it('sends a quota to the quota instances of its short name, ignoring case, with the dedup id and dimensions', async () => {
    const sc = await start([
      handler('q', '{ grant: 3 }'),
      instance(
        'RequestCount',
        'quota',
        '{ dimensions: { path: request.path | "none", port: destination.port | 0 } }',
      ),
      rule('r', '', '[{ handler: q, instances: [RequestCount] }]'),
    ]);
    const outcome = await sc.check(
      { 'request.path': '/a', 'destination.port': 9080 },
      { requestcount: 5, other: 2 },
      'dedup-1',
    );
    assert.deepEqual(outcome.quotas.get('requestcount'), {
      status: { code: 0, message: '' },
      grantedAmount: 3n,
      validDurationMs: 60_000,
    });
    assert.deepEqual(outcome.quotas.get('other'), {
      status: { code: 0, message: '' },
      grantedAmount: 2n,
      validDurationMs: 60_000,
    });
    assert.deepEqual(quotaCalls, [
      {
        instance: 'RequestCount.instance.istio-system',
        args: { deduplicationId: 'dedup-1requestcount', amount: 5, bestEffort: false },
        dimensions: { path: '/a', port: '9080' },
      },
    ]);
  });

  it('gives a quota several handlers serve the smallest grant, and a denial over any grant', async () => {
    const sc = await start([
      handler('q5', '{ sync: true, grant: 5 }'),
      handler('q2', '{ grant: 2, validDuration: 3s }'),
      // Denies, yet grants more than q2: a denial holds whatever it grants.
      handler('deny', '{ sync: true, code: 8, message: "over", grant: 7 }'),
      instance('requestcount', 'quota', '{}'),
      rule(
        'two',
        '',
        '[{ handler: q5, instances: [requestcount] }, { handler: q2, instances: [requestcount] }]',
      ),
      rule('denied', 'request.path == "/deny"', '[{ handler: deny, instances: [requestcount] }]'),
    ]);
    const two = await sc.check({ 'request.path': '/a' }, { requestcount: 10 });
    assert.deepEqual(two.quotas.get('requestcount'), {
      status: { code: 0, message: '' },
      grantedAmount: 2n,
      validDurationMs: 3000,
    });
    const denied = await sc.check({ 'request.path': '/deny' }, { requestcount: 10 });
    assert.deepEqual(denied.quotas.get('requestcount'), {
      status: { code: StatusCode.RESOURCE_EXHAUSTED, message: 'over' },
      grantedAmount: 7n,
      validDurationMs: 60_000,
    });
  });

  it('answers a faulting handler by its failure policy: closed by default, open when asked, counted', async () => {
    const sc = await start(
      [
        handler('broken', '{ fail: true }'),
        handler('slow', '{ delayMs: 300 }'),
        handler('lenient', '{ fail: true }', 'istio-system', '  failurePolicy: FAIL_OPEN'),
        instance('nothing', 'checknothing', '{}'),
        rule('r1', 'request.path == "/broken"', '[{ handler: broken, instances: [nothing] }]'),
        rule('r2', 'request.path == "/slow"', '[{ handler: slow, instances: [nothing] }]'),
        rule('r3', 'request.path == "/lenient"', '[{ handler: lenient, instances: [nothing] }]'),
      ],
      50,
    );
    const broken = await sc.check({ 'request.path': '/broken' });
    assert.deepEqual(broken.status, {
      code: StatusCode.UNAVAILABLE,
      message: 'broken.handler.istio-system:handler error: backend unreachable',
    });
    assert.equal(broken.validUseCount, 0, 'a fault is never cached');
    const slow = await sc.check({ 'request.path': '/slow' });
    assert.deepEqual(slow.status, {
      code: StatusCode.DEADLINE_EXCEEDED,
      message: 'slow.handler.istio-system:no answer within 50ms',
    });
    const lenient = await sc.check({ 'request.path': '/lenient' });
    assert.deepEqual(lenient.status, { code: 0, message: '' });
    assert.equal(lenient.validUseCount, 0);
    assert.equal(sc.dispatcher.stats.handlerFaults, 3);
    assert.equal(sc.dispatcher.stats.failedOpen, 1);
  });

  it("adds the rules' header operations, values evaluated per request", async () => {
    const sc = await start([
      rule(
        'headers',
        '',
        '[]',
        'istio-system',
        `  requestHeaderOperations:
  - name: x-user
    values: [ 'request.headers["x-user"] | "anonymous"' ]
  responseHeaderOperations:
  - name: x-served-by
    values: [ '"switchboard"', 'destination.service.name | "unknown"' ]
  - name: server
    operation: REMOVE`,
      ),
    ]);
    const outcome = await sc.check({ 'destination.service.name': 'reviews' });
    assert.deepEqual(outcome.requestHeaderOperations, [
      { name: 'x-user', value: 'anonymous', operation: 'REPLACE' },
    ]);
    assert.deepEqual(outcome.responseHeaderOperations, [
      { name: 'x-served-by', value: 'switchboard', operation: 'REPLACE' },
      { name: 'x-served-by', value: 'reviews', operation: 'APPEND' },
      { name: 'server', value: '', operation: 'REMOVE' },
    ]);
  });

  describe('handlers that answer at once', () => {
    /** Runs one Check straight on the dispatcher, which returns a promise only when it must. */
    const checkNow = (
      sc: Scenario,
      attributes: Record<string, JsonValue>,
      quotas: Record<string, number> = {},
    ): CheckOutcome | Promise<CheckOutcome> =>
      sc.dispatcher.check(
        bagFromJson(attributes, sc.dispatcher.config.manifest),
        new Map(
          Object.entries(quotas).map(([name, amount]): [string, QuotaRequest] => [
            name,
            { amount: BigInt(amount), bestEffort: false },
          ]),
        ),
        'dedup-1',
      );
    /** The same configuration, with its handlers answering at once or with promises. */
    const both = async (config: (sync: boolean) => string[]): Promise<[Scenario, Scenario]> => {
      const deferred = await createScenario(
        { 'config.yaml': config(false).join('\n---\n') },
        { registry: registry() },
      );
      try {
        return [await start(config(true)), deferred];
      } catch (error) {
        await deferred.close();
        throw error;
      }
    };

    it('completes a Check without a promise, with the outcome promises give', async () => {
      const [now, deferred] = await both((sync) => [
        handler('ok', `{ sync: ${sync}, validDuration: 30s, validUseCount: 50 }`),
        handler('q', `{ sync: ${sync}, grant: 3, validDuration: 2s }`),
        instance('nothing', 'checknothing', '{}'),
        instance('caller', 'listentry', '{ value: source.name | "none" }'),
        instance('RequestCount', 'quota', '{ dimensions: { path: request.path | "none" } }'),
        rule(
          'checks',
          'destination.labels["app"] == "reviews"',
          '[{ handler: ok, instances: [nothing, caller] }]',
          'istio-system',
          `  requestHeaderOperations:
  - name: x-caller
    values: [ 'source.name | "anonymous"' ]`,
        ),
        rule('quotas', '', '[{ handler: q, instances: [RequestCount] }]'),
      ]);
      try {
        const attributes = { 'destination.labels': { app: 'reviews' }, 'source.name': 'productpage' };
        const quotas = { other: 2, requestcount: 5 };
        const answered = checkNow(now, attributes, quotas);
        assert.ok(!(answered instanceof Promise), 'every handler answered at once: no promise');
        const syncCalls = [...calls];
        calls.length = 0;
        const promised = checkNow(deferred, attributes, quotas);
        assert.ok(promised instanceof Promise, 'handlers answered with promises: a promise');
        assert.deepStrictEqual(await promised, answered);
        assert.deepEqual(calls, syncCalls);

        assert.deepEqual(answered.status, { code: 0, message: '' });
        assert.equal(answered.validDurationMs, 30_000);
        assert.equal(answered.validUseCount, 50);
        assert.deepEqual(answered.requestHeaderOperations, [
          { name: 'x-caller', value: 'productpage', operation: 'REPLACE' },
        ]);
        assert.deepEqual(answered.references.toStrings(), [
          '-request.path',
          'destination.labels[app]',
          'source.name',
        ]);
        // In the order asked for, whichever answered first (deepStrictEqual ignores Map order).
        assert.deepEqual(
          [...answered.quotas],
          [
            ['other', { status: { code: 0, message: '' }, grantedAmount: 2n, validDurationMs: 60_000 }],
            ['requestcount', { status: { code: 0, message: '' }, grantedAmount: 3n, validDurationMs: 2000 }],
          ],
        );
        assert.deepEqual([...(await promised).quotas.keys()], ['other', 'requestcount']);
        assert.deepEqual(syncCalls, [
          'ok.handler.istio-system:checknothing',
          'ok.handler.istio-system:listentry(productpage)',
          'q.handler.istio-system:quota',
        ]);
      } finally {
        await deferred.close();
      }
    });

    it('answers a handler that throws at once by its failure policy, as one whose promise rejects', async () => {
      const [now, deferred] = await both((sync) => [
        handler('broken', `{ sync: ${sync}, fail: true }`),
        handler('lenient', `{ sync: ${sync}, fail: true }`, 'istio-system', '  failurePolicy: FAIL_OPEN'),
        instance('nothing', 'checknothing', '{}'),
        instance('requestcount', 'quota', '{}'),
        rule('r1', 'request.path == "/broken"', '[{ handler: broken, instances: [nothing] }]'),
        rule('r2', 'request.path == "/lenient"', '[{ handler: lenient, instances: [nothing] }]'),
        rule('r3', 'request.path == "/quota"', '[{ handler: broken, instances: [requestcount] }]'),
      ]);
      try {
        const outcomes: CheckOutcome[] = [];
        for (const path of ['/broken', '/lenient', '/quota']) {
          const answered = checkNow(now, { 'request.path': path }, { requestcount: 4 });
          assert.ok(!(answered instanceof Promise), `${path}: no promise`);
          const promised = checkNow(deferred, { 'request.path': path }, { requestcount: 4 });
          assert.ok(promised instanceof Promise, `${path}: a promise`);
          assert.deepStrictEqual(await promised, answered, path);
          outcomes.push(answered);
        }
        const [broken, lenient, quota] = outcomes;
        assert.deepEqual(broken!.status, {
          code: StatusCode.UNAVAILABLE,
          message: 'broken.handler.istio-system:handler error: backend unreachable',
        });
        assert.equal(broken!.validUseCount, 0, 'a fault is never cached');
        assert.deepEqual(lenient!.status, { code: 0, message: '' });
        assert.equal(lenient!.validUseCount, 0);
        assert.deepEqual(quota!.quotas.get('requestcount'), {
          status: { code: StatusCode.UNAVAILABLE, message: 'handler error: backend unreachable' },
          grantedAmount: 0n,
          validDurationMs: 0,
        });
        assert.deepEqual(now.dispatcher.stats, deferred.dispatcher.stats);
        assert.equal(now.dispatcher.stats.handlerFaults, 3);
        assert.equal(now.dispatcher.stats.failedOpen, 1);
      } finally {
        await deferred.close();
      }
    });

    it('waits for the one handler that answers with a promise', async () => {
      const sc = await start([
        handler('now', '{ sync: true, validDuration: 5s }'),
        handler('later', '{ code: 7, message: "not yet", delayMs: 5 }'),
        handler('q-now', '{ sync: true }'),
        handler('q-later', '{ grant: 1, delayMs: 5 }'),
        instance('nothing', 'checknothing', '{}'),
        instance('requestcount', 'quota', '{}'),
        rule(
          'checks',
          'request.path == "/check"',
          '[{ handler: now, instances: [nothing] }, { handler: later, instances: [nothing] }]',
        ),
        rule(
          'quota-now',
          '',
          '[{ handler: now, instances: [nothing] }, { handler: q-now, instances: [requestcount] }]',
        ),
        rule('quota-later', 'request.path == "/quota"', '[{ handler: q-later, instances: [requestcount] }]'),
      ]);
      const denied = checkNow(sc, { 'request.path': '/check' }, { requestcount: 3 });
      assert.ok(denied instanceof Promise, 'a check handler answered with a promise');
      const deniedOutcome = await denied;
      assert.deepEqual(deniedOutcome.status, {
        code: StatusCode.PERMISSION_DENIED,
        message: 'later.handler.istio-system:not yet',
      });
      assert.equal(deniedOutcome.validDurationMs, 5000);
      assert.equal(deniedOutcome.quotas.size, 0);

      const granted = checkNow(sc, { 'request.path': '/quota' }, { requestcount: 3 });
      assert.ok(granted instanceof Promise, 'a quota handler answered with a promise');
      assert.deepEqual((await granted).quotas.get('requestcount'), {
        status: { code: 0, message: '' },
        grantedAmount: 1n,
        validDurationMs: 60_000,
      });
    });
  });

  it('batches report instances per handler across the attribute sets of a Report, and reports faults', async () => {
    const sc = await start([
      handler('sink', '{}'),
      handler('down', '{ fail: true }'),
      instance('access', 'logentry', '{ variables: { path: request.path | "" }, severity: \'"info"\' }'),
      rule('r', '', '[{ handler: sink, instances: [access] }]'),
      rule('r2', 'request.path == "/audit"', '[{ handler: down, instances: [access] }]'),
    ]);
    const ok = await sc.report({ 'request.path': '/a' }, { 'request.path': '/b' });
    assert.deepEqual(ok, { status: { code: 0, message: '' }, dispatched: 2 });
    assert.deepEqual(reports, [
      {
        handler: 'sink.handler.istio-system',
        instances: ['access.instance.istio-system:/a', 'access.instance.istio-system:/b'],
      },
    ]);
    const failed = await sc.report({ 'request.path': '/audit' });
    assert.deepEqual(failed.status, {
      code: StatusCode.UNAVAILABLE,
      message: 'down.handler.istio-system:handler error: sink down',
    });
  });

  it('answers RESOURCE_EXHAUSTED when every faulting report handler was full, UNAVAILABLE when one failed', async () => {
    const sc = await start([
      handler('full', '{ full: true }'),
      handler('down', '{ fail: true }'),
      instance('access', 'logentry', '{ variables: { path: request.path | "" }, severity: \'"info"\' }'),
      rule('r', '', '[{ handler: full, instances: [access] }]'),
      rule('r2', 'request.path == "/audit"', '[{ handler: down, instances: [access] }]'),
    ]);
    const full = await sc.report({ 'request.path': '/a' });
    assert.deepEqual(full, {
      status: {
        code: StatusCode.RESOURCE_EXHAUSTED,
        message: 'full.handler.istio-system:handler error: spool full',
      },
      dispatched: 0,
    });
    const both = await sc.report({ 'request.path': '/audit' });
    assert.equal(both.status.code, StatusCode.UNAVAILABLE);
    assert.match(both.status.message, /full\.handler\.istio-system:handler error: spool full/);
    assert.match(both.status.message, /down\.handler\.istio-system:handler error: sink down/);
  });
});
