/**
 * Audit export into Elasticsearch: Reports per second through `switchboard server` with the
 * `elasticsearch` adapter, the spool at each fsync policy, against a baseline of the same
 * audit records bulk-indexed directly with `@elastic/elasticsearch` — in one run, into one
 * node of its own (test/support/elasticsearch-node.ts, started on a free loopback port and
 * stopped by PID; `bash scripts/install-elasticsearch.sh` installs it).
 *
 * - Baseline: the records the server would write (same instance, same audit schema, same
 *   size, built before the clock starts), `_bulk` requests of `delivery.maxBatchRecords`
 *   (1000) `index` actions with their ids, one request in flight — what the adapter's sender
 *   does — for `seconds`; run before and after the server sides, the ratio is to the mean.
 * - Per fsync policy: a fresh server (fresh data dir, its own index), BENCH_CLIENTS gRPC
 *   clients in this process sending Reports of BENCH_RECORDS_PER_REPORT records (with a
 *   report id each) for `seconds`; then the wait until every accepted record is searchable.
 *   Printed: Reports and records accepted per second (the Report is answered once its
 *   records are in the spool), records per second end to end (accepted records ÷ time from
 *   the first Report until the last was indexed), the ratio of that to the baseline, the
 *   server's CPU per record, and records lost (accepted but not in Elasticsearch: must be 0).
 *
 * Not a test: nothing asserts a speed. Exit code 1 (standalone) when a record was lost.
 * Standalone: `npm run bench:audit:elasticsearch` (BENCH_SECONDS, default 10;
 * BENCH_FSYNC=ALWAYS,INTERVAL,NEVER).
 */
import { Client } from '@elastic/elasticsearch';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Redactor, buildAuditRecord } from '../../adapters/logging/audit';
import {
  AttributeBag,
  Duration,
  FlatStringMap,
  IpAddress,
  Timestamp,
  encodeReportRequest,
  type AttributeValue,
} from '../../attributes';
import { REPORT_ID_HEADER } from '../../policy-server';
import { mixer } from '../../proto';
import { ElasticsearchNode } from '../../test/support/elasticsearch-node';
import { callUnary, createRawClient } from '../../test/support/raw-grpc-client';
import { killAllStarted, startServer } from '../check/processes';
import type { AuditBenchCase, AuditBenchOptions, AuditBenchRow } from './audit-case';
import { exportConfigYaml } from '../../test/support/export-config';

type FsyncPolicy = 'ALWAYS' | 'INTERVAL' | 'NEVER';

export interface ElasticsearchBenchOptions {
  /** Seconds of traffic per side. */
  readonly seconds: number;
  readonly fsyncPolicies: readonly FsyncPolicy[];
  /** Report calls in flight at once; default BENCH_CLIENTS or 16. */
  readonly clients?: number;
  /** Records (attribute sets) in one Report call; default BENCH_RECORDS_PER_REPORT or 10. */
  readonly recordsPerReport?: number;
}

/** One row of the table. */
export interface ElasticsearchBenchRow {
  readonly side: string;
  readonly reportsPerSecond: number | undefined;
  readonly acceptedPerSecond: number | undefined;
  readonly endToEndPerSecond: number;
  readonly serverCpuMicrosPerRecord: number | undefined;
  readonly lost: number;
  readonly fsync?: FsyncPolicy;
  /** Records sent (baseline) or accepted (server), and found in Elasticsearch afterwards. */
  readonly accepted: number;
  readonly arrived: number;
  /** CPU seconds of the producing process (the server, all threads; the baseline's own) and of the server's main thread. */
  readonly cpuSeconds: number;
  readonly mainThreadCpuSeconds?: number;
  /** Seconds of the measured window (accepting, for the server). */
  readonly windowSeconds: number;
}

let CLIENTS = Number(process.env['BENCH_CLIENTS'] ?? '16');
let RECORDS_PER_REPORT = Number(process.env['BENCH_RECORDS_PER_REPORT'] ?? '10');
const BULK_RECORDS = 1000;
const DRAIN_TIMEOUT_MS = 300_000;
const CLI = path.resolve(__dirname, '..', '..', 'cli', 'switchboard.js');
const REPORT = '/istio.mixer.v1.Mixer/Report';

/** Runs the baseline and every policy, prints the table, and returns its rows. */
export async function run(options: ElasticsearchBenchOptions): Promise<ElasticsearchBenchRow[]> {
  if (options.clients !== undefined) CLIENTS = options.clients;
  if (options.recordsPerReport !== undefined) RECORDS_PER_REPORT = options.recordsPerReport;
  const node = await ElasticsearchNode.start({ heapMb: 1024 });
  const work = mkdtempSync(path.join(tmpdir(), 'switchboard-bench-es-'));
  try {
    await node.warmUp(20_000);
    // The baseline before and after the sides, so that the node's warming (and the machine's
    // other load) weighs on both; the ratio is to their mean.
    const before = await baseline(node, options.seconds, 'before');
    const sides: ElasticsearchBenchRow[] = [];
    for (const fsync of options.fsyncPolicies)
      sides.push(await throughServer(node, work, fsync, options.seconds));
    const after = await baseline(node, options.seconds, 'after');
    const rows = [before, after, ...sides];
    printTable(rows, (before.endToEndPerSecond + after.endToEndPerSecond) / 2, options.seconds);
    return rows;
  } finally {
    killAllStarted();
    await node.dispose();
    rmSync(work, { recursive: true, force: true });
  }
}

/** The variables of the bench's logentry instance, as the server computes them from reportBag(). */
function benchInstanceVariables(requestId: string): Map<string, AttributeValue> {
  return new Map<string, AttributeValue>([
    ['requestId', requestId],
    ['method', 'GET'],
    ['path', '/reviews/0'],
    ['host', 'reviews:9080'],
    [
      'requestHeaders',
      new FlatStringMap([
        'authorization',
        'Bearer abc',
        'user-agent',
        'python-requests/2.22.0',
        'x-user',
        'jason',
      ]),
    ],
    ['sourceIp', IpAddress.parse('10.40.0.12')!],
    ['sourcePrincipal', 'cluster.local/ns/default/sa/bookinfo-productpage'],
    ['sourceNamespace', 'default'],
    ['destinationServiceHost', 'reviews.default.svc.cluster.local'],
    ['destinationNamespace', 'default'],
    ['responseCode', 200n],
    ['responseSize', 1234n],
    ['latency', new Duration(0, 4_500_000)],
  ]);
}

function reportBag(requestId: string): AttributeBag {
  const variables = benchInstanceVariables(requestId);
  return new AttributeBag([
    ['request.id', requestId],
    ['request.method', variables.get('method')!],
    ['request.path', variables.get('path')!],
    ['request.host', variables.get('host')!],
    ['request.headers', variables.get('requestHeaders')!],
    ['request.time', new Timestamp(Math.floor(Date.now() / 1000), 0)],
    ['source.ip', variables.get('sourceIp')!],
    ['source.principal', variables.get('sourcePrincipal')!],
    ['source.namespace', 'default'],
    ['destination.service.host', variables.get('destinationServiceHost')!],
    ['destination.namespace', 'default'],
    ['response.code', 200n],
    ['response.size', 1234n],
    ['response.duration', variables.get('latency')!],
  ]);
}

/** The logentry instance's variables. */
const VARIABLES: Readonly<Record<string, string>> = {
  requestId: 'request.id | ""',
  method: 'request.method | ""',
  path: 'request.path | ""',
  host: 'request.host | ""',
  requestHeaders: 'request.headers | emptyStringMap()',
  sourceIp: 'source.ip | ip("0.0.0.0")',
  sourcePrincipal: 'source.principal | ""',
  sourceNamespace: 'source.namespace | ""',
  destinationServiceHost: 'destination.service.host | ""',
  destinationNamespace: 'destination.namespace | ""',
  responseCode: 'response.code | 0',
  responseSize: 'response.size | 0',
  latency: 'response.duration | "0ms"',
};

function config(url: string, index: string, fsync: FsyncPolicy): string {
  return exportConfigYaml(
    'elasticsearch',
    `
urls: [${url}]
index: ${index}
template: { name: ${index.split('-{')[0]}, replicas: 0 }
spool: { fsync: ${fsync} }
`,
    VARIABLES,
    'request.time | context.time',
  );
}

/**
 * The same records, bulk-indexed directly with the client: built and serialized before the
 * clock starts (so this measures Elasticsearch and the client, not record building), 1000
 * per request, one request in flight.
 */
async function baseline(
  node: ElasticsearchNode,
  seconds: number,
  label: string,
): Promise<ElasticsearchBenchRow> {
  const client = new Client({ node: node.url });
  const index = `bench-direct-${label}-${new Date().toISOString().slice(0, 10).replaceAll('-', '.')}`;
  try {
    await node.call('PUT', `/${index}`, { settings: { number_of_replicas: 0 } });
    const redactor = new Redactor([{ field: 'authorization', action: 'MASK' }], undefined);
    const records: string[] = [];
    for (let i = 0; i < BULK_RECORDS; i++) {
      const record = buildAuditRecord(
        {
          name: 'auditlog.instance.istio-system',
          variables: benchInstanceVariables(`r-${i % RECORDS_PER_REPORT}`),
          timestamp: new Timestamp(Math.floor(Date.now() / 1000), 0),
          severity: 'info',
          monitoredResourceType: '',
          monitoredResourceDimensions: new Map(),
        },
        { id: `direct-${i}`, handlerName: 'audit.handler.istio-system', nowMs: Date.now() },
        redactor,
      );
      records.push(JSON.stringify(record));
    }
    let sent = 0;
    const cpuBefore = process.cpuUsage();
    const started = Date.now();
    const deadline = started + seconds * 1000;
    while (Date.now() < deadline) {
      const operations: string[] = [];
      for (let i = 0; i < BULK_RECORDS; i++) {
        operations.push(`{"index":{"_index":"${index}","_id":"direct-${sent + i}"}}`, records[i]!);
      }
      // Strings go into the NDJSON body as they are.
      const answer = await client.bulk({ operations: operations as unknown as object[] });
      if (answer.errors) throw new Error(`baseline bulk had errors: ${JSON.stringify(answer.items[0])}`);
      sent += BULK_RECORDS;
    }
    const elapsed = (Date.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    await node.call('POST', `/${index}/_refresh`);
    const stored = ((await node.call('GET', `/${index}/_count`)) as { count: number }).count;
    return {
      side: `direct bulk (client), ${label}`,
      reportsPerSecond: undefined,
      acceptedPerSecond: undefined,
      endToEndPerSecond: sent / elapsed,
      serverCpuMicrosPerRecord: undefined,
      lost: sent - stored,
      accepted: sent,
      arrived: stored,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      windowSeconds: elapsed,
    };
  } finally {
    await client.close();
  }
}

async function throughServer(
  node: ElasticsearchNode,
  work: string,
  fsync: FsyncPolicy,
  seconds: number,
): Promise<ElasticsearchBenchRow> {
  const indexPrefix = `bench-${fsync.toLowerCase()}`;
  const configDir = path.join(work, `config-${fsync}`);
  const dataDir = path.join(work, `data-${fsync}`);
  mkdirSync(configDir, { recursive: true });
  writeFileSync(path.join(configDir, 'audit.yaml'), config(node.url, `${indexPrefix}-{yyyy.MM.dd}`, fsync));
  const server = await startServer(
    `switchboard server (fsync ${fsync})`,
    process.execPath,
    [CLI, 'server', '--config', configDir, '--address', '127.0.0.1:0', '--data-dir', dataDir],
    /listening on (127\.0\.0\.1:\d+) /,
    path.join(work, `server-${fsync}.log`),
  );
  try {
    const cpuBefore = server.cpuSeconds();
    const mainBefore = server.mainThreadCpuSeconds();
    let acceptedRecords = 0;
    let acceptedReports = 0;
    let failedReports = 0;
    const failures = new Map<string, number>();
    const started = Date.now();
    const deadline = started + seconds * 1000;
    const body = encodeReportRequest(
      Array.from({ length: RECORDS_PER_REPORT }, (_, i) => reportBag(`r-${i}`)),
    );
    let serial = 0;
    const clientLoop = async (): Promise<void> => {
      const client = createRawClient(server.address);
      try {
        while (Date.now() < deadline) {
          const result = await callUnary(
            client,
            REPORT,
            body,
            (b) => mixer.ReportResponse.decode(b),
            30_000,
            {
              [REPORT_ID_HEADER]: `${fsync}-${serial++}`,
            },
          );
          if (result.ok) {
            acceptedReports++;
            acceptedRecords += RECORDS_PER_REPORT;
          } else {
            failedReports++;
            const reason = `${result.error.code} ${result.error.details}`.slice(0, 160);
            failures.set(reason, (failures.get(reason) ?? 0) + 1);
          }
        }
      } finally {
        client.close();
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, () => clientLoop()));
    const acceptElapsed = (Date.now() - started) / 1000;
    const drainDeadline = Date.now() + DRAIN_TIMEOUT_MS;
    let stored = 0;
    for (;;) {
      await node.call('POST', `/${indexPrefix}-*/_refresh`);
      stored = ((await node.call('GET', `/${indexPrefix}-*/_count`)) as { count: number }).count;
      if (stored >= acceptedRecords || Date.now() > drainDeadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const endToEnd = (Date.now() - started) / 1000;
    const cpu = server.cpuSeconds() - cpuBefore;
    const mainCpu = server.mainThreadCpuSeconds() - mainBefore;
    if (failedReports > 0)
      console.log(`  fsync ${fsync}: ${failedReports} Reports failed (not counted as accepted)`);
    return {
      side: `server, spool fsync ${fsync}`,
      reportsPerSecond: acceptedReports / acceptElapsed,
      acceptedPerSecond: acceptedRecords / acceptElapsed,
      endToEndPerSecond: acceptedRecords / endToEnd,
      serverCpuMicrosPerRecord: (cpu * 1e6) / acceptedRecords,
      lost: Math.max(0, acceptedRecords - stored),
      fsync,
      accepted: acceptedRecords,
      arrived: stored,
      cpuSeconds: cpu,
      mainThreadCpuSeconds: mainCpu,
      windowSeconds: acceptElapsed,
    };
  } finally {
    await server.stop();
  }
}

function printTable(rows: readonly ElasticsearchBenchRow[], base: number, seconds: number): void {
  const fmt = (n: number | undefined, digits = 0): string => (n === undefined ? '-' : n.toFixed(digits));
  console.log(
    `\nAudit export into Elasticsearch (${seconds} s per side; ${CLIENTS} clients, ${RECORDS_PER_REPORT} records per Report; bulk ${BULK_RECORDS}; × direct: to the mean of the two direct runs, ${base.toFixed(0)} records/s)`,
  );
  const header = [
    'side',
    'Reports/s',
    'records/s accepted',
    'records/s end to end',
    '× direct',
    'server CPU µs/record',
    'lost',
  ];
  const table = rows.map((row) => [
    row.side,
    fmt(row.reportsPerSecond),
    fmt(row.acceptedPerSecond),
    fmt(row.endToEndPerSecond),
    (row.endToEndPerSecond / base).toFixed(2),
    fmt(row.serverCpuMicrosPerRecord, 1),
    String(row.lost),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  for (const row of table) console.log(line(row));
}

if (require.main === module) {
  const seconds = Number(process.env['BENCH_SECONDS'] ?? '10');
  const fsyncPolicies = (process.env['BENCH_FSYNC'] ?? 'ALWAYS,INTERVAL,NEVER').split(',') as FsyncPolicy[];
  process.on('SIGINT', () => {
    killAllStarted();
    process.exit(130);
  });
  run({ seconds, fsyncPolicies }).then(
    (rows) => {
      process.exitCode = rows.some((row) => row.lost > 0) ? 1 : 0;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}

/**
 * The case of `npm run bench:audit` (bench/audit.ts): the same measurement, its rows in the
 * runner's form. Calls in flight = clients × streams; records per Report = reportsPerCall.
 * The baseline row is the mean of the direct runs before and after the server's.
 */
export const ELASTICSEARCH_CASE: AuditBenchCase = {
  name: 'elasticsearch',
  async run(options: AuditBenchOptions): Promise<AuditBenchRow[]> {
    const rows = await run({
      seconds: options.seconds,
      fsyncPolicies: options.fsyncPolicies,
      clients: options.clients * options.streams,
      recordsPerReport: options.reportsPerCall,
    });
    const direct = rows.filter((row) => row.fsync === undefined);
    const sum = (f: (row: ElasticsearchBenchRow) => number, of: readonly ElasticsearchBenchRow[]): number =>
      of.reduce((total, row) => total + f(row), 0);
    const baselineRow: AuditBenchRow = {
      sink: 'elasticsearch',
      variant: 'baseline (client bulk)',
      baseline: true,
      recordsPerSecond: sum((r) => r.endToEndPerSecond, direct) / direct.length,
      coresUsed: sum((r) => r.cpuSeconds, direct) / sum((r) => r.windowSeconds, direct),
      accepted: sum((r) => r.accepted, direct),
      arrived: sum((r) => r.arrived, direct),
      lost: sum((r) => r.lost, direct),
      duplicated: 0,
      note: `mean of ${direct.map((r) => r.endToEndPerSecond.toFixed(0)).join(' and ')} records/s (before, after)`,
    };
    return [
      baselineRow,
      ...rows
        .filter((row) => row.fsync !== undefined)
        .map((row): AuditBenchRow => ({
          sink: 'elasticsearch',
          variant: `server fsync=${row.fsync!}`,
          baseline: false,
          fsync: row.fsync!,
          recordsPerSecond: row.acceptedPerSecond ?? 0,
          coresUsed: row.cpuSeconds / row.windowSeconds,
          ...(row.mainThreadCpuSeconds === undefined
            ? {}
            : { mainThreadCoresUsed: row.mainThreadCpuSeconds / row.windowSeconds }),
          accepted: row.accepted,
          arrived: row.arrived,
          lost: row.lost,
          duplicated: Math.max(0, row.arrived - row.accepted),
          note: `end to end ${row.endToEndPerSecond.toFixed(0)} records/s (accepted until searchable)`,
        })),
    ];
  },
};
