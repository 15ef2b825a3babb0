import { strict as assert } from 'node:assert';
import { FRAME_HEADER_BYTES, decodeFrames, encodeFrames } from '../../../../adapters/logging/spool';

describe('adapters/logging/spool: frames', () => {
  const payloads = [Buffer.from('one'), Buffer.alloc(0), Buffer.from('three, a longer one')];

  it('decodes what it encodes, in order', () => {
    const bytes = encodeFrames(payloads);
    assert.equal(bytes.length, 3 * FRAME_HEADER_BYTES + 3 + 0 + 19);
    const decoded = decodeFrames(bytes);
    assert.deepEqual(
      decoded.payloads.map((p) => p.toString()),
      ['one', '', 'three, a longer one'],
    );
    assert.equal(decoded.consumedBytes, bytes.length);
    assert.equal(decoded.damage, undefined);
  });

  it('stops before a frame cut short, without calling it damage', () => {
    const bytes = encodeFrames(payloads);
    const decoded = decodeFrames(bytes.subarray(0, bytes.length - 5));
    assert.equal(decoded.payloads.length, 2);
    assert.equal(decoded.consumedBytes, 2 * FRAME_HEADER_BYTES + 3);
    assert.equal(decoded.damage, undefined);
  });

  it('stops at a frame whose checksum fails, and says where', () => {
    const bytes = Buffer.from(encodeFrames(payloads));
    bytes[bytes.length - 1] ^= 0xff;
    const decoded = decodeFrames(bytes);
    assert.equal(decoded.payloads.length, 2);
    assert.equal(decoded.damage, `the frame at byte ${2 * FRAME_HEADER_BYTES + 3} fails its checksum`);
  });

  it('honours the record and byte limits, but always takes one frame', () => {
    const bytes = encodeFrames(payloads);
    assert.equal(decodeFrames(bytes, 1).payloads.length, 1);
    assert.equal(decodeFrames(bytes, 10, 1).payloads.length, 1);
    assert.equal(decodeFrames(bytes, 10, 2 * FRAME_HEADER_BYTES + 3).payloads.length, 2);
  });
});
