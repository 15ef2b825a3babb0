/**
 * The kafkajs patches of kafkajs-patches.ts against the pinned kafkajs: they must apply
 * (this fails loudly when an upgrade moves or reshapes the modules they replace), and what
 * they produce must be byte for byte what kafkajs's own modules produce.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import '../../../../adapters/logging/kafka/kafka-sink';
import {
  frameKafkajsRequest,
  groupMessagesByPartition,
  installKafkajsLinearGrouping,
  installKafkajsProduceEncoder,
  installKafkajsRequestFraming,
  kafkajsUsesLinearGrouping,
  kafkajsUsesProduceEncoder,
  kafkajsUsesRequestFraming,
} from '../../../../adapters/logging/kafka/kafkajs-patches';

/* eslint-disable @typescript-eslint/no-require-imports */

/** kafkajs's own version of a module the adapter replaced: loaded afresh, the cache left as it was. */
function kafkajsOriginal<T>(name: string): T {
  const path = require.resolve(name);
  const installed = require.cache[path];
  delete require.cache[path];
  try {
    return require(path) as T;
  } finally {
    if (installed === undefined) delete require.cache[path];
    else require.cache[path] = installed;
  }
}

interface Request {
  apiKey: number;
  apiVersion: number;
  encode: () => Promise<{ buffer: Buffer }>;
}
type ProduceArgs = Record<string, unknown>;

type Framing = (args: { correlationId: number; clientId: string | null; request: Request }) => Promise<{
  buffer: Buffer;
}>;

/** The whole request as the installed framing (ours) or kafkajs's own frames it for the socket. */
async function framed(
  request: Request,
  framing: 'installed' | 'kafkajs',
  clientId: string | null = 'switchboard-test',
): Promise<Buffer> {
  const frame =
    framing === 'installed'
      ? (require('kafkajs/src/protocol/request.js') as Framing)
      : kafkajsOriginal<Framing>('kafkajs/src/protocol/request.js');
  return (await frame({ correlationId: 42, clientId, request })).buffer;
}

/** The same request encoded by the installed encoder (as kafkajs's broker asks for it) and by kafkajs's own. */
async function bothEncodings(args: ProduceArgs, version = 7): Promise<{ ours: Buffer; kafkajs: Buffer }> {
  const produce = require('kafkajs/src/protocol/requests/produce/index.js') as {
    protocol: (v: { version: number }) => (args: ProduceArgs) => { request: Request };
  };
  const kafkajsV3 = kafkajsOriginal<(args: ProduceArgs) => Request>(
    'kafkajs/src/protocol/requests/produce/v3/request.js',
  );
  const now = Date.now;
  Date.now = () => 1_764_201_600_123; // kafkajs stamps the batches with Date.now(), as the encoder does
  try {
    const request = produce.protocol({ version })(args).request;
    const reference = Object.assign(kafkajsV3(args), { apiVersion: request.apiVersion });
    return { ours: await framed(request, 'installed'), kafkajs: await framed(reference, 'kafkajs') };
  } finally {
    Date.now = now;
  }
}

function messages(count: number, valueBytes: (i: number) => number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) => ({
    key: i % 3 === 0 ? null : i % 3 === 1 ? `key-${i}` : Buffer.from(`bytes-key-${i}`),
    value: i % 2 === 0 ? 'é'.repeat(valueBytes(i) / 2) : randomBytes(valueBytes(i)),
    headers: { 'switchboard-event-id': randomBytes(16).toString('hex') },
  }));
}

describe('kafkajs patches (kafkajs 2.2.4)', () => {
  it('apply to the pinned kafkajs once the sink is loaded', () => {
    assert.equal(installKafkajsLinearGrouping(), true, 'kafkajs/src/producer/groupMessagesPerPartition.js');
    assert.equal(kafkajsUsesLinearGrouping(), true);
    assert.equal(installKafkajsProduceEncoder(), true, 'kafkajs/src/protocol/requests/produce/v3/request.js');
    assert.equal(kafkajsUsesProduceEncoder(), true);
    assert.equal(installKafkajsRequestFraming(), true, 'kafkajs/src/protocol/request.js');
    assert.equal(kafkajsUsesRequestFraming(), true);
  });

  it('frame requests byte for byte as kafkajs does, with or without a client id', async () => {
    const metadata = require('kafkajs/src/protocol/requests/metadata/index.js') as {
      protocol: (v: { version: number }) => (args: unknown) => { request: Request };
    };
    const request = metadata.protocol({ version: 6 })({
      topics: ['a', 'bé'],
      allowAutoTopicCreation: false,
    }).request;
    for (const clientId of ['switchboard', 'clïent-ü', '', null]) {
      const ours = await framed(request, 'installed', clientId);
      const theirs = await framed(request, 'kafkajs', clientId);
      assert.ok(ours.equals(theirs), `client id ${clientId}: the bytes differ`);
    }
    await assert.rejects(
      frameKafkajsRequest({
        correlationId: 1,
        clientId: 'x',
        request: { apiKey: 0, apiVersion: 0, encode: async () => ({}) },
      }),
      /value should be an instance of Encoder/,
    );
  });

  it('encode Produce requests byte for byte as kafkajs does, for every request version the encoder serves', async () => {
    const args = {
      acks: -1,
      timeout: 10_000,
      producerId: require('kafkajs/src/utils/long.js').fromValue('1234567890123'),
      producerEpoch: 3,
      compression: 0,
      topicData: [
        {
          topic: 'audit-bookinfo',
          partitions: [
            { partition: 0, firstSequence: 7, messages: messages(200, (i) => 2 * ((i * 37) % 9000)) },
            { partition: 3, firstSequence: 0, messages: messages(1, () => 1400) },
          ],
        },
        { topic: 'audit-ünïcode', partitions: [{ partition: 1, firstSequence: 2_000_000, messages: messages(65, (i) => 2 * i) }] }, // prettier-ignore
      ],
    };
    for (const version of [3, 4, 5, 6, 7]) {
      const { ours, kafkajs } = await bothEncodings(args, version);
      assert.equal(ours.length, kafkajs.length, `version ${version}`);
      assert.ok(ours.equals(kafkajs), `version ${version}: the bytes differ`);
    }
  });

  it('encode the rarer forms as kafkajs does: no producer id, transactional, header lists and bytes, absent values', async () => {
    const args = {
      acks: 1,
      timeout: 30_000,
      transactionalId: 'tx-1',
      topicData: [
        {
          topic: 't',
          partitions: [
            {
              partition: 2,
              messages: [
                { key: 'k', value: null },
                { value: 'v', headers: {} },
                {
                  key: Buffer.alloc(0),
                  value: '',
                  headers: { a: ['1', Buffer.from('2')], ü: Buffer.from([0, 255]) },
                },
                { value: Buffer.alloc(8192, 7), headers: { b: [] } },
              ],
            },
          ],
        },
      ],
    };
    const { ours, kafkajs } = await bothEncodings(args);
    assert.ok(ours.equals(kafkajs), 'the bytes differ');
    const { ours: none, kafkajs: noneReference } = await bothEncodings({
      ...args,
      transactionalId: undefined,
    });
    assert.ok(none.equals(noneReference), 'the bytes differ without a transactional id');
  });

  it('get partitions as numbers from kafkajs, as the encoder requires (else kafkajs encodes)', () => {
    // sendMessages groups by partition in an object (string keys); the cluster turns them
    // back into numbers when it finds their leaders, and createTopicData keeps those.
    const Cluster = require('kafkajs/src/cluster/index.js') as {
      prototype: { findLeaderForPartitions(topic: string, partitions: string[]): Record<string, unknown[]> };
    };
    const cluster = {
      findTopicPartitionMetadata: () => [
        { partitionId: 0, leader: 1 },
        { partitionId: 1, leader: 2 },
      ],
    };
    const byLeader = Cluster.prototype.findLeaderForPartitions.call(cluster, 't', ['0', '1']);
    assert.deepEqual(byLeader, { 1: [0], 2: [1] });
    const createTopicData = require('kafkajs/src/producer/createTopicData.js') as (
      data: unknown[],
    ) => { partitions: { partition: unknown }[] }[];
    const topicData = createTopicData([
      { topic: 't', partitions: byLeader[1], messagesPerPartition: { 0: [{ value: 'v' }] } },
    ]);
    assert.equal(typeof topicData[0]!.partitions[0]!.partition, 'number');
  });

  it('leave to kafkajs what the encoder does not write: compression and message timestamps', async () => {
    const topicData = [{ topic: 't', partitions: [{ partition: 0, messages: messages(5, () => 100) }] }];
    const gzip = await bothEncodings({ acks: -1, timeout: 1000, compression: 1, topicData });
    assert.ok(gzip.ours.equals(gzip.kafkajs));
    const stamped = [{ topic: 't', partitions: [{ partition: 0, messages: [{ value: 'v', timestamp: '1700000000000' }] }] }]; // prettier-ignore
    const timestamps = await bothEncodings({ acks: -1, timeout: 1000, topicData: stamped });
    assert.ok(timestamps.ours.equals(timestamps.kafkajs));
  });

  it('group messages by partition as kafkajs does', () => {
    const kafkajsGrouping = kafkajsOriginal<typeof groupMessagesByPartition>(
      'kafkajs/src/producer/groupMessagesPerPartition.js',
    );
    const partitionMetadata = [0, 1, 2, 3, 4].map((partitionId) => ({ partitionId, leader: 1 }));
    const list = Array.from({ length: 300 }, (_, i) => ({ value: String(i), key: String((i * 7) % 11) }));
    const partitioner = ({ message }: { message: unknown }): number =>
      Number((message as { key: string }).key) % 5;
    for (const args of [
      { topic: 't', partitionMetadata, messages: list, partitioner },
      { topic: 't', partitionMetadata: [], messages: list, partitioner },
      { topic: 't', partitionMetadata, messages: [], partitioner },
    ]) {
      const ours = groupMessagesByPartition(args);
      const theirs = kafkajsGrouping(args);
      assert.deepEqual(Object.keys(ours), Object.keys(theirs));
      assert.deepEqual(ours, theirs);
    }
  });
});
