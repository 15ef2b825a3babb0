import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  HandlerFullError,
  createAdapterEnv,
  parseWithSchema,
  s,
  type OwnedEnvironment,
} from '../../../../adapters';
import {
  EXPORT_COMMON_PARAMS,
  ExportHandler,
  checkExportParams,
  decodeSpooledRecord,
  encodeSpooledRecord,
  recordId,
  type ExportCommonParams,
  type ExportSink,
  type ExportedInstance,
  type SpooledRecord,
} from '../../../../adapters/logging/export';
import { IpAddress, Timestamp } from '../../../../attributes';
import type { CallContext, LogEntryInstance, MetricInstance, TraceSpanInstance } from '../../../../templates';
import { RecordingLogger } from '../spool/support';

const COMMON = s.object(EXPORT_COMMON_PARAMS);

function params(input: Record<string, unknown> = {}): ExportCommonParams {
  const parsed = parseWithSchema(COMMON, input);
  assert.ok(parsed.ok, parsed.ok ? '' : JSON.stringify(parsed.problems));
  return parsed.value;
}

function entry(name: string, variables: Record<string, string>): LogEntryInstance {
  return {
    name,
    variables: new Map(Object.entries(variables)),
    timestamp: undefined,
    severity: 'INFO',
    monitoredResourceType: '',
    monitoredResourceDimensions: new Map(),
  };
}

const context = (deduplicationId?: string): CallContext => ({
  signal: new AbortController().signal,
  ...(deduplicationId === undefined ? {} : { deduplicationId }),
});

/** A sink in memory that can be made to fail. */
class MemorySink implements ExportSink {
  readonly description = 'memory';
  readonly delivered: { id: string; route: readonly string[]; record: Record<string, unknown> }[] = [];
  failing = false;
  closed = false;

  route(instance: ExportedInstance): readonly string[] {
    return [`topic-${instance.template}-${instance.name}`, 'käy'];
  }
  start(): Promise<void> {
    return Promise.resolve();
  }
  deliver(records: readonly SpooledRecord[]): Promise<void> {
    if (this.failing) return Promise.reject(new Error('sink down'));
    for (const r of records) {
      this.delivered.push({
        id: r.id,
        route: r.route,
        record: JSON.parse(r.json.toString('utf8')) as Record<string, unknown>,
      });
    }
    return Promise.resolve();
  }
  stats(): Record<string, unknown> {
    return { delivered: this.delivered.length };
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

function paths(sink: MemorySink): string[] {
  return sink.delivered.map(
    (d) => ((d.record['switchboard'] as { variables: { path: string } }).variables.path as string) ?? '',
  );
}

describe('adapters/logging/export', () => {
  let dataDir: string;
  const owned: OwnedEnvironment[] = [];
  const handlers: ExportHandler[] = [];
  let logger: RecordingLogger;

  beforeEach(() => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'switchboard-export-'));
    logger = new RecordingLogger();
  });

  afterEach(async () => {
    await Promise.all(handlers.splice(0).map((h) => h.close()));
    for (const env of owned.splice(0)) env.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function handler(sink: ExportSink, input: Record<string, unknown> = {}): Promise<ExportHandler> {
    const env = createAdapterEnv('audit.handler.istio-system', logger, Date.now, { dataDir });
    owned.push(env);
    const built = await ExportHandler.create(params(input), sink, env.env);
    handlers.push(built);
    return built;
  }

  async function waitFor(condition: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 500; i++) {
      if (condition()) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.fail(`timed out waiting for ${what}`);
  }

  it('keeps id, route and record in a spooled record', () => {
    const encoded = encodeSpooledRecord('abc123', ['audit-2026.11.27', 'ключ', ''], '{"a":"ü"}');
    const decoded = decodeSpooledRecord(encoded);
    assert.equal(decoded.id, 'abc123');
    assert.deepEqual(decoded.route, ['audit-2026.11.27', 'ключ', '']);
    assert.equal(decoded.json.toString('utf8'), '{"a":"ü"}');
    assert.throws(() => decodeSpooledRecord(Buffer.from('{"a":1}')), /not a spooled export record/);
  });

  it('gives a record the same id when its Report is sent again, and a random one without a report id', () => {
    assert.equal(recordId('r1/h/logentry', 0), recordId('r1/h/logentry', 0));
    assert.notEqual(recordId('r1/h/logentry', 0), recordId('r1/h/logentry', 1));
    assert.notEqual(recordId('r1/h/logentry', 0), recordId('r2/h/logentry', 0));
    const random = recordId(undefined, 0);
    assert.match(random, /^[0-9a-f]{32}$/);
    assert.match(recordId('x', 0), /^[0-9a-f]{32}$/);
    assert.notEqual(random, recordId(undefined, 0));
    // Random ids are version 4 UUIDs without dashes, all different, past a draw of random bytes.
    const randoms = new Set(Array.from({ length: 1000 }, () => recordId(undefined, 0)));
    assert.equal(randoms.size, 1000);
    for (const id of randoms) assert.match(id, /^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
  });

  it('refuses parameters that cannot work, naming the field', () => {
    const problems = checkExportParams(
      params({
        spool: { maxSpoolBytes: 1000, maxSegmentBytes: 1000 },
        redaction: [{ field: 'authorization', action: 'HASH' }],
        delivery: { minRetryDelay: '10s', maxRetryDelay: '1s' },
      }),
    );
    assert.deepEqual(
      problems.map((p) => p.path),
      ['redaction[0].action', 'spool.maxSpoolBytes', 'delivery.maxRetryDelay'],
    );
    const typo = parseWithSchema(COMMON, { spool: { fsync: 'SOMETIMES' } });
    assert.ok(!typo.ok);
    assert.equal(typo.problems[0]?.path, 'spool.fsync');
  });

  it('spools each instance as a redacted audit record with its route, and delivers it', async () => {
    const sink = new MemorySink();
    const h = await handler(sink);
    await h.handleLogEntry(
      [
        entry('accesslog', { path: '/a', authorization: 'Bearer secret' }),
        entry('accesslog', { path: '/b' }),
      ],
      context('report-1/audit.handler.istio-system/logentry'),
    );
    await h.delivered();
    assert.deepEqual(paths(sink), ['/a', '/b']);
    const first = sink.delivered[0]!;
    assert.deepEqual(first.route, ['topic-logentry-accesslog', 'käy']);
    assert.equal(first.id, recordId('report-1/audit.handler.istio-system/logentry', 0));
    assert.equal((first.record['event'] as { id: string }).id, first.id);
    assert.equal(
      (first.record['switchboard'] as { variables: Record<string, string> }).variables['authorization'],
      '[REDACTED]',
    );
    assert.equal((h.stats()['spool'] as { acceptedRecords: number }).acceptedRecords, 2);
  });

  it('exports metric and tracespan instances in the same schema, redacted', async () => {
    const sink = new MemorySink();
    const h = await handler(sink);
    const metric: MetricInstance = {
      name: 'requestcount',
      value: 1n,
      dimensions: new Map<string, string>([
        ['sourceNamespace', 'shop'],
        ['cookie', 'session=1'],
      ]),
      monitoredResourceType: '',
      monitoredResourceDimensions: new Map(),
    };
    const span: TraceSpanInstance = {
      name: 'span',
      traceId: 'a'.repeat(32),
      spanId: 'b'.repeat(16),
      parentSpanId: 'c'.repeat(16),
      spanName: 'GET /ratings',
      startTime: new Timestamp(1_700_000_000, 0),
      endTime: new Timestamp(1_700_000_000, 2_500_000),
      spanTags: new Map([['authorization', 'Bearer x']]),
      httpStatusCode: 503n,
      clientSpan: true,
      rewriteClientSpanId: false,
      sourceName: 'frontend',
      sourceIp: IpAddress.parse('10.0.0.1'),
      destinationName: 'catalog',
      destinationIp: undefined,
      requestSize: 10n,
      requestTotalSize: 0n,
      responseSize: 0n,
      responseTotalSize: 0n,
      apiProtocol: 'http',
    };
    await h.handleMetric([metric], context());
    await h.handleTraceSpan([span], context());
    await h.delivered();
    const [m, s] = sink.delivered;
    assert.deepEqual(m!.route, ['topic-metric-requestcount', 'käy']);
    assert.deepEqual((m!.record['event'] as { kind: string }).kind, 'metric');
    assert.deepEqual(m!.record['switchboard'], {
      source: { namespace: 'shop' },
      schema_version: '1.1.0',
      record_type: 'metric',
      instance: 'requestcount',
      handler: 'audit.handler.istio-system',
      metric: { value: 1 },
      variables: { cookie: '[REDACTED]', sourceNamespace: 'shop' },
    });
    assert.deepEqual(s!.route, ['topic-tracespan-span', 'käy']);
    assert.equal(s!.record['@timestamp'], '2023-11-14T22:13:20.000000000Z');
    assert.deepEqual(s!.record['trace'], { id: 'a'.repeat(32) });
    assert.deepEqual(s!.record['http'], { response: { status_code: 503 }, request: { bytes: 10 } });
    assert.deepEqual((s!.record['event'] as { duration: number }).duration, 2_500_000);
    assert.deepEqual((s!.record['source'] as { ip: string }).ip, '10.0.0.1');
    const own = s!.record['switchboard'] as { span: unknown; variables: unknown };
    assert.deepEqual(own.span, {
      name: 'GET /ratings',
      client: true,
      parent_id: 'c'.repeat(16),
      source_name: 'frontend',
      destination_name: 'catalog',
      api_protocol: 'http',
    });
    assert.deepEqual(own.variables, { authorization: '[REDACTED]' });
  });

  it('keeps what the sink did not take across a restart, and delivers it then', async () => {
    const down = new MemorySink();
    down.failing = true;
    const first = await handler(down, { delivery: { minRetryDelay: '5ms', maxRetryDelay: '10ms' } });
    await first.handleLogEntry([entry('a', { path: '/kept-1' }), entry('a', { path: '/kept-2' })], context());
    await waitFor(
      () => ((first.stats()['sender'] as { failedAttempts: number }).failedAttempts ?? 0) > 0,
      'a failed delivery',
    );
    await first.close();
    assert.ok(
      logger.lines.some((l) => /not yet delivered to memory/.test(l)),
      logger.lines.join('\n'),
    );

    const up = new MemorySink();
    const second = await handler(up);
    await second.delivered();
    assert.deepEqual(paths(up), ['/kept-1', '/kept-2']);
  });

  it('hands the spool to the newer handler of a reload, which delivers what the older one could not', async () => {
    const down = new MemorySink();
    down.failing = true;
    const older = await handler(down, { delivery: { minRetryDelay: '5ms', maxRetryDelay: '10ms' } });
    await older.handleLogEntry([entry('a', { path: '/1' })], context());
    await waitFor(
      () => ((older.stats()['sender'] as { failedAttempts: number }).failedAttempts ?? 0) > 0,
      'a failed delivery',
    );

    const up = new MemorySink();
    const newer = await handler(up, { spool: { fsync: 'NEVER' } });
    assert.equal(older.stats()['reading'], false);
    assert.equal(newer.stats()['reading'], true);
    // The older handler still serves calls until the new configuration does.
    await older.handleLogEntry([entry('a', { path: '/2' })], context());
    await newer.handleLogEntry([entry('a', { path: '/3' })], context());
    await newer.delivered();
    assert.deepEqual(paths(up), ['/1', '/2', '/3']);
    await older.close();
    assert.ok(down.closed);
    await newer.handleLogEntry([entry('a', { path: '/4' })], context());
    await newer.delivered();
    assert.deepEqual(paths(up), ['/1', '/2', '/3', '/4']);
  });

  it('gives the spool back to the older handler when the newer one is abandoned', async () => {
    const up = new MemorySink();
    const older = await handler(up);
    const down = new MemorySink();
    down.failing = true;
    const abandoned = await handler(down, { delivery: { minRetryDelay: '5ms', maxRetryDelay: '10ms' } });
    await abandoned.handleLogEntry([entry('a', { path: '/x' })], context());
    await waitFor(
      () => ((abandoned.stats()['sender'] as { failedAttempts: number }).failedAttempts ?? 0) > 0,
      'a failed delivery',
    );
    await abandoned.close();
    assert.equal(older.stats()['reading'], true);
    await older.delivered();
    assert.deepEqual(paths(up), ['/x']);
  });

  it('refuses records with a HandlerFullError when the spool is full under REFUSE', async () => {
    const down = new MemorySink();
    down.failing = true;
    const h = await handler(down, {
      spool: { maxSpoolBytes: 4096, maxSegmentBytes: 1024 },
      delivery: { minRetryDelay: '1s', maxRetryDelay: '1s' },
    });
    const big = 'x'.repeat(600);
    let refused: unknown;
    for (let i = 0; i < 20 && refused === undefined; i++) {
      await h.handleLogEntry([entry('a', { path: `/${i}`, big })], context()).catch((error: unknown) => {
        refused = error;
      });
    }
    assert.ok(refused instanceof HandlerFullError, String(refused));
    assert.ok((h.stats()['spool'] as { refusedRecords: number }).refusedRecords >= 1);
  });
});
