/**
 * A fast 32-bit string hash for consistent hashing: FNV-1a over the UTF-16 code units, then
 * the MurmurHash3 finaliser, because FNV alone spreads strings that differ only at the end
 * (`10.0.0.1:80#1`, `…#2`) poorly over the high bits a ring lookup depends on. Not
 * cryptographic: a client choosing keys can aim at an endpoint, which hashing on a header
 * it controls allows anyway.
 */
export function hash32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}
