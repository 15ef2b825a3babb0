import { strict as assert } from 'node:assert';
import { createAdapterEnv, parseWithSchema, type AdapterLogger, type Handler } from '../../../../adapters';
import { LISTCHECKER } from '../../../../adapters/acl/list';
import { Duration, IpAddress, Timestamp, type AttributeValue } from '../../../../attributes';
import { StatusCode, type CallContext, type CheckResult, type ListEntryHandler } from '../../../../templates';

type ListHandler = ListEntryHandler & Handler;

const SILENT: AdapterLogger = { info() {}, warn() {}, error() {} };
const CONTEXT: CallContext = { signal: new AbortController().signal };
const HANDLER_NAME = 'allowed.handler.istio-system';

async function build(params: Record<string, unknown>): Promise<ListHandler> {
  const parsed = parseWithSchema(LISTCHECKER.config, {
    cachingInterval: '10s',
    cachingUseCount: 5,
    ...params,
  });
  assert.ok(parsed.ok, JSON.stringify(parsed));
  assert.deepEqual(LISTCHECKER.validate!(parsed.value), []);
  const { env } = createAdapterEnv(HANDLER_NAME, SILENT);
  return (await LISTCHECKER.build(parsed.value, env)) as ListHandler;
}

function ip(text: string): IpAddress {
  const address = IpAddress.parse(text);
  assert.ok(address, text);
  return address;
}

/** What a case expects: OK, or a status code and its exact message. */
type Want = 'OK' | [code: number, message: string];

const DENIED = StatusCode.PERMISSION_DENIED;
const INVALID = StatusCode.INVALID_ARGUMENT;

function expected(want: Want): CheckResult {
  const status = want === 'OK' ? { code: 0, message: '' } : { code: want[0], message: want[1] };
  return { status, validDurationMs: 10_000, validUseCount: 5 };
}

function show(value: AttributeValue | undefined): string {
  if (value instanceof IpAddress) return `ip(${value.toString()})`;
  if (value instanceof Uint8Array) return `bytes(${[...value].join(',')})`;
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

interface Table {
  entryType: string;
  overrides: string[];
  /** Values in the list, their text as it appears in messages. */
  listed: [AttributeValue, string][];
  /** Values not in the list. */
  unlisted: [AttributeValue, string][];
  /** Values the list cannot read, with the message (the same for whitelists and blacklists). */
  invalid?: [AttributeValue | undefined, string][];
}

const TABLES: Table[] = [
  {
    entryType: 'STRINGS',
    overrides: ['alpha', 'Beta', '10.0.0.1', '', 'a.b'],
    listed: [
      ['alpha', 'alpha'],
      ['Beta', 'Beta'],
      // An address is looked up by its text, as Go prints it.
      [ip('10.0.0.1'), '10.0.0.1'],
      [ip('::ffff:10.0.0.1'), '10.0.0.1'],
      [Uint8Array.from([10, 0, 0, 1]), '10.0.0.1'],
    ],
    unlisted: [
      ['Alpha', 'Alpha'],
      ['beta', 'beta'],
      ['alph', 'alph'],
      ['axb', 'axb'],
      ['', ''],
      [ip('10.0.0.2'), '10.0.0.2'],
    ],
    invalid: [
      [42n, '42 is not a valid string or IP address'],
      [true, 'true is not a valid string or IP address'],
      [undefined, 'an absent value is not a valid string or IP address'],
      [new Timestamp(0, 0), '1970-01-01T00:00:00Z is not a valid string or IP address'],
    ],
  },
  {
    entryType: 'CASE_INSENSITIVE_STRINGS',
    overrides: ['alpha', 'Beta', 'straße'],
    listed: [
      ['alpha', 'alpha'],
      ['ALPHA', 'ALPHA'],
      ['bEtA', 'bEtA'],
      ['STRAßE', 'STRAßE'],
    ],
    unlisted: [
      // Go's strings.ToUpper leaves ß alone, so ß and SS differ.
      ['STRASSE', 'STRASSE'],
      ['gamma', 'gamma'],
    ],
    invalid: [[Duration.parse('1s')!, '1s is not a valid string or IP address']],
  },
  {
    entryType: 'REGEX',
    overrides: ['^/api/v[12]/', 'admin', '(?i)^health$'],
    listed: [
      ['/api/v1/users', '/api/v1/users'],
      ['/x/admin/y', '/x/admin/y'],
      ['HEALTH', 'HEALTH'],
    ],
    unlisted: [
      ['/api/v3/users', '/api/v3/users'],
      ['/v1/api/v1/', '/v1/api/v1/'],
      ['healthz', 'healthz'],
    ],
    invalid: [[3.5, '3.5 is not a valid string or IP address']],
  },
  {
    entryType: 'IP_ADDRESSES',
    overrides: ['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '::ffff:172.16.0.0/108', 'fe80::1'],
    listed: [
      ['10.1.2.3', '10.1.2.3'],
      [ip('10.255.0.1'), '10.255.0.1'],
      ['::ffff:10.1.2.3', '::ffff:10.1.2.3'],
      [ip('::ffff:10.1.2.3'), '10.1.2.3'],
      [Uint8Array.from([10, 0, 0, 1]), '10.0.0.1'],
      ['192.168.1.7', '192.168.1.7'],
      ['2001:db8:1::5', '2001:db8:1::5'],
      [ip('2001:DB8::9'), '2001:db8::9'],
      ['172.16.5.5', '172.16.5.5'],
      [ip('::ffff:172.31.0.1'), '172.31.0.1'],
      ['fe80::1', 'fe80::1'],
    ],
    unlisted: [
      ['11.0.0.1', '11.0.0.1'],
      ['192.168.1.8', '192.168.1.8'],
      ['2001:db9::1', '2001:db9::1'],
      [ip('2001:db9::1'), '2001:db9::1'],
      ['172.32.0.1', '172.32.0.1'],
      ['fe80::2', 'fe80::2'],
      ['::a00:1', '::a00:1'],
    ],
    invalid: [
      ['XYZ', 'XYZ is not a valid IP address'],
      ['', ' is not a valid IP address'],
      ['fe80::1%eth0', 'fe80::1%eth0 is not a valid IP address'],
      ['10.0.0.0/8', '10.0.0.0/8 is not a valid IP address'],
      [Uint8Array.from([1, 2, 3]), '?010203 is not a valid IP address'],
      [7n, '7 is not a valid string or IP address'],
    ],
  },
];

describe('adapters/acl/list: lists', () => {
  for (const table of TABLES) {
    for (const blacklist of [false, true]) {
      const kind = blacklist ? 'blacklist' : 'whitelist';
      it(`${table.entryType} ${kind}: ${blacklist ? 'denies listed values' : 'denies unlisted values'}, with Mixer's messages`, async () => {
        const handler = await build({ entryType: table.entryType, overrides: table.overrides, blacklist });
        const cases: [AttributeValue | undefined, Want][] = [
          ...table.listed.map(([value, text]): [AttributeValue, Want] => [
            value,
            blacklist ? [DENIED, `${text} is blacklisted`] : 'OK',
          ]),
          ...table.unlisted.map(([value, text]): [AttributeValue, Want] => [
            value,
            blacklist ? 'OK' : [DENIED, `${text} is not whitelisted`],
          ]),
          ...(table.invalid ?? []).map(([value, message]): [AttributeValue | undefined, Want] => [
            value,
            [INVALID, message],
          ]),
        ];
        for (const [value, want] of cases) {
          const result = await handler.handleListEntry({ name: 'v.instance.istio-system', value }, CONTEXT);
          assert.deepEqual(result, expected(want), show(value));
        }
        await handler.close();
      });
    }
  }

  it('answers from an empty list: a whitelist denies everything, a blacklist nothing', async () => {
    const whitelist = await build({});
    assert.deepEqual(
      await whitelist.handleListEntry({ name: 'v', value: 'x' }, CONTEXT),
      expected([DENIED, 'x is not whitelisted']),
    );
    const blacklist = await build({ blacklist: true, entryType: 'IP_ADDRESSES' });
    assert.deepEqual(
      await blacklist.handleListEntry({ name: 'v', value: '10.0.0.1' }, CONTEXT),
      expected('OK'),
    );
  });

  it('makes every answer cacheable for cachingInterval and cachingUseCount', async () => {
    const handler = await build({ overrides: ['a'], cachingInterval: '0s', cachingUseCount: 0 });
    const ok = await handler.handleListEntry({ name: 'v', value: 'a' }, CONTEXT);
    assert.deepEqual(ok, { status: { code: 0, message: '' }, validDurationMs: 0, validUseCount: 0 });
    const denied = await handler.handleListEntry({ name: 'v', value: 'b' }, CONTEXT);
    assert.deepEqual(denied, {
      status: { code: DENIED, message: 'b is not whitelisted' },
      validDurationMs: 0,
      validUseCount: 0,
    });
  });

  it('formats an address only for a message or a text list, not for an IP list lookup', async () => {
    /** An address that counts how often it is formatted. */
    class CountedAddress extends IpAddress {
      formatted = 0;
      override toString(): string {
        this.formatted++;
        return super.toString();
      }
    }
    const counted = (text: string): CountedAddress => new CountedAddress(ip(text).bytes);
    const ips = await build({ entryType: 'IP_ADDRESSES', overrides: ['10.0.0.0/8'] });
    const listed = counted('10.1.2.3');
    assert.deepEqual(ips.handleListEntry({ name: 'v', value: listed }, CONTEXT), expected('OK'));
    assert.equal(listed.formatted, 0, 'an IP list looks an address up without its text');
    const unlisted = counted('11.0.0.1');
    assert.deepEqual(
      ips.handleListEntry({ name: 'v', value: unlisted }, CONTEXT),
      expected([DENIED, '11.0.0.1 is not whitelisted']),
    );
    assert.equal(unlisted.formatted, 1, 'the message shows the address');
    const strings = await build({ overrides: ['10.1.2.3'] });
    const text = counted('10.1.2.3');
    assert.deepEqual(strings.handleListEntry({ name: 'v', value: text }, CONTEXT), expected('OK'));
    assert.equal(text.formatted, 1, 'a text list looks an address up by its text');
    await ips.close();
    await strings.close();
  });

  it('closes idempotently and refuses checks after close', async () => {
    const handler = await build({ overrides: ['a'] });
    const first = handler.close();
    assert.equal(handler.close(), first);
    await first;
    await handler.close();
    assert.throws(() => handler.handleListEntry({ name: 'v', value: 'a' }, CONTEXT), {
      message: `listchecker ${HANDLER_NAME}: the handler is closed`,
    });
  });
});
