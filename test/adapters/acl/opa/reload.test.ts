/**
 * Hot reload of a handler's own files: Rego changes recompile and swap, data-only changes
 * use setData, a bad change is refused with its file and line while the old policy keeps
 * deciding — and under a real server with Checks in flight, no Check fails meanwhile.
 */
import { strict as assert } from 'node:assert';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@grpc/grpc-js';
import type { OpaStats } from '../../../../adapters/acl/opa';
import { AttributeBag, encodeCheckRequest } from '../../../../attributes';
import {
  createPolicyServer,
  createScenario,
  type PolicyServer,
  type Scenario,
} from '../../../../policy-server';
import { mixer } from '../../../../proto';
import { StatusCode } from '../../../../templates';
import { callUnary, createRawClient } from '../../../support/raw-grpc-client';
import { eventually, opaConfig, RBAC_DIR, requireOpaCompiler, TempDirs } from '../../../support/opa';

const HANDLER = 'authz.handler.istio-system';

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

function stats(scenario: Scenario): OpaStats {
  const handlers = (
    scenario.dispatcher as unknown as { handlers: ReadonlyMap<string, { stats(): OpaStats }> }
  ).handlers;
  return handlers.get(HANDLER)!.stats();
}

describe('adapters/acl/opa: hot reload', function () {
  this.timeout(60_000);
  const temp = new TempDirs();
  const scenarios: Scenario[] = [];
  const servers: PolicyServer[] = [];
  const clients: Client[] = [];

  before(() => {
    requireOpaCompiler();
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await Promise.all(scenarios.splice(0).map((s) => s.close()));
    temp.removeAll();
  });

  /** A copy of the RBAC example in a folder of its own. */
  function rbacCopy(): string {
    const dir = temp.make();
    for (const file of ['rbac.rego', 'data.json'])
      copyFileSync(path.join(RBAC_DIR, file), path.join(dir, file));
    return dir;
  }

  const carolPosts = {
    'request.headers': { 'x-user': 'carol' },
    'request.method': 'POST',
    'request.path': '/api/reviews/1',
  };

  it('a data-only change is applied with setData, without recompiling', async () => {
    const dir = rbacCopy();
    const s = await createScenario({
      'rbac.yaml': opaConfig({ policyDir: dir, checkMethod: 'data.rbac.decision' }),
    });
    scenarios.push(s);
    assert.equal((await s.check(carolPosts)).status.code, StatusCode.PERMISSION_DENIED);
    const revision = stats(s).revision;
    const data = JSON.parse(readFileSync(path.join(dir, 'data.json'), 'utf8')) as {
      bindings: { users: Record<string, string[]> };
    };
    data.bindings.users.carol = ['reader', 'reviewer'];
    writeFileSync(path.join(dir, 'data.json'), JSON.stringify(data));
    await eventually('carol may post', async () => (await s.check(carolPosts)).status.code === StatusCode.OK);
    const st = stats(s);
    assert.deepEqual([st.dataUpdates, st.reloads, st.revision], [1, 0, revision]);
    assert.ok(
      s.log.includes(`info: opa/${HANDLER}: data updated; revision ${revision} keeps deciding`),
      s.log.join('\n'),
    );
  });

  it('a Rego change recompiles and swaps; a bad one is refused with its file and line, and the old policy keeps deciding', async () => {
    const dir = rbacCopy();
    const rego = path.join(dir, 'rbac.rego');
    const s = await createScenario({
      'rbac.yaml': opaConfig({ policyDir: dir, checkMethod: 'data.rbac.decision' }),
    });
    scenarios.push(s);
    const first = stats(s).revision;
    const original = readFileSync(rego, 'utf8');
    writeFileSync(rego, original.replace('"%s may not %s %s"', '"refused: %s may not %s %s"'));
    await eventually(
      'the new reason',
      async () =>
        (await s.check(carolPosts)).status.message ===
        `${HANDLER}:refused: carol may not POST /api/reviews/1`,
    );
    const second = stats(s);
    assert.equal(second.reloads, 1);
    assert.notEqual(second.revision, first);
    assert.ok(
      s.log.includes(`info: opa/${HANDLER}: policy reloaded: revision ${second.revision} replaces ${first}`),
    );

    // Break the `default allow` line.
    const lines = readFileSync(rego, 'utf8').split('\n');
    const broken = lines.indexOf('default allow := false');
    assert.ok(broken > 0);
    lines[broken] = 'default allow := ';
    writeFileSync(rego, lines.join('\n'));
    await eventually('the refusal', () => stats(s).failedReloads === 1);
    const refused = stats(s);
    assert.match(
      refused.lastReloadError!,
      new RegExp(`^the policy does not compile: ${escape(rego)}:${broken + 1}:1: rego_parse_error: `),
    );
    assert.equal(refused.revision, second.revision);
    assert.ok(
      s.log.some((l) =>
        l.startsWith(
          `error: opa/${HANDLER}: policy change refused, revision ${second.revision} keeps deciding: the policy does not compile: ${rego}:`,
        ),
      ),
      s.log.join('\n'),
    );
    // The old policy still decides, reason and all.
    const outcome = await s.check(carolPosts);
    assert.equal(outcome.status.message, `${HANDLER}:refused: carol may not POST /api/reviews/1`);

    writeFileSync(rego, original);
    await eventually(
      'the repaired policy',
      async () =>
        (await s.check(carolPosts)).status.message === `${HANDLER}:carol may not POST /api/reviews/1`,
    );
    assert.equal(stats(s).lastReloadError, undefined);
    assert.equal(stats(s).reloads, 2);
  });

  it('under continuous Checks on a real server, recompiling on each change fails no Check', async () => {
    const root = temp.make();
    const configDir = path.join(root, 'config');
    const policyDir = path.join(root, 'policy');
    mkdirSync(configDir);
    mkdirSync(policyDir);
    const rego = path.join(policyDir, 'load.rego');
    const version = (v: number) => `package load
import rego.v1
decision := {"allow": true, "headers": {"response": {"x-policy": "v${v}"}}} if input.action.method == "GET"
decision := {"allow": false, "reason": "v${v} refuses"} if input.action.method != "GET"
`;
    writeFileSync(rego, version(1));
    writeFileSync(
      path.join(configDir, 'authz.yaml'),
      opaConfig({ policyDir: '../policy', checkMethod: 'data.load.decision' }),
    );
    const server = createPolicyServer({
      address: '127.0.0.1:0',
      configDir,
      logger: { error: () => undefined },
    });
    servers.push(server);
    const listening = await server.start();
    const client = createRawClient(listening.address);
    clients.push(client);

    const requests = {
      GET: encodeCheckRequest({ attributes: new AttributeBag([['request.method', 'GET']]) }),
      POST: encodeCheckRequest({ attributes: new AttributeBag([['request.method', 'POST']]) }),
    };
    let written = 1;
    const problems: string[] = [];
    const seen = new Set<number>();
    let calls = 0;
    let running = true;
    const loop = async (worker: number): Promise<void> => {
      let last = 1;
      for (let i = 0; running; i++) {
        const method = (worker + i) % 4 === 0 ? 'POST' : 'GET';
        const result = await callUnary(client, '/istio.mixer.v1.Mixer/Check', requests[method], (b) =>
          mixer.CheckResponse.decode(b),
        );
        calls++;
        if (!result.ok) {
          problems.push(`${method}: call failed: ${result.error.code} ${result.error.details}`);
          continue;
        }
        const precondition = result.response.precondition!;
        const code = precondition.status?.code ?? 0;
        const message = precondition.status?.message ?? '';
        let v: number;
        if (method === 'GET') {
          const stamps = (precondition.routeDirective?.responseHeaderOperations ?? []).filter(
            (op) => op.name === 'x-policy',
          );
          v = Number(/^v(\d+)$/.exec(stamps[0]?.value ?? '')?.[1]);
          if (code !== 0 || stamps.length !== 1)
            problems.push(`GET answered ${code} "${message}" with ${JSON.stringify(stamps)}`);
        } else {
          v = Number(/^authz\.handler\.istio-system:v(\d+) refuses$/.exec(message)?.[1]);
          if (code !== StatusCode.PERMISSION_DENIED) problems.push(`POST answered ${code} "${message}"`);
        }
        if (!(v >= last && v <= written))
          problems.push(`${method}: v${v} after v${last}, v${written} written`);
        else {
          last = v;
          seen.add(v);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, (_, worker) => loop(worker)));
    try {
      for (let v = 2; v <= 6; v++) {
        if (v === 4) {
          // A broken version in between: refused; v3 keeps deciding.
          writeFileSync(
            rego,
            version(v).replace('if input.action.method == "GET"', 'if input.action.method =='),
          );
          await new Promise((resolve) => setTimeout(resolve, 400));
          continue;
        }
        written = v;
        writeFileSync(rego, version(v));
        await eventually(`v${v} decides`, () => seen.has(v), 20_000);
      }
    } finally {
      running = false;
      await load;
    }
    assert.deepEqual(problems, []);
    assert.ok(calls > 100, `only ${calls} calls`);
    assert.ok(!seen.has(4), 'the broken version never decided');
    for (const v of [2, 3, 5, 6]) assert.ok(seen.has(v), `v${v} decided`);
    const handlers = server.runtime!.handlerStats() as Record<string, OpaStats>;
    assert.equal(handlers[HANDLER]!.reloads, 4);
    assert.ok(handlers[HANDLER]!.failedReloads >= 1);
  });
});
