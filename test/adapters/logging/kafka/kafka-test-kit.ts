/** Helpers of the kafka adapter's tests: reading a topic back with kafkajs, a logger that keeps its lines. */
import { Kafka, logLevel } from 'kafkajs';
import type { AdapterLogger } from '../../../../adapters';
import type { KafkaBroker } from '../../../support/kafka-broker';

export interface ReadMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: string;
  readonly headers: Record<string, string>;
}

/**
 * Every message of `topic` from the beginning, in partition then offset order; waits until
 * at least `expected` are there (at most `timeoutMs`), then reads to the end.
 */
export async function readTopic(
  broker: KafkaBroker,
  topic: string,
  expected: number,
  timeoutMs = 120_000,
): Promise<ReadMessage[]> {
  const kafka = new Kafka({ clientId: 'test-reader', brokers: [broker.address], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const deadline = Date.now() + timeoutMs;
  let ends: { partition: number; high: string }[];
  try {
    for (;;) {
      ends = (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, high: p.high }));
      const total = ends.reduce((sum, p) => sum + Number(p.high), 0);
      if (total >= expected || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await admin.disconnect();
  }
  const consumer = kafka.consumer({ groupId: `reader-${topic}-${Date.now()}-${Math.random()}` });
  const messages: ReadMessage[] = [];
  const remaining = new Map(ends.filter((p) => p.high !== '0').map((p) => [p.partition, BigInt(p.high)]));
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      if (remaining.size === 0) {
        resolve();
        return;
      }
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const headers: Record<string, string> = {};
            for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
            messages.push({
              topic,
              partition,
              offset: message.offset,
              key: message.key === null ? null : message.key.toString(),
              value: message.value?.toString() ?? '',
              headers,
            });
            if (BigInt(message.offset) + 1n >= (remaining.get(partition) ?? 0n)) remaining.delete(partition);
            if (remaining.size === 0) resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return messages.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}

/** A logger that keeps what it is told. */
export function recordingLogger(): { logger: AdapterLogger; lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    logger: {
      info: (m) => lines.push(`info: ${m}`),
      warn: (m) => lines.push(`warn: ${m}`),
      error: (m) => lines.push(`error: ${m}`),
    },
  };
}
