/**
 * The capabilities file the compiler gets is generated from the compiler and from the
 * built-ins this process provides: it must match what generating it now gives, or a
 * built-in added to builtins.ts (or a new OPA) would be refused, or a missing one let through.
 */
import { strict as assert } from 'node:assert';
import { PROVIDED_BUILTINS, SDK_BUILTINS } from '../../../../adapters/acl/opa';
import { generateCapabilities } from '../../../../adapters/acl/opa/capabilities';
import { WASM_CAPABILITIES } from '../../../../adapters/acl/opa/capabilities.generated';
import { requireOpaCompiler } from '../../../support/opa';

describe('adapters/acl/opa: the capabilities file', function () {
  this.timeout(60_000);

  it('is what the installed compiler and builtins.ts give now (npm run gen:opa-capabilities regenerates it)', async () => {
    const fresh = await generateCapabilities(requireOpaCompiler());
    assert.deepEqual(WASM_CAPABILITIES, JSON.parse(JSON.stringify(fresh)));
  });

  it('allows every built-in provided in JavaScript, and leaves out those nobody provides', () => {
    const names = new Set(
      (WASM_CAPABILITIES as { builtins: { name: string }[] }).builtins.map((b) => b.name),
    );
    for (const name of [...PROVIDED_BUILTINS, ...SDK_BUILTINS]) assert.ok(names.has(name), name);
    for (const name of ['http.send', 'net.lookup_ip_addr', 'time.format', 'opa.runtime', 'rand.intn']) {
      assert.ok(!names.has(name), name);
    }
    // Compiled into the module itself.
    for (const name of ['regex.match', 'glob.match', 'net.cidr_contains', 'json.unmarshal', 'sprintf']) {
      assert.ok(names.has(name), name);
    }
  });
});
