/**
 * The Elasticsearch sink of the export handler: where the spool's sender delivers.
 *
 * - `route` names each record's index once, when it is accepted (index-pattern.ts).
 * - `start` connects and installs the composable index template (index-template.ts). A
 *   node that cannot be reached is not a configuration error: the template is installed
 *   before the first delivery instead, and the records wait in the spool. A node that
 *   refuses the template or the credentials is one.
 * - `deliver` sends one `_bulk` of `index` actions whose `_id` is the record's id
 *   (`event.id`), so a record sent twice (the spool delivers at least once) overwrites
 *   itself instead of making a duplicate. Per item: 2xx is stored; 429, 5xx and cluster
 *   blocks are sent again — only those items — after a back-off, up to
 *   `itemRetry.maxAttempts` times, after which the delivery fails and the sender offers the
 *   batch again later (the items already stored are then skipped); any other 4xx (a
 *   mapping conflict) goes to the dead-letter file with its reason. A request that fails as
 *   a whole (connection refused, timeout, 5xx) rejects, and the sender offers the batch
 *   again with its own back-off.
 */
import { Client, errors } from '@elastic/elasticsearch';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { AdapterEnv } from '../../contract';
import type { AuditRecord } from '../audit';
import type { ExportSink, ExportedInstance, SpooledRecord } from '../export';
import { defaultTemplateName, type ElasticsearchSinkParams } from './config';
import { DeadLetterFile, type DeadLetter } from './dead-letter-file';
import { IndexPattern } from './index-pattern';
import { indexTemplateBody } from './index-template';

/** A record as the spool keeps it: id (`event.id`, the document's `_id`), route (`[index]`), JSON. */
export type BulkRecord = SpooledRecord;

/** The file name of the dead-letter file in the handler's data directory, by default. */
export const DEAD_LETTER_FILE_NAME = 'dead-letter.jsonl';

/** What the sink uses of its handler's environment. */
export type SinkEnvironment = Pick<
  AdapterEnv,
  'handlerName' | 'logger' | 'dataDir' | 'configFile' | 'now' | 'schedule'
>;

export interface ElasticsearchSinkStats {
  /** `_bulk` requests answered (whatever their items' outcomes). */
  readonly bulkRequests: number;
  /** `_bulk` requests that failed whole (connection refused, timeout, 5xx…). */
  readonly failedRequests: number;
  /** Records stored (a record the spool sends twice counts twice). */
  readonly indexedRecords: number;
  /** Items answered 429, 5xx or blocked, and sent again. */
  readonly retriedItems: number;
  /** Records written to the dead-letter file. */
  readonly deadLetteredRecords: number;
  readonly deadLetterFile: string;
  readonly templateInstalled: boolean;
}

interface BulkItemResult {
  readonly status: number;
  readonly error?: { readonly type?: string; readonly reason?: string } & Record<string, unknown>;
}

interface Pending {
  readonly record: BulkRecord;
  readonly index: string;
}

/** Thrown by `start` for what only a configuration change fixes. */
export class ElasticsearchConfigError extends Error {
  override readonly name = 'ElasticsearchConfigError';
}

export class ElasticsearchSink implements ExportSink {
  readonly description: string;
  private readonly pattern: IndexPattern;
  private readonly templateName: string;
  private readonly deadLetters: DeadLetterFile;
  private client: Client | undefined;
  private templateInstalled = false;
  private closed = false;
  private wake: (() => void) | undefined;
  /**
   * Ids of the batch being delivered that are settled (stored or dead-lettered) while the
   * delivery as a whole failed: when the sender offers the same batch again, they are not
   * sent again. Emptied when a delivery succeeds.
   */
  private readonly settled = new Set<string>();
  private counters = {
    bulkRequests: 0,
    failedRequests: 0,
    indexedRecords: 0,
    retriedItems: 0,
    deadLetteredRecords: 0,
  };

  constructor(
    private readonly params: ElasticsearchSinkParams,
    private readonly env: SinkEnvironment,
  ) {
    const pattern = IndexPattern.compile(params.index);
    if (Array.isArray(pattern)) throw new Error(`index ${pattern.map((p) => p.message).join('; ')}`);
    this.pattern = pattern;
    this.templateName = params.template.name ?? defaultTemplateName(params.index);
    this.description = `elasticsearch index ${params.index} at ${params.urls.join(', ')}`;
    const file = params.deadLetterFile ?? DEAD_LETTER_FILE_NAME;
    this.deadLetters = new DeadLetterFile(path.resolve(env.dataDir, file), params.deadLetterRotateBytes);
  }

  /** The index a record goes to: `[index]`. Never throws. */
  route(_instance: ExportedInstance | undefined, record: AuditRecord): readonly string[] {
    return [this.pattern.indexFor(record, this.env.now())];
  }

  /**
   * Creates the client and installs the index template.
   * @throws ElasticsearchConfigError when the CA file cannot be read, or the node refuses
   *   the credentials or the template; not when the node cannot be reached
   */
  async start(): Promise<void> {
    const { tls } = this.params;
    let ca: Buffer | undefined;
    if (tls.caFile !== undefined) {
      const configFile = this.env.configFile;
      const caFile = path.resolve(
        configFile === undefined ? process.cwd() : path.dirname(configFile),
        tls.caFile,
      );
      try {
        ca = await readFile(caFile);
      } catch (error) {
        throw new ElasticsearchConfigError(
          `tls.caFile ${caFile} cannot be read: ${(error as Error).message}`,
        );
      }
    }
    this.client = new Client({
      nodes: [...this.params.urls],
      ...(this.params.apiKey !== undefined ? { auth: { apiKey: this.params.apiKey } } : {}),
      ...(this.params.username !== undefined
        ? { auth: { username: this.params.username, password: this.params.password ?? '' } }
        : {}),
      tls: { ...(ca === undefined ? {} : { ca }), rejectUnauthorized: !tls.insecureSkipVerify },
      requestTimeout: this.params.requestTimeout,
      compression: this.params.compression,
      // Whole-request retries are the spool sender's: one attempt per call here.
      maxRetries: 0,
    });
    if (tls.insecureSkipVerify) {
      this.env.logger.warn(
        `${this.env.handlerName}: tls.insecureSkipVerify is on: any certificate is accepted, so audit records can be read and altered on the way to Elasticsearch`,
      );
    }
    try {
      await this.installTemplate();
    } catch (error) {
      if (!isUnreachable(error)) throw error;
      this.env.logger.warn(
        `${this.env.handlerName}: ${this.description} cannot be reached (${describe(error)}); ` +
          `the index template is installed before the first delivery, and records wait in the spool until then`,
      );
    }
  }

  async deliver(records: readonly BulkRecord[], signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new Error(`${this.description}: the sink is closed`);
    if (!this.templateInstalled) await this.installTemplate();
    let pending: Pending[] = [];
    for (const record of records) {
      if (!this.settled.has(record.id)) {
        pending.push({ record, index: record.route[0] ?? this.pattern.indexFor({}, this.env.now()) });
      }
    }
    const retry = this.params.itemRetry;
    for (let attempt = 1; pending.length > 0; attempt++) {
      const results = await this.bulk(pending);
      const again: Pending[] = [];
      const dead: DeadLetter[] = [];
      let missingIndex: string | undefined;
      let firstRetryReason: string | undefined;
      results.forEach((result, i) => {
        const item = pending[i]!;
        if (result.status >= 200 && result.status < 300) {
          this.counters.indexedRecords++;
          this.settled.add(item.record.id);
        } else if (isRetryable(result)) {
          again.push(item);
          firstRetryReason ??= `${result.status} ${result.error?.type ?? ''}`.trim();
        } else if (result.error?.type === 'index_not_found_exception') {
          // Automatic index creation is off on this cluster: create it (the template applies) and resend.
          missingIndex = item.index;
          again.push(item);
        } else {
          dead.push({
            index: item.index,
            id: item.record.id,
            status: result.status,
            reason: result.error ?? null,
            json: item.record.json,
          });
        }
      });
      if (dead.length > 0) await this.writeDeadLetters(dead);
      if (again.length === 0) break;
      if (missingIndex !== undefined) await this.createIndex(missingIndex);
      this.counters.retriedItems += again.length;
      if (attempt >= retry.maxAttempts) {
        throw new Error(
          `${again.length} of ${records.length} records still refused after ${attempt} attempts ` +
            `(${firstRetryReason ?? 'index missing'}); the batch is offered again later`,
        );
      }
      await this.pause(Math.min(retry.maxDelay, retry.minDelay * 2 ** (attempt - 1)), signal);
      if (this.closed || signal?.aborted === true) {
        throw new Error(`${this.description}: stopped while records were being retried`);
      }
      pending = again;
    }
    this.settled.clear();
  }

  stats(): ElasticsearchSinkStats & Record<string, unknown> {
    return {
      ...this.counters,
      deadLetterFile: this.deadLetters.file,
      templateInstalled: this.templateInstalled,
    };
  }

  /** Stops retrying and closes the client's connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    await this.client?.close();
  }

  /** One `_bulk` request; its items' results in the order sent. Rejects when it fails whole. */
  private async bulk(pending: readonly Pending[]): Promise<BulkItemResult[]> {
    const parts: Buffer[] = [];
    for (const { record, index } of pending) {
      parts.push(
        Buffer.from(`{"index":{"_index":${JSON.stringify(index)},"_id":${JSON.stringify(record.id)}}}\n`),
        record.json,
        NEWLINE,
      );
    }
    let body: { errors?: boolean; items?: Record<string, BulkItemResult>[] };
    try {
      body = await this.requireClient().transport.request(
        {
          method: 'POST',
          path: '/_bulk',
          bulkBody: Buffer.concat(parts),
          querystring: { filter_path: 'errors,items.*.status,items.*.error' },
        },
        { meta: false },
      );
    } catch (error) {
      this.counters.failedRequests++;
      throw new Error(`bulk request failed: ${describe(error)}`, { cause: error });
    }
    this.counters.bulkRequests++;
    const items = body.items ?? [];
    if (items.length !== pending.length) {
      throw new Error(`bulk answer has ${items.length} items for ${pending.length} actions`);
    }
    return items.map((item) => Object.values(item)[0] ?? { status: 0 });
  }

  private async writeDeadLetters(dead: readonly DeadLetter[]): Promise<void> {
    await this.deadLetters.append(dead, this.env.now());
    for (const letter of dead) this.settled.add(letter.id);
    this.counters.deadLetteredRecords += dead.length;
    const first = dead[0]!;
    const reason = first.reason as { type?: string; reason?: string } | null;
    this.env.logger.warn(
      `${this.env.handlerName}: Elasticsearch refused ${dead.length} record(s) for good ` +
        `(first: ${first.status} ${reason?.type ?? ''}: ${reason?.reason ?? ''}, index ${first.index}); ` +
        `written to the dead-letter file ${this.deadLetters.file}`,
    );
  }

  private async installTemplate(): Promise<void> {
    const body = indexTemplateBody({
      indexPattern: this.pattern.templatePattern,
      priority: this.params.template.priority,
      shards: this.params.template.shards,
      replicas: this.params.template.replicas,
      refreshInterval: this.params.template.refreshInterval,
    });
    try {
      await this.requireClient().transport.request(
        { method: 'PUT', path: `/_index_template/${encodeURIComponent(this.templateName)}`, body },
        { meta: false },
      );
    } catch (error) {
      if (isUnreachable(error)) throw error;
      throw new ElasticsearchConfigError(
        `installing the index template ${this.templateName} on ${this.params.urls.join(', ')} failed: ${describe(error)}${hint(error)}`,
        { cause: error },
      );
    }
    if (!this.templateInstalled) {
      this.env.logger.info(
        `${this.env.handlerName}: index template ${this.templateName} installed for ${this.pattern.templatePattern}`,
      );
    }
    this.templateInstalled = true;
  }

  private async createIndex(index: string): Promise<void> {
    try {
      await this.requireClient().transport.request(
        { method: 'PUT', path: `/${encodeURIComponent(index)}` },
        { meta: false },
      );
    } catch (error) {
      if (
        error instanceof errors.ResponseError &&
        JSON.stringify(error.body).includes('resource_already_exists')
      )
        return;
      throw new Error(`creating index ${index} failed: ${describe(error)}`, { cause: error });
    }
  }

  private requireClient(): Client {
    if (this.client === undefined) throw new Error(`${this.description}: start() was not called`);
    return this.client;
  }

  /** Waits `delayMs`, or until the sink closes or `signal` aborts. */
  private pause(delayMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted === true) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        timer.cancel();
        signal?.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = this.env.schedule(done, delayMs);
      this.wake = done;
      signal?.addEventListener('abort', done);
    });
  }
}

const NEWLINE = Buffer.from('\n');

/** 429 (rejected: busy), 408, 5xx, and cluster blocks (a full disk, an operator's write block) pass. */
function isRetryable(result: BulkItemResult): boolean {
  return (
    result.status === 429 ||
    result.status === 408 ||
    result.status >= 500 ||
    result.status === 0 ||
    result.error?.type === 'cluster_block_exception'
  );
}

/** Not a problem of configuration: the node is down, slow or busy. */
function isUnreachable(error: unknown): boolean {
  if (error instanceof errors.ConnectionError || error instanceof errors.TimeoutError) return true;
  if (error instanceof errors.NoLivingConnectionsError) return true;
  if (error instanceof errors.ResponseError) {
    const status = error.meta.statusCode ?? 0;
    return status === 429 || status >= 500;
  }
  return false;
}

function describe(error: unknown): string {
  if (error instanceof errors.ResponseError) {
    const body = error.meta.body as { error?: { type?: string; reason?: string } } | undefined;
    const cause = body?.error;
    return `${error.meta.statusCode ?? '?'} ${cause?.type ?? ''}: ${cause?.reason ?? error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

function hint(error: unknown): string {
  if (!(error instanceof errors.ResponseError)) return '';
  switch (error.meta.statusCode) {
    case 401:
      return ' (check apiKey, or username and password)';
    case 403:
      return ' (the user needs the manage_index_templates cluster privilege, and write and create_index on the indices)';
    case 400:
      return ' (another template of the same priority may match: set template.priority, or template.name)';
    default:
      return '';
  }
}
