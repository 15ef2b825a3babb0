import { strict as assert } from 'node:assert';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { AttributeBag } from '../../attributes';
import { createBuiltinRegistry } from '../../adapters';
import { PolicyRuntime } from '../../policy-server';

function denyConfig(message: string): string {
  return `apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: refuse }
spec: { compiledAdapter: denier, params: { status: { code: 7, message: ${JSON.stringify(message)} } } }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: nothing }
spec: { compiledTemplate: checknothing }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: deny }
spec: { actions: [ { handler: refuse, instances: [ nothing ] } ] }
`;
}

/** Waits (bounded) until `predicate` holds. */
async function eventually(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('policy-server: configuration watching', () => {
  let dir: string;
  let runtime: PolicyRuntime | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'switchboard-watch-'));
  });
  afterEach(async () => {
    await runtime?.close();
    runtime = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('reloads every time a file is replaced by rename, as editors and ConfigMap updates do', async () => {
    const file = path.join(dir, 'policy.yaml');
    writeFileSync(file, denyConfig('v1'));
    runtime = new PolicyRuntime({
      configDir: dir,
      registry: createBuiltinRegistry(),
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
      watch: true,
      reloadDelayMs: 20,
      pollIntervalMs: 300,
    });
    await runtime.start();
    const message = async () =>
      (await runtime!.current().dispatcher.check(new AttributeBag(), new Map(), '')).status.message;
    assert.equal(await message(), 'refuse.handler.istio-system:v1');
    for (const version of ['v2', 'v3', 'v4']) {
      const staged = path.join(dir, `.staged-${version}`);
      writeFileSync(staged, denyConfig(version));
      renameSync(staged, file);
      const generation = runtime.currentGeneration;
      await eventually(
        () => runtime!.currentGeneration > generation,
        `a reload after replacing with ${version}`,
      );
      assert.equal(await message(), `refuse.handler.istio-system:${version}`);
    }
  });
});
