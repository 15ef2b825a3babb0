/**
 * The kafka case of `npm run bench:audit` (bench/audit.ts): one KRaft broker on loopback
 * (test/support/kafka-broker.ts; `bash scripts/install-kafka.sh` installs it), then
 * - baseline: the same audit records produced straight to a topic with kafkajs, as the
 *   adapter produces them (idempotent, acks all, batches of 1000, one batch in flight);
 * - for each fsync policy: `switchboard server` with a kafka handler exporting a logentry
 *   instance of every report (the variables of Istio's access-log sample and more), under
 *   Report calls from h2load; then waits until every accepted record is in the topic.
 * Records accepted come from the server's own counters (GET /stats on its admin endpoint),
 * records arrived from the topic's offsets: lost = accepted − arrived.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
// As the adapter: kafkajs with adapters/logging/kafka/use-kafkajs-patches.ts (before kafkajs loads).
import '../../adapters/logging/kafka/use-kafkajs-patches';
import { CompressionTypes, Kafka, logLevel, type Message } from 'kafkajs';
import { AttributeBag, encodeReportRequest, type AttributeValue } from '../../attributes';
import { DEFAULT_REDACTION_RULES, Redactor, buildAuditRecord } from '../../adapters/logging/audit';
import type { FsyncPolicy } from '../../adapters/logging/spool';
import type { LogEntryInstance } from '../../templates';
import { KafkaBroker } from '../../test/support/kafka-broker';
import { freePort } from '../../test/support/redis-servers';
import { typicalCheckBag } from '../bench-kit';
import { startServer, type Started } from '../check/processes';
import { frameGrpcMessage, runH2load } from '../h2load';
import type { AuditBenchCase, AuditBenchOptions, AuditBenchRow } from './audit-case';
import { exportConfigYaml } from '../../test/support/export-config';

process.env['KAFKAJS_NO_PARTITIONER_WARNING'] = '1';

const HANDLER = 'audit.handler.istio-system';
/** BENCH_SERVER_NODE_ARGS: node options for the server (`--cpu-prof --cpu-prof-dir=/tmp/prof` to profile it). */
const SERVER_NODE_ARGS = (process.env['BENCH_SERVER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');

/** As the adapter's defaults: produce requests of at most maxRequestBytes (1,000,000), one in flight. */
const MAX_REQUEST_BYTES = 1_000_000;

/** A report as an inbound proxy sends it after the response: the typical Check's attributes and the response's. */
function reportBag(): AttributeBag {
  const bag = typicalCheckBag();
  const entries: [string, AttributeValue][] = [...bag.names()].map((name) => [name, bag.get(name)!]);
  entries.push(
    ['response.code', 200n],
    ['response.size', 1843n],
    ['response.time', bag.get('request.time')!],
  );
  return new AttributeBag(entries);
}

/** The logentry instance's variables: expressions over the report's attributes. */
const VARIABLES: Record<string, string> = {
  sourceIp: 'source.ip | ip("0.0.0.0")',
  sourcePrincipal: 'source.principal | ""',
  sourceName: 'source.workload.name | ""',
  sourceNamespace: 'source.namespace | "unknown"',
  sourceApp: 'source.labels["app"] | ""',
  destinationIp: 'destination.ip | ip("0.0.0.0")',
  destinationPort: 'destination.port | 0',
  destinationServiceHost: 'destination.service.host | ""',
  destinationPrincipal: 'destination.principal | ""',
  destinationNamespace: 'destination.namespace | "unknown"',
  destinationApp: 'destination.labels["app"] | ""',
  method: 'request.method | ""',
  path: 'request.path | ""',
  host: 'request.host | ""',
  protocol: 'context.protocol | "tcp"',
  responseCode: 'response.code | 0',
  requestSize: 'request.size | 0',
  responseSize: 'response.size | 0',
  latency: 'response.duration | "0ms"',
  requestId: 'request.id | ""',
  userAgent: 'request.useragent | ""',
  traceId: 'request.headers["x-b3-traceid"] | ""',
  user: 'request.headers["x-user"] | "anonymous"',
  mtls: 'connection.mtls | false',
};

function configYaml(brokers: string, topic: string, fsync: FsyncPolicy): string {
  return exportConfigYaml(
    'kafka',
    `
brokers: ['${brokers}']
topic: ${topic}
key: '{destinationApp}'
createTopics: { partitions: 1 }
spool: { fsync: ${fsync} }
`,
    VARIABLES,
    'request.time',
  );
}

/** The variables the server computes from reportBag(), for the baseline's records. */
function baselineInstance(): LogEntryInstance {
  const bag = reportBag();
  const labels = (name: string): string => (bag.get(name) as ReadonlyMap<string, string>).get('app') ?? '';
  const headers = bag.get('request.headers') as ReadonlyMap<string, string>;
  const variables = new Map<string, AttributeValue>([
    ['sourceIp', bag.get('source.ip')!],
    ['sourcePrincipal', bag.get('source.principal')!],
    ['sourceName', bag.get('source.workload.name')!],
    ['sourceNamespace', bag.get('source.namespace')!],
    ['sourceApp', labels('source.labels')],
    ['destinationIp', bag.get('destination.ip')!],
    ['destinationPort', bag.get('destination.port')!],
    ['destinationServiceHost', bag.get('destination.service.host')!],
    ['destinationPrincipal', bag.get('destination.principal')!],
    ['destinationNamespace', bag.get('destination.namespace')!],
    ['destinationApp', labels('destination.labels')],
    ['method', bag.get('request.method')!],
    ['path', bag.get('request.path')!],
    ['host', bag.get('request.host')!],
    ['protocol', bag.get('context.protocol')!],
    ['responseCode', bag.get('response.code')!],
    ['requestSize', bag.get('request.size')!],
    ['responseSize', bag.get('response.size')!],
    ['latency', bag.get('response.duration')!],
    ['requestId', bag.get('request.id')!],
    ['userAgent', bag.get('request.useragent')!],
    ['traceId', headers.get('x-b3-traceid') ?? ''],
    ['user', headers.get('x-user') ?? ''],
    ['mtls', bag.get('connection.mtls')!],
  ]);
  return {
    name: 'auditlog.instance.istio-system',
    variables,
    timestamp: bag.get('request.time') as LogEntryInstance['timestamp'],
    severity: 'info',
    monitoredResourceType: '',
    monitoredResourceDimensions: new Map(),
  };
}

async function topicCount(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
  } catch {
    return 0;
  } finally {
    await admin.disconnect();
  }
}

/** Waits (bounded) until the topic holds at least `count` records; returns what it holds. */
async function waitForCount(
  kafka: Kafka,
  topic: string,
  count: number,
  timeoutMs = 180_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const have = await topicCount(kafka, topic);
    if (have >= count || Date.now() > deadline) return have;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The baseline: the audit records produced by kafkajs directly, one batch of 1000 in flight. */
async function baseline(kafka: Kafka, options: AuditBenchOptions): Promise<AuditBenchRow> {
  const topic = 'baseline';
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }] });
  await admin.disconnect();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const instance = baselineInstance();
  const redactor = new Redactor(DEFAULT_REDACTION_RULES, undefined);
  const key = 'reviews';
  const message = (): Message => {
    const id = randomUUID().replaceAll('-', '');
    const record = buildAuditRecord(instance, { id, handlerName: HANDLER, nowMs: Date.now() }, redactor);
    return {
      key,
      value: JSON.stringify(record),
      headers: {
        'switchboard-event-id': id,
      },
    };
  };
  // Records per request: as many as fit in MAX_REQUEST_BYTES, as the adapter splits its batches.
  const perRequest = Math.max(
    1,
    Math.floor(MAX_REQUEST_BYTES / (Buffer.byteLength(message().value as string) + 120)),
  );
  const batch = (): Message[] => Array.from({ length: perRequest }, message);
  let sent = 0;
  const runFor = async (seconds: number): Promise<number> => {
    const end = Date.now() + seconds * 1000;
    let n = 0;
    while (Date.now() < end) {
      await producer.sendBatch({
        topicMessages: [{ topic, messages: batch() }],
        acks: -1,
        compression: CompressionTypes.None,
      });
      n += perRequest;
    }
    return n;
  };
  sent += await runFor(options.warmupSeconds);
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  const measured = await runFor(options.seconds);
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  sent += measured;
  await producer.disconnect();
  const arrived = await waitForCount(kafka, topic, sent);
  return {
    sink: 'kafka',
    variant: 'baseline (kafkajs direct)',
    baseline: true,
    recordsPerSecond: measured / wall,
    coresUsed: (used.user + used.system) / 1e6 / wall,
    accepted: sent,
    arrived,
    lost: Math.max(0, sent - arrived),
    duplicated: Math.max(0, arrived - sent),
    note: 'cores: this client process (record building included)',
  };
}

function fetchJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = get(url, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (error) {
          reject(new Error(`GET ${url}: ${response.statusCode} ${body.slice(0, 200)}`, { cause: error }));
        }
      });
    });
    request.setTimeout(10_000, () => request.destroy(new Error(`GET ${url}: no answer within 10 s`)));
    request.on('error', reject);
  });
}

/** The export handler's counters from the server's /stats. */
async function handlerStats(
  adminAddress: string,
): Promise<{ accepted: number; refused: number; dropped: number }> {
  const stats = (await fetchJson(`http://${adminAddress}/stats`)) as { handlers?: Record<string, unknown> };
  const own = stats.handlers?.[HANDLER] as Record<string, unknown> | undefined;
  if (own === undefined)
    throw new Error(`/stats of ${adminAddress} has no handler ${HANDLER}: ${JSON.stringify(stats)}`);
  const spool = (own['spool'] ?? {}) as Record<string, unknown>;
  const count = (name: string): number => {
    const value = spool[name];
    return typeof value === 'number' ? value : 0;
  };
  return {
    accepted: count('acceptedRecords'),
    refused: count('refusedRecords'),
    dropped: count('droppedRecords'),
  };
}

async function serverRun(
  kafka: Kafka,
  broker: KafkaBroker,
  options: AuditBenchOptions,
  fsync: FsyncPolicy,
): Promise<AuditBenchRow> {
  const topic = `audit-${fsync.toLowerCase()}`;
  const runDir = join(options.dir, fsync.toLowerCase());
  const configDir = join(runDir, 'config');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, 'audit.yaml'), configYaml(broker.address, topic, fsync));
  const bodyFile = join(runDir, 'report.bin');
  writeFileSync(
    bodyFile,
    frameGrpcMessage(encodeReportRequest(Array.from({ length: options.reportsPerCall }, reportBag))),
  );
  const adminAddress = `127.0.0.1:${await freePort()}`;
  const server: Started = await startServer(
    `switchboard fsync=${fsync}`,
    process.execPath,
    [...SERVER_NODE_ARGS, options.cli, 'server', '--config', configDir, '--address', '127.0.0.1:0', '--admin-address', adminAddress, '--data-dir', join(runDir, 'data')], // prettier-ignore
    /listening on (\S+:\d+)/,
    join(runDir, 'switchboard.log'),
  );
  try {
    const load = { clients: options.clients, streams: options.streams, threads: 1, warmupSeconds: 0 };
    const path = '/istio.mixer.v1.Mixer/Report';
    await runH2load(server.address, path, bodyFile, join(runDir, 'h2load-warmup.log'), {
      ...load,
      seconds: options.warmupSeconds,
    });
    const before = await handlerStats(adminAddress);
    const cpuBefore = server.cpuSeconds();
    const mainBefore = server.mainThreadCpuSeconds();
    const started = process.hrtime.bigint();
    const run = await runH2load(server.address, path, bodyFile, join(runDir, 'h2load.log'), {
      ...load,
      seconds: options.seconds,
    });
    const wall = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = server.cpuSeconds() - cpuBefore;
    const mainThread = server.mainThreadCpuSeconds() - mainBefore;
    const after = await handlerStats(adminAddress);
    const arrived = await waitForCount(kafka, topic, after.accepted);
    const notes: string[] = [];
    if (after.refused > 0) notes.push(`${after.refused} refused (spool full)`);
    if (after.dropped > 0) notes.push(`${after.dropped} dropped`);
    if (run.failed > 0) notes.push(`${run.failed} calls failed`);
    return {
      sink: 'kafka',
      variant: `server fsync=${fsync}`,
      baseline: false,
      fsync,
      recordsPerSecond: (after.accepted - before.accepted) / wall,
      coresUsed: cpu / wall,
      mainThreadCoresUsed: mainThread / wall,
      accepted: after.accepted,
      arrived,
      lost: Math.max(0, after.accepted - arrived),
      duplicated: Math.max(0, arrived - after.accepted),
      p99Ms: run.p99Ms,
      ...(notes.length === 0 ? {} : { note: notes.join('; ') }),
    };
  } finally {
    await server.stop(30_000);
  }
}

export const KAFKA_CASE: AuditBenchCase = {
  name: 'kafka',
  async run(options: AuditBenchOptions): Promise<AuditBenchRow[]> {
    mkdirSync(options.dir, { recursive: true });
    const broker = await KafkaBroker.start();
    const kafka = new Kafka({
      clientId: 'bench-audit',
      brokers: [broker.address],
      logLevel: logLevel.NOTHING,
    });
    const rows: AuditBenchRow[] = [];
    try {
      rows.push(await baseline(kafka, options));
      for (const fsync of options.fsyncPolicies) rows.push(await serverRun(kafka, broker, options, fsync));
    } finally {
      await broker.stop();
    }
    return rows;
  },
};
