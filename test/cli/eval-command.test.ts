import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEvalCommand } from '../../cli/eval-command';

const BIN = join(__dirname, '..', '..', 'cli', 'switchboard.js');

async function run(...args: string[]): Promise<{ status: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const status = await runEvalCommand(args, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) });
  return { status, out, err };
}

function attributesFile(json: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'switchboard-eval-')), 'attrs.json');
  writeFileSync(file, json);
  return file;
}

describe('switchboard eval', () => {
  const file = attributesFile(
    JSON.stringify({
      'request.headers': { 'x-user': 'bob' },
      'request.time': '2015-01-02T17:04:35.5+02:00',
      'response.duration': '1500ms',
      'source.ip': '2001:db8::1',
      'source.labels': { app: 'productpage' },
    }).replace('}}', '}, "destination.port": 9007199254740993}'),
  );

  const outputs: Array<[string, string]> = [
    ['request.headers["x-user"] == "bob"', '{"type":"BOOL","value":true}'],
    ['destination.port', '{"type":"INT64","value":"9007199254740993"}'],
    ['destination.port == 9007199254740993', '{"type":"BOOL","value":true}'],
    ['request.time', '{"type":"TIMESTAMP","value":"2015-01-02T15:04:35.5Z"}'],
    ['response.duration', '{"type":"DURATION","value":"1.5s"}'],
    ['source.ip', '{"type":"IP_ADDRESS","value":"2001:db8::1"}'],
    ['source.labels', '{"type":"STRING_MAP","value":{"app":"productpage"}}'],
    ['size("abc")', '{"type":"INT64","value":3}'],
    ['2.5', '{"type":"DOUBLE","value":2.5}'],
    ['email("a@b.example")', '{"type":"EMAIL_ADDRESS","value":"a@b.example"}'],
    ['request.path | "none"', '{"type":"STRING","value":"none"}'],
  ];
  for (const [expr, line] of outputs) {
    it(`prints ${line} for ${expr}`, async () => {
      const r = await run(expr, '--attributes', file);
      assert.deepEqual(r, { status: 0, out: [line], err: [] });
    });
  }

  const failures: Array<[string[], number, string]> = [
    [
      ['a / b'],
      2,
      "switchboard eval: syntax error at column 3: unsupported operator '/': CEXL has == != && || + < <= > >= and the default operator |",
    ],
    [
      ['request.path == 1'],
      2,
      'switchboard eval: type error at column 14: both sides of == must have the same type, got STRING and INT64',
    ],
    [
      ['source.name'],
      1,
      `switchboard eval: evaluation error at column 1: attribute 'source.name' is absent; give a default with |, as in source.name | "unknown"`,
    ],
    [
      ['ip("300.1.1.1")'],
      1,
      "switchboard eval: evaluation error at column 1: could not convert '300.1.1.1' to IP_ADDRESS",
    ],
    [
      [],
      2,
      "switchboard eval: expected exactly one expression, got 0; usage: switchboard eval '<expression>' [--attributes FILE.json]",
    ],
    [
      ['a', 'b'],
      2,
      "switchboard eval: expected exactly one expression, got 2; usage: switchboard eval '<expression>' [--attributes FILE.json]",
    ],
    [
      ['1', '--nope'],
      2,
      "switchboard eval: Unknown option '--nope'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- \"--nope\"; usage: switchboard eval '<expression>' [--attributes FILE.json]",
    ],
    [
      ['1', '--attributes', '/nonexistent/attrs.json'],
      2,
      'switchboard eval: cannot read attributes file /nonexistent/attrs.json: ENOENT',
    ],
  ];
  for (const [args, status, message] of failures) {
    it(`exits ${status} for ${JSON.stringify(args)}`, async () => {
      const r = await run(...args);
      assert.deepEqual(r, { status, out: [], err: [message] });
    });
  }

  it('names the attribute whose value has the wrong type', async () => {
    const bad = attributesFile('{"destination.port": "eighty"}');
    const r = await run('destination.port', '--attributes', bad);
    assert.equal(r.status, 2);
    assert.deepEqual(r.err, [
      `switchboard eval: ${bad}: attribute 'destination.port' is INT64 and needs an integer (a string of digits beyond 2^53), got "eighty"`,
    ]);
  });

  it('refuses an attributes file that is not JSON', async () => {
    const bad = attributesFile('{"a": ');
    const r = await run('1', '--attributes', bad);
    assert.equal(r.status, 2);
    assert.match(r.err[0]!, new RegExp(`^switchboard eval: ${bad}: .*JSON`));
  });

  it('works through the installed bin, with its exit statuses', () => {
    const ok = spawnSync(process.execPath, [BIN, 'eval', 'request.headers["x-user"] | "anon"'], {
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, '{"type":"STRING","value":"anon"}\n');
    const evalError = spawnSync(process.execPath, [BIN, 'eval', 'source.name'], {
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(evalError.status, 1);
    assert.equal(evalError.stderr.split('\n').length, 2, 'one line on stderr');
    const typeError = spawnSync(process.execPath, [BIN, 'eval', 'source.name == 1'], {
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(typeError.status, 2);
    assert.match(typeError.stderr, /^switchboard eval: type error at column 13: /);
  });
});
