/**
 * What `npm run bench:audit` runs: one case per export sink (kafka; elasticsearch added by
 * its own file), each measuring, in one run, a baseline (the same records written to the
 * sink directly by its client library) and the policy server exporting Reports to the sink
 * through the spool at each fsync policy. The runner (bench/audit.ts) prints the rows, the
 * ratios to the baseline and the records lost.
 */
import type { FsyncPolicy } from '../../adapters/logging/spool';

export interface AuditBenchOptions {
  /** Measured seconds of each run. */
  readonly seconds: number;
  /** Seconds of load before each measured run (not counted). */
  readonly warmupSeconds: number;
  /** h2load connections and streams per connection. */
  readonly clients: number;
  readonly streams: number;
  /** Attribute sets (reports) in one Report call, as a proxy batches them. */
  readonly reportsPerCall: number;
  /** The fsync policies to run the server with, in order. */
  readonly fsyncPolicies: readonly FsyncPolicy[];
  /** A folder of this run (configs, data dirs, logs); removed at the end unless kept. */
  readonly dir: string;
  /** Where the built CLI is: dist/cli/switchboard.js. */
  readonly cli: string;
}

/** One measured run. */
export interface AuditBenchRow {
  /** `kafka`, `elasticsearch`. */
  readonly sink: string;
  /** `baseline (kafkajs)`, `server fsync=INTERVAL`. */
  readonly variant: string;
  readonly baseline: boolean;
  readonly fsync?: FsyncPolicy;
  /** Records (reports) per second accepted in the measured window. */
  readonly recordsPerSecond: number;
  /** CPU seconds the producing process (the server, all threads; or the baseline's client) used per second of the window. */
  readonly coresUsed: number;
  /** Of coresUsed, the server's main (JavaScript) thread alone, when measured. */
  readonly mainThreadCoresUsed?: number;
  /** Records the producing process accepted over the whole run (warm-up included). */
  readonly accepted: number;
  /** Records found in the sink for this run. */
  readonly arrived: number;
  /** accepted − arrived when positive: must be 0. */
  readonly lost: number;
  /** arrived − accepted when positive (records written twice). */
  readonly duplicated: number;
  /** p99 latency of a Report call, ms, when measured. */
  readonly p99Ms?: number;
  readonly note?: string;
}

export interface AuditBenchCase {
  readonly name: string;
  run(options: AuditBenchOptions): Promise<AuditBenchRow[]>;
}
