import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../../cli/switchboard';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const EXAMPLES = path.join(REPO_ROOT, 'examples', 'config');

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await main(args, { stdout, stderr });
  return { code, stdout: out, stderr: err };
}

function tempFile(name: string, text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-cli-'));
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('switchboard validate, check, report', () => {
  it('validate: exit 0 for the example configuration', async () => {
    const r = await run('validate', EXAMPLES);
    assert.deepEqual(r, { code: 0, stdout: `${EXAMPLES}: valid (15 resources)\n`, stderr: '' });
  });

  it('validate: exit 1 and every error as file:line: path: message', async () => {
    const file = tempFile(
      'bad.yaml',
      [
        'apiVersion: config.istio.io/v1alpha2',
        'kind: handler',
        'metadata: { name: refuse }',
        'spec:',
        '  compiledAdapter: denier',
        '  params:',
        '    validDuration: soon',
        '---',
        'apiVersion: config.istio.io/v1alpha2',
        'kind: rule',
        'metadata: { name: r }',
        'spec:',
        '  match: request.path = "/x"',
        '  actions: [ { handler: refuse, instances: [ nothing ] } ]',
      ].join('\n'),
    );
    const r = await run('validate', path.dirname(file));
    assert.equal(r.code, 1);
    assert.equal(
      r.stdout,
      [
        `${file}:7: spec.params.validDuration: denier: must be a duration such as "10s" or "100ms", got "soon"`,
        `${file}:13: spec.match: syntax error in "request.path = \\"/x\\"" at column 14: unsupported operator '=': CEXL has == != && || + < <= > >= and the default operator |`,
        `${file}:14: spec.actions[0].instances[0]: no instance nothing in namespace istio-system; declare it, or qualify the name as name.kind.namespace`,
        '',
      ].join('\n'),
    );
    // refuse has an error of its own: the reference to it is not reported again.
    assert.equal(r.stderr, `${path.dirname(file)}: 3 errors\n`);
  });

  it('check: prints the CheckResponse, failing handlers joined, references by name', async () => {
    const attributes = tempFile(
      'a.json',
      JSON.stringify({
        'destination.labels': { app: 'ratings' },
        'source.labels': { app: 'reviews', version: 'v3' },
      }),
    );
    const r = await run(
      'check',
      '--config',
      EXAMPLES,
      '--attributes',
      attributes,
      '--quota',
      'requestcount=1',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      precondition: {
        status: {
          code: 7,
          message:
            'refuse.handler.istio-system:reviews v3 may not call ratings, allowed-versions.handler.istio-system:v3 is not whitelisted',
        },
        validDuration: '5s',
        validUseCount: 1000,
        referencedAttributes: {
          attributeMatches: [
            { name: 'destination.labels', mapKey: 'app', condition: 'EXACT' },
            { name: 'source.labels', mapKey: 'app', condition: 'EXACT' },
            { name: 'source.labels', mapKey: 'version', condition: 'EXACT' },
          ],
        },
      },
    });
  });

  it('check: grants a quota through memquota', async () => {
    const attributes = tempFile('a.json', JSON.stringify({ 'destination.labels': { app: 'productpage' } }));
    const r = await run(
      'check',
      '--config',
      EXAMPLES,
      '--attributes',
      attributes,
      '--quota',
      'requestcount=3',
    );
    assert.equal(r.code, 0, r.stderr);
    const response = JSON.parse(r.stdout) as { quotas: Record<string, { grantedAmount: string }> };
    assert.equal(response.quotas.requestcount?.grantedAmount, '3');
  });

  it('report: dispatches the report instances (the example access log writes to stdout)', async () => {
    const attributes = tempFile('a.json', JSON.stringify({ 'request.path': '/x' }));
    const r = await run('report', '--config', EXAMPLES, '--attributes', attributes);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '{"status":{"code":0,"message":""},"dispatched":1}\n');
  });

  it('usage errors exit 2', async () => {
    assert.equal((await run('check', '--config', EXAMPLES)).code, 2);
    assert.equal((await run('check', '--config', EXAMPLES, '--attributes', 'x', '--quota', 'nope')).code, 2);
    assert.equal((await run('validate')).code, 2);
  });
});
