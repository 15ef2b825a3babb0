/**
 * How records sit in a segment file: one frame each, `[u32 length][u32 crc32][payload]`,
 * both integers big-endian, the checksum over the payload. A frame cut short by a crash
 * (or damaged on disk) fails its length or checksum test, so a reader knows where the last
 * whole record ends.
 */
import { crc32 } from 'node:zlib';

/** Bytes before each payload. */
export const FRAME_HEADER_BYTES = 8;

/** The largest payload a frame may carry (64 MiB): a length above it means a damaged frame. */
export const MAX_FRAME_PAYLOAD_BYTES = 64 * 1024 * 1024;

/** Frames `payloads` into one buffer, ready to append to a segment. */
export function encodeFrames(payloads: readonly Buffer[]): Buffer {
  let total = 0;
  for (const payload of payloads) total += FRAME_HEADER_BYTES + payload.length;
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const payload of payloads) {
    out.writeUInt32BE(payload.length, offset);
    out.writeUInt32BE(crc32(payload), offset + 4);
    payload.copy(out, offset + FRAME_HEADER_BYTES);
    offset += FRAME_HEADER_BYTES + payload.length;
  }
  return out;
}

/**
 * Frames a payload written in place, at `buffer[start + FRAME_HEADER_BYTES, end)`: fills in
 * the header before it. For writers that build many frames in one buffer without copying
 * each payload again (the export handler); the result is what encodeFrames makes.
 */
export function sealFrame(buffer: Buffer, start: number, end: number): void {
  const payloadStart = start + FRAME_HEADER_BYTES;
  buffer.writeUInt32BE(end - payloadStart, start);
  buffer.writeUInt32BE(crc32(buffer.subarray(payloadStart, end)), start + 4);
}

/** The whole frames at the start of a buffer. */
export interface DecodedFrames {
  /** The payloads, in order (views into the buffer). */
  readonly payloads: Buffer[];
  /** Bytes the whole frames take: where the next frame starts. */
  readonly consumedBytes: number;
  /**
   * Why decoding stopped before the end of the buffer with a damaged frame (a checksum
   * mismatch or an impossible length); undefined when it stopped at the end or at a frame
   * that is merely incomplete.
   */
  readonly damage: string | undefined;
}

/**
 * Decodes the whole frames at the start of `buffer`, at most `maxPayloads` of them and, past
 * the first, at most `maxBytes` of frames. Stops at an incomplete frame (more bytes may come)
 * or a damaged one (reported in `damage`).
 */
export function decodeFrames(
  buffer: Buffer,
  maxPayloads = Number.POSITIVE_INFINITY,
  maxBytes = Number.POSITIVE_INFINITY,
): DecodedFrames {
  const payloads: Buffer[] = [];
  let offset = 0;
  let damage: string | undefined;
  while (payloads.length < maxPayloads && buffer.length - offset >= FRAME_HEADER_BYTES) {
    const length = buffer.readUInt32BE(offset);
    if (length > MAX_FRAME_PAYLOAD_BYTES) {
      damage = `a frame at byte ${offset} claims ${length} bytes, more than ${MAX_FRAME_PAYLOAD_BYTES}`;
      break;
    }
    const end = offset + FRAME_HEADER_BYTES + length;
    if (end > buffer.length) break;
    if (payloads.length > 0 && end > maxBytes) break;
    const payload = buffer.subarray(offset + FRAME_HEADER_BYTES, end);
    if (crc32(payload) !== buffer.readUInt32BE(offset + 4)) {
      damage = `the frame at byte ${offset} fails its checksum`;
      break;
    }
    payloads.push(payload);
    offset = end;
  }
  return { payloads, consumedBytes: offset, damage };
}
