import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapterEnv, parseWithSchema, type AdapterLogger, type Handler } from '../../../../adapters';
import { LISTCHECKER } from '../../../../adapters/acl/list';
import { ListUnavailableError } from '../../../../adapters/acl/list/handler';
import { StatusCode, type CallContext, type CheckResult, type ListEntryHandler } from '../../../../templates';

type ListHandler = ListEntryHandler & Handler;

const CONTEXT: CallContext = { signal: new AbortController().signal };
const NAME = 'lists.handler.istio-system';
const IP_FIX =
  'is not an IP address or CIDR range; write an address such as 10.1.2.3 or 2001:db8::1, or a range such as 10.0.0.0/8 or 2001:db8::/32';

/** The list provider: a real HTTP server on loopback whose answer each test sets. */
const provider = {
  body: '',
  status: 200,
  /** When true, requests get no answer until the client gives up. */
  hang: false,
  requests: 0,
  failuresServed: 0,
  /** Requests the client abandoned before an answer. */
  abandoned: 0,
};

let server: Server;
let url = '';
let now = 1_000_000;
let logs: string[] = [];
const open: ListHandler[] = [];

const logger: AdapterLogger = {
  info: (m) => logs.push(`info: ${m}`),
  warn: (m) => logs.push(`warn: ${m}`),
  error: (m) => logs.push(`error: ${m}`),
};

/**
 * Builds a handler polling the provider. Tests poll every 20ms, far below the 1s that
 * validation requires of configurations (Mixer's own tests built handlers the same way).
 */
async function build(params: Record<string, unknown>): Promise<ListHandler> {
  const parsed = parseWithSchema(LISTCHECKER.config, {
    providerUrl: url,
    refreshInterval: '20ms',
    ttl: '1s',
    cachingInterval: '1s',
    cachingUseCount: 3,
    ...params,
  });
  assert.ok(parsed.ok, JSON.stringify(parsed));
  const { env } = createAdapterEnv(NAME, logger, () => now);
  const handler = (await LISTCHECKER.build(parsed.value, env)) as ListHandler;
  open.push(handler);
  return handler;
}

/** Polls until `condition` holds, for at most 3s. */
async function waitFor(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Waits until the provider has served `count` more requests. */
async function nextRequests(count: number): Promise<void> {
  const target = provider.requests + count;
  await waitFor(`${count} more requests`, () => provider.requests >= target);
}

function result(code: number, message: string): CheckResult {
  return { status: { code, message }, validDurationMs: 1000, validUseCount: 3 };
}
const OK = result(StatusCode.OK, '');

async function check(handler: ListHandler, value: string): Promise<CheckResult> {
  return handler.handleListEntry({ name: 'v.instance.istio-system', value }, CONTEXT);
}

async function answers(handler: ListHandler, value: string, want: CheckResult): Promise<boolean> {
  try {
    assert.deepEqual(await check(handler, value), want);
    return true;
  } catch {
    return false;
  }
}

describe('adapters/acl/list: the list provider', () => {
  before(async () => {
    server = createServer((req, res) => {
      provider.requests++;
      if (provider.hang) {
        res.on('close', () => provider.abandoned++);
        req.resume();
        return;
      }
      if (provider.status !== 200) {
        provider.failuresServed++;
        res.writeHead(provider.status).end('unavailable');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end(provider.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/list`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    Object.assign(provider, {
      body: '',
      status: 200,
      hang: false,
      requests: 0,
      failuresServed: 0,
      abandoned: 0,
    });
    now = 1_000_000;
    logs = [];
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((h) => h.close()));
  });

  it('fetches the list before serving, lines as entries, then refreshes every refreshInterval', async () => {
    provider.body = 'alpha\nbeta\r\n\ngamma\n';
    const handler = await build({ overrides: ['override'] });
    assert.equal(provider.requests, 1);
    assert.deepEqual(await check(handler, 'alpha'), OK);
    assert.deepEqual(await check(handler, 'beta'), OK);
    assert.deepEqual(await check(handler, 'override'), OK);
    assert.deepEqual(
      await check(handler, 'delta'),
      result(StatusCode.PERMISSION_DENIED, 'delta is not whitelisted'),
    );

    provider.body = 'delta\n';
    await waitFor('the changed list', () => answers(handler, 'delta', OK));
    assert.deepEqual(
      await check(handler, 'alpha'),
      result(StatusCode.PERMISSION_DENIED, 'alpha is not whitelisted'),
    );
    assert.deepEqual(await check(handler, 'override'), OK);

    // An unchanged list is not installed again, but counts as a refresh.
    await nextRequests(3);
    now += 10_000;
    await nextRequests(2);
    assert.deepEqual(await check(handler, 'delta'), OK);
    assert.deepEqual(logs, [
      `info: listchecker ${NAME}: installed a list of 4 entries from ${url}`,
      `info: listchecker ${NAME}: installed a list of 2 entries from ${url}`,
    ]);
  });

  it('keeps the last good list when a refresh fails, logging once per streak of failures', async () => {
    provider.body = 'alpha\nbeta\n';
    const handler = await build({ blacklist: true });
    provider.status = 503;
    await waitFor('three failed refreshes', () => provider.failuresServed >= 3);
    assert.deepEqual(
      await check(handler, 'alpha'),
      result(StatusCode.PERMISSION_DENIED, 'alpha is blacklisted'),
    );
    assert.deepEqual(await check(handler, 'gamma'), OK);

    provider.body = 'gamma\n';
    provider.status = 200;
    await waitFor('the list after the outage', () =>
      answers(handler, 'gamma', result(StatusCode.PERMISSION_DENIED, 'gamma is blacklisted')),
    );
    const failed = provider.failuresServed;

    provider.status = 500;
    await waitFor('a second streak of failures', () => logs.length === 5);
    await nextRequests(2);
    assert.deepEqual(logs, [
      `info: listchecker ${NAME}: installed a list of 2 entries from ${url}`,
      `error: listchecker ${NAME}: could not fetch the list from ${url}: HTTP 503; keeping the last good list (2 entries) until it expires (ttl 1s)`,
      `info: listchecker ${NAME}: installed a list of 1 entry from ${url}`,
      `info: listchecker ${NAME}: refreshed the list from ${url} after ${failed} failed attempts`,
      `error: listchecker ${NAME}: could not fetch the list from ${url}: HTTP 500; keeping the last good list (1 entry) until it expires (ttl 1s)`,
    ]);
  });

  it('expires the list when it is not refreshed within ttl, as a fault, and serves again after a refresh', async () => {
    provider.body = 'alpha\n';
    const handler = await build({ ttl: '1s' });
    provider.status = 503;
    await waitFor('a failed refresh', () => provider.failuresServed >= 1 && logs.length === 2);

    now += 1000;
    assert.deepEqual(await check(handler, 'alpha'), OK);
    now += 1;
    assert.throws(
      () => handler.handleListEntry({ name: 'v', value: 'alpha' }, CONTEXT),
      (err: unknown) => {
        assert.ok(err instanceof ListUnavailableError);
        assert.equal(err.code, 'LIST_UNAVAILABLE');
        assert.equal(
          err.message,
          `listchecker ${NAME}: the list from ${url} has expired: last refreshed 1001ms ago, ttl is 1s; ` +
            `last refresh error: could not fetch the list from ${url}: HTTP 503`,
        );
        return true;
      },
    );

    provider.status = 200;
    await waitFor('a refresh', () => answers(handler, 'alpha', OK));
  });

  it('answers with a fault until the first fetch succeeds', async () => {
    provider.status = 500;
    const handler = await build({});
    assert.throws(() => handler.handleListEntry({ name: 'v', value: 'a' }, CONTEXT), {
      name: 'ListUnavailableError',
      message: `listchecker ${NAME}: no list from ${url} yet: could not fetch the list from ${url}: HTTP 500`,
    });
    assert.deepEqual(logs, [
      `error: listchecker ${NAME}: could not fetch the list from ${url}: HTTP 500; no list yet: checks fail until a fetch succeeds`,
    ]);
    provider.status = 200;
    provider.body = 'a\n';
    await waitFor('the first list', () => answers(handler, 'a', OK));
  });

  it('names the reason when the provider cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const handler = await build({ providerUrl: `http://127.0.0.1:${port}/list` });
    assert.throws(() => handler.handleListEntry({ name: 'v', value: 'a' }, CONTEXT), {
      message: `listchecker ${NAME}: no list from http://127.0.0.1:${port}/list yet: could not fetch the list from http://127.0.0.1:${port}/list: connect ECONNREFUSED 127.0.0.1:${port}`,
    });
  });

  it('gives up on a provider that does not answer within refreshInterval (at least 1s)', async () => {
    provider.hang = true;
    const handler = await build({});
    assert.throws(() => handler.handleListEntry({ name: 'v', value: 'a' }, CONTEXT), {
      message: `listchecker ${NAME}: no list from ${url} yet: could not fetch the list from ${url}: The operation was aborted due to timeout`,
    });
    await waitFor('the abandoned request', () => provider.abandoned === 1);
  });

  it("reads IP lists as Mixer's YAML document, whitelist key ignoring case", async () => {
    provider.body = 'WhiteList:\n  - 10.0.0.0/8\n  - 2001:db8::/32\n  - 192.168.1.7\n';
    const handler = await build({
      entryType: 'IP_ADDRESSES',
      blacklist: true,
      overrides: ['::ffff:172.16.0.0/108'],
    });
    const denied = (text: string) => result(StatusCode.PERMISSION_DENIED, `${text} is blacklisted`);
    assert.deepEqual(await check(handler, '10.9.9.9'), denied('10.9.9.9'));
    assert.deepEqual(await check(handler, '2001:db8::7'), denied('2001:db8::7'));
    assert.deepEqual(await check(handler, '::ffff:192.168.1.7'), denied('::ffff:192.168.1.7'));
    assert.deepEqual(await check(handler, '172.16.0.1'), denied('172.16.0.1'));
    assert.deepEqual(await check(handler, '192.168.1.8'), OK);

    provider.body = '';
    await waitFor('an empty list', () => answers(handler, '10.9.9.9', OK));
    assert.deepEqual(await check(handler, '172.16.0.1'), denied('172.16.0.1'));
  });

  const unparsable: { name: string; entryType: string; body: string; problem: string }[] = [
    {
      name: 'a YAML list instead of a mapping',
      entryType: 'IP_ADDRESSES',
      body: '- 10.0.0.1\n',
      problem: 'not a mapping with a whitelist; serve a YAML document such as "whitelist: [10.0.0.0/8]"',
    },
    {
      name: 'a whitelist that is not a list',
      entryType: 'IP_ADDRESSES',
      body: 'whitelist: 10.0.0.1\n',
      problem: 'whitelist must be a list of addresses and ranges',
    },
    {
      name: 'an entry that is not a string',
      entryType: 'IP_ADDRESSES',
      body: 'whitelist: [10, 10.0.0.1]\n',
      problem: 'whitelist[0] must be a string, got 10',
    },
    {
      name: 'an entry that is not an address',
      entryType: 'IP_ADDRESSES',
      body: 'whitelist: [10.0.0.1, X]\n',
      problem: `whitelist[1]: "X" ${IP_FIX}`,
    },
    {
      name: 'a document that is not YAML',
      entryType: 'IP_ADDRESSES',
      body: 'whitelist: [10.0.0.1',
      problem:
        'not a YAML document: Flow sequence in block collection must be sufficiently indented and end with a ] at line 1, column 21:',
    },
    {
      name: 'a pattern that is not RE2',
      entryType: 'REGEX',
      body: '^ok$\n\na(\n',
      problem: 'line 3: "a(" is not a valid RE2 regular expression: Unterminated group',
    },
  ];
  for (const c of unparsable) {
    it(`refuses ${c.name}, keeping the last good list`, async () => {
      provider.body = c.body;
      const fresh = await build({ entryType: c.entryType });
      const message = `could not parse the list from ${url}: ${c.problem}`;
      assert.throws(() => fresh.handleListEntry({ name: 'v', value: '10.0.0.1' }, CONTEXT), {
        message: `listchecker ${NAME}: no list from ${url} yet: ${message}`,
      });
      assert.deepEqual(logs, [
        `error: listchecker ${NAME}: ${message}; no list yet: checks fail until a fetch succeeds`,
      ]);
      await fresh.close();

      logs = [];
      provider.body = c.entryType === 'REGEX' ? '^10\\.\n' : 'whitelist: [10.0.0.0/8]\n';
      const handler = await build({ entryType: c.entryType });
      provider.body = c.body;
      await waitFor('the refused list', () => logs.length === 2);
      assert.equal(
        logs[1],
        `error: listchecker ${NAME}: ${message}; keeping the last good list (1 entry) until it expires (ttl 1s)`,
      );
      assert.deepEqual(await check(handler, '10.0.0.1'), OK);
    });
  }

  it('stops refreshing on close, cancelling a fetch under way; close is idempotent', async () => {
    provider.body = 'a\n';
    const handler = await build({});
    provider.hang = true;
    await waitFor('a fetch under way', () => provider.requests >= 2);
    const closing = handler.close();
    assert.equal(handler.close(), closing);
    await closing;
    await waitFor('the cancelled fetch', () => provider.abandoned === 1);
    const requests = provider.requests;
    // Five refresh intervals: a refresh, had one been left, would have come.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(provider.requests, requests);
    await handler.close();
    assert.throws(() => handler.handleListEntry({ name: 'v', value: 'a' }, CONTEXT), {
      message: `listchecker ${NAME}: the handler is closed`,
    });
    assert.deepEqual(logs, [`info: listchecker ${NAME}: installed a list of 1 entry from ${url}`]);
  });
});
