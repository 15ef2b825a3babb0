/**
 * Istio's published Mixer samples (istio/istio a6eefdf7: samples/bookinfo/policy,
 * samples/bookinfo/telemetry, samples/sleep), each kept unchanged but for comments under
 * test/fixtures/istio-samples/<sample>/, loaded and run through the scenario harness to
 * show that each decides as Istio's documentation says it does.
 *
 * Attributes that Istio's kubernetesenv adapter added (source.labels, destination.labels…)
 * are given directly in each call. Where Mixer's messages named a handler
 * `name.kind.namespace`, ours do too; the samples give no namespace, so their resources
 * are in the default namespace, istio-system.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import {
  AdapterRegistry,
  BUILTIN_ADAPTERS,
  createBuiltinRegistry,
  defineAdapter,
  s,
  type AdapterInfo,
} from '../../adapters';
import { createStdioHandler, type StdioConfig } from '../../adapters/logging/stdio';
import {
  buildRuntimeConfig,
  createScenario,
  formatConfigError,
  loadConfigDirectory,
  type CheckOutcome,
  type Scenario,
  type ScenarioAttributes,
  type ScenarioOptions,
} from '../../policy-server';
import { StatusCode, type MetricInstance } from '../../templates';

// Compiled to dist/test/policy-server/; fixtures stay in the source tree.
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const SAMPLES = path.join(REPO_ROOT, 'test', 'fixtures', 'istio-samples');

/** The YAML files of a sample folder, by file name. */
function sampleFiles(sample: string): Record<string, string> {
  const dir = path.join(SAMPLES, sample);
  return Object.fromEntries(
    readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => [`${sample}/${f}`, readFileSync(path.join(dir, f), 'utf8')]),
  );
}

/** What a Check answered, in the terms Istio's documentation uses. */
function decision(outcome: CheckOutcome): { code: number; message: string } {
  return { code: outcome.status.code, message: outcome.status.message };
}

const ALLOWED = { code: StatusCode.OK, message: '' };
const denied = (message: string) => ({ code: StatusCode.PERMISSION_DENIED, message });

/** A Writable that keeps what is written, for the stdio adapter's lines. */
function lineSink(): { stream: Writable; lines: () => string[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { stream, lines: () => text.split('\n').filter((l) => l !== '') };
}

/** The built-in adapters, with stdio writing to `stream` instead of the process's stdout. */
function registryWithStdioTo(stream: Writable): AdapterRegistry {
  const registry = new AdapterRegistry();
  for (const adapter of BUILTIN_ADAPTERS) {
    if (adapter.name !== 'stdio') {
      registry.register(adapter);
      continue;
    }
    const captured: AdapterInfo<StdioConfig> = {
      ...(adapter as AdapterInfo<StdioConfig>),
      build: (config, env) => createStdioHandler(config, env, { stream }),
    };
    registry.register(captured);
  }
  return registry;
}

describe('Istio samples', () => {
  let scenario: Scenario | undefined;
  const start = async (samples: string[], options: ScenarioOptions = {}): Promise<Scenario> => {
    scenario = await createScenario(Object.assign({}, ...samples.map(sampleFiles)), options);
    return scenario;
  };
  const check = async (attributes: ScenarioAttributes): Promise<{ code: number; message: string }> =>
    decision(await scenario!.check(attributes));
  afterEach(async () => {
    await scenario?.close();
    scenario = undefined;
  });

  describe('every sample loads as switchboard validate loads a directory', () => {
    const folders = readdirSync(SAMPLES, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    for (const folder of folders) {
      it(folder, async () => {
        const snapshot = await loadConfigDirectory(path.join(SAMPLES, folder));
        const built = buildRuntimeConfig(snapshot.resources, createBuiltinRegistry());
        assert.deepEqual(built.ok ? [] : built.errors.map(formatConfigError), []);
      });
    }
  });

  // Istio's "Denials" task: with the rule applied, reviews v3 can no longer reach ratings
  // (the page shows "Ratings service is currently unavailable" for v3 only).
  for (const { sample, handler } of [
    { sample: 'bookinfo-deny-label', handler: 'denyreviewsv3handler.handler.istio-system' },
    { sample: 'bookinfo-deny-label-crd', handler: 'denyreviewsv3handler.denier.istio-system' },
  ]) {
    describe(`${sample}: reviews v3 may not call ratings`, () => {
      beforeEach(() => start([sample]));

      it('refuses reviews v3 → ratings with PERMISSION_DENIED "Not allowed", cacheable as the denier says', async () => {
        const outcome = await scenario!.check({
          'source.labels': { app: 'reviews', version: 'v3' },
          'destination.labels': { app: 'ratings', version: 'v1' },
        });
        assert.deepEqual(decision(outcome), denied(`${handler}:Not allowed`));
        // The denier's defaults, as Mixer's: 5s and 1000 uses.
        assert.equal(outcome.validDurationMs, 5000);
        assert.equal(outcome.validUseCount, 1000);
      });

      it('lets reviews v1 and v2 call ratings, and reviews v3 call anything else', async () => {
        for (const version of ['v1', 'v2']) {
          assert.deepEqual(
            await check({
              'source.labels': { app: 'reviews', version },
              'destination.labels': { app: 'ratings' },
            }),
            ALLOWED,
          );
        }
        assert.deepEqual(
          await check({
            'source.labels': { app: 'reviews', version: 'v3' },
            'destination.labels': { app: 'details' },
          }),
          ALLOWED,
        );
      });

      it('does not apply when the labels are absent (the match cannot be evaluated)', async () => {
        assert.deepEqual(await check({ 'destination.labels': { app: 'ratings' } }), ALLOWED);
        assert.deepEqual(await check({}), ALLOWED);
      });
    });
  }

  describe("bookinfo-deny-serviceaccount: details refuses productpage's service account", () => {
    beforeEach(() => start(['bookinfo-deny-serviceaccount']));
    const productpage = 'cluster.local/ns/default/sa/bookinfo-productpage';

    it('refuses productpage → details', async () => {
      assert.deepEqual(
        await check({ 'source.user': productpage, 'destination.labels': { app: 'details' } }),
        denied('denyproductpagehandler.handler.istio-system:Not allowed'),
      );
    });

    it('lets productpage call reviews, and other accounts call details', async () => {
      assert.deepEqual(
        await check({ 'source.user': productpage, 'destination.labels': { app: 'reviews' } }),
        ALLOWED,
      );
      assert.deepEqual(
        await check({
          'source.user': 'cluster.local/ns/default/sa/bookinfo-reviews',
          'destination.labels': { app: 'details' },
        }),
        ALLOWED,
      );
    });
  });

  // Istio's "IP-based whitelists or blacklists" task: through the ingress gateway, only
  // 10.57.0.0/16 gets in; the others get PERMISSION_DENIED "<ip> is not whitelisted".
  for (const { sample, handler } of [
    { sample: 'bookinfo-deny-ip', handler: 'whitelistip.handler.istio-system' },
    { sample: 'bookinfo-deny-ip-crd', handler: 'whitelistip.listchecker.istio-system' },
  ]) {
    describe(`${sample}: the ingress gateway admits 10.57.0.0/16 only`, () => {
      beforeEach(() => start([sample]));
      const viaIngress = { 'source.labels': { istio: 'ingressgateway' } };

      it('admits an address in the range', async () => {
        for (const ip of ['10.57.0.1', '10.57.255.254']) {
          assert.deepEqual(await check({ ...viaIngress, 'source.ip': ip }), ALLOWED);
        }
      });

      it('refuses an address outside it, naming the address', async () => {
        assert.deepEqual(
          await check({ ...viaIngress, 'source.ip': '10.58.0.1' }),
          denied(`${handler}:10.58.0.1 is not whitelisted`),
        );
      });

      it('refuses a request without source.ip as 0.0.0.0, the default the instance gives', async () => {
        assert.deepEqual(await check(viaIngress), denied(`${handler}:0.0.0.0 is not whitelisted`));
      });

      it('does not apply to traffic that does not come through the gateway', async () => {
        assert.deepEqual(
          await check({ 'source.labels': { app: 'productpage' }, 'source.ip': '10.58.0.1' }),
          ALLOWED,
        );
      });
    });
  }

  // Istio's "Attribute-based whitelists or blacklists" task: ratings answers v1 and v2
  // callers; v3 gets PERMISSION_DENIED "v3 is not whitelisted".
  for (const { sample, handler } of [
    { sample: 'bookinfo-deny-whitelist', handler: 'whitelist.handler.istio-system' },
    { sample: 'bookinfo-deny-whitelist-crd', handler: 'whitelist.listchecker.istio-system' },
  ]) {
    describe(`${sample}: only versions v1 and v2 may call ratings`, () => {
      beforeEach(() => start([sample]));

      it('lets v1 and v2 call ratings', async () => {
        for (const version of ['v1', 'v2']) {
          assert.deepEqual(
            await check({
              'source.labels': { app: 'reviews', version },
              'destination.labels': { app: 'ratings' },
            }),
            ALLOWED,
          );
        }
      });

      it('refuses v3, naming the version', async () => {
        assert.deepEqual(
          await check({
            'source.labels': { app: 'reviews', version: 'v3' },
            'destination.labels': { app: 'ratings' },
          }),
          denied(`${handler}:v3 is not whitelisted`),
        );
      });

      it('does not apply to other destinations', async () => {
        assert.deepEqual(
          await check({
            'source.labels': { app: 'reviews', version: 'v3' },
            'destination.labels': { app: 'details' },
          }),
          ALLOWED,
        );
      });
    });
  }

  describe('bookinfo-ingress-denial: john is refused at the ingress gateway', () => {
    beforeEach(() => start(['bookinfo-ingress-denial']));

    it('refuses john through the gateway', async () => {
      assert.deepEqual(
        await check({
          'source.labels': { istio: 'ingressgateway' },
          'request.headers': { 'x-user': 'john' },
        }),
        denied('handler.handler.istio-system:Not allowed'),
      );
    });

    it('lets other users through the gateway, and john elsewhere', async () => {
      assert.deepEqual(
        await check({
          'source.labels': { istio: 'ingressgateway' },
          'request.headers': { 'x-user': 'jason' },
        }),
        ALLOWED,
      );
      assert.deepEqual(
        await check({ 'source.labels': { app: 'productpage' }, 'request.headers': { 'x-user': 'john' } }),
        ALLOWED,
      );
      // Both lookups have defaults, so a request with neither map is decided, not skipped.
      assert.deepEqual(await check({}), ALLOWED);
    });
  });

  describe('bookinfo-ratings-denial: every request of john is refused', () => {
    beforeEach(() => start(['bookinfo-ratings-denial']));

    it('refuses john wherever he goes, and no one else', async () => {
      assert.deepEqual(
        await check({ 'request.headers': { 'x-user': 'john' }, 'destination.labels': { app: 'ratings' } }),
        denied('denierhandler.handler.istio-system:Not allowed'),
      );
      assert.deepEqual(
        await check({ 'request.headers': { 'x-user': 'john' } }),
        denied('denierhandler.handler.istio-system:Not allowed'),
      );
      assert.deepEqual(await check({ 'request.headers': { 'x-user': 'jason' } }), ALLOWED);
      assert.deepEqual(await check({}), ALLOWED);
    });
  });

  describe('sleep-sni-wikipedia: the egress gateway refuses en.wikipedia.org', () => {
    beforeEach(() => start(['sleep-sni-wikipedia']));
    const egress = (host: string) => ({
      'source.labels': { app: 'istio-egressgateway-with-sni-proxy' },
      'destination.labels': {},
      'connection.requested_server_name': host,
    });

    it('refuses en.wikipedia.org and lets the other sites through', async () => {
      assert.deepEqual(
        await check(egress('en.wikipedia.org')),
        denied('wikipedia-checker.handler.istio-system:en.wikipedia.org is blacklisted'),
      );
      assert.deepEqual(await check(egress('de.wikipedia.org')), ALLOWED);
    });

    it('does not apply to a destination with an app label (traffic inside the mesh)', async () => {
      assert.deepEqual(
        await check({ ...egress('en.wikipedia.org'), 'destination.labels': { app: 'ratings' } }),
        ALLOWED,
      );
    });
  });

  describe('sleep-sni-serviceaccount: each account has its own list of sites', () => {
    beforeEach(() => start(['sleep-sni-serviceaccount']));
    const egress = (account: string, host: string) => ({
      'source.labels': { app: 'istio-egressgateway-with-sni-proxy' },
      'destination.labels': {},
      'source.principal': `cluster.local/ns/default/sa/${account}`,
      'connection.requested_server_name': host,
    });

    it('lets sleep-us reach en and es, not fr', async () => {
      assert.deepEqual(await check(egress('sleep-us', 'en.wikipedia.org')), ALLOWED);
      assert.deepEqual(await check(egress('sleep-us', 'es.wikipedia.org')), ALLOWED);
      assert.deepEqual(
        await check(egress('sleep-us', 'fr.wikipedia.org')),
        denied('us-wikipedia-checker.handler.istio-system:fr.wikipedia.org is not whitelisted'),
      );
    });

    it('lets sleep-canada reach en and fr, not es', async () => {
      assert.deepEqual(await check(egress('sleep-canada', 'en.wikipedia.org')), ALLOWED);
      assert.deepEqual(await check(egress('sleep-canada', 'fr.wikipedia.org')), ALLOWED);
      assert.deepEqual(
        await check(egress('sleep-canada', 'es.wikipedia.org')),
        denied('canada-wikipedia-checker.handler.istio-system:es.wikipedia.org is not whitelisted'),
      );
    });

    it('leaves other accounts alone', async () => {
      assert.deepEqual(await check(egress('sleep', 'fr.wikipedia.org')), ALLOWED);
    });
  });

  // Istio's "Collecting Logs" task: each request gives one JSON line at level warn, with
  // the instance's variables beside level, time and instance.
  for (const { sample, instance } of [
    { sample: 'bookinfo-log-entry', instance: 'newlog.instance.istio-system' },
    { sample: 'bookinfo-log-entry-crd', instance: 'newlog.logentry.istio-system' },
  ]) {
    describe(`${sample}: every request is logged as a JSON line`, () => {
      it('logs a request from productpage to details at level warn', async () => {
        const sink = lineSink();
        await start([sample], { registry: registryWithStdioTo(sink.stream) });
        const outcome = await scenario!.report({
          'source.labels': { app: 'productpage' },
          'destination.labels': { app: 'details' },
          'request.time': '2018-09-15T20:46:36.009801Z',
          'response.code': 200,
          'response.size': 178,
          'response.duration': '13.601485ms',
        });
        assert.deepEqual(outcome, { status: { code: StatusCode.OK, message: '' }, dispatched: 1 });
        await scenario!.close();
        assert.deepEqual(
          sink.lines().map((l) => JSON.parse(l) as unknown),
          [
            {
              level: 'warn',
              time: '2018-09-15T20:46:36.009801Z',
              instance,
              destination: 'details',
              latency: '13.601485ms',
              responseCode: 200,
              responseSize: 178,
              source: 'productpage',
              user: 'unknown',
            },
          ],
        );
        // Keys in the order Mixer's stdio wrote them.
        assert.match(sink.lines()[0]!, /^\{"level":"warn","time":"[^"]+","instance":"[^"]+","destination":/);
      });

      it('fills the defaults the sample gives when attributes are absent', async () => {
        const sink = lineSink();
        await start([sample], { registry: registryWithStdioTo(sink.stream) });
        await scenario!.report({
          'source.workload.name': 'productpage-v1',
          'request.time': '2018-09-15T20:46:36Z',
        });
        await scenario!.close();
        assert.deepEqual(
          sink.lines().map((l) => JSON.parse(l) as unknown),
          [
            {
              level: 'warn',
              time: '2018-09-15T20:46:36.000000Z',
              instance,
              destination: 'unknown',
              latency: '0s',
              responseCode: 0,
              responseSize: 0,
              source: 'productpage-v1',
              user: 'unknown',
            },
          ],
        );
      });
    });
  }

  describe('sleep-sni-logging: connections opened through the egress gateway are logged', () => {
    it('logs an open at level info, and not a close', async () => {
      const sink = lineSink();
      await start(['sleep-sni-logging'], { registry: registryWithStdioTo(sink.stream) });
      const connection = (event: string) => ({
        'source.labels': { app: 'istio-egressgateway-with-sni-proxy' },
        'source.namespace': 'istio-system',
        'source.principal': 'cluster.local/ns/istio-system/sa/istio-egressgateway-with-sni-proxy',
        'destination.labels': {},
        'connection.event': event,
        'connection.requested_server_name': 'en.wikipedia.org',
        'context.time': '2019-01-02T03:04:05.5Z',
      });
      assert.equal((await scenario!.report(connection('open'))).dispatched, 1);
      assert.equal((await scenario!.report(connection('close'))).dispatched, 0);
      await scenario!.close();
      assert.deepEqual(
        sink.lines().map((l) => JSON.parse(l) as unknown),
        [
          {
            level: 'info',
            time: '2019-01-02T03:04:05.500000Z',
            instance: 'egress-access.instance.istio-system',
            connectionEvent: 'open',
            destinationApp: '',
            requestedServerName: 'en.wikipedia.org',
            source: 'istio-egressgateway-with-sni-proxy',
            sourceNamespace: 'istio-system',
            sourcePrincipal: 'cluster.local/ns/istio-system/sa/istio-egressgateway-with-sni-proxy',
            sourceWorkload: '',
          },
        ],
      );
    });
  });

  describe('bookinfo-kubernetesenv-telemetry: the metric instance, without its prometheus handler', () => {
    it('builds the dimensions from Kubernetes attributes given in the Report', async () => {
      // A stand-in for the prometheus handler the sample names, which Switchboard lacks.
      const metrics: MetricInstance[] = [];
      const capture = defineAdapter({
        name: 'capture',
        description: 'keeps the metrics it is given',
        templates: ['metric'],
        config: s.object({}),
        build: () => ({
          handleMetric: (instances: readonly MetricInstance[]) => void metrics.push(...instances),
          close: async () => undefined,
        }),
      });
      const registry = createBuiltinRegistry().register(capture);
      const standIn = `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: kubeenvhandler, namespace: istio-system }
spec: { compiledAdapter: capture }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: promkubeenv, namespace: istio-system }
spec:
  match: "true"
  actions:
  - handler: kubeenvhandler
    instances: [ kubeenvrequestcount ]
`;
      scenario = await createScenario(
        { ...sampleFiles('bookinfo-kubernetesenv-telemetry'), 'stand-in.yaml': standIn },
        { registry },
      );
      await scenario.report({
        'source.name': 'productpage-v1-6b746f74dc-9stp2',
        'source.owner': 'kubernetes://apis/apps/v1/namespaces/default/deployments/productpage-v1',
        'source.workload.name': 'productpage-v1',
        'destination.name': 'details-v1-5974b67c8-wclz6',
        'destination.workload.name': 'details-v1',
        'destination.container.name': 'details',
        'response.code': 404,
      });
      assert.equal(metrics.length, 1);
      const metric = metrics[0]!;
      assert.equal(metric.name, 'kubeenvrequestcount.instance.istio-system');
      assert.equal(metric.value, 1n);
      assert.equal(metric.monitoredResourceType, 'UNSPECIFIED');
      assert.deepEqual(Object.fromEntries(metric.dimensions), {
        response_code: 404n,
        source_pod: 'productpage-v1-6b746f74dc-9stp2',
        source_workload_uid: 'unknown',
        source_workload: 'productpage-v1',
        source_owner: 'kubernetes://apis/apps/v1/namespaces/default/deployments/productpage-v1',
        destination_pod: 'details-v1-5974b67c8-wclz6',
        destination_workload: 'details-v1',
        destination_workload_uid: 'unknown',
        destination_owner: 'unknown',
        destination_container: 'details',
      });
    });
  });

  describe("istio-attribute-manifests: Istio's own manifests load beside a policy", () => {
    it('still refuses reviews v3 → ratings with the manifests loaded', async () => {
      await start(['istio-attribute-manifests', 'bookinfo-deny-label']);
      assert.deepEqual(
        await check({
          'source.labels': { app: 'reviews', version: 'v3' },
          'destination.labels': { app: 'ratings' },
        }),
        denied('denyreviewsv3handler.handler.istio-system:Not allowed'),
      );
    });
  });

  // Istio's "Enabling Rate Limits" task, with memquota. A proxy asks for the quota its
  // QuotaSpec names (charge 1 per request); the server's clock is the test's.
  describe('rate limits (memquota)', () => {
    const T0 = Date.UTC(2024, 0, 1); // a whole second, so windows start on bucket edges
    let now = T0;
    const clock = () => now;
    beforeEach(() => {
      now = T0;
    });

    let requests = 0;
    /**
     * Asks for one unit of `quota` `times` times, each Check with its own deduplication id
     * as Istio's proxies send them; the granted amounts and status codes.
     */
    const ask = async (quota: string, attributes: ScenarioAttributes, times: number) => {
      const answers: string[] = [];
      for (let i = 0; i < times; i++) {
        const outcome = await scenario!.check(attributes, { [quota]: 1 }, `request-${++requests}`);
        const q = outcome.quotas.get(quota)!;
        answers.push(`${q.grantedAmount}:${q.status.code}`);
      }
      return answers;
    };
    const GRANTED = `1:${StatusCode.OK}`;
    const EXHAUSTED = `0:${StatusCode.RESOURCE_EXHAUSTED}`;
    const times = (n: number, answer: string) => Array.from({ length: n }, () => answer);

    for (const { sample, quota, instance } of [
      {
        sample: 'bookinfo-productpage-ratelimit',
        quota: 'requestcountquota',
        instance: 'requestcountquota.instance.istio-system',
      },
      {
        sample: 'bookinfo-productpage-ratelimit-crd',
        quota: 'requestcount',
        instance: 'requestcount.quota.istio-system',
      },
    ]) {
      describe(`${sample}: productpage 2 per 5s, reviews 1 per 5s, 500 per second otherwise`, () => {
        beforeEach(() => start([sample], { clock }));
        const call = (destination: string, forwardedFor: string) => ({
          'destination.labels': { app: destination },
          'request.headers': { 'x-forwarded-for': forwardedFor },
        });

        it('grants productpage twice in 5s, then answers RESOURCE_EXHAUSTED until the window passes', async () => {
          assert.deepEqual(await ask(quota, call('productpage', '203.0.113.9'), 3), [
            GRANTED,
            GRANTED,
            EXHAUSTED,
          ]);
          const outcome = await scenario!.check(call('productpage', '203.0.113.9'), { [quota]: 1 }, 'again');
          assert.deepEqual(
            outcome.quotas.get(quota)!.status.message,
            `memquota: quota ${instance} is exhausted: asked for 1, 0 left of 2 per 5s (quotas[0].overrides[2])`,
          );
          now += 4900;
          assert.deepEqual(await ask(quota, call('productpage', '203.0.113.9'), 1), [EXHAUSTED]);
          now += 100;
          assert.deepEqual(await ask(quota, call('productpage', '203.0.113.9'), 3), [
            GRANTED,
            GRANTED,
            EXHAUSTED,
          ]);
        });

        it('charges a retried Check once: the same deduplication id gets the first answer', async () => {
          const retried = call('productpage', '203.0.113.9');
          for (let i = 0; i < 3; i++) {
            const outcome = await scenario!.check(retried, { [quota]: 1 }, 'retried');
            assert.equal(outcome.quotas.get(quota)!.grantedAmount, 1n);
          }
          assert.deepEqual(await ask(quota, retried, 2), [GRANTED, EXHAUSTED]);
        });

        it('counts each source apart: another client still gets its two', async () => {
          assert.deepEqual(await ask(quota, call('productpage', '203.0.113.9'), 3), [
            GRANTED,
            GRANTED,
            EXHAUSTED,
          ]);
          assert.deepEqual(await ask(quota, call('productpage', '198.51.100.7'), 3), [
            GRANTED,
            GRANTED,
            EXHAUSTED,
          ]);
        });

        it('grants productpage from 10.28.11.20 500 per second, the more specific override', async () => {
          assert.deepEqual(await ask(quota, call('productpage', '10.28.11.20'), 500), times(500, GRANTED));
          assert.deepEqual(await ask(quota, call('productpage', '10.28.11.20'), 1), [EXHAUSTED]);
          now += 1000;
          assert.deepEqual(await ask(quota, call('productpage', '10.28.11.20'), 1), [GRANTED]);
        });

        it('grants reviews once in 5s', async () => {
          assert.deepEqual(await ask(quota, call('reviews', '203.0.113.9'), 2), [GRANTED, EXHAUSTED]);
          now += 5000;
          assert.deepEqual(await ask(quota, call('reviews', '203.0.113.9'), 2), [GRANTED, EXHAUSTED]);
        });

        it('grants other services 500 per second', async () => {
          assert.deepEqual(await ask(quota, call('details', '203.0.113.9'), 501), [
            ...times(500, GRANTED),
            EXHAUSTED,
          ]);
        });

        it('charges nothing when the proxy asks for no quota, and keeps QuotaSpec and its binding for proxies', async () => {
          for (let i = 0; i < 5; i++) {
            assert.deepEqual(decision(await scenario!.check(call('productpage', '203.0.113.9'))), ALLOWED);
          }
          assert.deepEqual(await ask(quota, call('productpage', '203.0.113.9'), 3), [
            GRANTED,
            GRANTED,
            EXHAUSTED,
          ]);
          assert.deepEqual(
            scenario!.dispatcher.config.proxyResources.map((r) => `${r.kind}/${r.name}`),
            ['QuotaSpec/request-count', 'QuotaSpecBinding/request-count'],
          );
        });
      });
    }

    describe('bookinfo-ratings-ratelimit: reviews → ratings 1 per second, ratings 100 per second', () => {
      beforeEach(() => start(['bookinfo-ratings-ratelimit'], { clock }));
      const call = (source: string, destination: string) => ({
        'source.labels': { app: source, version: 'v1' },
        'destination.labels': { app: destination, version: 'v1' },
      });

      it('grants reviews → ratings once a second', async () => {
        assert.deepEqual(await ask('requestcountquota', call('reviews', 'ratings'), 2), [GRANTED, EXHAUSTED]);
        now += 1000;
        assert.deepEqual(await ask('requestcountquota', call('reviews', 'ratings'), 2), [GRANTED, EXHAUSTED]);
      });

      it('grants other callers of ratings 100 a second', async () => {
        assert.deepEqual(await ask('requestcountquota', call('productpage', 'ratings'), 101), [
          ...times(100, GRANTED),
          EXHAUSTED,
        ]);
      });

      it('grants calls to other services 5000 a second', async () => {
        assert.deepEqual(
          await ask('requestcountquota', call('reviews', 'details'), 1000),
          times(1000, GRANTED),
        );
      });
    });
  });
});
