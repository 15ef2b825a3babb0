import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import type { SpooledRecord } from '../../../../adapters/logging/export';
import { KafkaSink } from '../../../../adapters/logging/kafka/kafka-sink';
import { parseWithSchema, s } from '../../../../adapters';
import { KAFKA_SINK_PARAMS, type KafkaSinkParams } from '../../../../adapters/logging/kafka/config';
import { KafkaBroker, requireKcat } from '../../../support/kafka-broker';
import { readTopic, recordingLogger } from './kafka-test-kit';

process.env['KAFKAJS_NO_PARTITIONER_WARNING'] = '1';

function params(broker: KafkaBroker, extra: Record<string, unknown>): KafkaSinkParams {
  const parsed = parseWithSchema(s.object(KAFKA_SINK_PARAMS), { brokers: [broker.address], ...extra });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return parsed.value;
}

function records(
  sink: KafkaSink,
  count: number,
  variables: Record<string, string> = {},
  from = 0,
): SpooledRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const id = `id-${String(from + i).padStart(6, '0')}`;
    const vars = new Map<string, string>(Object.entries({ n: String(from + i), ...variables }));
    return {
      id,
      route: sink.route({ variables: vars }),
      json: Buffer.from(JSON.stringify({ event: { id }, n: from + i })),
    };
  });
}

describe('adapters/logging/kafka: KafkaSink against a real broker', function () {
  this.timeout(300_000);
  let broker: KafkaBroker;
  const sinks: KafkaSink[] = [];
  const open = (p: KafkaSinkParams): KafkaSink => {
    const sink = new KafkaSink(p, { logger: recordingLogger().logger, handlerName: 'sink.handler.test' });
    sinks.push(sink);
    return sink;
  };

  before(async () => {
    broker = await KafkaBroker.start({ scramUser: { name: 'audit', password: 'audit-secret' }, tls: true });
  });
  afterEach(async () => {
    await Promise.all(sinks.splice(0).map((sink) => sink.close()));
  });
  after(async () => {
    await broker?.stop();
  });

  it('creates the topic, produces in order with headers, and kcat reads the same', async () => {
    const sink = open(
      params(broker, { topic: 'fixed', createTopics: { partitions: 1 }, headers: { 'x-source': '{src}' } }),
    );
    await sink.start();
    await sink.deliver(records(sink, 50, { src: 'reviews' }));
    const got = await readTopic(broker, 'fixed', 50);
    assert.deepEqual(
      got.map((m) => JSON.parse(m.value).n),
      [...Array(50).keys()],
    );
    assert.equal(got[0]!.headers['x-source'], 'reviews');
    assert.equal(got[0]!.headers['switchboard-event-id'], 'id-000000');
    requireKcat();
    const kcat = spawnSync('kcat', ['-C', '-b', broker.address, '-t', 'fixed', '-e', '-q', '-f', '%s\\n'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(kcat.status, 0, kcat.stderr);
    assert.deepEqual(
      kcat.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).n),
      [...Array(50).keys()],
    );
  });

  it('splits a delivery into requests of maxRequestBytes, and a topic per namespace by template', async () => {
    const sink = open(
      params(broker, {
        topic: 'audit-{ns|none}',
        key: '{app}',
        createTopics: { partitions: 3 },
        maxRequestBytes: 2048,
      }),
    );
    await sink.start();
    await sink.deliver([
      ...records(sink, 30, { ns: 'a/b', app: 'x' }),
      ...records(sink, 20, { app: 'y' }, 30),
    ]);
    assert.ok(sink.stats().producedRequests > 1, JSON.stringify(sink.stats()));
    const a = await readTopic(broker, 'audit-a_b', 30);
    const none = await readTopic(broker, 'audit-none', 20);
    assert.equal(a.length, 30);
    assert.equal(none.length, 20);
    assert.deepEqual(new Set(a.map((m) => m.key)), new Set(['x']));
    assert.equal(new Set(a.map((m) => m.partition)).size, 1, 'one key, one partition');
    assert.deepEqual(
      a.map((m) => JSON.parse(m.value).n),
      [...Array(30).keys()],
    );
  });

  it('authenticates with SASL SCRAM-SHA-512, and refuses to start with a wrong password', async () => {
    const sasl = (password: string): KafkaSinkParams =>
      params(broker, {
        brokers: [broker.saslAddress],
        topic: 'scram',
        createTopics: {},
        sasl: { mechanism: 'SCRAM-SHA-512', username: 'audit', password },
      });
    const sink = open(sasl('audit-secret'));
    await sink.start();
    await sink.deliver(records(sink, 5));
    assert.equal((await readTopic(broker, 'scram', 5)).length, 5);
    const refused = open(sasl('wrong'));
    await assert.rejects(refused.start(), /SASL SCRAM SHA512 authentication failed/);
  });

  it('authenticates with SASL PLAIN over TLS, and refuses to start with a wrong password', async () => {
    const plain = (password: string): KafkaSinkParams =>
      params(broker, {
        brokers: [broker.saslTlsAddress],
        topic: 'plain',
        createTopics: {},
        tls: { caFile: broker.caFile },
        sasl: { mechanism: 'PLAIN', username: 'audit', password },
      });
    const sink = open(plain('audit-secret'));
    await sink.start();
    await sink.deliver(records(sink, 5));
    assert.equal((await readTopic(broker, 'plain', 5)).length, 5);
    const refused = open(plain('wrong'));
    await assert.rejects(refused.start(), /SASL PLAIN authentication failed/);
  });

  it("speaks TLS, checking the brokers' certificate against caFile, and refuses one it cannot verify", async () => {
    const tls = (tlsParams: Record<string, unknown>): KafkaSinkParams =>
      params(broker, { brokers: [broker.tlsAddress], topic: 'tls', createTopics: {}, tls: tlsParams });
    const sink = open(tls({ caFile: broker.caFile }));
    await sink.start();
    await sink.deliver(records(sink, 5));
    assert.equal((await readTopic(broker, 'tls', 5)).length, 5);
    const unverified = open(tls({}));
    await assert.rejects(unverified.start(), /self[- ]signed certificate/);
  });

  it('refuses to start for a missing topic it may not create, naming the fix', async () => {
    const sink = open(params(broker, { topic: 'absent' }));
    await assert.rejects(sink.start(), {
      message:
        'kafka topic absent does not exist: create it, or set params.createTopics to let the adapter create it',
    });
  });

  it('rejects a delivery while the broker is down and delivers once it is back, without duplicates', async () => {
    const sink = open(
      params(broker, { topic: 'outage', createTopics: {}, connectionTimeout: '1s', requestTimeout: '3s' }),
    );
    await sink.start();
    await sink.deliver(records(sink, 10));
    await broker.halt();
    try {
      await assert.rejects(sink.deliver(records(sink, 10, {}, 10)));
    } finally {
      await broker.resume();
    }
    const batch = records(sink, 10, {}, 10);
    for (;;) {
      try {
        await sink.deliver(batch);
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    const got = await readTopic(broker, 'outage', 20);
    assert.deepEqual(
      got.map((m) => JSON.parse(m.value).n),
      [...Array(20).keys()],
    );
  });
});
