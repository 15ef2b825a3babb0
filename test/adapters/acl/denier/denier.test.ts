import { strict as assert } from 'node:assert';
import { createAdapterEnv, parseWithSchema, type AdapterLogger } from '../../../../adapters';
import { DENIER } from '../../../../adapters/acl/denier';
import type { DenierConfig } from '../../../../adapters/acl/denier/config';
import {
  StatusCode,
  type CallContext,
  type CheckNothingHandler,
  type ListEntryHandler,
  type QuotaHandler,
} from '../../../../templates';
import type { Handler } from '../../../../adapters';

const SILENT: AdapterLogger = { info() {}, warn() {}, error() {} };
const CONTEXT: CallContext = { signal: new AbortController().signal };

function parse(params: unknown): DenierConfig {
  const outcome = parseWithSchema(DENIER.config, params);
  assert.ok(outcome.ok, JSON.stringify(outcome));
  return outcome.value;
}

type DenierHandler = CheckNothingHandler & ListEntryHandler & QuotaHandler & Handler;

async function build(params: unknown): Promise<DenierHandler> {
  const { env } = createAdapterEnv('refuse.handler.istio-system', SILENT);
  return (await DENIER.build(parse(params), env)) as DenierHandler;
}

const NOTHING = { name: 'nothing.instance.istio-system' };
const ENTRY = { name: 'entry.instance.istio-system', value: 'anything' };
const QUOTA = { name: 'requestcount.instance.istio-system', dimensions: new Map() };
const ARGS = { deduplicationId: 'd1', amount: 100, bestEffort: false };

describe('adapters/acl/denier', () => {
  it('is named denier and supports checknothing, listentry and quota, as in Mixer', () => {
    assert.equal(DENIER.name, 'denier');
    assert.deepEqual(DENIER.templates, ['checknothing', 'listentry', 'quota']);
    assert.ok(Object.isFrozen(DENIER));
  });

  describe('params', () => {
    const cases: { name: string; params: unknown; want: DenierConfig }[] = [
      {
        name: "Mixer's defaults: FAILED_PRECONDITION, 5s, 1000 uses",
        params: undefined,
        want: { status: { code: 9, message: '' }, validDuration: 5000, validUseCount: 1000 },
      },
      {
        name: 'a code as a number, as Mixer YAML wrote it',
        params: { status: { code: 7, message: 'not allowed' } },
        want: { status: { code: 7, message: 'not allowed' }, validDuration: 5000, validUseCount: 1000 },
      },
      {
        name: 'a code as a google.rpc name',
        params: { status: { code: 'PERMISSION_DENIED' } },
        want: { status: { code: 7, message: '' }, validDuration: 5000, validUseCount: 1000 },
      },
      {
        name: 'a code as a quoted number',
        params: { status: { code: '16' } },
        want: { status: { code: 16, message: '' }, validDuration: 5000, validUseCount: 1000 },
      },
      {
        name: 'a message alone, keeping the default code as Mixer merged params over its defaults',
        params: { status: { message: 'closed for maintenance' } },
        want: {
          status: { code: 9, message: 'closed for maintenance' },
          validDuration: 5000,
          validUseCount: 1000,
        },
      },
      {
        name: "Mixer's snake_case spellings",
        params: { valid_duration: '250ms', valid_use_count: 3 },
        want: { status: { code: 9, message: '' }, validDuration: 250, validUseCount: 3 },
      },
      {
        name: 'camelCase spellings',
        params: { validDuration: '1m', validUseCount: '0' },
        want: { status: { code: 9, message: '' }, validDuration: 60000, validUseCount: 0 },
      },
    ];
    for (const c of cases) {
      it(`accepts ${c.name}`, () => assert.deepEqual(parse(c.params), c.want));
    }

    const bad: { name: string; params: unknown; problems: { path: string; message: string }[] }[] = [
      {
        name: 'an unknown code name',
        params: { status: { code: 'DENIED' } },
        problems: [
          {
            path: 'status.code',
            message:
              'must be a google.rpc code: a number 0 to 16 or a name such as PERMISSION_DENIED, got "DENIED"',
          },
        ],
      },
      {
        name: 'a code out of range',
        params: { status: { code: 17 } },
        problems: [
          {
            path: 'status.code',
            message:
              'must be a google.rpc code: a number 0 to 16 or a name such as PERMISSION_DENIED, got 17',
          },
        ],
      },
      {
        name: 'a negative use count, a bad duration and an unknown field',
        params: { status: { code: 1.5, details: [] }, validDuration: 'soon', validUseCount: -1 },
        problems: [
          { path: 'status.details', message: 'is not a known field; known fields: code, message' },
          {
            path: 'status.code',
            message:
              'must be a google.rpc code: a number 0 to 16 or a name such as PERMISSION_DENIED, got 1.5',
          },
          { path: 'validDuration', message: 'must be a duration such as "10s" or "100ms", got "soon"' },
          { path: 'validUseCount', message: 'must be >= 0, got -1' },
        ],
      },
    ];
    for (const c of bad) {
      it(`refuses ${c.name}`, () => {
        const outcome = parseWithSchema(DENIER.config, c.params);
        assert.ok(!outcome.ok);
        assert.deepEqual(outcome.problems, c.problems);
      });
    }
  });

  describe('handler', () => {
    it('answers every check with the configured status and validity', async () => {
      const handler = await build({
        status: { code: 'PERMISSION_DENIED', message: 'no' },
        validDuration: '2s',
      });
      const want = {
        status: { code: StatusCode.PERMISSION_DENIED, message: 'no' },
        validDurationMs: 2000,
        validUseCount: 1000,
      };
      assert.deepEqual(await handler.handleCheckNothing(NOTHING, CONTEXT), want);
      assert.deepEqual(await handler.handleListEntry(ENTRY, CONTEXT), want);
      await handler.close();
    });

    it("answers with Mixer's default status when none is configured", async () => {
      const handler = await build({});
      const want = {
        status: { code: StatusCode.FAILED_PRECONDITION, message: '' },
        validDurationMs: 5000,
        validUseCount: 1000,
      };
      assert.deepEqual(await handler.handleCheckNothing(NOTHING, CONTEXT), want);
      assert.deepEqual(await handler.handleListEntry(ENTRY, CONTEXT), want);
    });

    it('grants no quota: status OK, amount 0, valid for no time, as Mixer', async () => {
      const handler = await build({ status: { code: 7 } });
      assert.deepEqual(await handler.handleQuota(QUOTA, ARGS, CONTEXT), {
        status: { code: 0, message: '' },
        grantedAmount: 0,
        validDurationMs: 0,
      });
    });

    it('closes idempotently and refuses calls after close', async () => {
      const handler = await build({});
      await handler.close();
      await handler.close();
      const closed = { message: 'denier refuse.handler.istio-system: the handler is closed' };
      assert.throws(() => handler.handleCheckNothing(NOTHING, CONTEXT), closed);
      assert.throws(() => handler.handleListEntry(ENTRY, CONTEXT), closed);
      assert.throws(() => handler.handleQuota(QUOTA, ARGS, CONTEXT), closed);
    });
  });
});
