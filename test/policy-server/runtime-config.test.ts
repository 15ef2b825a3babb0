/**
 * Bad configurations, one fixture folder each (test/fixtures/runtime-config/<problem>/),
 * each asserting the exact errors `switchboard validate` prints for it: file and line,
 * the path in the resource, and the message. The shapes of resources are the loader's
 * business (config-loader.test.ts); these are about what the runtime configuration
 * checks: kinds, adapters and their params, templates, expressions, references, names.
 */
import { strict as assert } from 'node:assert';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { createBuiltinRegistry } from '../../adapters';
import { runValidateCommand } from '../../cli/config-commands';
import { buildRuntimeConfig, formatConfigError, loadConfigDirectory } from '../../policy-server';

// Compiled to dist/test/policy-server/; fixtures stay in the source tree.
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'runtime-config');

/** The formatted errors of a fixture, with file names relative to its folder. */
async function validationErrors(fixture: string): Promise<string[]> {
  const dir = path.join(FIXTURES, fixture);
  const snapshot = await loadConfigDirectory(dir);
  const built = buildRuntimeConfig(snapshot.resources, createBuiltinRegistry());
  assert.ok(!built.ok, `fixture ${fixture} validated, but it should not`);
  return built.errors.map((e) =>
    formatConfigError({ ...e, file: path.relative(dir, e.file).split(path.sep).join('/') }),
  );
}

const TEMPLATE_LIST =
  'checknothing, listentry, authorization, apikey, quota, reportnothing, logentry, metric, tracespan, edge';
const LISTCHECKER_FIELDS =
  'providerUrl, refreshInterval, ttl, cachingInterval, cachingUseCount, overrides, entryType, blacklist';
const DECLARE_OR_QUALIFY = 'declare it, or qualify the name as name.kind.namespace';
const IP_FIX =
  'write an address such as 10.1.2.3 or 2001:db8::1, or a range such as 10.0.0.0/8 or 2001:db8::/32';
const STATUS_CODE = 'must be a google.rpc code: a number 0 to 16 or a name such as PERMISSION_DENIED';

const CASES: ReadonlyArray<{ readonly fixture: string; readonly expected: readonly string[] }> = [
  // Kinds
  {
    fixture: 'unknown-kind',
    expected: [
      `handler.yaml:3: kind: unknown kind handlers: expected attributemanifest, handler, instance, rule, an adapter (denier, elasticsearch, kafka, listchecker, memquota, noop, opa, redisquota, stdio), a template (${TEMPLATE_LIST}) or a proxy kind (QuotaSpec, QuotaSpecBinding, HTTPAPISpec, HTTPAPISpecBinding)`,
    ],
  },

  // Handlers and their adapters' params
  {
    fixture: 'handler-without-compiled-adapter',
    expected: [
      'handler.yaml:7: spec: a handler needs compiledAdapter: the name of the adapter, such as denier',
    ],
  },
  {
    fixture: 'unknown-adapter',
    expected: [
      'handler.yaml:8: spec.compiledAdapter: no adapter named prometheus; adapters: denier, elasticsearch, kafka, listchecker, memquota, noop, opa, redisquota, stdio',
    ],
  },
  {
    // The adapter is named under Mixer's other key, spec.adapter: the error points at that key.
    fixture: 'handler-adapter-field-unknown',
    expected: [
      'handler.yaml:8: spec.adapter: no adapter named prometheus; adapters: denier, elasticsearch, kafka, listchecker, memquota, noop, opa, redisquota, stdio',
    ],
  },
  {
    fixture: 'adapter-param-wrong-type',
    expected: ['handler.yaml:11: spec.params.blacklist: listchecker: must be true or false, got "yes"'],
  },
  {
    fixture: 'adapter-param-not-a-list',
    expected: ['handler.yaml:10: spec.params.overrides: listchecker: must be a list of strings, got "v1"'],
  },
  {
    fixture: 'adapter-param-unknown-field',
    expected: [
      `handler.yaml:10: spec.params.overides: listchecker: is not a known field; known fields: ${LISTCHECKER_FIELDS}`,
    ],
  },
  {
    fixture: 'adapter-param-bad-duration',
    expected: [
      'handler.yaml:10: spec.params.validDuration: denier: must be a duration such as "10s" or "100ms", got "5 seconds"',
    ],
  },
  {
    // A param written in Mixer's snake_case: the path names the key as written, at its line.
    fixture: 'adapter-param-alias-line',
    expected: [
      'handler.yaml:15: spec.params.severity_levels.fatal: stdio: must be one of INFO, WARNING, ERROR (or its number, 0 to 2), got "LOUD"',
    ],
  },
  {
    fixture: 'denier-unknown-status-name',
    expected: [`handler.yaml:11: spec.params.status.code: denier: ${STATUS_CODE}, got "FORBIDDEN"`],
  },
  {
    fixture: 'listchecker-bad-cidr',
    expected: [
      `handler.yaml:11: spec.params.overrides[1]: listchecker: "10.58.0.0/33" is not an IP address or CIDR range; ${IP_FIX}`,
    ],
  },
  {
    fixture: 'listchecker-ttl-below-refresh-interval',
    expected: [
      'handler.yaml:12: spec.params.ttl: listchecker: must be at least refreshInterval (60s), got 30s; twice refreshInterval or more lets the list outlive a provider outage',
    ],
  },
  {
    fixture: 'stdio-file-without-output-path',
    expected: [
      'handler.yaml:9: spec.params.outputPath: stdio: is required when logStream is FILE: give the file to append to, such as /var/log/switchboard/access.log',
    ],
  },
  {
    fixture: 'memquota-bucket-does-not-divide-window',
    expected: [
      'handler.yaml:14: spec.params.quotas[0].bucketDuration: memquota: must divide validDuration (1s) into whole buckets for ROLLING_WINDOW, got 300ms; give a divisor of validDuration such as 250ms',
    ],
  },
  {
    // The override's item is where the missing key belongs.
    fixture: 'memquota-override-without-dimensions',
    expected: [
      'handler.yaml:19: spec.params.quotas[0].overrides[1].dimensions: memquota: is required: give a mapping of names to a string',
    ],
  },
  {
    fixture: 'duplicate-handler-names',
    expected: [
      'second.yaml:5: metadata.name: a second handler named refuse in namespace istio-system; names are unique per kind and namespace',
    ],
  },

  // Instances and their expressions
  {
    fixture: 'instance-without-compiled-template',
    expected: [
      'instance.yaml:7: spec: an instance needs compiledTemplate: the name of a template, such as listentry',
    ],
  },
  {
    fixture: 'unknown-template',
    expected: [
      `instance.yaml:8: spec.compiledTemplate: no template named metrics; templates: ${TEMPLATE_LIST}`,
    ],
  },
  {
    // The template is named under Mixer's other key, spec.template: the error points at that key.
    fixture: 'instance-template-field-unknown',
    expected: [`instance.yaml:8: spec.template: no template named metrics; templates: ${TEMPLATE_LIST}`],
  },
  {
    fixture: 'unknown-template-field',
    expected: [
      'instance.yaml:10: spec.params.values: is not a field of template listentry; its fields: value',
    ],
  },
  {
    fixture: 'instance-expression-syntax-error',
    expected: [
      `instance.yaml:10: spec.params.value: syntax error in "source.labels[\\"version\\"" at column 24: unexpected end of expression to close the index: expected ']'`,
    ],
  },
  {
    fixture: 'instance-expression-type-error',
    expected: [
      'instance.yaml:12: spec.params.http_status_code: "request.path" has type STRING, but the field is INT64',
    ],
  },
  {
    fixture: 'unknown-attribute',
    expected: [
      `instance.yaml:10: spec.params.value: type error in "source.lables[\\"version\\"]" at column 1: unknown attribute 'source.lables'; did you mean 'source.labels'?`,
    ],
  },
  {
    fixture: 'duplicate-instance-names',
    expected: [
      'instances.yaml:13: metadata.name: a second instance named nothing in namespace istio-system; names are unique per kind and namespace',
    ],
  },

  // Rules
  {
    fixture: 'rule-match-not-bool',
    expected: [
      `rule.yaml:8: spec.match: type error in "destination.labels[\\"app\\"]" at column 1: expression has type STRING, but BOOL is required here`,
    ],
  },
  {
    fixture: 'rule-match-syntax-error',
    expected: [
      `rule.yaml:8: spec.match: syntax error in "destination.labels[\\"app\\"] = \\"ratings\\"" at column 27: unsupported operator '=': CEXL has == != && || + < <= > >= and the default operator |`,
    ],
  },
  {
    fixture: 'rule-match-not-a-string',
    expected: [
      'rule.yaml:8: spec.match: must be an expression of type BOOL, such as destination.service.name == "reviews"',
    ],
  },
  {
    fixture: 'action-unknown-handler',
    expected: [
      `rule.yaml:10: spec.actions[0].handler: no handler refuser in namespace istio-system; ${DECLARE_OR_QUALIFY}`,
    ],
  },
  {
    fixture: 'action-unknown-instance',
    expected: [
      `rule.yaml:13: spec.actions[0].instances[1]: no instance everything in namespace istio-system; ${DECLARE_OR_QUALIFY}`,
    ],
  },
  {
    fixture: 'action-handler-in-another-namespace',
    expected: [
      `config.yaml:27: spec.actions[0].handler: no handler refuse in namespace bookinfo; ${DECLARE_OR_QUALIFY}`,
    ],
  },
  {
    fixture: 'handler-does-not-take-template',
    expected: [
      'config.yaml:30: spec.actions[0].instances[0]: handler refuse.handler.istio-system (adapter denier) does not take logentry instances; it takes checknothing, listentry, quota',
    ],
  },
  {
    fixture: 'ambiguous-short-name',
    expected: [
      'config.yaml:33: spec.actions[0].handler: refuse is ambiguous: refuse.handler.istio-system and refuse.denier.istio-system; write name.kind to choose',
    ],
  },
  {
    fixture: 'header-operation-bad-operation',
    expected: [
      'rule.yaml:11: spec.requestHeaderOperations[0].operation: must be REPLACE, REMOVE or APPEND, got "ADD"',
    ],
  },
  {
    fixture: 'header-operation-bad-value',
    expected: [
      'rule.yaml:11: spec.responseHeaderOperations[0].values[0]: type error in "response.code" at column 1: expression has type INT64, but STRING is required here',
    ],
  },
  {
    fixture: 'bad-failure-policy',
    expected: ['rule.yaml:9: spec.failurePolicy: must be FAIL_CLOSE or FAIL_OPEN, got "FAIL_SOMETIMES"'],
  },

  // Attribute manifests
  {
    fixture: 'attributemanifest-bad-value-type',
    expected: [
      'manifest.yaml:11: spec.attributes.shop.customer.tier.valueType: must be a value type (STRING, INT64, DOUBLE, BOOL, TIMESTAMP, DURATION, IP_ADDRESS, EMAIL_ADDRESS, URI, DNS_NAME, STRING_MAP, BYTES), got "STRNG"',
    ],
  },
  {
    fixture: 'attributemanifest-redeclared-attribute',
    expected: [
      'manifest.yaml:13: spec.attributes.source.ip.valueType: attribute source.ip is already declared as IP_ADDRESS; one attribute has one type',
    ],
  },
  {
    // The second declaration is the one at fault, not the first.
    fixture: 'attributemanifest-conflicting-manifests',
    expected: [
      'tiers.yaml:10: spec.attributes.shop.customer.tier.valueType: attribute shop.customer.tier is already declared as STRING; one attribute has one type',
    ],
  },

  // Mixer's older kinds: per adapter (kind: denier) and per template (kind: listentry),
  // with what would be params written directly in spec.
  {
    fixture: 'legacy-denier-kind-bad-status',
    expected: [
      `denier.yaml:9: spec.status.code: denier: ${STATUS_CODE}, got "NOT_ALLOWED"`,
      'denier.yaml:11: spec.validUseCount: denier: must be >= 0, got -1',
    ],
  },
  {
    fixture: 'legacy-memquota-kind-bad-amount',
    expected: [
      'memquota.yaml:10: spec.quotas[0].maxAmount: memquota: must be an integer, got "500/s"',
      'memquota.yaml:11: spec.quotas[0].validDuration: memquota: must be > 0, got 0s',
    ],
  },
  {
    fixture: 'legacy-checknothing-kind-with-fields',
    expected: ['checknothing.yaml:8: spec.value: is not a field of template checknothing; its fields: none'],
  },
  {
    fixture: 'legacy-listentry-kind-unknown-attribute',
    expected: [
      `listentry.yaml:8: spec.value: type error in "source.label[\\"version\\"]" at column 1: unknown attribute 'source.label'; did you mean 'source.labels'?`,
    ],
  },

  // opa
  {
    fixture: 'opa-without-check-method',
    expected: [
      'handler.yaml:9: spec.params.checkMethod: opa: is required: the decision to ask for, data.<package>.<rule>, such as data.authz.allow',
    ],
  },
  {
    fixture: 'opa-check-method-not-a-rule-path',
    expected: [
      'handler.yaml:11: spec.params.checkMethod: opa: must be data.<package>.<rule>, such as data.authz.allow, got "authz/allow"',
    ],
  },
  {
    fixture: 'opa-bundle-and-rego',
    expected: [
      'handler.yaml:10: spec.params.bundle: opa: is a compiled policy: give either bundle or Rego (policy, policyFiles, policyDir), not both',
    ],
  },
  {
    fixture: 'opa-no-policy',
    expected: [
      'handler.yaml:9: spec.params.policy: opa: no policy is configured: give Rego in policy, policyFiles or policyDir, or a compiled bundle',
    ],
  },
  {
    fixture: 'opa-evaluation-timeout-without-threads',
    expected: [
      'handler.yaml:12: spec.params.evaluationTimeout: opa: needs evaluationThreads of 1 or more: an evaluation on the event loop cannot be interrupted',
    ],
  },
  {
    fixture: 'opa-policy-file-not-rego-or-data',
    expected: [
      'handler.yaml:10: spec.params.policyFiles[1]: opa: must be a .rego file or a .json, .yaml or .yml data document, got "roles.csv"',
    ],
  },
  {
    fixture: 'opa-data-not-a-mapping',
    expected: ['handler.yaml:12: spec.params.data: opa: must be a mapping (a JSON object), got a list'],
  },
  {
    fixture: 'opa-legacy-kind-unknown-param',
    expected: [
      'handler.yaml:10: spec.failclose: opa: is not a known field; known fields: policy, checkMethod, failClose, policyFiles, policyDir, bundle, data, regoVersion, dryRun, decisionLog, validDuration, validUseCount, opaPath, evaluationThreads, evaluationTimeout, watch',
    ],
  },
  {
    fixture: 'attributemanifest-bad-value-type-snake-case',
    expected: [
      'manifest.yaml:12: spec.attributes.request.priority.value_type: must be a value type (STRING, INT64, DOUBLE, BOOL, TIMESTAMP, DURATION, IP_ADDRESS, EMAIL_ADDRESS, URI, DNS_NAME, STRING_MAP, BYTES), got "NUMBER"',
    ],
  },
  // Where errors point, and how many are reported
  {
    fixture: 'nested-key-line',
    expected: [
      `handler.yaml:15: spec.params.overrides[2]: listchecker: "10.300.0.0/16" is not an IP address or CIDR range; ${IP_FIX}`,
      'instance.yaml:13: spec.params.dimensions.size: syntax error in "request.size +" at column 15: unexpected end of expression where an operand was expected',
    ],
  },
  {
    fixture: 'errors-in-several-files',
    expected: [
      'a-handlers.yaml:10: spec.params.entryType: listchecker: must be one of STRINGS, CASE_INSENSITIVE_STRINGS, IP_ADDRESSES, REGEX, got "VERSIONS"',
      'a-handlers.yaml:21: spec.params.validDuration: denier: must be a duration such as "10s" or "100ms", got "forever"',
      'b-instances.yaml:9: spec.params.value: syntax error in "source.labels[\\"version\\"] |" at column 27: unexpected end of expression where an operand was expected',
      'c-rules.yaml:8: spec.match: type error in "destination.labels[\\"app\\"] == 42" at column 27: both sides of == must have the same type, got STRING and INT64',
      `c-rules.yaml:12: spec.actions[1].handler: no handler refuse-rudely in namespace istio-system; ${DECLARE_OR_QUALIFY}`,
    ],
  },
];

/** Collects what a command writes. */
function collector(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { stream, text: () => text };
}

describe('runtime configuration: bad configurations', () => {
  describe('each fixture is refused with its exact errors', () => {
    for (const { fixture, expected } of CASES) {
      it(fixture, async () => {
        assert.deepEqual(await validationErrors(fixture), expected);
      });
    }
  });

  it('has a case for every fixture folder, and a folder for every case', () => {
    const folders = readdirSync(FIXTURES, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    assert.deepEqual(folders, CASES.map((c) => c.fixture).sort());
    assert.ok(CASES.length >= 25, `only ${CASES.length} fixtures`);
  });

  it('switchboard validate prints the same errors, one a line, and exits 1', async () => {
    const dir = path.relative(process.cwd(), path.join(FIXTURES, 'errors-in-several-files'));
    const stdout = collector();
    const stderr = collector();
    const code = await runValidateCommand([dir], { stdout: stdout.stream, stderr: stderr.stream });
    assert.equal(code, 1);
    const expected = CASES.find((c) => c.fixture === 'errors-in-several-files')!.expected;
    assert.equal(stdout.text(), expected.map((line) => `${dir}${path.sep}${line}\n`).join(''));
    assert.equal(stderr.text(), `${dir}: 5 errors\n`);
  });
});
