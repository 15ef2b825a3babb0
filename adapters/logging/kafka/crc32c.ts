/**
 * CRC-32C (Castagnoli) for kafkajs's record batches, eight bytes a step.
 *
 * Why: kafkajs checksums every record batch it produces with a byte-at-a-time table loop,
 * about 3–4 ms per MB of records on the bench machine (4–5 µs of CPU per 1.4 KB audit
 * record, a tenth of kafkajs's whole cost). This "slicing by 8" version does the same
 * in a quarter of the time. kafkajs has no option to supply a checksum, so
 * installKafkajsCrc32c() puts this function in Node's module cache under the path of
 * kafkajs's own checksum module, before kafkajs loads it. It is exact (test/adapters/logging/
 * kafka/crc32c.test.ts compares it with kafkajs's), and every produce to a real broker
 * checks it again: the broker rejects a batch whose checksum is wrong (CORRUPT_MESSAGE).
 * installKafkajsUnzeroedGrowth() below removes another avoidable cost of kafkajs's encoder.
 */
import Module from 'node:module';

/** The reversed Castagnoli polynomial. */
const POLYNOMIAL = 0x82f63b78;

/** Eight tables of 256: table t gives a byte's contribution t bytes before the end of a step. */
const TABLES = buildTables();

function buildTables(): Int32Array {
  const tables = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    tables[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[n]!;
    for (let t = 1; t < 8; t++) {
      c = tables[c & 0xff]! ^ (c >>> 8);
      tables[t * 256 + n] = c;
    }
  }
  return tables;
}

/** The CRC-32C of `bytes`, unsigned (`123456789` → 0xe3069283). */
export function crc32c(bytes: Uint8Array): number {
  const t = TABLES;
  const length = bytes.length;
  const wholeSteps = length - (length & 7);
  let crc = -1;
  let i = 0;
  for (; i < wholeSteps; i += 8) {
    const low = crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    crc =
      t[1792 + (low & 0xff)]! ^
      t[1536 + ((low >>> 8) & 0xff)]! ^
      t[1280 + ((low >>> 16) & 0xff)]! ^
      t[1024 + (low >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^
      t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
  }
  for (; i < length; i++) crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** kafkajs's checksum module, which its record batch encoder requires. */
const KAFKAJS_CRC_MODULE = 'kafkajs/src/protocol/recordBatch/crc32C/index.js';
/** The encoder that requires it: once loaded, it holds kafkajs's own function. */
const KAFKAJS_RECORD_BATCH_MODULE = 'kafkajs/src/protocol/recordBatch/v0/index.js';

/**
 * Makes kafkajs use crc32c() for the batches it produces. Call before anything in the
 * process requires `kafkajs` (kafka-sink.ts does, first thing). Idempotent.
 * Returns whether kafkajs uses it: false when kafkajs was loaded before (it then keeps its
 * own, correct but slower, checksum) or its files are not where kafkajs 2.2 keeps them.
 */
export function installKafkajsCrc32c(): boolean {
  let crcPath: string;
  let batchPath: string;
  try {
    crcPath = require.resolve(KAFKAJS_CRC_MODULE);
    batchPath = require.resolve(KAFKAJS_RECORD_BATCH_MODULE);
  } catch {
    return false;
  }
  const cached = require.cache[crcPath];
  if (cached !== undefined) return cached.exports === crc32c;
  if (require.cache[batchPath] !== undefined) return false;
  const replacement = new Module(crcPath);
  replacement.filename = crcPath;
  replacement.exports = crc32c;
  replacement.loaded = true;
  require.cache[crcPath] = replacement;
  return true;
}

/** Whether kafkajs, as loaded in this process, checksums with crc32c(). */
export function kafkajsUsesCrc32c(): boolean {
  try {
    return require.cache[require.resolve(KAFKAJS_CRC_MODULE)]?.exports === crc32c;
  } catch {
    return false;
  }
}

/** kafkajs's request encoder class (kafkajs 2.2: module.exports of this file). */
const KAFKAJS_ENCODER_MODULE = 'kafkajs/src/protocol/encoder.js';

interface KafkajsEncoder {
  buf: Buffer;
  offset: number;
}

/**
 * Makes kafkajs's request encoder grow its buffer without zero-filling it. Why: kafkajs
 * encodes each record into its own encoder, which starts at 512 bytes and grows (to 2 KB
 * for a 1.4 KB audit record), then copies it into the batch's, which grows by doubling;
 * every growth was a zero-filled Buffer.alloc — 5% of the server's CPU at bench:audit.
 * Safe: an encoder only ever exposes the bytes it wrote (`buf.slice(0, offset)`); the
 * bytes past them are overwritten before use. Idempotent; works whenever called (it
 * changes the class's prototype). Returns whether it applied (false when kafkajs's encoder
 * is not where or what kafkajs 2.2 has).
 */
export function installKafkajsUnzeroedGrowth(): boolean {
  let encoder: { prototype: { ensureAvailable?: unknown }; nextPowerOfTwo?: unknown };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    encoder = require(KAFKAJS_ENCODER_MODULE) as typeof encoder;
  } catch {
    return false;
  }
  const nextPowerOfTwo = encoder.nextPowerOfTwo;
  if (typeof nextPowerOfTwo !== 'function' || typeof encoder.prototype.ensureAvailable !== 'function') {
    return false;
  }
  encoder.prototype.ensureAvailable = function ensureAvailable(this: KafkajsEncoder, length: number): void {
    if (this.offset + length > this.buf.length) {
      const grown = Buffer.allocUnsafe((nextPowerOfTwo as (n: number) => number)(this.offset + length));
      this.buf.copy(grown, 0, 0, this.offset);
      this.buf = grown;
    }
  };
  return true;
}
