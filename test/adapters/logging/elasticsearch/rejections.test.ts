import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdapterEnv, parseWithSchema } from '../../../../adapters';
import { ELASTICSEARCH, ElasticsearchSink } from '../../../../adapters/logging/elasticsearch';
import type { ExportHandler } from '../../../../adapters/logging/export';
import { ElasticsearchNode, ELASTICSEARCH_START_MS } from '../../../support/elasticsearch-node';
import {
  MemoryLogger,
  accessLogInstance,
  count,
  documents,
  sinkEnvironment,
  sinkParams,
  spooledRecord,
} from './support';

/**
 * Elasticsearch's own 429s: a node whose write thread pool has one thread and a queue of
 * one, and indices of eight shards, so a bulk request's per-shard tasks overflow the queue
 * and the node answers `429 es_rejected_execution_exception` for the items of the shards it
 * could not queue — the rejection a busy cluster gives, not a stand-in.
 */
describe('elasticsearch: items rejected with 429 by a busy node', function () {
  this.timeout(ELASTICSEARCH_START_MS + 120_000);
  let node: ElasticsearchNode;

  before(async () => {
    node = await ElasticsearchNode.start({
      settings: { 'thread_pool.write.size': 1, 'thread_pool.write.queue_size': 1 },
    });
  });
  after(async () => {
    await node?.dispose();
  });

  it('sends the rejected items again until every record is stored, none lost and none twice', async () => {
    const { env, logger, dispose } = sinkEnvironment();
    const sink = new ElasticsearchSink(
      sinkParams({
        urls: [node.url],
        index: 'busy-{yyyy.MM.dd}',
        template: { shards: 8, replicas: 0 },
        itemRetry: { maxAttempts: 100, minDelay: '20ms', maxDelay: '200ms' },
      }),
      env,
    );
    try {
      await sink.start();
      const records = Array.from({ length: 3000 }, (_, n) =>
        spooledRecord(n, (r) => sink.route(undefined, r)),
      );
      for (let at = 0; at < records.length; at += 1000) await sink.deliver(records.slice(at, at + 1000));
      const stats = sink.stats();
      assert.ok(stats.retriedItems > 0, `the node rejected items: ${JSON.stringify(stats)}`);
      assert.equal(stats.deadLetteredRecords, 0);
      const pools = (await node.call('GET', '/_cat/thread_pool/write?format=json&h=rejected')) as {
        rejected: string;
      }[];
      assert.ok(Number(pools[0]!.rejected) > 0, 'the rejections were the node’s own');
      assert.equal(await count(node, 'busy-*'), 3000);
      const stored = await documents(node, 'busy-*');
      for (const { id, record } of records) assert.deepEqual(stored.get(id), record);
      assert.deepEqual(
        logger.lines.filter((line) => !line.startsWith('info')),
        [],
        'retried items are not warnings',
      );
    } finally {
      await sink.close();
      dispose();
    }
  });

  it('fails a delivery whose items stay rejected, so the spool offers the batch again; stored items are not resent', async () => {
    const { env, dispose } = sinkEnvironment();
    const sink = new ElasticsearchSink(
      sinkParams({
        urls: [node.url],
        index: 'busier-{yyyy.MM.dd}',
        template: { shards: 8, replicas: 0 },
        itemRetry: { maxAttempts: 1, minDelay: '10ms', maxDelay: '10ms' },
      }),
      env,
    );
    try {
      await sink.start();
      const records = Array.from({ length: 1000 }, (_, n) =>
        spooledRecord(n, (r) => sink.route(undefined, r)),
      );
      let failures = 0;
      for (;;) {
        try {
          await sink.deliver(records); // what the spool's sender does: the same batch until it is taken
          break;
        } catch (error) {
          // Items refused after their one attempt — or, now and then, the whole bulk request
          // refused by the busy node before it reached the shards: both fail the delivery.
          assert.match(
            (error as Error).message,
            /still refused after 1 attempts \(429 es_rejected_execution_exception\)|^bulk request failed: 429 es_rejected_execution_exception/,
          );
          failures++;
        }
      }
      assert.ok(failures > 0);
      assert.equal(await count(node, 'busier-*'), 1000);
      // Each record was stored once: the offers after a failure sent only what was still refused.
      assert.equal(sink.stats().indexedRecords, 1000);
    } finally {
      await sink.close();
      dispose();
    }
  });

  it('through the adapter: every record accepted into the spool is stored, though the node keeps rejecting', async () => {
    const parsed = parseWithSchema(ELASTICSEARCH.config, {
      urls: [node.url],
      index: 'busiest-{yyyy.MM.dd}',
      template: { shards: 8, replicas: 0 },
      itemRetry: { maxAttempts: 2, minDelay: '10ms', maxDelay: '10ms' },
      delivery: { minRetryDelay: '10ms', maxRetryDelay: '50ms' },
    });
    assert.ok(parsed.ok, parsed.ok ? '' : JSON.stringify(parsed.problems));
    const dataDir = mkdtempSync(join(tmpdir(), 'switchboard-es-busy-'));
    const owned = createAdapterEnv('audit.handler.istio-system', new MemoryLogger(), Date.now, { dataDir });
    const handler = (await ELASTICSEARCH.build(parsed.value, owned.env)) as ExportHandler;
    try {
      for (let call = 0; call < 30; call++) {
        const instances = Array.from({ length: 100 }, (_, i) => accessLogInstance(call * 100 + i));
        await handler.handleLogEntry(instances, {
          signal: new AbortController().signal,
          deduplicationId: `busy-${call}/audit.handler.istio-system/logentry`,
        });
      }
      await handler.delivered();
      const stats = handler.stats() as { retriedItems: number; deadLetteredRecords: number };
      assert.ok(stats.retriedItems > 0, `the node rejected items: ${JSON.stringify(stats)}`);
      assert.equal(stats.deadLetteredRecords, 0);
      assert.equal(await count(node, 'busiest-*'), 3000);
    } finally {
      await handler.close();
      owned.dispose();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
