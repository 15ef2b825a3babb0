import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import {
  ConfigLoadError,
  formatConfigError,
  loadConfigDirectory,
  parseConfigFile,
} from '../../policy-server';
import type { ConfigSnapshot } from '../../policy-server';

// Compiled to dist/test/policy-server/; fixtures stay in the source tree.
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'config');

/** The fixture directory as a user would pass it: relative to the working directory. */
function fixtureDir(name: string): string {
  return path.relative(process.cwd(), path.join(FIXTURES, name));
}

/** Loads a fixture that must fail and returns its formatted errors. */
async function loadErrors(name: string): Promise<string[]> {
  const dir = fixtureDir(name);
  const error: unknown = await loadConfigDirectory(dir).then(
    () => assert.fail(`fixture ${name} loaded, but it should not`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ConfigLoadError, `expected a ConfigLoadError, got ${String(error)}`);
  assert.equal(error.configDir, dir);
  return error.errors.map(formatConfigError);
}

describe('loadConfigDirectory', () => {
  describe('rejects each bad configuration with its file, line and fix', () => {
    const cases: { fixture: string; file: string; expected: string[] }[] = [
      {
        fixture: 'missing-name',
        file: 'rules.yaml',
        expected: ['3: resource has no metadata.name; give every resource a name'],
      },
      {
        fixture: 'missing-metadata',
        file: 'rules.yaml',
        expected: ['2: resource has no metadata.name; give every resource a name'],
      },
      {
        fixture: 'empty-name',
        file: 'rule.yaml',
        expected: ['4: metadata.name is empty; give every resource a name'],
      },
      {
        fixture: 'name-not-string',
        file: 'rule.yaml',
        expected: [
          '4: metadata.name must be a string, got number; quote a name that YAML reads as another type, e.g. name: "42"',
        ],
      },
      {
        fixture: 'missing-kind',
        file: 'handler.yaml',
        expected: ['1: resource has no kind; set kind, e.g. kind: rule'],
      },
      {
        fixture: 'kind-not-string',
        file: 'handler.yaml',
        expected: ['2: kind must be a string, got sequence; write one kind as a string, e.g. kind: rule'],
      },
      {
        fixture: 'missing-api-version',
        file: 'instance.yaml',
        expected: [
          '1: resource has no apiVersion; set apiVersion, e.g. apiVersion: config.istio.io/v1alpha2',
        ],
      },
      {
        fixture: 'metadata-not-mapping',
        file: 'rule.yaml',
        expected: [
          '3: metadata must be a mapping, got string; write metadata: { name: NAME, namespace: NAMESPACE }',
        ],
      },
      {
        fixture: 'namespace-not-string',
        file: 'rule.yaml',
        expected: ['5: metadata.namespace must be a string, got mapping; quote it, or leave it out'],
      },
      {
        fixture: 'spec-not-mapping',
        file: 'rule.yaml',
        expected: ['5: spec must be a mapping, got sequence; write spec as key: value pairs'],
      },
      {
        fixture: 'document-not-mapping',
        file: 'list.yaml',
        expected: [
          '2: resource is a sequence, not a mapping; write each resource as a mapping with apiVersion, kind, metadata and spec',
        ],
      },
      {
        fixture: 'yaml-syntax-error',
        file: 'rule.yaml',
        expected: [
          '5: invalid YAML: All mapping items must start at the same column; indent the keys of one mapping, or the items of one list, to the same column',
        ],
      },
      {
        fixture: 'duplicate-key',
        file: 'rule.yaml',
        expected: ['5: invalid YAML: Map keys must be unique; remove or rename one of the duplicate keys'],
      },
      {
        fixture: 'unresolved-alias',
        file: 'rule.yaml',
        expected: [
          '3: alias *shared has no anchor &shared before it; define the anchor first, or write the value out',
        ],
      },
      {
        fixture: 'second-document-bad',
        file: 'rules.yaml',
        expected: ['10: spec must be a mapping, got string; write spec as key: value pairs'],
      },
    ];
    for (const { fixture, file, expected } of cases) {
      it(fixture, async () => {
        const prefix = path.join(fixtureDir(fixture), file);
        assert.deepEqual(
          await loadErrors(fixture),
          expected.map((lineAndMessage) => `${prefix}:${lineAndMessage}`),
        );
      });
    }
  });

  it('reports every problem of every file at once, in path order then line order', async () => {
    const dir = fixtureDir('errors-in-several-files');
    assert.deepEqual(await loadErrors('errors-in-several-files'), [
      `${dir}/handlers.yaml:6: apiVersion must be a string, got number; write it as a string, e.g. apiVersion: config.istio.io/v1alpha2`,
      `${dir}/handlers.yaml:6: resource has no kind; set kind, e.g. kind: rule`,
      `${dir}/handlers.yaml:7: resource has no metadata.name; give every resource a name`,
      `${dir}/instances.yaml:1: resource is a sequence, not a mapping; write each resource as a mapping with apiVersion, kind, metadata and spec`,
      `${dir}/nested/rules.yml:5: spec must be a mapping, got string; write spec as key: value pairs`,
    ]);
  });

  it('summarises the errors in the message of the ConfigLoadError', async () => {
    const dir = fixtureDir('missing-kind');
    const error = await loadConfigDirectory(dir).catch((e: unknown) => e);
    assert.ok(error instanceof ConfigLoadError);
    assert.equal(error.code, 'CONFIG_INVALID');
    assert.equal(
      error.message,
      `configuration in ${dir} does not load (1 error)\n` +
        `${dir}/handler.yaml:1: resource has no kind; set kind, e.g. kind: rule`,
    );
  });

  it('rejects a directory that does not exist', async () => {
    const dir = fixtureDir('no-such-directory');
    assert.deepEqual(await loadErrors('no-such-directory'), [
      `${dir}: configuration directory does not exist; check the path`,
    ]);
  });

  it('rejects a file given as the directory', async () => {
    const file = path.join(fixtureDir('good'), 'a-handlers.yaml');
    const error = await loadConfigDirectory(file).catch((e: unknown) => e);
    assert.ok(error instanceof ConfigLoadError);
    assert.deepEqual(error.errors.map(formatConfigError), [
      `${file}: not a directory; give the directory that holds the configuration files`,
    ]);
  });

  describe('a good multi-file, multi-document configuration', () => {
    let snapshot: ConfigSnapshot;
    const dir = fixtureDir('good');
    before(async () => {
      snapshot = await loadConfigDirectory(dir);
    });

    it('loads every resource of every *.yaml and *.yml file, in path order then document order', () => {
      assert.equal(snapshot.generation, 1);
      assert.equal(snapshot.configDir, dir);
      assert.deepEqual(
        snapshot.resources.map((r) => `${r.file}:${r.line} ${r.kind}/${r.name}`),
        [
          `${dir}/a-handlers.yaml:2 handler/refuse`,
          `${dir}/a-handlers.yaml:12 handler/allowed-versions`,
          `${dir}/b-rules.yml:2 rule/ratings-callers`,
          `${dir}/nested/instances.yaml:1 instance/caller-version`,
          `${dir}/nested/instances.yaml:11 instance/nothing`,
        ],
      );
    });

    it('keeps apiVersion, namespace and spec as written; an absent or empty namespace is undefined', () => {
      const [refuse, allowed, rule, , nothing] = snapshot.resources;
      assert.deepEqual(
        { apiVersion: refuse?.apiVersion, namespace: refuse?.namespace, spec: refuse?.spec },
        {
          apiVersion: 'config.istio.io/v1alpha2',
          namespace: 'istio-system',
          spec: { compiledAdapter: 'denier', params: { status: { code: 7, message: 'not allowed' } } },
        },
      );
      assert.equal(allowed?.namespace, undefined);
      assert.equal(rule?.namespace, undefined);
      assert.equal(rule?.spec['match'], 'destination.labels["app"] == "ratings"');
      assert.deepEqual(nothing?.spec, { compiledTemplate: 'checknothing' });
    });

    it('is deeply frozen', () => {
      const handler = snapshot.resources[0];
      assert.ok(Object.isFrozen(snapshot));
      assert.ok(Object.isFrozen(snapshot.resources));
      assert.ok(Object.isFrozen(handler));
      assert.ok(Object.isFrozen(handler?.spec));
      assert.ok(Object.isFrozen(handler?.spec['params']));
    });
  });

  it('numbers the snapshot with the generation it is given', async () => {
    assert.equal((await loadConfigDirectory(fixtureDir('good'), { generation: 7 })).generation, 7);
  });

  it('loads the example configuration', async () => {
    const snapshot = await loadConfigDirectory(
      path.relative(process.cwd(), path.join(REPO_ROOT, 'examples', 'config')),
    );
    assert.deepEqual(snapshot.resources.map((r) => `${r.kind}/${r.name}`).sort(), [
      'handler/access-log',
      'handler/allowed-versions',
      'handler/api-rbac',
      'handler/refuse',
      'handler/request-limits',
      'instance/access',
      'instance/api-request',
      'instance/caller-version',
      'instance/nothing',
      'instance/requestcount',
      'rule/access-log',
      'rule/api-rbac',
      'rule/deny-reviews-v3',
      'rule/ratings-callers',
      'rule/request-quota',
    ]);
  });
});

describe('parseConfigFile', () => {
  it('skips empty documents and reports lines within the file', () => {
    const parsed = parseConfigFile(
      '---\n# nothing\n---\nkind: rule\napiVersion: v1\nmetadata: {}\n',
      'x.yaml',
    );
    assert.deepEqual(parsed.resources, []);
    assert.deepEqual(parsed.errors.map(formatConfigError), [
      'x.yaml:6: resource has no metadata.name; give every resource a name',
    ]);
  });

  it('refuses an alias bomb instead of expanding it', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 6; i++) {
      const prev = String.fromCharCode(97 + i);
      const next = String.fromCharCode(98 + i);
      lines.push(
        `${next}: &${next} [*${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}]`,
      );
    }
    const parsed = parseConfigFile(lines.join('\n') + '\n', 'bomb.yaml');
    assert.equal(parsed.resources.length, 0);
    assert.equal(parsed.errors.length, 1);
    assert.match(formatConfigError(parsed.errors[0]!), /^bomb\.yaml:1: invalid YAML: .*alias/i);
  });
});
