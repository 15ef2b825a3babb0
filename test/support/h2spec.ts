/**
 * Runs h2spec (github.com/summerwind/h2spec: 145 cases of RFC 7540 and RFC 7541) against a
 * server on loopback and reads its JUnit report, for the HTTP/2 conformance tests.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';

const H2SPEC = path.join(homedir(), '.cache', 'switchboard', 'h2spec', 'bin', 'h2spec');

/** A case's outcome: passed, or what h2spec saw instead. */
export type Outcome = { readonly passed: true } | { readonly passed: false; readonly detail: string };

/** Per case ("http2/6.9.1/2"), its outcome, from h2spec's JUnit report. */
export async function runH2spec(
  port: number,
  dir: string,
  name: string,
  requestPath = '/',
): Promise<Map<string, Outcome>> {
  if (!existsSync(H2SPEC)) {
    throw new Error(`h2spec is not installed at ${H2SPEC}; run: bash scripts/install-h2spec.sh`);
  }
  const report = path.join(dir, `${name}.xml`);
  const child = spawn(
    H2SPEC,
    ['-h', '127.0.0.1', '-p', String(port), '-P', requestPath, '-o', '2', '-j', report],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve) => child.on('exit', () => resolve()));
  if (!existsSync(report)) throw new Error(`h2spec wrote no report against ${name}: ${stderr}`);
  const results = new Map<string, Outcome>();
  // <testsuite name="…" package="6.9.1" …> <testcase package="6.9.1" classname="…" …> [<failure>|<error>]
  const xml = readFileSync(report, 'utf8');
  for (const suite of xml.matchAll(/<testsuite\b[^>]*\bpackage="([^"]*)"[^>]*>([\s\S]*?)<\/testsuite>/g)) {
    let n = 0;
    for (const testcase of suite[2]!.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
      n++;
      const body = testcase[2] ?? '';
      const failed = /<(failure|error|skipped)\b/.test(body);
      results.set(
        `${suite[1]}/${n}`,
        failed ? { passed: false, detail: body.replace(/\s+/g, ' ') } : { passed: true },
      );
    }
  }
  return results;
}
