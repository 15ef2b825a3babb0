import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ElasticsearchSink, DEAD_LETTER_FILE_NAME } from '../../../../adapters/logging/elasticsearch';
import { ElasticsearchNode, ELASTICSEARCH_START_MS } from '../../../support/elasticsearch-node';
import { freePort } from '../../../support/redis-servers';
import { count, dig, documents, sinkEnvironment, sinkParams, spooledRecord } from './support';

describe('elasticsearch: the sink against a real node', function () {
  this.timeout(ELASTICSEARCH_START_MS + 60_000);
  let node: ElasticsearchNode;
  const cleanups: (() => Promise<void> | void)[] = [];

  before(async () => {
    node = await ElasticsearchNode.start();
    await node.warmUp();
  });
  after(async () => {
    await node?.dispose();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await node.call('DELETE', '/sink-*?ignore_unavailable=true');
  });

  async function startSink(params: Record<string, unknown>) {
    const { env, logger, dispose } = sinkEnvironment();
    const sink = new ElasticsearchSink(
      sinkParams({ urls: [node.url], template: { replicas: 0 }, ...params }),
      env,
    );
    cleanups.push(async () => {
      await sink.close();
      dispose();
    });
    await sink.start();
    return { sink, env, logger };
  }

  it('installs the index template with the audit mappings for every index its pattern names', async () => {
    await startSink({ index: 'sink-a-{yyyy.MM.dd}', template: { name: 'sink-a', replicas: 0, shards: 2 } });
    const answer = await node.call('GET', '/_index_template/sink-a');
    const template = dig(answer, 'index_templates.0.index_template');
    assert.deepEqual(dig(template, 'index_patterns'), ['sink-a-*']);
    assert.equal(dig(template, '_meta.schema_version'), '1.1.0');
    assert.equal(dig(template, 'template.settings.index.number_of_shards'), '2');
    const properties = dig(template, 'template.mappings.properties');
    assert.equal(dig(properties, 'switchboard.properties.variables.type'), 'flattened');
    assert.equal(dig(properties, 'source.properties.ip.type'), 'ip');
  });

  it('indexes records by their date, complete, with _id = event.id, and a replay makes no duplicate', async () => {
    const { sink } = await startSink({ index: 'sink-b-{yyyy.MM.dd}' });
    const records = Array.from({ length: 500 }, (_, n) =>
      spooledRecord(n * 600, (r) => sink.route(undefined, r)),
    );
    const days = new Set(records.map((r) => r.route[0]));
    assert.ok(days.size >= 3, `the records span several days: ${[...days].join(', ')}`);
    await sink.deliver(records);
    await sink.deliver(records.slice(100, 300)); // the spool sends a batch again after a crash
    for (const day of days) assert.match(day!, /^sink-b-\d{4}\.\d{2}\.\d{2}$/);
    const stored = await documents(node, 'sink-b-*');
    assert.equal(stored.size, 500);
    for (const { id, record } of records) assert.deepEqual(stored.get(id), record);
    assert.equal(await count(node, 'sink-b-*'), 500);
    const mapping = await node.call('GET', `/${records[0]!.route[0]}/_mapping`);
    const properties = dig(Object.values(mapping as object)[0], 'mappings.properties') as Record<
      string,
      unknown
    >;
    assert.equal(dig(properties['@timestamp'], 'type'), 'date_nanos');
    assert.equal(dig(properties, 'http.properties.response.properties.status_code.type'), 'long');
    // Variables are searchable by name inside the flattened field.
    const found = (await node.call('POST', '/sink-b-*/_search', {
      query: { term: { 'switchboard.variables.requestHeaders.x-tenant': 'acme' } },
      size: 0,
      track_total_hits: true,
    })) as { hits: { total: { value: number } } };
    assert.equal(found.hits.total.value, 500);
    assert.deepEqual(sink.stats().deadLetteredRecords, 0);
  });

  it('chooses the index by a field of the record, with its fallback', async () => {
    const { sink } = await startSink({ index: 'sink-c-{switchboard.destination.namespace|none}-{yyyy.MM}' });
    const inDefault = spooledRecord(1, (r) => sink.route(undefined, r));
    const inShop = spooledRecord(2, (r) => sink.route(undefined, r), { destinationNamespace: 'Shop' });
    const nowhere = spooledRecord(3, (r) => {
      delete (r['switchboard'] as Record<string, unknown>)['destination'];
      return sink.route(undefined, r);
    });
    assert.match(inDefault.route[0]!, /^sink-c-default-\d{4}\.\d{2}$/);
    assert.match(inShop.route[0]!, /^sink-c-shop-\d{4}\.\d{2}$/);
    assert.match(nowhere.route[0]!, /^sink-c-none-\d{4}\.\d{2}$/);
    await sink.deliver([inDefault, inShop, nowhere]);
    assert.equal(await count(node, 'sink-c-default-*'), 1);
    assert.equal(await count(node, 'sink-c-shop-*'), 1);
    assert.equal(await count(node, 'sink-c-none-*'), 1);
  });

  it('keeps a record with a malformed address (the field is ignored, the record indexed)', async () => {
    const { sink } = await startSink({ index: 'sink-d-{yyyy.MM.dd}' });
    const record = spooledRecord(1, (r) => sink.route(undefined, r), { responseCode: 'not-a-number' });
    await sink.deliver([record]);
    const stored = await documents(node, 'sink-d-*');
    assert.deepEqual(stored.get(record.id), record.record);
    assert.equal(sink.stats().deadLetteredRecords, 0);
  });

  it('writes an item refused for a mapping conflict to the dead-letter file with its reason, and stores the rest', async () => {
    const { sink, env, logger } = await startSink({ index: 'sink-e-{yyyy.MM.dd}' });
    const records = Array.from({ length: 20 }, (_, n) => spooledRecord(n, (r) => sink.route(undefined, r)));
    // An index made before the template, by another tool, where the decision is a number.
    const index = records[0]!.route[0]!;
    await node.call('PUT', `/${index}`, {
      settings: { number_of_replicas: 0 },
      mappings: { properties: { switchboard: { properties: { decision: { type: 'long' } } } } },
    });
    const conflicting = spooledRecord(5, (r) => sink.route(undefined, r), { decision: 'ALLOW' });
    records[5] = conflicting;
    await sink.deliver(records);
    assert.equal(sink.stats().deadLetteredRecords, 1);
    assert.equal(await count(node, 'sink-e-*'), 19);
    const lines = readFileSync(join(env.dataDir, DEAD_LETTER_FILE_NAME), 'utf8').trim().split('\n');
    assert.equal(lines.length, 1);
    const letter = JSON.parse(lines[0]!);
    assert.equal(letter.id, conflicting.id);
    assert.equal(letter.index, index);
    assert.equal(letter.status, 400);
    assert.match(letter.reason.type, /parsing_exception/);
    assert.match(letter.reason.reason, /switchboard\.decision/);
    assert.deepEqual(letter.record, conflicting.record);
    assert.ok(
      logger.lines.some((line) => line.includes('dead-letter')),
      logger.lines.join('\n'),
    );
  });

  it('rejects a delivery when no node answers (so the spool offers the batch again later)', async () => {
    const port = await freePort();
    const { env, dispose } = sinkEnvironment();
    const sink = new ElasticsearchSink(
      sinkParams({
        urls: [`http://127.0.0.1:${port}`],
        index: 'sink-f-{yyyy.MM.dd}',
        template: { replicas: 0 },
      }),
      env,
    );
    cleanups.push(async () => {
      await sink.close();
      dispose();
    });
    await sink.start(); // an unreachable node is not a configuration error
    assert.equal(sink.stats().templateInstalled, false);
    const record = spooledRecord(1, (r) => sink.route(undefined, r));
    await assert.rejects(sink.deliver([record]), /ECONNREFUSED|ConnectionError|connect/i);
  });

  it('refuses to start when Elasticsearch refuses the template (another of the same priority)', async () => {
    await node.call('PUT', '/_index_template/someone-elses', { index_patterns: ['sink-g-*'], priority: 200 });
    cleanups.push(async () => {
      await node.call('DELETE', '/_index_template/someone-elses');
    });
    const { env, dispose } = sinkEnvironment();
    const sink = new ElasticsearchSink(
      sinkParams({ urls: [node.url], index: 'sink-g-{yyyy.MM.dd}', template: { replicas: 0 } }),
      env,
    );
    cleanups.push(async () => {
      await sink.close();
      dispose();
    });
    await assert.rejects(sink.start(), /installing the index template switchboard-sink-g on .* failed: 400/);
  });
});
