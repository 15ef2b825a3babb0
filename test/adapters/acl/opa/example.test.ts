/**
 * The example configuration's OPA rule (examples/config/opa-rbac.yaml) runs a precompiled
 * bundle, so `switchboard server --config examples/config` works without the compiler; the
 * bundle checked in must be what the example's Rego compiles to now.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@grpc/grpc-js';
import { AttributeBag, encodeCheckRequest } from '../../../../attributes';
import { mixer } from '../../../../proto';
import { StatusCode } from '../../../../templates';
import { startCli, stopAllCli } from '../../../support/cli-process';
import { REPO_ROOT, requireOpaCompiler, TempDirs } from '../../../support/opa';
import { callUnary, createRawClient } from '../../../support/raw-grpc-client';

describe('adapters/acl/opa: the example configuration', function () {
  this.timeout(60_000);
  const temp = new TempDirs();
  const clients: Client[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    stopAllCli();
    temp.removeAll();
  });

  it('the checked-in bundle is what examples/opa/rbac compiles to (npm run build:opa-example rebuilds it)', () => {
    requireOpaCompiler();
    const fresh = path.join(temp.make(), 'rbac.tar.gz');
    execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'build-opa-example.sh'), fresh], {
      stdio: 'ignore',
    });
    assert.ok(
      readFileSync(fresh).equals(readFileSync(path.join(REPO_ROOT, 'examples', 'opa', 'rbac.tar.gz'))),
    );
  });

  it('switchboard server --config examples/config decides the api rule without any OPA compiler', async () => {
    const cli = startCli(['server', '--config', 'examples/config', '--address', '127.0.0.1:0'], {
      env: { SWITCHBOARD_OPA: path.join(temp.make(), 'no-opa-here') },
    });
    const [, address] = await cli.line('stdout', /listening on (127\.0\.0\.1:\d+) /);
    const client = createRawClient(address!);
    clients.push(client);
    const check = async (user: string, method: string, requestPath: string) => {
      const request = encodeCheckRequest({
        attributes: new AttributeBag([
          ['destination.labels', new Map([['app', 'api']])],
          ['request.headers', new Map([['x-user', user]])],
          ['request.method', method],
          ['request.path', requestPath],
        ]),
      });
      const result = await callUnary(client, '/istio.mixer.v1.Mixer/Check', request, (b) =>
        mixer.CheckResponse.decode(b),
      );
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      return result.response.precondition!;
    };
    const granted = await check('bob', 'GET', '/api/reviews/1');
    assert.equal(granted.status?.code ?? 0, StatusCode.OK);
    assert.deepEqual(
      granted.routeDirective?.requestHeaderOperations.map((op) => [op.name, op.value]),
      [['x-rbac-roles', 'reader,reviewer']],
    );
    const refused = await check('carol', 'DELETE', '/api/reviews/1');
    assert.equal(refused.status?.code, StatusCode.PERMISSION_DENIED);
    assert.equal(
      refused.status?.message,
      'api-rbac.handler.istio-system:carol may not DELETE /api/reviews/1',
    );
  });
});
