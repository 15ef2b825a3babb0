/** Test doubles for the stdio adapter's tests: streams, a logger, instances, configurations. */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { createAdapterEnv, parseWithSchema, type AdapterEnv, type AdapterLogger } from '../../../../adapters';
import { STDIO_CONFIG, type StdioConfig } from '../../../../adapters/logging/stdio';
import type { AttributeValue } from '../../../../attributes';
import type { LogEntryInstance, MetricInstance } from '../../../../templates';

export const HANDLER_NAME = 'accesslog.handler.istio-system';
export const LABEL = `stdio/${HANDLER_NAME}`;
/** 2024-05-01T10:20:30.123Z */
export const NOW_MS = Date.UTC(2024, 4, 1, 10, 20, 30, 123);

/** A logger that keeps what it is told. */
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

/** An environment with a recording logger and a clock the test sets (`clock.ms`). */
export function testEnv(): { env: AdapterEnv; logger: RecordingLogger; clock: { ms: number } } {
  const logger = new RecordingLogger();
  const clock = { ms: NOW_MS };
  return { env: createAdapterEnv(HANDLER_NAME, logger, () => clock.ms).env, logger, clock };
}

/** Parses parameters as the configuration store would, failing the test on a problem. */
export function stdioConfig(params: Record<string, unknown> = {}): StdioConfig {
  const outcome = parseWithSchema(STDIO_CONFIG, params);
  if (!outcome.ok) assert.fail(`unexpected problems: ${JSON.stringify(outcome.problems)}`);
  return outcome.value;
}

/**
 * A Writable that keeps what it is given. With `gated`, each write completes only when
 * the test calls `release()` (or `open()` for all from then on); with `delayMs`, after a timer.
 */
export class MemoryStream extends Writable {
  readonly chunks: Buffer[] = [];
  private readonly held: (() => void)[] = [];
  private opened: boolean;

  constructor(private readonly options: { gated?: boolean; delayMs?: number; highWaterMark?: number } = {}) {
    super({ highWaterMark: options.highWaterMark ?? 16 * 1024 });
    this.opened = options.gated !== true;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const done = (): void => {
      this.chunks.push(chunk);
      callback();
    };
    if (!this.opened) this.held.push(done);
    else if (this.options.delayMs !== undefined) setTimeout(done, this.options.delayMs);
    else done();
  }

  /** Completes every held write. */
  release(): void {
    for (const done of this.held.splice(0)) done();
  }

  /** Completes held writes and every later one at once. */
  open(): void {
    this.opened = true;
    this.release();
  }

  get heldWrites(): number {
    return this.held.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }

  lines(): string[] {
    const text = this.text();
    return text === '' ? [] : text.slice(0, -1).split('\n');
  }
}

export function logEntry(
  name: string,
  variables: Record<string, AttributeValue>,
  fields: Partial<Omit<LogEntryInstance, 'name' | 'variables'>> = {},
): LogEntryInstance {
  return {
    name,
    variables: new Map(Object.entries(variables)),
    timestamp: fields.timestamp,
    severity: fields.severity ?? 'INFO',
    monitoredResourceType: fields.monitoredResourceType ?? '',
    monitoredResourceDimensions: fields.monitoredResourceDimensions ?? new Map(),
  };
}

export function metric(
  name: string,
  value: AttributeValue | undefined,
  dimensions: Record<string, AttributeValue>,
): MetricInstance {
  return {
    name,
    value,
    dimensions: new Map(Object.entries(dimensions)),
    monitoredResourceType: '',
    monitoredResourceDimensions: new Map(),
  };
}

/** A fresh temporary folder, removed by the returned function. */
export function temporaryFolder(): { folder: string; remove: () => void } {
  const folder = mkdtempSync(path.join(tmpdir(), 'switchboard-stdio-'));
  return { folder, remove: () => rmSync(folder, { recursive: true, force: true }) };
}

/** Waits for pending I/O callbacks and immediates to run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}
