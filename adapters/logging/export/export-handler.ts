/**
 * The handler of an export adapter (kafka, elasticsearch): what both do, with the sink as
 * the only difference.
 *
 * A logentry call turns each instance into an audit record (redacted; see
 * adapters/logging/audit), asks the sink where the record goes (its route: topic and key,
 * or index), and appends record, id and route to the handler's spool, in
 * `<handler data dir>/spool`. The call resolves, and the Report is answered OK, only once
 * the append has (see the spool's fsync policy); a full spool refuses the call with a
 * HandlerFullError (RESOURCE_EXHAUSTED), so the proxy keeps the records. A sender delivers
 * the spool to the sink at least once, in order, and the spool forgets records only once
 * the sink has acknowledged them.
 */
import * as path from 'node:path';
import type { AdapterEnv, Handler } from '../../contract';
import type { AttributeValue } from '../../../attributes';
import type {
  CallContext,
  LogEntryHandler,
  LogEntryInstance,
  MetricHandler,
  MetricInstance,
  TraceSpanHandler,
  TraceSpanInstance,
} from '../../../templates';
import {
  Redactor,
  buildAuditRecord,
  buildMetricRecord,
  buildTraceSpanRecord,
  type AuditContext,
  type AuditRecord,
} from '../audit';
import { FRAME_HEADER_BYTES, sealFrame, type SpoolSink } from '../spool';
import { exportSenderSettings, exportSpoolSettings, type ExportCommonParams } from './export-params';
import { recordId } from './record-id';
import { leaseSpool, type SpoolLease } from './shared-spool';
import {
  decodeSpooledRecord,
  spooledRecordBytes,
  writeSpooledRecord,
  type SpooledRecord,
} from './spooled-record';

/** The templates an export handler takes. */
export const EXPORT_TEMPLATES = ['logentry', 'metric', 'tracespan'] as const;

/** An instance as a sink sees it when choosing a route. */
export interface ExportedInstance {
  /** The instance's name, `accesslog.instance.istio-system`. */
  readonly name: string;
  readonly template: (typeof EXPORT_TEMPLATES)[number];
  /** Its variables (logentry), dimensions (metric) or span tags (tracespan), unredacted. */
  readonly variables: ReadonlyMap<string, AttributeValue>;
}

/** Where an export adapter delivers: all that differs between kafka and elasticsearch. */
export interface ExportSink {
  /** For messages: `kafka topic audit at 127.0.0.1:9092`. */
  readonly description: string;
  /**
   * Where a record goes, decided once when it is accepted and kept with it in the spool
   * (kafka: `[topic, key]`; elasticsearch: `[index]`). Must not throw: fall back to a default.
   */
  route(instance: ExportedInstance, record: AuditRecord): readonly string[];
  /** Connects, creates what is missing (topic, index template). A rejection fails the handler's build. */
  start(): Promise<void>;
  /**
   * Delivers records, in order. Resolves once the sink has acknowledged every one (or set it
   * aside for good, as a dead letter); rejects, with the reason, to have the whole batch
   * offered again after a back-off. `signal` is aborted when the handler closes (or hands
   * its spool to a newer handler): a sink waiting to retry inside a delivery should stop
   * waiting and reject then.
   */
  deliver(records: readonly SpooledRecord[], signal: AbortSignal): Promise<void>;
  /** Counters for the admin endpoint. */
  stats(): Record<string, unknown>;
  close(): Promise<void>;
}

export class ExportHandler implements Handler, LogEntryHandler, MetricHandler, TraceSpanHandler {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly sink: ExportSink,
    private readonly lease: SpoolLease,
    private readonly redactor: Redactor,
    private readonly env: AdapterEnv,
  ) {}

  /**
   * Starts the sink, then leases the handler's spool (recovering what a previous process
   * left there, and taking over from an older handler of the same name after a reload).
   */
  static async create(params: ExportCommonParams, sink: ExportSink, env: AdapterEnv): Promise<ExportHandler> {
    await sink.start();
    const spoolSink: SpoolSink = {
      description: sink.description,
      deliver: (payloads, signal) => sink.deliver(payloads.map(decodeSpooledRecord), signal),
    };
    let lease: SpoolLease;
    try {
      lease = await leaseSpool(
        exportSpoolSettings(params, path.join(env.dataDir, 'spool')),
        {
          label: env.handlerName,
          sink: spoolSink,
          senderSettings: exportSenderSettings(params),
          env,
        },
        env.logger,
      );
    } catch (error) {
      await sink.close();
      throw error;
    }
    return new ExportHandler(sink, lease, new Redactor(params.redaction, params.hashKey), env);
  }

  handleLogEntry(instances: readonly LogEntryInstance[], context: CallContext): Promise<void> {
    return this.spool(instances, context, (instance, audit) => {
      const record = buildAuditRecord(instance, audit, this.redactor);
      const exported = { name: instance.name, template: 'logentry', variables: instance.variables } as const;
      return { record, route: this.sink.route(exported, record) };
    });
  }

  handleMetric(instances: readonly MetricInstance[], context: CallContext): Promise<void> {
    return this.spool(instances, context, (instance, audit) => {
      const record = buildMetricRecord(instance, audit, this.redactor);
      const exported = { name: instance.name, template: 'metric', variables: instance.dimensions } as const;
      return { record, route: this.sink.route(exported, record) };
    });
  }

  handleTraceSpan(instances: readonly TraceSpanInstance[], context: CallContext): Promise<void> {
    return this.spool(instances, context, (instance, audit) => {
      const record = buildTraceSpanRecord(instance, audit, this.redactor);
      const exported = { name: instance.name, template: 'tracespan', variables: instance.spanTags } as const;
      return { record, route: this.sink.route(exported, record) };
    });
  }

  /** Builds each instance's record and route, and appends them all to the spool. */
  private spool<I>(
    instances: readonly I[],
    context: CallContext,
    build: (instance: I, audit: AuditContext) => { record: AuditRecord; route: readonly string[] },
  ): Promise<void> {
    const nowMs = this.env.now();
    const handlerName = this.env.handlerName;
    const count = instances.length;
    const ids: string[] = new Array<string>(count);
    const routes: (readonly string[])[] = new Array<readonly string[]>(count);
    const jsons: string[] = new Array<string>(count);
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const id = recordId(context.deduplicationId, i);
      const { record, route } = build(instances[i]!, { id, handlerName, nowMs });
      const json = JSON.stringify(record);
      ids[i] = id;
      routes[i] = route;
      jsons[i] = json;
      bytes += FRAME_HEADER_BYTES + spooledRecordBytes(id, route, json);
    }
    // The spool's frames, each record written in place: no buffer per record, no copy.
    const frames = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const end = writeSpooledRecord(frames, at + FRAME_HEADER_BYTES, ids[i]!, routes[i]!, jsons[i]!);
      sealFrame(frames, at, end);
      at = end;
    }
    // A full spool rejects with SpoolFullError, a HandlerFullError: RESOURCE_EXHAUSTED.
    return this.lease.spool.appendFrames(frames, count);
  }

  /** Resolves once every record accepted so far was delivered (tests, flushes). */
  async delivered(): Promise<void> {
    await this.lease.sender()?.idle();
  }

  stats(): Record<string, unknown> {
    return {
      sink: this.sink.description,
      reading: this.lease.isReading(),
      spool: this.lease.spool.stats(),
      sender: this.lease.sender()?.stats(),
      ...this.sink.stats(),
    };
  }

  /** Stops delivering (handing the spool to a newer handler, if any) and closes the sink. */
  close(): Promise<void> {
    this.closing ??= this.lease.release().finally(() => this.sink.close());
    return this.closing;
  }
}
