/**
 * Random bytes for ids (request ids, trace ids, Report batch ids, deduplication ids), drawn
 * from the CSPRNG in batches: one call per ~800 request ids, not one per id. A call into
 * `crypto.randomBytes` costs microseconds, more than the rest of making an id.
 */
import { randomFillSync } from 'node:crypto';

/** The pool; bytes from `drawEntropy` stay fresh until the next draw. */
export const entropy = Buffer.alloc(32 * 1024);
let entropyOffset = entropy.length;

/** Reserves `bytes` (at most the pool's size) fresh random bytes of `entropy`; returns where they start. */
export function drawEntropy(bytes: number): number {
  if (entropyOffset + bytes > entropy.length) {
    randomFillSync(entropy);
    entropyOffset = 0;
  }
  const from = entropyOffset;
  entropyOffset += bytes;
  return from;
}

/** `bytes` fresh random bytes as lower-case hex. */
export function randomHex(bytes: number): string {
  const from = drawEntropy(bytes);
  return entropy.toString('hex', from, from + bytes);
}

/** `bytes` fresh random bytes as base64url (no padding). */
export function randomBase64url(bytes: number): string {
  const from = drawEntropy(bytes);
  return entropy.toString('base64url', from, from + bytes);
}
