/**
 * The demo mesh end to end, as `npm start` runs it (the compiled CLI in a child process, on
 * free ports): every step of the traffic script gets the outcome its rule gives, nothing is
 * lost on the way to the access log, and Ctrl-C stops a mesh that keeps running.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startCli, stopAllCli } from '../support/cli-process';

describe('demo: the mesh npm start runs', function () {
  this.timeout(90_000);
  let runDir: string;
  beforeEach(() => {
    runDir = mkdtempSync(path.join(tmpdir(), 'switchboard-demo-test-'));
  });
  afterEach(async () => {
    stopAllCli();
    rmSync(runDir, { recursive: true, force: true });
  });

  it('prints each request with the rule that decided, reports every request, and stops by itself', async () => {
    const cli = startCli(['demo', '--free-ports', '--run-dir', runDir]);
    const { code } = await cli.finished;
    const out = cli.stdout();
    assert.equal(code, 0, `${out}\n${cli.stderr()}`);
    const outcome = (say: string): string => {
      const at = out.indexOf(say);
      assert.ok(at >= 0, `no step "${say}" in:\n${out}`);
      return out.slice(at).split('\n')[1]!.trim();
    };
    assert.equal(outcome('alice (admin) opens the shop'), '→ 200 allowed');
    assert.equal(outcome('bob (reviewer) posts a review'), '→ 201 allowed');
    assert.equal(outcome('carol (reader) posts a review'), '→ 403 denied by rule catalog-rbac');
    assert.equal(outcome('mallory (blocked) opens the shop'), '→ 403 denied by rule blocked-users');
    assert.equal(outcome('alice asks the catalog to reindex'), '→ 403 denied by rule catalog-admin');
    // 5 per second per user: a burst of 12 is cut, whichever second boundary it straddles.
    const burst = /→ (\d+)× allowed, (\d+)× rate limited by quota requestcount/.exec(
      outcome('dave (staff) sends 12 requests at once'),
    );
    assert.ok(burst !== null, out);
    assert.equal(Number(burst[1]) + Number(burst[2]), 12);
    assert.ok(Number(burst[1]) >= 5 && Number(burst[1]) <= 10, `allowed ${burst[1]}`);
    assert.equal(outcome('alice opens the shop 10 more times'), '→ 10× allowed');
    assert.match(out, /Demo stopped/);

    // Where to look is printed; every proxy reported everything and dropped nothing.
    assert.match(out, /admin http:\/\/127\.0\.0\.1:\d+\/stats/);
    const sent = [...out.matchAll(/reports sent (\d+), dropped (\d+)/g)];
    assert.equal(sent.length, 4, out);
    for (const [, , dropped] of sent) assert.equal(dropped, '0');
    const reported = sent.reduce((sum, [, n]) => sum + Number(n), 0);
    const records = readFileSync(path.join(runDir, 'access.log'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(records.length, reported);
    // 28 requests reach the frontend's inbound proxy, each reported by it with its outcome.
    const atFrontend = records.filter((r) => r['reporter'] === 'inbound' && r['destination'] === 'frontend');
    assert.equal(atFrontend.length, 28);
    const codes = atFrontend.map((r) => r['responseCode']);
    assert.equal(codes.filter((c) => c === 403).length, 3);
    assert.equal(codes.filter((c) => c === 429).length, Number(burst[2]));
    assert.ok(
      atFrontend.some((r) => r['checkCacheHit'] === true),
      'some decisions came from the cache',
    );
    assert.ok(atFrontend.every((r) => r['user'] !== '' && r['path'] !== ''));
  });

  it('keeps running when asked, and stops cleanly on SIGINT', async () => {
    const cli = startCli(['demo', '--free-ports', '--keep-running', '--run-dir', runDir]);
    await cli.line('stdout', /Ctrl-C stops/);
    // The places it says to look answer while it runs.
    const [, serverStats] = await cli.line('stdout', /policy server .* admin (http:\/\/\S+\/stats)/);
    const [, proxyStats] = await cli.line('stdout', /frontend-inbound +admin (http:\/\/\S+\/stats)/);
    const server = (await (await fetch(serverStats!)).json()) as { dispatcher: { checks: number } };
    assert.ok(server.dispatcher.checks > 0);
    const proxy = (await (await fetch(proxyStats!)).json()) as {
      policy: { reportsSent: number; cacheHits: number };
    };
    assert.ok(proxy.policy.reportsSent >= 28 && proxy.policy.cacheHits > 0, JSON.stringify(proxy.policy));
    const [, frontend] = await cli.line('stdout', /curl -H 'x-user: bob' (http:\/\/\S+)/);
    const mine = await fetch(frontend!, { headers: { 'x-user': 'bob' } });
    assert.equal(mine.status, 200);
    assert.match(await mine.text(), /^shop: lamp/);
    process.kill(cli.pid, 'SIGINT');
    const { code } = await cli.finished;
    assert.equal(code, 0, cli.stderr());
    assert.match(cli.stdout(), /SIGINT received: stopping the demo mesh/);
    assert.match(cli.stdout(), /Demo stopped/);
  });
});
