import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseWithSchema, type ConfigProblem } from '../../../../adapters';
import {
  AUDIT_MAPPINGS,
  ELASTICSEARCH,
  IndexPattern,
  defaultTemplateName,
  indexTemplateBody,
  templateVersion,
} from '../../../../adapters/logging/elasticsearch';
import { validateConfigTexts } from '../../../../policy-server';

// Compiled to dist/test/adapters/logging/elasticsearch/; the README stays in the source tree.
const README = path.resolve(
  __dirname,
  '..',
  '..',
  '..',
  '..',
  '..',
  'adapters',
  'logging',
  'elasticsearch',
  'README.md',
);

function problemsOf(params: Record<string, unknown>): ConfigProblem[] {
  const outcome = parseWithSchema(ELASTICSEARCH.config, params);
  if (!outcome.ok) return outcome.problems;
  return ELASTICSEARCH.validate!(outcome.value);
}

const URLS = { urls: ['http://127.0.0.1:9200'] };

function compiled(source: string): IndexPattern {
  const pattern = IndexPattern.compile(source);
  if (Array.isArray(pattern)) throw new Error(JSON.stringify(pattern));
  return pattern;
}

describe('elasticsearch: configuration', () => {
  it("loads the README's example, handler, instance and rule, as the server does", () => {
    const readme = readFileSync(README, 'utf8');
    const example = /```yaml\n([\s\S]*?)```/.exec(readme)![1]!;
    assert.deepEqual(validateConfigTexts({ 'audit.yaml': example }), []);
    const handler = parseYaml(example.split('\n---\n')[0]!) as { spec: { params: Record<string, unknown> } };
    assert.deepEqual(problemsOf(handler.spec.params), []);
  });

  it("the README's mapping table is the template's mapping", () => {
    const rows: string[] = [];
    const walk = (properties: Record<string, Record<string, unknown>>, prefix: string): void => {
      for (const [name, field] of Object.entries(properties)) {
        const dotted = prefix === '' ? name : `${prefix}.${name}`;
        if (field['properties'] !== undefined) {
          walk(field['properties'] as Record<string, Record<string, unknown>>, dotted);
          continue;
        }
        const options = [
          field['ignore_malformed'] === true ? 'ignore_malformed' : '',
          field['ignore_above'] !== undefined ? `ignore_above ${String(field['ignore_above'])}` : '',
          field['depth_limit'] !== undefined ? `depth_limit ${String(field['depth_limit'])}` : '',
        ].filter((o) => o !== '');
        rows.push(`${dotted} | ${String(field['type'])} | ${options.join(', ')}`);
      }
    };
    walk(AUDIT_MAPPINGS['properties'] as Record<string, Record<string, unknown>>, '');
    const lines = readFileSync(README, 'utf8').split('\n');
    const header = lines.findIndex((line) => /^\| field +\| type +\| options/.test(line));
    assert.ok(header > 0, 'the README has the mapping table');
    const table: string[] = [];
    for (const line of lines.slice(header + 2)) {
      if (!line.startsWith('|')) break;
      const cells = line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim().replaceAll('`', ''));
      table.push(cells.join(' | ').trim());
    }
    assert.deepEqual(
      table,
      rows.map((row) => row.trim()),
    );
  });

  it('has defaults: daily audit indices, a template of priority 200, 5 item attempts', () => {
    const outcome = parseWithSchema(ELASTICSEARCH.config, URLS);
    assert.ok(outcome.ok);
    const params = outcome.value;
    assert.equal(params.index, 'audit-{yyyy.MM.dd}');
    assert.deepEqual(params.template, { priority: 200, shards: 1, replicas: 1 });
    assert.deepEqual(params.itemRetry, { maxAttempts: 5, minDelay: 100, maxDelay: 5000 });
    assert.deepEqual(params.tls, { insecureSkipVerify: false });
    assert.equal(params.requestTimeout, 30_000);
    assert.equal(params.spool.fsync, 'INTERVAL');
    assert.equal(params.delivery.maxBatchRecords, 1000);
    assert.deepEqual(problemsOf(URLS), []);
  });

  it('requires urls', () => {
    assert.deepEqual(problemsOf({}), [{ path: 'urls', message: 'is required: give a list of strings' }]);
    assert.deepEqual(problemsOf({ urls: [] }), [
      { path: 'urls', message: 'must have at least 1 entries, got 0' },
    ]);
  });

  it('refuses urls that are not http(s), or that carry credentials', () => {
    assert.deepEqual(problemsOf({ urls: ['127.0.0.1:9200', 'https://elastic:pw@es:9200'] }), [
      {
        path: 'urls[0]',
        message: 'must be an http:// or https:// URL such as http://127.0.0.1:9200, got "127.0.0.1:9200"',
      },
      {
        path: 'urls[1]',
        message: 'must not carry credentials: give username and password (or apiKey) as parameters',
      },
    ]);
  });

  it('refuses two ways of authenticating, and a user without a password', () => {
    assert.deepEqual(problemsOf({ ...URLS, apiKey: 'k', username: 'u', password: 'p' }), [
      { path: 'apiKey', message: 'and username are both given: authenticate one way, remove one' },
    ]);
    assert.deepEqual(problemsOf({ ...URLS, username: 'u' }), [
      { path: 'password', message: 'is required with username' },
    ]);
  });

  it('refuses TLS options without an https url, and insecureSkipVerify with a CA file', () => {
    assert.deepEqual(problemsOf({ ...URLS, tls: { caFile: 'ca.pem' } }), [
      { path: 'tls', message: 'applies only to https:// urls, and none is https://' },
    ]);
    assert.deepEqual(
      problemsOf({ urls: ['https://es:9200'], tls: { caFile: 'ca.pem', insecureSkipVerify: true } }),
      [
        {
          path: 'tls.insecureSkipVerify',
          message:
            'with caFile makes caFile pointless: remove insecureSkipVerify (it accepts any certificate)',
        },
      ],
    );
  });

  it('refuses index patterns Elasticsearch would refuse, naming the fix', () => {
    assert.deepEqual(problemsOf({ ...URLS, index: 'Audit-{yyyy.MM.dd}' }), [
      {
        path: 'index',
        message:
          '"Audit-" may not be in an index name: use lower case, and none of \\ / * ? " < > | space , # :',
      },
    ]);
    assert.deepEqual(problemsOf({ ...URLS, index: 'audit-{yyyy.ww}' }), [
      {
        path: 'index',
        message:
          '{yyyy.ww}: is not a date format of yyyy, MM, dd and HH separated by . - or _ (such as {yyyy.MM.dd})',
      },
    ]);
    assert.deepEqual(problemsOf({ ...URLS, index: '{yyyy.MM.dd}' }), [
      {
        path: 'index',
        message:
          'must begin with plain text, such as audit-{yyyy.MM.dd}, so that its index template matches only its own indices',
      },
    ]);
    assert.deepEqual(problemsOf({ ...URLS, index: 'audit-{yyyy.MM.dd' }), [
      { path: 'index', message: 'has a "{" without its "}" at character 7: audit-{yyyy.MM.dd' },
    ]);
    assert.deepEqual(problemsOf({ ...URLS, index: '_audit' }), [
      { path: 'index', message: 'must not begin with -, _, + or . (Elasticsearch refuses such index names)' },
    ]);
  });

  it('refuses itemRetry.maxDelay below minDelay, and a folder as the dead-letter file', () => {
    assert.deepEqual(
      problemsOf({ ...URLS, itemRetry: { minDelay: '1s', maxDelay: '10ms' }, deadLetterFile: '/var/lib/' }),
      [
        { path: 'itemRetry.maxDelay', message: 'must be at least itemRetry.minDelay (1000 ms)' },
        {
          path: 'deadLetterFile',
          message: 'must name a file, such as /var/lib/switchboard/audit-dead-letter.jsonl',
        },
      ],
    );
  });

  it('includes the export parameters, checked', () => {
    assert.deepEqual(problemsOf({ ...URLS, redaction: [{ field: 'x-user', action: 'HASH' }] }).length, 1);
    assert.deepEqual(problemsOf({ ...URLS, spool: { fsync: 'SOMETIMES' } }), [
      { path: 'spool.fsync', message: 'must be one of ALWAYS, INTERVAL, NEVER, got "SOMETIMES"' },
    ]);
  });
});

describe('elasticsearch: the index pattern', () => {
  const record = {
    '@timestamp': '2026-01-02T03:04:05.123456789Z',
    switchboard: { destination: { namespace: 'Shop/EU' }, variables: { tenant: 42 } },
  };

  it('names the index by the date of @timestamp, in UTC', () => {
    assert.equal(compiled('audit-{yyyy.MM.dd}').indexFor(record, 0), 'audit-2026.01.02');
    assert.equal(compiled('audit-{yyyy-MM}').indexFor(record, 0), 'audit-2026-01');
    assert.equal(compiled('audit-{yyyy.MM.dd_HH}').indexFor(record, 0), 'audit-2026.01.02_03');
    assert.equal(compiled('audit').indexFor(record, 0), 'audit');
  });

  it('uses the clock when @timestamp is missing or not RFC 3339', () => {
    const now = Date.UTC(2025, 11, 31, 23);
    assert.equal(compiled('audit-{yyyy.MM.dd}').indexFor({}, now), 'audit-2025.12.31');
    assert.equal(
      compiled('audit-{yyyy.MM.dd}').indexFor({ '@timestamp': 'yesterday' }, now),
      'audit-2025.12.31',
    );
  });

  it('names the index by a field, lower-cased and made safe, or its fallback', () => {
    const pattern = compiled('audit-{switchboard.destination.namespace}-{switchboard.variables.tenant|none}');
    assert.equal(pattern.indexFor(record, 0), 'audit-shop_eu-42');
    assert.equal(pattern.indexFor({}, 0), 'audit-unknown-none');
  });

  it('makes the template pattern by replacing each brace with *', () => {
    assert.equal(compiled('audit-{yyyy.MM.dd}').templatePattern, 'audit-*');
    assert.equal(
      compiled('audit-{switchboard.destination.namespace}-{yyyy.MM}').templatePattern,
      'audit-*-*',
    );
    assert.equal(defaultTemplateName('audit-{yyyy.MM.dd}'), 'switchboard-audit');
    assert.equal(defaultTemplateName('mesh.audit_{yyyy}'), 'switchboard-mesh.audit');
  });

  it('cuts names longer than Elasticsearch allows (255 bytes)', () => {
    const long = { switchboard: { x: 'é'.repeat(300) } };
    assert.equal(Buffer.byteLength(compiled('a-{switchboard.x}').indexFor(long, 0)), 254);
  });

  it('carries the schema version in the template', () => {
    const body = indexTemplateBody({ indexPattern: 'audit-*', priority: 7, shards: 2, replicas: 0 });
    assert.equal(templateVersion('1.2.3'), 10203);
    assert.equal(body['version'], 10100);
    assert.deepEqual(body['index_patterns'], ['audit-*']);
    assert.equal(body['priority'], 7);
  });
});
