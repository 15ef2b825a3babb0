import { strict as assert } from 'node:assert';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdapterEnv, createBuiltinRegistry, parseWithSchema } from '../../../../adapters';
import { ELASTICSEARCH, type ElasticsearchParams } from '../../../../adapters/logging/elasticsearch';
import type { ExportHandler } from '../../../../adapters/logging/export';
import {
  AttributeBag,
  Duration,
  FlatStringMap,
  IpAddress,
  Timestamp,
  encodeReportRequest,
} from '../../../../attributes';
import { REPORT_ID_HEADER } from '../../../../policy-server';
import { mixer } from '../../../../proto';
import { startCli, stopAllCli, type Running } from '../../../support/cli-process';
import { ElasticsearchNode, ELASTICSEARCH_START_MS } from '../../../support/elasticsearch-node';
import { callUnary, createRawClient } from '../../../support/raw-grpc-client';
import { MemoryLogger, accessLogInstance, count, dig, documents } from './support';
import { exportConfigYaml } from '../../../support/export-config';

const REPORT = '/istio.mixer.v1.Mixer/Report';
const HASH_KEY = 'a-key-of-at-least-16-characters';

/** A handler of the adapter built as the server builds it, in this process. */
async function buildHandler(
  params: Record<string, unknown>,
): Promise<{ handler: ExportHandler; dataDir: string; close: () => Promise<void> }> {
  const parsed = parseWithSchema(ELASTICSEARCH.config, params);
  assert.ok(parsed.ok, parsed.ok ? '' : JSON.stringify(parsed.problems));
  assert.deepEqual(ELASTICSEARCH.validate!(parsed.value as ElasticsearchParams), []);
  const dataDir = mkdtempSync(join(tmpdir(), 'switchboard-es-handler-'));
  const owned = createAdapterEnv('audit.handler.istio-system', new MemoryLogger(), Date.now, { dataDir });
  const handler = (await ELASTICSEARCH.build(parsed.value, owned.env)) as ExportHandler;
  return {
    handler,
    dataDir,
    close: async () => {
      await handler.close();
      owned.dispose();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

describe('elasticsearch: the adapter into a real node', function () {
  this.timeout(ELASTICSEARCH_START_MS + 240_000);
  let node: ElasticsearchNode;

  before(async () => {
    node = await ElasticsearchNode.start();
    await node.warmUp();
  });
  after(async () => {
    await node?.dispose();
  });
  afterEach(() => stopAllCli());

  it('is registered as elasticsearch, for logentry, metric and tracespan', () => {
    assert.equal(createBuiltinRegistry().get('elasticsearch'), ELASTICSEARCH);
    assert.deepEqual(ELASTICSEARCH.templates, ['logentry', 'metric', 'tracespan']);
  });

  it('stores each record complete, in the schema, with every variable, redacted, in the index of its day', async () => {
    const { handler, close } = await buildHandler({
      urls: [node.url],
      index: 'adapter-{yyyy.MM.dd}',
      template: { replicas: 0 },
      hashKey: HASH_KEY,
      redaction: [
        { field: 'authorization', action: 'MASK' },
        { field: 'x-tenant', action: 'HASH' },
        { field: 'cookie', action: 'DROP' },
      ],
    });
    try {
      const instances = [0, 1, 86_400].map((n) =>
        accessLogInstance(n, {
          requestHeaders: new FlatStringMap([
            'authorization',
            'Bearer s3cret',
            'x-tenant',
            'acme',
            'cookie',
            'c=1',
          ]),
          latency: Duration.fromNanos(1_500_000n),
          userAgent: 'curl/8.5',
        }),
      );
      await handler.handleLogEntry(instances, {
        signal: new AbortController().signal,
        deduplicationId: 'r-1',
      });
      await handler.delivered();
      const stored = [...(await documents(node, 'adapter-*')).entries()];
      assert.equal(stored.length, 3);
      const indices = (await node.call('GET', '/_cat/indices/adapter-*?h=index&format=json')) as {
        index: string;
      }[];
      assert.deepEqual(indices.map((i) => i.index).sort(), ['adapter-2026.11.18', 'adapter-2026.11.19']);
      const [id, first] = stored.find(([, doc]) => (doc['url'] as { path: string }).path === '/reviews/0')!;
      assert.deepEqual(first, {
        '@timestamp': '2026-11-18T11:06:40.123456789Z',
        ecs: { version: '8.11.0' },
        event: {
          id,
          kind: 'event',
          dataset: 'switchboard.accesslog.instance.istio-system',
          duration: 1_500_000,
        },
        log: { level: 'info' },
        source: { ip: '10.1.2.3' },
        destination: { address: 'reviews.default.svc.cluster.local' },
        http: { request: { method: 'GET' }, response: { status_code: 200 } },
        url: { path: '/reviews/0' },
        user_agent: { original: 'curl/8.5' },
        switchboard: {
          source: { principal: 'spiffe://cluster.local/ns/default/sa/productpage' },
          destination: { namespace: 'default' },
          schema_version: '1.1.0',
          record_type: 'logentry',
          instance: 'accesslog.instance.istio-system',
          handler: 'audit.handler.istio-system',
          variables: {
            sourceIp: '10.1.2.3',
            sourcePrincipal: 'spiffe://cluster.local/ns/default/sa/productpage',
            destinationServiceHost: 'reviews.default.svc.cluster.local',
            destinationNamespace: 'default',
            method: 'GET',
            path: '/reviews/0',
            responseCode: 200,
            requestHeaders: {
              authorization: '[REDACTED]',
              'x-tenant': `hmac-sha256:${createHmac('sha256', HASH_KEY).update('acme').digest('hex')}`,
            },
            sequence: 0,
            latency: '1.5ms',
            userAgent: 'curl/8.5',
          },
        },
      });
      assert.ok(!JSON.stringify(stored).includes('s3cret'), 'no secret reached Elasticsearch');
    } finally {
      await close();
    }
  });

  it('stores metric and span records too, mapped (value as a number, span times as dates)', async () => {
    const { handler, close } = await buildHandler({
      urls: [node.url],
      index: 'telemetry-{yyyy.MM}',
      template: { replicas: 0 },
    });
    try {
      // The server gives each handler and template its own report id (`<report>/<handler>/<template>`).
      const context = (template: string) => ({
        signal: new AbortController().signal,
        deduplicationId: `r-2/audit.handler.istio-system/${template}`,
      });
      await handler.handleMetric(
        [
          {
            name: 'requestcount.instance.istio-system',
            value: 1n,
            dimensions: new Map([['destinationNamespace', 'shop']]),
            monitoredResourceType: '',
            monitoredResourceDimensions: new Map(),
          },
        ],
        context('metric'),
      );
      await handler.handleTraceSpan(
        [
          {
            name: 'span.instance.istio-system',
            traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
            spanId: '00f067aa0ba902b7',
            parentSpanId: '',
            spanName: 'GET /orders',
            startTime: new Timestamp(1_795_000_000, 0),
            endTime: new Timestamp(1_795_000_000, 2_000_000),
            spanTags: new Map([['http.method', 'GET']]),
            httpStatusCode: 200n,
            clientSpan: true,
            rewriteClientSpanId: false,
            sourceName: 'frontend',
            sourceIp: IpAddress.parse('10.0.0.7'),
            destinationName: 'orders',
            destinationIp: IpAddress.parse('10.0.0.8'),
            requestSize: 10n,
            requestTotalSize: 100n,
            responseSize: 20n,
            responseTotalSize: 200n,
            apiProtocol: 'http',
          },
        ],
        context('tracespan'),
      );
      await handler.delivered();
      const stored = [...(await documents(node, 'telemetry-*')).values()];
      const types = stored.map((doc) => dig(doc, 'switchboard.record_type')).sort();
      assert.deepEqual(types, ['metric', 'tracespan']);
      const found = (await node.call('POST', '/telemetry-*/_search', {
        query: {
          bool: {
            should: [
              { range: { 'switchboard.metric.value': { gte: 1 } } },
              { range: { 'event.end': { gt: '2026-11-18T11:06:40.001Z' } } },
            ],
          },
        },
        size: 0,
        track_total_hits: true,
      })) as { hits: { total: { value: number } } };
      assert.equal(found.hits.total.value, 2, 'the value is a number and the span end a date');
    } finally {
      await close();
    }
  });

  it('survives SIGKILL of the policy server mid-traffic: replayed from the spool, none lost, none twice', async () => {
    const configDir = mkdtempSync(join(tmpdir(), 'switchboard-es-config-'));
    const dataDir = mkdtempSync(join(tmpdir(), 'switchboard-es-data-'));
    mkdirSync(configDir, { recursive: true });
    writeFileSync(join(configDir, 'audit.yaml'), auditConfig(node.url, 'crash-{yyyy.MM.dd}'));
    const args = ['server', '--config', configDir, '--address', '127.0.0.1:0', '--data-dir', dataDir];
    let server: Running = startCli(args);
    let stop = false;
    let clients: Promise<void>[] = [];
    try {
      let address = (await server.line('stdout', /listening on (127\.0\.0\.1:\d+) /))[1]!;
      const accepted = new Set<string>();
      let reportsSent = 0;
      const BATCH = 20;
      // Eight clients send Reports of 20 records each until told to stop; an OK answer
      // means the 20 records are the server's.
      const traffic = async (worker: number): Promise<void> => {
        const client = createRawClient(address);
        try {
          for (let n = 0; !stop; n++) {
            const report = `w${worker}-${n}`;
            const bags = Array.from({ length: BATCH }, (_, i) => reportBag(`${report}-${i}`));
            reportsSent++;
            const result = await callUnary(
              client,
              REPORT,
              encodeReportRequest(bags),
              decodeReportResponse,
              10_000,
              {
                [REPORT_ID_HEADER]: report,
              },
            );
            if (result.ok) for (let i = 0; i < BATCH; i++) accepted.add(`${report}-${i}`);
            // The server is down (killed, restarting): try again shortly, without spinning.
            else await new Promise((resolve) => setTimeout(resolve, 20));
          }
        } finally {
          client.close();
        }
      };
      clients = Array.from({ length: 8 }, (_, w) => traffic(w));
      await waitUntil('records stored before the block', async () => (await count(node, 'crash-*')) >= 500);
      // Writes blocked: what the server accepts from now on stays in its spool.
      await node.call('PUT', '/crash-*/_settings', { 'index.blocks.write': true });
      const acceptedAtBlock = accepted.size;
      await waitUntil(
        'more records accepted into the spool',
        async () => accepted.size >= acceptedAtBlock + 2000,
      );
      process.kill(server.pid, 'SIGKILL');
      const killed = await server.finished;
      assert.equal(killed.signal, 'SIGKILL');
      stop = true;
      await Promise.all(clients);
      const storedBeforeRestart = await count(node, 'crash-*');
      assert.ok(
        storedBeforeRestart < accepted.size,
        `records accepted (${accepted.size}) but not yet stored (${storedBeforeRestart}) when the server was killed`,
      );
      await node.call('PUT', '/crash-*/_settings', { 'index.blocks.write': null });

      // The same command, the same data directory: the spool is replayed.
      server = startCli(args);
      address = (await server.line('stdout', /listening on (127\.0\.0\.1:\d+) /))[1]!;
      stop = false;
      clients = Array.from({ length: 2 }, (_, w) => traffic(100 + w));
      await waitUntil('more traffic after the restart', async () => accepted.size >= acceptedAtBlock + 3000);
      stop = true;
      await Promise.all(clients);
      await waitUntil(
        'every accepted record stored',
        async () => (await count(node, 'crash-*')) >= accepted.size,
      );

      const stored = await documents(node, 'crash-*');
      const requestIds = new Map<string, number>();
      const eventIds = new Set<string>();
      for (const [id, doc] of stored) {
        const event = doc['event'] as { id: string };
        assert.equal(event.id, id, 'the document id is the record id');
        assert.ok(!eventIds.has(event.id));
        eventIds.add(event.id);
        const requestId = (doc['http'] as { request: { id: string } }).request.id;
        requestIds.set(requestId, (requestIds.get(requestId) ?? 0) + 1);
      }
      const lost = [...accepted].filter((r) => !requestIds.has(r));
      assert.deepEqual(lost.slice(0, 10), [], `${lost.length} accepted records missing`);
      const twice = [...requestIds].filter(([, n]) => n > 1);
      assert.deepEqual(twice.slice(0, 10), [], 'no request stored twice');
      // Beyond the accepted ones, only records of Reports in flight at the kill (spooled, unanswered).
      assert.ok(stored.size - accepted.size <= 8 * BATCH, `${stored.size} stored, ${accepted.size} accepted`);
      assert.ok(reportsSent * BATCH >= stored.size);
    } finally {
      stop = true;
      await Promise.all(clients);
      stopAllCli();
      await server.finished;
      rmSync(configDir, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

const decodeReportResponse = (bytes: Uint8Array): mixer.ReportResponse => mixer.ReportResponse.decode(bytes);

function reportBag(requestId: string): AttributeBag {
  const nowMs = Date.now();
  return new AttributeBag([
    ['request.id', requestId],
    ['request.path', `/orders/${requestId}`],
    ['request.method', 'POST'],
    ['request.time', new Timestamp(Math.floor(nowMs / 1000), (nowMs % 1000) * 1_000_000)],
    ['request.headers', new FlatStringMap(['authorization', 'Bearer s3cret', 'x-request-id', requestId])],
    ['source.ip', IpAddress.parse('10.0.0.7')!],
    ['source.principal', 'spiffe://cluster.local/ns/shop/sa/frontend'],
    ['destination.service.host', 'orders.shop.svc.cluster.local'],
    ['response.code', 201n],
    ['response.duration', Duration.fromNanos(2_000_000n)],
  ]);
}

/** The README's example configuration, pointed at the test node. */
export function auditConfig(url: string, index: string): string {
  return exportConfigYaml(
    'elasticsearch',
    `
urls: [${url}]
index: ${index}
template: { replicas: 0 }
itemRetry: { maxAttempts: 2, minDelay: 50ms, maxDelay: 100ms }
delivery: { minRetryDelay: 100ms, maxRetryDelay: 500ms }
`,
    {
      requestId: 'request.id | ""',
      method: 'request.method | ""',
      path: 'request.path | ""',
      requestHeaders: 'request.headers | emptyStringMap()',
      sourceIp: 'source.ip | ip("0.0.0.0")',
      sourcePrincipal: 'source.principal | ""',
      destinationServiceHost: 'destination.service.host | ""',
      responseCode: 'response.code | 0',
      latency: 'response.duration | "0ms"',
    },
    'request.time | context.time',
  );
}

async function waitUntil(
  what: string,
  condition: () => Promise<boolean>,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
