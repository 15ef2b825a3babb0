import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import {
  crc32c,
  installKafkajsUnzeroedGrowth,
  kafkajsUsesCrc32c,
} from '../../../../adapters/logging/kafka/crc32c';
import '../../../../adapters/logging/kafka/kafka-sink';

// kafkajs's own byte-at-a-time implementation (the module the adapter replaces wraps it).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const kafkajsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js') as (b: Buffer) => number;

describe('kafka crc32c', () => {
  it('gives the standard check value', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(0)), 0);
  });

  it('equals kafkajs’s checksum for every length around the 8-byte steps and for large buffers', () => {
    const bytes = randomBytes(70_001);
    for (let length = 0; length < 40; length++) {
      const part = bytes.subarray(3, 3 + length);
      assert.equal(crc32c(part), kafkajsCrc32c(part) >>> 0, `length ${length}`);
    }
    assert.equal(crc32c(bytes), kafkajsCrc32c(bytes) >>> 0);
  });

  it('is the checksum kafkajs uses once the sink is loaded', () => {
    assert.equal(kafkajsUsesCrc32c(), true);
  });

  it('leaves kafkajs’s encoder exact when its buffer grows without zero-filling', () => {
    assert.equal(installKafkajsUnzeroedGrowth(), true);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Encoder = require('kafkajs/src/protocol/encoder.js') as new () => {
      writeInt32(n: number): unknown;
      writeVarIntBytes(b: Buffer): unknown;
      buffer: Buffer;
    };
    const value = randomBytes(3000);
    const encoder = new Encoder();
    encoder.writeInt32(7);
    encoder.writeVarIntBytes(value);
    encoder.writeInt32(-1);
    const expected = Buffer.concat([
      Buffer.from([0, 0, 0, 7]),
      Buffer.from([0xf0, 0x2e]), // zig-zag varint of 3000
      value,
      Buffer.from([0xff, 0xff, 0xff, 0xff]),
    ]);
    assert.deepEqual(encoder.buffer, expected);
  });
});
