import { strict as assert } from 'node:assert';
import { parseWithSchema, type ConfigProblem } from '../../../../adapters';
import { LISTCHECKER } from '../../../../adapters/acl/list';
import type { ListConfig } from '../../../../adapters/acl/list/config';

/** Schema, then validate, as the configuration store runs them. */
function problemsOf(params: unknown): ConfigProblem[] {
  const parsed = parseWithSchema(LISTCHECKER.config, params);
  if (!parsed.ok) return parsed.problems;
  return LISTCHECKER.validate!(parsed.value);
}

const URL_FIX = 'must be an http or https URL such as https://lists.example.com/allowed.txt';
const IP_FIX =
  'is not an IP address or CIDR range; write an address such as 10.1.2.3 or 2001:db8::1, or a range such as 10.0.0.0/8 or 2001:db8::/32';

describe('adapters/acl/list: configuration', () => {
  it('is named listchecker and supports listentry', () => {
    assert.equal(LISTCHECKER.name, 'listchecker');
    assert.deepEqual(LISTCHECKER.templates, ['listentry']);
  });

  it("applies Mixer's defaults", () => {
    const parsed = parseWithSchema(LISTCHECKER.config, undefined);
    assert.deepEqual(parsed, {
      ok: true,
      value: {
        providerUrl: '',
        refreshInterval: 60_000,
        ttl: 300_000,
        cachingInterval: 300_000,
        cachingUseCount: 10_000,
        overrides: [],
        entryType: 'STRINGS',
        blacklist: false,
      } satisfies ListConfig,
    });
  });

  it("accepts Mixer's snake_case spellings", () => {
    const parsed = parseWithSchema(LISTCHECKER.config, {
      provider_url: 'http://127.0.0.1:8080/list',
      refresh_interval: '5s',
      ttl: '20s',
      caching_interval: '1s',
      caching_use_count: 7,
      entry_type: 'REGEX',
      overrides: ['^a'],
      blacklist: true,
    });
    assert.deepEqual(parsed, {
      ok: true,
      value: {
        providerUrl: 'http://127.0.0.1:8080/list',
        refreshInterval: 5000,
        ttl: 20_000,
        cachingInterval: 1000,
        cachingUseCount: 7,
        overrides: ['^a'],
        entryType: 'REGEX',
        blacklist: true,
      },
    });
  });

  const cases: { name: string; params: unknown; problems: ConfigProblem[] }[] = [
    { name: 'a list of overrides alone', params: { overrides: ['a', 'b'] }, problems: [] },
    {
      name: 'a provider with Mixer-valid intervals (ttl equal to refreshInterval is allowed, as in Mixer)',
      params: { providerUrl: 'https://lists.example.com/x', refreshInterval: '1s', ttl: '1s' },
      problems: [],
    },
    {
      name: 'intervals without a provider, which are not used',
      params: { refreshInterval: '1ms', ttl: '0s' },
      problems: [],
    },
    {
      name: 'a provider URL that is not a URL',
      params: { providerUrl: 'Foo' },
      problems: [{ path: 'providerUrl', message: `${URL_FIX}, got "Foo"` }],
    },
    {
      name: 'a provider URL with another scheme',
      params: { providerUrl: 'ftp://lists.example.com/x' },
      problems: [{ path: 'providerUrl', message: `${URL_FIX}, got scheme "ftp"` }],
    },
    {
      name: 'a provider URL without a host',
      params: { providerUrl: 'http://' },
      problems: [{ path: 'providerUrl', message: `${URL_FIX}, got "http://"` }],
    },
    {
      name: 'a refresh interval under a second and a ttl under it',
      params: { providerUrl: 'http://127.0.0.1/x', refreshInterval: '500ms', ttl: '200ms' },
      problems: [
        { path: 'refreshInterval', message: 'must be at least 1s when providerUrl is set, got 500ms' },
        {
          path: 'ttl',
          message:
            'must be at least refreshInterval (500ms), got 200ms; twice refreshInterval or more lets the list outlive a provider outage',
        },
      ],
    },
    {
      name: 'a ttl shorter than the default refresh interval',
      params: { providerUrl: 'http://127.0.0.1/x', ttl: '30s' },
      problems: [
        {
          path: 'ttl',
          message:
            'must be at least refreshInterval (60s), got 30s; twice refreshInterval or more lets the list outlive a provider outage',
        },
      ],
    },
    {
      name: 'negative caching and an unknown entry type',
      params: { cachingInterval: '-1s', cachingUseCount: -1, entryType: 'CIDRS' },
      problems: [
        { path: 'cachingInterval', message: 'must be >= 0, got -1s' },
        { path: 'cachingUseCount', message: 'must be >= 0, got -1' },
        {
          path: 'entryType',
          message: 'must be one of STRINGS, CASE_INSENSITIVE_STRINGS, IP_ADDRESSES, REGEX, got "CIDRS"',
        },
      ],
    },
    {
      name: 'bad IP overrides, each with its index',
      params: {
        entryType: 'IP_ADDRESSES',
        overrides: ['10.0.0.0/8', '10.0.0.0/33', '2001:db8::/32', 'fe80::1%eth0', '', 'localhost'],
      },
      problems: [
        { path: 'overrides[1]', message: `"10.0.0.0/33" ${IP_FIX}` },
        { path: 'overrides[3]', message: `"fe80::1%eth0" ${IP_FIX}` },
        { path: 'overrides[4]', message: `"" ${IP_FIX}` },
        { path: 'overrides[5]', message: `"localhost" ${IP_FIX}` },
      ],
    },
    {
      name: 'bad regular expressions, each with its index and reason',
      params: { entryType: 'REGEX', overrides: ['^/api/', 'a(', '(?U)a+', '[z-a]'] },
      problems: [
        { path: 'overrides[1]', message: '"a(" is not a valid RE2 regular expression: Unterminated group' },
        {
          path: 'overrides[2]',
          message:
            '"(?U)a+" is not a valid RE2 regular expression: the ungreedy flag (?U) has no JavaScript equivalent',
        },
        {
          path: 'overrides[3]',
          message: '"[z-a]" is not a valid RE2 regular expression: Range out of order in character class',
        },
      ],
    },
    {
      name: 'strings that would be bad addresses or patterns, as plain strings',
      params: { entryType: 'STRINGS', overrides: ['a(', '10.0.0.0/33'] },
      problems: [],
    },
  ];
  for (const c of cases) {
    it(`${c.problems.length === 0 ? 'accepts' : 'refuses'} ${c.name}`, () => {
      assert.deepEqual(problemsOf(c.params), c.problems);
    });
  }
});
