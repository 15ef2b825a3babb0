import { strict as assert } from 'node:assert';
import { AdapterRegistry, defineAdapter, s } from '../../adapters';
import { buildRuntimeConfig, parseConfigFile, type RuntimeConfig } from '../../policy-server';
import { HandlerSet } from '../../policy-server/handler-set';

const events: string[] = [];
let serial = 0;

const COUNTER = defineAdapter({
  name: 'counter',
  description: 'records its lifecycle',
  templates: ['checknothing'],
  config: s.object({ label: s.string(), failBuild: s.boolean().default(false) }),
  build(config, env) {
    if (config.failBuild) throw new Error('cannot reach the backend');
    const id = `${config.label}#${++serial}`;
    events.push(`build ${env.handlerName} ${id}`);
    return {
      id,
      handleCheckNothing: () => ({ status: { code: 0, message: '' }, validDurationMs: 1, validUseCount: 1 }),
      close: async () => {
        events.push(`close ${id}`);
      },
    };
  },
});

function config(handlers: Record<string, string | { label: string; failBuild: boolean }>): RuntimeConfig {
  const yaml = Object.entries(handlers)
    .map(
      ([name, params]) => `apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: ${name} }
spec:
  compiledAdapter: counter
  params: ${JSON.stringify(typeof params === 'string' ? { label: params } : params)}`,
    )
    .join('\n---\n');
  const { resources, errors } = parseConfigFile(yaml, 'handlers.yaml');
  assert.deepEqual(errors, []);
  const built = buildRuntimeConfig(resources, new AdapterRegistry().register(COUNTER));
  if (!built.ok) assert.fail(JSON.stringify(built.errors));
  return built.config;
}

const logger = {
  info: () => undefined,
  warn: () => undefined,
  error: (m: string) => events.push(`error ${m}`),
};

describe("policy-server: handlers' data directories", () => {
  it("gives each handler its own directory under the server's data directory", async () => {
    const seen: string[] = [];
    const RECORDER = defineAdapter({
      name: 'counter',
      description: 'records its data directory',
      templates: ['checknothing'],
      config: s.object({ label: s.string(), failBuild: s.boolean().default(false) }),
      build(_config, env) {
        seen.push(env.dataDir);
        return {
          handleCheckNothing: () => ({
            status: { code: 0, message: '' },
            validDurationMs: 1,
            validUseCount: 1,
          }),
          close: () => Promise.resolve(),
        };
      },
    });
    const yaml = ['a', 'b']
      .map(
        (name) =>
          `apiVersion: config.istio.io/v1alpha2\nkind: handler\nmetadata: { name: ${name}, namespace: ns1 }\nspec:\n  compiledAdapter: counter\n  params: { label: ${name} }`,
      )
      .join('\n---\n');
    const { resources } = parseConfigFile(yaml, 'handlers.yaml');
    const built = buildRuntimeConfig(resources, new AdapterRegistry().register(RECORDER));
    if (!built.ok) assert.fail(JSON.stringify(built.errors));
    const set = new HandlerSet(logger, Date.now, '/srv/switchboard');
    const outcome = await set.prepare(built.config);
    if (!outcome.ok) assert.fail(JSON.stringify(outcome.errors));
    await outcome.prepared.commit()();
    assert.deepEqual(seen.sort(), [
      '/srv/switchboard/handlers/a.handler.ns1',
      '/srv/switchboard/handlers/b.handler.ns1',
    ]);
    await set.close();
  });
});

describe('policy-server: handlers across reloads', () => {
  beforeEach(() => {
    events.length = 0;
    serial = 0;
  });

  it('keeps unchanged handlers, rebuilds changed ones, closes retired ones only when told', async () => {
    const set = new HandlerSet(logger);
    const first = await set.prepare(config({ a: 'one', b: 'two' }));
    assert.ok(first.ok);
    await first.prepared.commit()();
    assert.deepEqual(
      events.sort(),
      ['build a.handler.istio-system one#1', 'build b.handler.istio-system two#2'].sort(),
    );
    events.length = 0;

    const second = await set.prepare(config({ a: 'one', b: 'TWO', c: 'three' }));
    assert.ok(second.ok);
    assert.equal(
      (second.prepared.handlers.get('a.handler.istio-system') as unknown as { id: string }).id,
      (first.prepared.handlers.get('a.handler.istio-system') as unknown as { id: string }).id,
      'a handler whose configuration is unchanged is kept',
    );
    assert.deepEqual(events.sort(), [
      'build b.handler.istio-system TWO#3',
      'build c.handler.istio-system three#4',
    ]);
    const retire = second.prepared.commit();
    assert.ok(
      !events.some((e) => e.startsWith('close')),
      'nothing closes before the retired handlers are released',
    );
    await retire();
    assert.deepEqual(
      events.filter((e) => e.startsWith('close')),
      ['close two#2'],
    );

    await set.close();
    assert.deepEqual(
      events.filter((e) => e.startsWith('close')).sort(),
      ['close TWO#3', 'close one#1', 'close three#4', 'close two#2'].sort(),
    );
    await set.close();
  });

  it('refuses a configuration whose handler cannot be built, closing what it built for it', async () => {
    const set = new HandlerSet(logger);
    const outcome = await set.prepare(config({ a: 'one', b: { label: 'two', failBuild: true } }));
    assert.ok(!outcome.ok);
    assert.deepEqual(
      outcome.errors.map((e) => e.message),
      ['counter: handler b.handler.istio-system could not be built: cannot reach the backend'],
    );
    assert.deepEqual(events, ['build a.handler.istio-system one#1', 'close one#1']);
    await set.close();
  });
});
