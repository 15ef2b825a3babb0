/**
 * What the proxy takes from its surroundings that tests replace: randomness (weighted
 * splits, fault percentages, retry jitter) and the clock. Production uses Math.random and
 * Date.now; tests pass {@link createSeededRandom} so that percentages are reproducible.
 */

export interface ProxyEnvironment {
  /** Uniform in [0, 1). Default Math.random. */
  readonly random: () => number;
  /** Wall-clock milliseconds since the epoch. Default Date.now. */
  readonly now: () => number;
}

export const DEFAULT_ENVIRONMENT: ProxyEnvironment = Object.freeze({ random: Math.random, now: Date.now });

/**
 * A reproducible uniform source in [0, 1) from a 32-bit seed (mulberry32): the same seed
 * gives the same sequence. Statistically good enough for splits and fault percentages, not
 * for anything secret.
 */
export function createSeededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
