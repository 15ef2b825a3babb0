/** Settings of the benchmarks from environment variables (`BENCH_SECONDS=10`, …). */

/**
 * The number in environment variable `name`, or `fallback` when it is unset.
 * @throws Error naming the variable when its value is not a number ≥ `min` (default 0)
 */
export function envNumber(name: string, fallback: number, min = 0): number {
  const text = process.env[name];
  const value = Number(text ?? fallback);
  if (!Number.isFinite(value) || value < min) {
    throw new Error(`${name} must be a number >= ${min}, got ${text}`);
  }
  return value;
}
