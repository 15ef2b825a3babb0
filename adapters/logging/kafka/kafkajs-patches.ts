/**
 * Three costs of kafkajs 2.2.4's producer, taken out from outside its files (kafkajs has no
 * option for any), in the manner of crc32c.ts:
 *
 * - installKafkajsProduceEncoder(): the body of each Produce request is written by
 *   produce-request.ts in one buffer, instead of a buffer per record, per header and per
 *   varint and three copies of every record. kafkajs still builds the request (API key,
 *   version, partitions, the idempotent producer's id, epoch and sequence numbers); only its
 *   `encode()` is replaced, and a request produce-request.ts does not cover (compression,
 *   message timestamps, values that are neither strings nor bytes) is encoded by kafkajs.
 * - installKafkajsLinearGrouping(): kafkajs groups a request's messages by partition by
 *   copying the partition's list once per message (quadratic: 0.2 ms for 650 messages,
 *   growing with the square); this groups them in one pass, with the same result.
 * - installKafkajsRequestFraming(): kafkajs frames every request (size, API key and version,
 *   correlation id, client id) by copying its body into a buffer that grows by doubling,
 *   then that into another: for a 1 MB Produce request, two 2 MB buffers and two copies.
 *   frameKafkajsRequest() writes the frame once, in a buffer of the exact size.
 *
 * Both depend on where kafkajs keeps these modules and what they export; the functions
 * return false when that is not what they expect (kafkajs then works as it ships), and
 * test/adapters/logging/kafka/kafkajs-patches.test.ts fails when they do not apply to the
 * pinned version or their output differs from kafkajs's own.
 */
import Module from 'node:module';
import { encodeProduceRequest, type ProduceRecord, type ProduceTopic } from './produce-request';

/** Produce requests 4 to 7 are version 3's with another number (kafkajs 2.2: they require it). */
const KAFKAJS_PRODUCE_V3_MODULE = 'kafkajs/src/protocol/requests/produce/v3/request.js';
const KAFKAJS_PRODUCE_LATER_MODULES = [4, 5, 6, 7].map(
  (version) => `kafkajs/src/protocol/requests/produce/v${version}/request.js`,
);
const KAFKAJS_LONG_MODULE = 'kafkajs/src/utils/long.js';
const KAFKAJS_GROUPING_MODULE = 'kafkajs/src/producer/groupMessagesPerPartition.js';
/** The module that requires the grouping function when kafkajs loads. */
const KAFKAJS_SEND_MESSAGES_MODULE = 'kafkajs/src/producer/sendMessages.js';

/** What kafkajs's produce request factory receives (protocol/requests/produce/v3/request.js). */
interface KafkajsProduceArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: unknown;
}

/** What it returns: the request kafkajs's connection sends. */
interface KafkajsRequest {
  encode: () => Promise<unknown>;
}

type KafkajsProduceFactory = (args: KafkajsProduceArgs) => KafkajsRequest;

/** The shape kafkajs's request framing (protocol/request.js `writeEncoder`) reads of a body. */
interface EncodedBody {
  readonly buf: Buffer;
  readonly offset: number;
  readonly buffer: Buffer;
  size(): number;
}

/** Marks the factory this module installs. */
const INSTALLED = Symbol('switchboard produce encoder');

/**
 * Makes kafkajs encode the Produce requests it sends with encodeProduceRequest(). Call before
 * kafkajs sends its first Produce request (kafka-sink.ts does when it loads). Idempotent.
 * Returns whether kafkajs uses it: false when a later version of the request had already
 * been loaded with kafkajs's own encoder, or kafkajs's modules are not what 2.2.4 has.
 */
export function installKafkajsProduceEncoder(): boolean {
  let v3Path: string;
  let laterPaths: string[];
  let longValue: (value: unknown) => bigint;
  let original: unknown;
  try {
    v3Path = require.resolve(KAFKAJS_PRODUCE_V3_MODULE);
    laterPaths = KAFKAJS_PRODUCE_LATER_MODULES.map((name) => require.resolve(name));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Long = require(KAFKAJS_LONG_MODULE) as { fromValue?: (value: unknown) => { value: unknown } };
    if (typeof Long.fromValue !== 'function') return false;
    const fromValue = Long.fromValue.bind(Long);
    longValue = (value) => BigInt.asIntN(64, BigInt(fromValue(value).value as bigint));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    original = require(v3Path);
  } catch {
    return false;
  }
  if (typeof original !== 'function') return false;
  if (INSTALLED in original) return true;
  if (laterPaths.some((later) => require.cache[later] !== undefined)) return false;
  const kafkajsFactory = original as KafkajsProduceFactory;
  const factory: KafkajsProduceFactory = (args) => {
    const request = kafkajsFactory(args);
    const kafkajsEncode = request.encode;
    if (typeof kafkajsEncode !== 'function') return request;
    request.encode = async () => {
      const topics = plainTopics(args);
      if (topics === undefined) return kafkajsEncode();
      const bytes = encodeProduceRequest({
        transactionalId: args.transactionalId ?? null,
        acks: args.acks,
        timeoutMs: args.timeout,
        producerId: args.producerId === undefined ? -1n : longValue(args.producerId),
        producerEpoch: args.producerEpoch ?? 0,
        timestampMs: Date.now(),
        topics,
      });
      return encodedBody(bytes);
    };
    return request;
  };
  Object.defineProperty(factory, INSTALLED, { value: true });
  require.cache[v3Path]!.exports = factory;
  return true;
}

/** Whether kafkajs, as loaded in this process, encodes Produce requests with encodeProduceRequest(). */
export function kafkajsUsesProduceEncoder(): boolean {
  try {
    const exported = require.cache[require.resolve(KAFKAJS_PRODUCE_V3_MODULE)]?.exports as unknown;
    return typeof exported === 'function' && INSTALLED in exported;
  } catch {
    return false;
  }
}

function encodedBody(bytes: Buffer): EncodedBody {
  return { buf: bytes, offset: bytes.length, buffer: bytes, size: () => bytes.length };
}

/**
 * The request's topics when encodeProduceRequest() writes what kafkajs would: no compression,
 * no message timestamps, keys and values strings, bytes or absent, header values strings or
 * bytes (or lists of them). Otherwise undefined, and kafkajs encodes (and reports what it
 * does not accept as it always did).
 */
function plainTopics(args: KafkajsProduceArgs): ProduceTopic[] | undefined {
  if ((args.compression ?? 0) !== 0) return undefined;
  const topicData = args.topicData;
  if (!Array.isArray(topicData)) return undefined;
  for (const topic of topicData as { topic?: unknown; partitions?: unknown }[]) {
    if (typeof topic?.topic !== 'string' || !Array.isArray(topic.partitions)) return undefined;
    for (const partition of topic.partitions as { partition?: unknown; messages?: unknown }[]) {
      if (typeof partition?.partition !== 'number' || !Array.isArray(partition.messages)) return undefined;
      for (const message of partition.messages as unknown[]) {
        if (!isPlainRecord(message)) return undefined;
      }
    }
  }
  return topicData as ProduceTopic[];
}

function isPlainRecord(message: unknown): message is ProduceRecord {
  if (typeof message !== 'object' || message === null) return false;
  const { key, value, headers, timestamp } = message as Record<string, unknown>;
  if (timestamp !== undefined && timestamp !== null) return false;
  if (!isBytesOrAbsent(key) || !isBytesOrAbsent(value)) return false;
  if (headers === undefined) return true;
  if (typeof headers !== 'object' || headers === null) return false;
  for (const name of Object.keys(headers)) {
    const header = (headers as Record<string, unknown>)[name];
    if (typeof header === 'string' || Buffer.isBuffer(header)) continue;
    if (!Array.isArray(header)) return false;
    for (const each of header) if (typeof each !== 'string' && !Buffer.isBuffer(each)) return false;
  }
  return true;
}

function isBytesOrAbsent(value: unknown): boolean {
  return value === undefined || value === null || typeof value === 'string' || Buffer.isBuffer(value);
}

/** What kafkajs's grouping function receives (producer/sendMessages.js). */
interface KafkajsGroupingArgs {
  topic: string;
  partitionMetadata: readonly unknown[];
  messages: readonly unknown[];
  partitioner: (args: { topic: string; partitionMetadata: readonly unknown[]; message: unknown }) => number;
}

/**
 * A request's messages by partition, in order within each: kafkajs's
 * groupMessagesPerPartition in one pass. (An object keyed by partition, as kafkajs's.)
 */
export function groupMessagesByPartition({
  topic,
  partitionMetadata,
  messages,
  partitioner,
}: KafkajsGroupingArgs): Record<number, unknown[]> {
  const groups: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return groups;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    const group = groups[partition];
    if (group === undefined) groups[partition] = [message];
    else group.push(message);
  }
  return groups;
}

/**
 * Makes kafkajs group messages by partition with groupMessagesByPartition(). Call before
 * anything in the process requires `kafkajs`. Idempotent. Returns whether kafkajs uses it:
 * false when kafkajs was loaded before, or its files are not where kafkajs 2.2 keeps them.
 */
export function installKafkajsLinearGrouping(): boolean {
  let groupingPath: string;
  let sendMessagesPath: string;
  try {
    groupingPath = require.resolve(KAFKAJS_GROUPING_MODULE);
    sendMessagesPath = require.resolve(KAFKAJS_SEND_MESSAGES_MODULE);
  } catch {
    return false;
  }
  const cached = require.cache[groupingPath];
  if (cached !== undefined) return cached.exports === groupMessagesByPartition;
  if (require.cache[sendMessagesPath] !== undefined) return false;
  const replacement = new Module(groupingPath);
  replacement.filename = groupingPath;
  replacement.exports = groupMessagesByPartition;
  replacement.loaded = true;
  require.cache[groupingPath] = replacement;
  return true;
}

/** Whether kafkajs, as loaded in this process, groups with groupMessagesByPartition(). */
export function kafkajsUsesLinearGrouping(): boolean {
  try {
    return require.cache[require.resolve(KAFKAJS_GROUPING_MODULE)]?.exports === groupMessagesByPartition;
  } catch {
    return false;
  }
}

/** kafkajs's request framing, which its connection requires when kafkajs loads. */
const KAFKAJS_REQUEST_MODULE = 'kafkajs/src/protocol/request.js';
const KAFKAJS_CONNECTION_MODULE = 'kafkajs/src/network/connection.js';

/** What kafkajs's connection passes to its request framing (protocol/request.js). */
interface KafkajsFramingArgs {
  correlationId: number;
  clientId: string | null | undefined;
  request: { apiKey: number; apiVersion: number; encode: () => Promise<unknown> };
}

/**
 * A request as kafkajs sends it: INT32 size of the rest, INT16 API key, INT16 API version,
 * INT32 correlation id, NULLABLE_STRING client id, then the body `encode()` gives (a kafkajs
 * Encoder, or what the produce encoder above returns). Byte for byte kafkajs's framing.
 * @throws Error as kafkajs's when the body is not an encoder
 */
export async function frameKafkajsRequest({
  correlationId,
  clientId,
  request: { apiKey, apiVersion, encode },
}: KafkajsFramingArgs): Promise<EncodedBody> {
  const payload = (await encode()) as { buf?: unknown; buffer?: unknown } | null | undefined;
  if (payload === null || payload === undefined || !Buffer.isBuffer(payload.buf)) {
    throw new Error('value should be an instance of Encoder');
  }
  const body = payload.buffer as Buffer;
  const clientIdBytes =
    clientId === null || clientId === undefined ? -1 : Buffer.byteLength(clientId, 'utf8');
  const headerBytes = 2 + 2 + 4 + 2 + Math.max(0, clientIdBytes);
  const out = Buffer.allocUnsafe(4 + headerBytes + body.length);
  let at = out.writeInt32BE(headerBytes + body.length, 0);
  at = out.writeInt16BE(apiKey, at);
  at = out.writeInt16BE(apiVersion, at);
  at = out.writeInt32BE(correlationId, at);
  at = out.writeInt16BE(clientIdBytes, at);
  if (clientIdBytes > 0) at += out.write(clientId!, at, clientIdBytes, 'utf8');
  body.copy(out, at);
  return encodedBody(out);
}

/**
 * Makes kafkajs frame its requests with frameKafkajsRequest(). Call before anything in the
 * process requires `kafkajs`. Idempotent. Returns whether kafkajs uses it: false when kafkajs
 * was loaded before, or its files are not where kafkajs 2.2 keeps them.
 */
export function installKafkajsRequestFraming(): boolean {
  let framingPath: string;
  let connectionPath: string;
  try {
    framingPath = require.resolve(KAFKAJS_REQUEST_MODULE);
    connectionPath = require.resolve(KAFKAJS_CONNECTION_MODULE);
  } catch {
    return false;
  }
  const cached = require.cache[framingPath];
  if (cached !== undefined) return cached.exports === frameKafkajsRequest;
  if (require.cache[connectionPath] !== undefined) return false;
  const replacement = new Module(framingPath);
  replacement.filename = framingPath;
  replacement.exports = frameKafkajsRequest;
  replacement.loaded = true;
  require.cache[framingPath] = replacement;
  return true;
}

/** Whether kafkajs, as loaded in this process, frames requests with frameKafkajsRequest(). */
export function kafkajsUsesRequestFraming(): boolean {
  try {
    return require.cache[require.resolve(KAFKAJS_REQUEST_MODULE)]?.exports === frameKafkajsRequest;
  } catch {
    return false;
  }
}
