/** Shared by the elasticsearch adapter's tests: records, an environment, and reading back. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdapterEnv, type AdapterLogger } from '../../../../adapters';
import { parseWithSchema } from '../../../../adapters';
import {
  Redactor,
  buildAuditRecord,
  type AuditRecord,
  type JsonValue,
} from '../../../../adapters/logging/audit';
import {
  ELASTICSEARCH_SINK_SCHEMA,
  type ElasticsearchSinkParams,
  type BulkRecord,
  type SinkEnvironment,
} from '../../../../adapters/logging/elasticsearch';
import { FlatStringMap, IpAddress, Timestamp, type AttributeValue } from '../../../../attributes';
import type { LogEntryInstance } from '../../../../templates';
import type { ElasticsearchNode } from '../../../support/elasticsearch-node';

/** A logger that keeps its lines. */
export class MemoryLogger implements AdapterLogger {
  readonly lines: string[] = [];
  info(message: string): void {
    this.lines.push(`info ${message}`);
  }
  warn(message: string): void {
    this.lines.push(`warn ${message}`);
  }
  error(message: string): void {
    this.lines.push(`error ${message}`);
  }
}

/** An environment with its own data directory, and a dispose for after the test. */
export function sinkEnvironment(): { env: SinkEnvironment; logger: MemoryLogger; dispose: () => void } {
  const logger = new MemoryLogger();
  const dataDir = mkdtempSync(join(tmpdir(), 'switchboard-es-sink-'));
  const owned = createAdapterEnv('audit.handler.istio-system', logger, Date.now, { dataDir });
  return {
    env: owned.env,
    logger,
    dispose: () => {
      owned.dispose();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The sink's parameters from a mapping (defaults applied), or an error listing the problems. */
export function sinkParams(input: Record<string, unknown>): ElasticsearchSinkParams {
  const outcome = parseWithSchema(ELASTICSEARCH_SINK_SCHEMA, input);
  if (!outcome.ok) throw new Error(JSON.stringify(outcome.problems));
  return outcome.value;
}

/** A logentry instance with Istio's accesslog variables, numbered. */
export function accessLogInstance(n: number, extra: Record<string, AttributeValue> = {}): LogEntryInstance {
  return {
    name: 'accesslog.instance.istio-system',
    variables: new Map<string, AttributeValue>(
      Object.entries({
        sourceIp: IpAddress.parse('10.1.2.3')!,
        sourcePrincipal: 'spiffe://cluster.local/ns/default/sa/productpage',
        destinationServiceHost: 'reviews.default.svc.cluster.local',
        destinationNamespace: 'default',
        method: 'GET',
        path: `/reviews/${n}`,
        responseCode: 200n,
        requestHeaders: new FlatStringMap(['authorization', 'Bearer secret', 'x-tenant', 'acme']),
        sequence: BigInt(n),
        ...extra,
      }),
    ),
    timestamp: new Timestamp(1_795_000_000 + n, 123_456_789),
    severity: 'Info',
    monitoredResourceType: '',
    monitoredResourceDimensions: new Map(),
  };
}

/** The record the export handler would spool for an instance, routed by `route`. */
export function spooledRecord(
  n: number,
  route: (record: AuditRecord) => readonly string[],
  extra: Record<string, AttributeValue> = {},
): BulkRecord & { readonly record: Record<string, JsonValue> } {
  const id = `record-${String(n).padStart(8, '0')}`;
  const record = buildAuditRecord(
    accessLogInstance(n, extra),
    { id, handlerName: 'audit.handler.istio-system', nowMs: Date.now() },
    new Redactor([], undefined),
  );
  return { id, route: route(record), json: Buffer.from(JSON.stringify(record)), record };
}

/** Every document of `index` (after a refresh), by _id. */
export async function documents(
  node: ElasticsearchNode,
  index: string,
): Promise<Map<string, Record<string, unknown>>> {
  await node.call('POST', `/${index}/_refresh`);
  const found = new Map<string, Record<string, unknown>>();
  let answer = (await node.call('POST', `/${index}/_search?scroll=1m`, {
    size: 1000,
    sort: ['_doc'],
  })) as SearchAnswer;
  while (answer.hits.hits.length > 0) {
    for (const hit of answer.hits.hits) found.set(hit._id, hit._source);
    answer = (await node.call('POST', '/_search/scroll', {
      scroll: '1m',
      scroll_id: answer._scroll_id,
    })) as SearchAnswer;
  }
  await node.request('DELETE', '/_search/scroll', { scroll_id: answer._scroll_id });
  return found;
}

/** How many documents `index` holds (after a refresh). */
export async function count(node: ElasticsearchNode, index: string): Promise<number> {
  await node.call('POST', `/${index}/_refresh?ignore_unavailable=true&allow_no_indices=true`);
  const answer = (await node.call(
    'GET',
    `/${index}/_count?ignore_unavailable=true&allow_no_indices=true`,
  )) as {
    count: number;
  };
  return answer.count;
}

interface SearchAnswer {
  _scroll_id: string;
  hits: { hits: { _id: string; _source: Record<string, unknown> }[] };
}

/** The value at a dotted path of a parsed JSON answer (`a.b.c`), or undefined. */
export function dig(value: unknown, dotted: string): unknown {
  let node = value;
  for (const key of dotted.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}
