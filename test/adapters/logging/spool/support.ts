/** Test doubles for the spool's tests: a recording logger, an environment, a directory, a sink. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createAdapterEnv, type AdapterEnv, type AdapterLogger } from '../../../../adapters';
import { Spool, spoolSettings, type SpoolSettings, type SpoolSink } from '../../../../adapters/logging/spool';

export const LABEL = 'spool-test/audit.handler.istio-system';

export class RecordingLogger implements AdapterLogger {
  readonly lines: string[] = [];
  info(message: string): void {
    this.lines.push(`info: ${message}`);
  }
  warn(message: string): void {
    this.lines.push(`warn: ${message}`);
  }
  error(message: string): void {
    this.lines.push(`error: ${message}`);
  }
}

/** An environment whose timers the test disposes of in afterEach. */
export function testEnv(): { env: AdapterEnv; logger: RecordingLogger; dispose: () => void } {
  const logger = new RecordingLogger();
  const owned = createAdapterEnv('audit.handler.istio-system', logger);
  return { env: owned.env, logger, dispose: owned.dispose };
}

/** A fresh directory, removed by the returned function. */
export function tempDirectory(): { directory: string; remove: () => void } {
  const directory = mkdtempSync(path.join(tmpdir(), 'switchboard-spool-'));
  return { directory, remove: () => rmSync(directory, { recursive: true, force: true }) };
}

export function openSpool(
  env: AdapterEnv,
  settings: Partial<SpoolSettings> & { directory: string },
): Promise<Spool> {
  return Spool.open(spoolSettings(settings), env, LABEL);
}

/** `record-0`, `record-1`, … as buffers. */
export function records(from: number, count: number, pad = 0): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.from(`record-${from + i}${'.'.repeat(pad)}`));
}

/** Reads and acknowledges everything readable now; the records as strings. */
export async function drain(spool: Spool, maxRecords = 100): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const batch = await spool.read(maxRecords, 1024 * 1024);
    if (batch === undefined) return out;
    for (const r of batch.records) out.push(r.toString());
    await spool.acknowledge(batch);
  }
}

/** A sink that keeps what it gets, failing the first `failures` deliveries. */
export class MemorySink implements SpoolSink {
  readonly description = 'the test sink';
  readonly received: string[] = [];
  attempts = 0;

  constructor(private failures = 0) {}

  deliver(batch: readonly Buffer[]): Promise<void> {
    this.attempts++;
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(new Error('the sink is down'));
    }
    for (const r of batch) this.received.push(r.toString());
    return Promise.resolve();
  }
}
