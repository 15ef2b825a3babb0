/**
 * The Kafka sink of the export layer: records from the spool are produced with kafkajs, in
 * order, with `acks: all` and the idempotent producer, and a delivery resolves only once
 * the brokers acknowledged every record of it.
 *
 * Failing fast, retrying whole: kafkajs gets a small retry budget (a few hundred ms) and
 * short timeouts, so an unreachable broker fails the delivery within seconds; the spool's
 * sender then offers the same batch again with back-off for as long as the outage lasts.
 *
 * No duplicates from resends, as far as Kafka allows:
 * - Partitions are chosen deterministically (by key, else by the record's id), so the same
 *   batch offered again forms the same produce batches with the same producer sequence
 *   numbers; a batch the broker stored but whose acknowledgement was lost is recognised by
 *   the broker as a duplicate and not written twice.
 * - A delivery larger than `maxRequestBytes` is produced as several requests; when a later
 *   one fails, the sink remembers how many went through, and when the sender offers the same
 *   batch again it resumes after them.
 * - A producer the brokers no longer recognise (its id expired, a sequence gap) is replaced
 *   by a new one (`producerResets` counts them): only then can a batch that was stored
 *   before the failure be written again.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ConnectionOptions } from 'node:tls';
// Before kafkajs loads: its checksum, grouping, framing and Produce encoding replaced (use-kafkajs-patches.ts).
import './use-kafkajs-patches';
import {
  CompressionTypes,
  Kafka,
  Partitioners,
  logLevel,
  type Admin,
  type Message,
  type PartitionerArgs,
  type Producer,
  type SASLOptions,
  type TopicMessages,
} from 'kafkajs';
import type { AdapterEnv } from '../../contract';
import type { ExportSink, ExportedInstance, SpooledRecord } from '../export';
import {
  finishTopic,
  parseKafkaTemplates,
  sanitizeTopicPart,
  type KafkaRouteTemplates,
  type KafkaSinkParams,
} from './config';

/** What the sink needs of the handler's environment. */
export type KafkaSinkEnvironment = Pick<AdapterEnv, 'logger' | 'handlerName' | 'configFile'>;

/** Counters, for stats() and tests. */
export interface KafkaSinkStats {
  /** Records the brokers acknowledged (a record produced again after a lost acknowledgement counts twice). */
  producedRecords: number;
  /** Produce requests acknowledged. */
  producedRequests: number;
  producedBytes: number;
  /** Deliveries that failed (and are offered again by the sender). */
  failedDeliveries: number;
  /** Produce requests skipped when a batch was offered again, because they had been acknowledged. */
  skippedRequests: number;
  topicsCreated: number;
  producerResets: number;
}

/** kafkajs error types after which the producer must be replaced. */
const PRODUCER_STATE_ERRORS = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
  'INVALID_PRODUCER_ID_MAPPING',
]);

/** How long creating a topic may take until every partition has a leader. */
const TOPIC_READY_TIMEOUT_MS = 30_000;

/** Bytes a message adds to a request besides its value, key and headers (record framing), roughly. */
const RECORD_OVERHEAD_BYTES = 32;

/** A delivery that failed part way: the same batch offered again resumes after `requestsDone`. */
interface Progress {
  readonly firstId: string;
  readonly lastId: string;
  readonly count: number;
  requestsDone: number;
}

export class KafkaSink implements ExportSink {
  readonly description: string;
  private readonly templates: KafkaRouteTemplates;
  private readonly kafka: Kafka;
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;
  private readonly knownTopics = new Set<string>();
  private progress: Progress | undefined;
  private closed = false;
  private readonly counters: KafkaSinkStats = {
    producedRecords: 0,
    producedRequests: 0,
    producedBytes: 0,
    failedDeliveries: 0,
    skippedRequests: 0,
    topicsCreated: 0,
    producerResets: 0,
  };
  private readonly compression: CompressionTypes;

  /**
   * Reads the TLS files and the SASL password file named in `params` (relative paths against
   * the configuration file's folder); does not connect.
   * @throws Error naming the field when a file cannot be read
   */
  constructor(
    private readonly params: KafkaSinkParams,
    private readonly env: KafkaSinkEnvironment,
  ) {
    this.templates = parseKafkaTemplates(params);
    this.description = `kafka topic ${params.topic} at ${params.brokers.join(',')}`;
    this.compression = params.compression === 'GZIP' ? CompressionTypes.GZIP : CompressionTypes.None;
    const base = env.configFile === undefined ? process.cwd() : path.dirname(path.resolve(env.configFile));
    const read = (field: string, file: string): string => {
      try {
        return readFileSync(path.resolve(base, file), 'utf8');
      } catch (error) {
        throw new Error(`${field}: cannot read ${file}: ${(error as Error).message}`, { cause: error });
      }
    };
    let ssl: ConnectionOptions | boolean = false;
    if (params.tls !== undefined) {
      const tls = params.tls;
      ssl = {
        rejectUnauthorized: !tls.insecureSkipVerify,
        ...(tls.caFile === undefined ? {} : { ca: [read('tls.caFile', tls.caFile)] }),
        ...(tls.certFile === undefined ? {} : { cert: read('tls.certFile', tls.certFile) }),
        ...(tls.keyFile === undefined ? {} : { key: read('tls.keyFile', tls.keyFile) }),
        ...(tls.serverName === undefined ? {} : { servername: tls.serverName }),
      };
    }
    let sasl: SASLOptions | undefined;
    if (params.sasl !== undefined) {
      const password =
        params.sasl.password ??
        read('sasl.passwordFile', params.sasl.passwordFile ?? '').replace(/\r?\n$/, '');
      const username = params.sasl.username;
      sasl =
        params.sasl.mechanism === 'PLAIN'
          ? { mechanism: 'plain', username, password }
          : params.sasl.mechanism === 'SCRAM-SHA-256'
            ? { mechanism: 'scram-sha-256', username, password }
            : { mechanism: 'scram-sha-512', username, password };
    }
    const logger = env.logger;
    const label = env.handlerName;
    this.kafka = new Kafka({
      clientId: params.clientId,
      brokers: [...params.brokers],
      ssl,
      ...(sasl === undefined ? {} : { sasl }),
      connectionTimeout: params.connectionTimeout,
      requestTimeout: params.requestTimeout,
      // A small budget: the spool's sender retries whole batches with its own back-off.
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
      logLevel: logLevel.ERROR,
      logCreator: () => createKafkaLog(label, logger),
    });
  }

  /**
   * Where a record goes, computed once when it is accepted and kept with it in the spool:
   * `[topic, key, …header values]`. Variables are the instance's (a metric's dimensions, a
   * span's tags), before redaction (a route
   * may use a variable that the record masks; it is the operator's choice to name it).
   * Never throws: an absent variable without a default expands to the empty string.
   */
  route(instance: Pick<ExportedInstance, 'variables'>): string[] {
    const variables = instance.variables;
    const t = this.templates;
    const out = [finishTopic(t.topic.expand(variables, sanitizeTopicPart)), t.key.expand(variables)];
    for (const header of t.headers) out.push(header.value.expand(variables));
    return out;
  }

  /**
   * Connects, and creates the fixed topic when it is missing and creation is allowed.
   * An unreachable cluster is not a configuration error: records wait in the spool, so
   * this logs a warning and resolves. Rejects for what only the configuration can fix: a
   * fixed topic that does not exist while createTopics is not set, refused credentials,
   * a certificate that does not verify.
   */
  async start(): Promise<void> {
    try {
      await this.connectedProducer();
      if (this.templates.topic.fixed) await this.ensureTopic(this.params.topic);
    } catch (error) {
      if (isConfigurationFault(error)) throw error;
      this.env.logger.warn(
        `${this.env.handlerName}: ${this.description} is not reachable yet (${describe(error)}); accepted records wait in the spool`,
      );
    }
  }

  /**
   * Produces the records, in order; resolves once the brokers acknowledged all of them.
   * Rejects with the reason otherwise; the sender offers the same batch again later.
   */
  async deliver(records: readonly SpooledRecord[]): Promise<void> {
    if (this.closed) throw new Error(`${this.description}: the sink is closed`);
    if (records.length === 0) return;
    const requests = this.requests(records);
    let progress = this.progress;
    if (
      progress === undefined ||
      progress.firstId !== records[0]!.id ||
      progress.lastId !== records.at(-1)!.id ||
      progress.count !== records.length
    ) {
      progress = {
        firstId: records[0]!.id,
        lastId: records.at(-1)!.id,
        count: records.length,
        requestsDone: 0,
      };
    } else {
      this.counters.skippedRequests += progress.requestsDone;
    }
    this.progress = progress;
    try {
      const producer = await this.connectedProducer();
      for (const topic of new Set(records.map((r) => r.route[0] ?? ''))) {
        if (!this.knownTopics.has(topic)) await this.ensureTopic(topic);
      }
      for (let i = progress.requestsDone; i < requests.length; i++) {
        const request = requests[i]!;
        await producer.sendBatch({
          topicMessages: request.topicMessages,
          acks: -1,
          timeout: this.params.requestTimeout,
          compression: this.compression,
        });
        progress.requestsDone = i + 1;
        this.counters.producedRequests++;
        this.counters.producedRecords += request.records;
        this.counters.producedBytes += request.bytes;
      }
    } catch (error) {
      this.counters.failedDeliveries++;
      if (hasErrorType(error, PRODUCER_STATE_ERRORS)) await this.resetProducer(error);
      throw new Error(describe(error), { cause: error });
    }
    this.progress = undefined;
  }

  stats(): Record<string, unknown> & KafkaSinkStats {
    return { ...this.counters };
  }

  /** Disconnects. Idempotent; deliveries after close reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const producer = this.producer ?? (await this.connecting?.catch(() => undefined));
    this.producer = undefined;
    await producer?.disconnect().catch(() => undefined);
  }

  /** Splits the records into produce requests of at most maxRequestBytes, in order. Deterministic. */
  private requests(
    records: readonly SpooledRecord[],
  ): { topicMessages: TopicMessages[]; records: number; bytes: number }[] {
    const out: { topicMessages: TopicMessages[]; records: number; bytes: number }[] = [];
    let byTopic = new Map<string, Message[]>();
    let bytes = 0;
    let count = 0;
    const flush = (): void => {
      if (count === 0) return;
      out.push({
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        records: count,
        bytes,
      });
      byTopic = new Map();
      bytes = 0;
      count = 0;
    };
    const headerNames = this.templates.headers;
    for (const record of records) {
      const [topic = '', key = ''] = record.route;
      const headers: Record<string, Buffer | string> = {
        'switchboard-event-id': record.id,
      };
      let size = RECORD_OVERHEAD_BYTES + record.json.length + key.length + record.id.length + 80;
      for (let h = 0; h < headerNames.length; h++) {
        const value = record.route[2 + h] ?? '';
        headers[headerNames[h]!.name] = value;
        size += headerNames[h]!.name.length + value.length + 8;
      }
      if (count > 0 && bytes + size > this.params.maxRequestBytes) flush();
      let messages = byTopic.get(topic);
      if (messages === undefined) byTopic.set(topic, (messages = []));
      messages.push({ key: key === '' ? null : key, value: record.json, headers });
      bytes += size;
      count++;
    }
    flush();
    return out;
  }

  private connectedProducer(): Promise<Producer> {
    if (this.producer !== undefined) return Promise.resolve(this.producer);
    this.connecting ??= (async () => {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: deterministicPartitioner,
        // kafkajs asks for an unlimited budget with idempotence; retries are the sender's.
        retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
      });
      try {
        await producer.connect();
      } catch (error) {
        await producer.disconnect().catch(() => undefined);
        throw error;
      }
      if (this.closed) {
        await producer.disconnect().catch(() => undefined);
        throw new Error(`${this.description}: the sink is closed`);
      }
      this.producer = producer;
      return producer;
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async resetProducer(cause: unknown): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    this.counters.producerResets++;
    this.env.logger.warn(
      `${this.env.handlerName}: the brokers no longer accept this producer's sequence (${describe(cause)}); starting a new producer (records of the batch in flight may be written twice)`,
    );
    await producer?.disconnect().catch(() => undefined);
  }

  /**
   * Makes sure `topic` exists with a leader for every partition: created when missing and
   * createTopics is set; otherwise a missing topic is an error naming the fix.
   */
  private async ensureTopic(topic: string): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const create = this.params.createTopics;
      if (create !== undefined) {
        const created = await admin.createTopics({
          topics: [{ topic, numPartitions: create.partitions, replicationFactor: create.replicationFactor }],
          waitForLeaders: false,
        });
        if (created) {
          this.counters.topicsCreated++;
          this.env.logger.info(
            `${this.env.handlerName}: created kafka topic ${topic} (${create.partitions} partitions, replication factor ${create.replicationFactor})`,
          );
        }
      }
      await waitForLeaders(admin, topic, create !== undefined);
      this.knownTopics.add(topic);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

/**
 * Polls the topic's metadata until every partition has a leader. (kafkajs's
 * `waitForLeaders` can fail with UNKNOWN_TOPIC_OR_PARTITION right after creating.)
 * @throws TopicMissingError when the topic does not exist and will not be created
 */
async function waitForLeaders(admin: Admin, topic: string, justCreated: boolean): Promise<void> {
  const deadline = Date.now() + TOPIC_READY_TIMEOUT_MS;
  for (;;) {
    let ready = false;
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = metadata.topics[0]?.partitions ?? [];
      ready = partitions.length > 0 && partitions.every((p) => p.leader >= 0);
    } catch (error) {
      if (!hasErrorType(error, new Set(['UNKNOWN_TOPIC_OR_PARTITION']))) throw error;
      if (!justCreated) {
        throw new TopicMissingError(
          `kafka topic ${topic} does not exist: create it, or set params.createTopics to let the adapter create it`,
        );
      }
    }
    if (ready) return;
    if (Date.now() > deadline) {
      throw new Error(
        `kafka topic ${topic}: not every partition had a leader after ${TOPIC_READY_TIMEOUT_MS} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A topic that does not exist and that the handler may not create: only configuration fixes it. */
export class TopicMissingError extends Error {
  override readonly name = 'TopicMissingError';
}

/**
 * Keyed records by kafkajs's default (Java-compatible murmur2) partitioner; records without
 * a key by a hash of their id, not round-robin, so that a batch offered again is split
 * across partitions exactly as before (the idempotent producer's duplicate detection works
 * per partition and sequence).
 */
function deterministicPartitioner(): (args: PartitionerArgs) => number {
  const keyed = Partitioners.DefaultPartitioner();
  // Called once per record: the last key's partition is kept (records of a batch often share
  // a key), and a topic of one partition needs no hash (both partitioners give 0).
  let lastKey: Message['key'] = null;
  let lastTopic = '';
  let lastCount = 0;
  let lastPartition = 0;
  return (args) => {
    const count = args.partitionMetadata.length;
    if (count <= 1) return 0;
    const key = args.message.key;
    if (key !== null && key !== undefined) {
      if (typeof key === 'string' && key === lastKey && args.topic === lastTopic && count === lastCount) {
        return lastPartition;
      }
      lastPartition = keyed(args);
      lastKey = key;
      lastTopic = args.topic;
      lastCount = count;
      return lastPartition;
    }
    const id = args.message.headers?.['switchboard-event-id'];
    if (typeof id !== 'string') return 0;
    return createHash('sha1').update(id).digest().readUInt32BE(0) % count;
  };
}

/** Whether an error (or one it wraps) has one of the kafkajs protocol error `types`. */
function hasErrorType(error: unknown, types: ReadonlySet<string>): boolean {
  for (
    let e = error as { type?: unknown; originalError?: unknown; cause?: unknown } | undefined, depth = 0;
    e !== undefined && e !== null && depth < 8;
    depth++
  ) {
    if (typeof e.type === 'string' && types.has(e.type)) return true;
    e = (e.originalError ?? e.cause) as typeof e;
  }
  return false;
}

/** Whether only the configuration can fix this: missing topic, refused credentials, a certificate that does not verify. */
function isConfigurationFault(error: unknown): boolean {
  if (error instanceof TopicMissingError) return true;
  for (
    let e = error as { name?: unknown; code?: unknown; originalError?: unknown; cause?: unknown } | undefined,
      depth = 0;
    e !== undefined && e !== null && depth < 8;
    depth++
  ) {
    if (e.name === 'KafkaJSSASLAuthenticationError') return true;
    if (typeof e.code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(e.code)) return true;
    e = (e.originalError ?? e.cause) as typeof e;
  }
  return false;
}

/** The error's message with the kafkajs cause it wraps, on one line. */
function describe(error: unknown): string {
  const e = error as { message?: string; originalError?: { message?: string }; cause?: { message?: string } };
  const message = e?.message ?? String(error);
  const inner = e?.originalError?.message ?? e?.cause?.message;
  return inner !== undefined && inner !== message ? `${message}: ${inner}` : message;
}

/**
 * kafkajs's log lines to the handler's logger, at most one a 10 s window, with a count of
 * the ones left out: during an outage the client logs a line per attempt.
 */
function createKafkaLog(
  label: string,
  logger: KafkaSinkEnvironment['logger'],
): (entry: { level: number; log: { message: string } }) => void {
  let windowStart = 0;
  let suppressed = 0;
  return ({ log }) => {
    const now = Date.now();
    if (now - windowStart < 10_000) {
      suppressed++;
      return;
    }
    const more = suppressed > 0 ? ` (and ${suppressed} more client messages)` : '';
    windowStart = now;
    suppressed = 0;
    logger.warn(`${label}: kafka client: ${log.message}${more}`);
  };
}
