import { strict as assert } from 'node:assert';
import { createAdapterEnv, parseWithSchema, type AdapterLogger, type Handler } from '../../../adapters';
import { NOOP } from '../../../adapters/noop';
import {
  OK_STATUS,
  TEMPLATES,
  type ApiKeyHandler,
  type AuthorizationHandler,
  type CallContext,
  type CheckNothingHandler,
  type EdgeHandler,
  type ListEntryHandler,
  type LogEntryHandler,
  type MetricHandler,
  type QuotaHandler,
  type ReportNothingHandler,
  type TraceSpanHandler,
} from '../../../templates';

type NoopHandler = CheckNothingHandler &
  ListEntryHandler &
  AuthorizationHandler &
  ApiKeyHandler &
  QuotaHandler &
  ReportNothingHandler &
  LogEntryHandler &
  MetricHandler &
  TraceSpanHandler &
  EdgeHandler &
  Handler;

const SILENT: AdapterLogger = { info() {}, warn() {}, error() {} };
const CONTEXT: CallContext = { signal: new AbortController().signal };
/** Mixer's noop: valid for 10^9 seconds and 10^9 uses. */
const PASS = { status: OK_STATUS, validDurationMs: 1e12, validUseCount: 1e9 };

async function build(): Promise<NoopHandler> {
  const parsed = parseWithSchema(NOOP.config, undefined);
  assert.ok(parsed.ok);
  const { env } = createAdapterEnv('nothing-happens.handler.istio-system', SILENT);
  return (await NOOP.build(parsed.value, env)) as NoopHandler;
}

const NAME = { name: 'i.instance.istio-system' };

describe('adapters/noop', () => {
  it('supports every template, and has the handler method of each', async () => {
    assert.equal(NOOP.name, 'noop');
    assert.deepEqual([...NOOP.templates].sort(), [...TEMPLATES.keys()].sort());
    const handler = (await build()) as unknown as Record<string, unknown>;
    for (const name of NOOP.templates) {
      const method = TEMPLATES.get(name)!.handlerMethod;
      assert.equal(typeof handler[method], 'function', `${name}: ${method}`);
    }
  });

  it('takes no params', () => {
    assert.deepEqual(parseWithSchema(NOOP.config, {}), { ok: true, value: {} });
    assert.deepEqual(parseWithSchema(NOOP.config, { verbose: true }), {
      ok: false,
      problems: [{ path: 'verbose', message: 'is not a known field: this takes no parameters' }],
    });
  });

  it('passes every check, for 10^9 seconds and 10^9 uses', async () => {
    const handler = await build();
    const checks: [string, () => unknown][] = [
      ['checknothing', () => handler.handleCheckNothing(NAME, CONTEXT)],
      ['listentry', () => handler.handleListEntry({ ...NAME, value: 'x' }, CONTEXT)],
      [
        'authorization',
        () =>
          handler.handleAuthorization(
            {
              ...NAME,
              subject: { user: 'u', groups: '', properties: new Map() },
              action: { namespace: 'n', service: 's', method: 'GET', path: '/', properties: new Map() },
            },
            CONTEXT,
          ),
      ],
      [
        'apikey',
        () =>
          handler.handleApiKey(
            { ...NAME, api: 'a', apiVersion: 'v1', apiOperation: 'get', apiKey: 'k', timestamp: undefined },
            CONTEXT,
          ),
      ],
    ];
    for (const [template, call] of checks) assert.deepEqual(await call(), PASS, template);
  });

  it('grants every quota in full', async () => {
    const handler = await build();
    for (const amount of [0, 1, 250]) {
      const result = await handler.handleQuota(
        { ...NAME, dimensions: new Map() },
        { deduplicationId: 'd', amount, bestEffort: amount === 1 },
        CONTEXT,
      );
      assert.deepEqual(result, { status: OK_STATUS, grantedAmount: amount, validDurationMs: 1e12 });
    }
  });

  it('accepts every report', async () => {
    const handler = await build();
    assert.equal(await handler.handleReportNothing([NAME, NAME], CONTEXT), undefined);
    assert.equal(await handler.handleLogEntry([], CONTEXT), undefined);
    assert.equal(await handler.handleMetric([], CONTEXT), undefined);
    assert.equal(await handler.handleTraceSpan([], CONTEXT), undefined);
    assert.equal(await handler.handleEdge([], CONTEXT), undefined);
  });

  it('closes idempotently and refuses calls after close', async () => {
    const handler = await build();
    await handler.close();
    await handler.close();
    const closed = { message: 'noop nothing-happens.handler.istio-system: the handler is closed' };
    assert.throws(() => handler.handleCheckNothing(NAME, CONTEXT), closed);
    assert.throws(
      () =>
        handler.handleQuota(
          { ...NAME, dimensions: new Map() },
          { deduplicationId: '', amount: 1, bestEffort: false },
          CONTEXT,
        ),
      closed,
    );
    assert.throws(() => handler.handleMetric([], CONTEXT), closed);
  });
});
