/**
 * The body of a Kafka Produce request (versions 3 to 7 share it) with its uncompressed
 * record batches (RecordBatch v2, "magic 2"), written in two passes into one buffer: sizes
 * first, then the bytes, then one CRC-32C per batch.
 *
 * Why: kafkajs 2.2 builds each record as its own growing buffer, with an object per header
 * and a small buffer per varint, then copies every record into its batch, the batch into
 * its partition's entry and that into the request — a quarter of the server's CPU at
 * bench:audit. This writes each record once, straight from its key, value and header
 * values. installKafkajsProduceEncoder() makes kafkajs call it (see there); what kafkajs
 * decides — partitions, the producer id, epoch and each partition's first sequence number
 * for the idempotent producer — is taken from kafkajs unchanged.
 *
 * The bytes are those kafkajs writes for the same request (test/adapters/logging/kafka/
 * produce-request.test.ts compares them), and the broker checks every batch's CRC.
 *
 * Wire format (Kafka protocol guide, "Produce API" and "Record Batch"):
 *   request body: transactional_id NULLABLE_STRING, acks INT16, timeout INT32,
 *     [topic STRING, [partition INT32, records NULLABLE_BYTES]]
 *   batch: baseOffset INT64, batchLength INT32, partitionLeaderEpoch INT32, magic INT8 (2),
 *     crc UINT32 (CRC-32C of what follows), attributes INT16, lastOffsetDelta INT32,
 *     baseTimestamp INT64, maxTimestamp INT64, producerId INT64, producerEpoch INT16,
 *     baseSequence INT32, [record] (INT32 count)
 *   record: length VARINT, attributes INT8, timestampDelta VARLONG, offsetDelta VARINT,
 *     key VARINT-length bytes (-1: null), value likewise,
 *     [header key VARINT-length string, header value VARINT-length bytes] (VARINT count)
 */
import { crc32c } from './crc32c';

/** A header's value: kafkajs takes a string or bytes, or a list of them (one header each). */
export type ProduceHeaderValue = string | Buffer;

/** One record, as kafkajs's `Message` (without a timestamp: the batch's time is used). */
export interface ProduceRecord {
  readonly key?: string | Buffer | null;
  readonly value: string | Buffer | null;
  readonly headers?: Readonly<Record<string, ProduceHeaderValue | readonly ProduceHeaderValue[]>>;
}

export interface ProducePartition {
  readonly partition: number;
  /** The idempotent producer's sequence number of the first record (0 without idempotence). */
  readonly firstSequence?: number;
  readonly messages: readonly ProduceRecord[];
}

export interface ProduceTopic {
  readonly topic: string;
  readonly partitions: readonly ProducePartition[];
}

export interface ProduceRequestBody {
  /** null: not transactional. */
  readonly transactionalId: string | null;
  /** -1: all in-sync replicas. */
  readonly acks: number;
  readonly timeoutMs: number;
  /** -1n without idempotence. */
  readonly producerId: bigint;
  readonly producerEpoch: number;
  /** Every record's timestamp (the batches' base and max timestamp; each record's delta is 0). */
  readonly timestampMs: number;
  readonly topics: readonly ProduceTopic[];
}

/** Bytes of a batch before its records: baseOffset … baseSequence, then the record count. */
const BATCH_HEADER_BYTES = 8 + 4 + 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;
/** Where the CRC-32C's input starts in a batch (the attributes). */
const CRC_START = 8 + 4 + 4 + 1 + 4;
const MAGIC = 2;
/** Batch attributes: no compression, create time, not transactional, not a control batch. */
const PLAIN_ATTRIBUTES = 0;
const TRANSACTIONAL_ATTRIBUTE = 0x10;

/** Record sizes of the current request (each record's length prefix), reused across calls. */
let recordSizes = new Int32Array(1024);

/**
 * The request body's bytes.
 * @throws RangeError when a record or the request exceeds what a Kafka length can say (2 GiB)
 */
export function encodeProduceRequest(body: ProduceRequestBody): Buffer {
  // As kafkajs: an empty id is written but does not make the batches transactional.
  const transactional = body.transactionalId !== null && body.transactionalId !== '';
  let size =
    2 + (body.transactionalId === null ? 0 : Buffer.byteLength(body.transactionalId, 'utf8')) + 2 + 4 + 4;
  let records = 0;
  for (const topic of body.topics) {
    size += 2 + Buffer.byteLength(topic.topic, 'utf8') + 4;
    for (const partition of topic.partitions) {
      size += 4 + 4 + BATCH_HEADER_BYTES;
      const messages = partition.messages;
      if (records + messages.length > recordSizes.length) {
        const grown = new Int32Array(Math.max(2 * recordSizes.length, records + messages.length));
        grown.set(recordSizes);
        recordSizes = grown;
      }
      for (let i = 0; i < messages.length; i++) {
        const length = recordBodyBytes(messages[i]!, i);
        recordSizes[records++] = length;
        size += varintBytes(length) + length;
      }
    }
  }
  if (size > 0x7fffffff) throw new RangeError(`a produce request has at most 2 GiB, got ${size} bytes`);

  const out = Buffer.allocUnsafe(size);
  let at = writeNullableString(out, 0, body.transactionalId);
  at = out.writeInt16BE(body.acks, at);
  at = out.writeInt32BE(body.timeoutMs, at);
  at = out.writeInt32BE(body.topics.length, at);
  records = 0;
  for (const topic of body.topics) {
    at = writeNullableString(out, at, topic.topic);
    at = out.writeInt32BE(topic.partitions.length, at);
    for (const partition of topic.partitions) {
      const messages = partition.messages;
      at = out.writeInt32BE(partition.partition, at);
      const setSizeAt = at;
      const batch = at + 4;
      at = out.writeBigInt64BE(0n, batch); // baseOffset: the broker assigns offsets
      const lengthAt = at;
      at = out.writeInt32BE(0, at + 4); // partitionLeaderEpoch: not known to a producer
      out[at++] = MAGIC;
      const crcAt = at;
      at = out.writeInt16BE(transactional ? TRANSACTIONAL_ATTRIBUTE : PLAIN_ATTRIBUTES, at + 4);
      at = out.writeInt32BE(messages.length - 1, at); // lastOffsetDelta
      at = out.writeBigInt64BE(BigInt(body.timestampMs), at);
      at = out.writeBigInt64BE(BigInt(body.timestampMs), at);
      at = out.writeBigInt64BE(body.producerId, at);
      at = out.writeInt16BE(body.producerEpoch, at);
      at = out.writeInt32BE(partition.firstSequence ?? 0, at);
      at = out.writeInt32BE(messages.length, at);
      for (let i = 0; i < messages.length; i++) {
        at = writeRecord(out, at, messages[i]!, i, recordSizes[records++]!);
      }
      out.writeInt32BE(at - batch, setSizeAt);
      out.writeInt32BE(at - lengthAt - 4, lengthAt);
      out.writeUInt32BE(crc32c(out.subarray(batch + CRC_START, at)), crcAt);
    }
  }
  return out;
}

/** Bytes of a record after its length prefix. */
function recordBodyBytes(record: ProduceRecord, offsetDelta: number): number {
  // attributes, timestampDelta 0 (one byte), offsetDelta
  let size = 1 + 1 + varintBytes(offsetDelta) + nullableBytes(record.key) + nullableBytes(record.value);
  const headers = record.headers;
  let count = 0;
  if (headers !== undefined) {
    for (const name of Object.keys(headers)) {
      const value = headers[name]!;
      const nameBytes = Buffer.byteLength(name, 'utf8');
      if (typeof value === 'string' || Buffer.isBuffer(value)) {
        size += varintBytes(nameBytes) + nameBytes + nullableBytes(value);
        count++;
      } else {
        for (const each of value) size += varintBytes(nameBytes) + nameBytes + nullableBytes(each);
        count += value.length;
      }
    }
  }
  return size + varintBytes(count);
}

function writeRecord(
  out: Buffer,
  at: number,
  record: ProduceRecord,
  offsetDelta: number,
  bodyBytes: number,
): number {
  at = writeVarint(out, at, bodyBytes);
  out[at++] = 0; // attributes: none defined
  out[at++] = 0; // timestampDelta: 0 (zig-zag varlong)
  at = writeVarint(out, at, offsetDelta);
  at = writeVarintBytes(out, at, record.key);
  at = writeVarintBytes(out, at, record.value);
  const headers = record.headers;
  if (headers === undefined) {
    out[at++] = 0;
    return at;
  }
  const names = Object.keys(headers);
  let count = 0;
  for (const name of names) {
    const value = headers[name]!;
    count += typeof value === 'string' || Buffer.isBuffer(value) ? 1 : value.length;
  }
  at = writeVarint(out, at, count);
  for (const name of names) {
    const value = headers[name]!;
    if (typeof value === 'string' || Buffer.isBuffer(value)) {
      at = writeVarintBytes(out, at, name);
      at = writeVarintBytes(out, at, value);
    } else {
      for (const each of value) {
        at = writeVarintBytes(out, at, name);
        at = writeVarintBytes(out, at, each);
      }
    }
  }
  return at;
}

/** Bytes of a length-prefixed (zig-zag varint) string or bytes; null: the length -1 alone. */
function nullableBytes(value: string | Buffer | null | undefined): number {
  if (value === null || value === undefined) return 1;
  const length = typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
  return varintBytes(length) + length;
}

function writeVarintBytes(out: Buffer, at: number, value: string | Buffer | null | undefined): number {
  if (value === null || value === undefined) {
    out[at] = 1; // zig-zag of -1
    return at + 1;
  }
  if (typeof value === 'string') {
    const length = Buffer.byteLength(value, 'utf8');
    at = writeVarint(out, at, length);
    return at + out.write(value, at, length, 'utf8');
  }
  at = writeVarint(out, at, value.length);
  return at + value.copy(out, at);
}

function writeNullableString(out: Buffer, at: number, value: string | null): number {
  if (value === null) return out.writeInt16BE(-1, at);
  const length = out.write(value, at + 2, 'utf8');
  out.writeInt16BE(length, at);
  return at + 2 + length;
}

/** Bytes of the zig-zag varint of a 32-bit integer. */
function varintBytes(value: number): number {
  let zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
  let bytes = 1;
  while (zigzag > 0x7f) {
    zigzag >>>= 7;
    bytes++;
  }
  return bytes;
}

function writeVarint(out: Buffer, at: number, value: number): number {
  let zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
  while (zigzag > 0x7f) {
    out[at++] = (zigzag & 0x7f) | 0x80;
    zigzag >>>= 7;
  }
  out[at++] = zigzag;
  return at;
}
