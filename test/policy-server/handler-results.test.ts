/**
 * What check handlers may add to a decision beyond status and validity: header operations
 * (the RouteDirective), and attributes read from the whole request through
 * CallContext.attributes, which become referenced attributes like the reads of instance
 * expressions.
 */
import { strict as assert } from 'node:assert';
import { AdapterRegistry, defineAdapter, s } from '../../adapters';
import { createScenario } from '../../policy-server';
import { OK_STATUS, type CallContext, type CheckResult } from '../../templates';

const seenAttributes: Array<boolean> = [];

const STAMP = defineAdapter({
  name: 'stamp',
  description: 'adds a header naming itself, and reads one attribute from the request',
  templates: ['checknothing', 'logentry'],
  config: s.object({ read: s.string().default('') }),
  build(config, env) {
    return {
      handleCheckNothing(_instance: unknown, context: CallContext): CheckResult {
        const value = config.read === '' ? undefined : context.attributes?.get(config.read);
        return {
          status: OK_STATUS,
          validDurationMs: 1000,
          validUseCount: 10,
          requestHeaderOperations: [{ name: 'x-by', value: env.handlerName, operation: 'APPEND' }],
          responseHeaderOperations: [{ name: 'x-read', value: String(value), operation: 'REPLACE' }],
        };
      },
      handleLogEntry(_instances: unknown[], context: CallContext): void {
        seenAttributes.push(context.attributes !== undefined);
      },
      close: async () => undefined,
    };
  },
});

const CONFIG = `apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: first, namespace: istio-system }
spec: { compiledAdapter: stamp, params: { read: source.uid } }
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: second, namespace: istio-system }
spec: { compiledAdapter: stamp, params: { read: request.size } }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: nothing, namespace: istio-system }
spec: { compiledTemplate: checknothing }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: entry, namespace: istio-system }
spec: { compiledTemplate: logentry, params: { severity: '"info"' } }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: a, namespace: istio-system }
spec:
  actions: [ { handler: first, instances: [nothing, entry] } ]
  requestHeaderOperations: [ { name: x-rule, values: [ '"a"' ] } ]
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: b, namespace: istio-system }
spec:
  actions: [ { handler: second, instances: [nothing] } ]
`;

describe('policy-server: what check handlers add to a decision', () => {
  it("header operations come after the rules' own, in rule order; reads of the request are referenced", async () => {
    const scenario = await createScenario(
      { 'c.yaml': CONFIG },
      { registry: new AdapterRegistry().register(STAMP) },
    );
    try {
      const outcome = await scenario.check({ 'source.uid': 'u1', 'request.path': '/' });
      assert.deepEqual(outcome.requestHeaderOperations, [
        { name: 'x-rule', value: 'a', operation: 'REPLACE' },
        { name: 'x-by', value: 'first.handler.istio-system', operation: 'APPEND' },
        { name: 'x-by', value: 'second.handler.istio-system', operation: 'APPEND' },
      ]);
      assert.deepEqual(outcome.responseHeaderOperations, [
        { name: 'x-read', value: 'u1', operation: 'REPLACE' },
        { name: 'x-read', value: 'undefined', operation: 'REPLACE' },
      ]);
      // What the handlers read, present or absent; request.path was never read.
      assert.deepEqual(outcome.references.toStrings(), ['-request.size', 'source.uid']);
      seenAttributes.length = 0;
      await scenario.report({ 'source.uid': 'u1' });
      assert.deepEqual(seenAttributes, [false], 'report calls get no attributes');
    } finally {
      await scenario.close();
    }
  });
});
