/**
 * `switchboard server --config DIR [--address HOST:PORT] [--admin-address HOST:PORT]
 * [--data-dir DIR] [--workers N] [--idle-timeout SECONDS] [--max-header-list-bytes N]`: runs the policy server until SIGINT or SIGTERM — in this process, or with
 * `--workers N` (N > 1) in N worker processes sharing the address, this process
 * supervising them (see policy-server/workers.ts).
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DATA_DIR } from '../adapters';
import {
  ConfigLoadError,
  connectToSupervisor,
  createPolicyServer,
  createWorkerSupervisor,
  DEFAULT_ADDRESS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_HEADER_LIST_BYTES,
  formatConfigError,
  parseAddress,
  parseWorkerCount,
  supervisedWorkerSlot,
  WORKER_ADDRESS_ENV,
} from '../policy-server';
import type { PolicyServerLogger } from '../policy-server';
import { UsageError } from './usage-error';
import { catchStopSignals, type StopSignals } from './stop-signals';

/** Bounds of --max-header-list-bytes: room for a gRPC call's own fields, and the proxy's own cap. */
const MIN_HEADER_LIST_BYTES = 1024;
const MAX_HEADER_LIST_BYTES = 1024 * 1024;
/** The longest --idle-timeout a timer holds (2^31 - 1 ms), in whole seconds. */
const MAX_IDLE_TIMEOUT_SECONDS = 2_147_483;

export const SERVER_USAGE = `Usage: switchboard server --config DIR [--address HOST:PORT] [--admin-address HOST:PORT] [--data-dir DIR] [--workers N]
                         [--idle-timeout SECONDS] [--max-header-list-bytes N]

Runs the policy server: Istio Mixer's Check/Report API and the gRPC health service.

Options:
  -c, --config DIR               directory of YAML configuration (*.yaml, *.yml, recursively)
  -a, --address HOST:PORT        where to listen; port 0 picks a free port (default ${DEFAULT_ADDRESS})
      --admin-address HOST:PORT  also serve the admin HTTP endpoint there: GET /healthz, /readyz,
                                 /config, /stats (JSON); port 0 picks a free port (default: none)
      --data-dir DIR             where handlers keep durable state, such as the spools of accepted
                                 audit records that a restart replays (default ${DEFAULT_DATA_DIR});
                                 with --workers N > 1, worker K uses DIR/worker-K
  -w, --workers N                server processes sharing the address; 0 or auto for one per CPU
                                 (default 1: this process serves). With N > 1 this process
                                 supervises: it restarts a worker that dies and runs the admin endpoint
      --idle-timeout SECONDS     a client connection without a call for this long is sent GOAWAY
                                 and closed; 0: never (default ${DEFAULT_IDLE_TIMEOUT_MS / 1000})
      --max-header-list-bytes N  the largest header list a call may send, announced to clients;
                                 a call over it is answered 431 (default ${DEFAULT_MAX_HEADER_LIST_BYTES},
                                 from ${MIN_HEADER_LIST_BYTES} to ${MAX_HEADER_LIST_BYTES})
  -h, --help                     show this help

Stops gracefully on SIGINT or SIGTERM; a second signal stops it at once (exit code 1).`;

/** Where the command writes; the process's streams unless a caller (a test) says otherwise. */
export interface CommandOutput {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** What the command serves, from the flags. */
interface ServeOptions {
  readonly configDir: string;
  readonly address: string;
  readonly adminAddress: string | undefined;
  readonly dataDir: string;
  /** The connection limits, when given. */
  readonly limits: ConnectionLimits;
}

interface ConnectionLimits {
  readonly idleTimeoutMs?: number;
  readonly maxHeaderListBytes?: number;
}

/**
 * Runs the server command and resolves with the exit code once the server has stopped:
 * 0 after a clean stop on a signal, 1 when the configuration does not load or the address
 * cannot be bound (or, with workers, when a worker did not stop cleanly).
 * @throws UsageError on bad flags (the caller prints usage and exits 2)
 */
export async function runServerCommand(args: readonly string[], output: CommandOutput): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        config: { type: 'string', short: 'c' },
        address: { type: 'string', short: 'a' },
        'admin-address': { type: 'string' },
        'data-dir': { type: 'string' },
        workers: { type: 'string', short: 'w' },
        'idle-timeout': { type: 'string' },
        'max-header-list-bytes': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError(`server: ${(error as Error).message}`, SERVER_USAGE);
  }
  if (values.help === true) {
    output.stdout.write(`${SERVER_USAGE}\n`);
    return 0;
  }
  const configDir = values.config;
  if (configDir === undefined || configDir === '') {
    throw new UsageError('server: --config DIR is required', SERVER_USAGE);
  }
  const address = checkAddress('--address', values.address ?? DEFAULT_ADDRESS);
  const adminAddress =
    values['admin-address'] === undefined
      ? undefined
      : checkAddress('--admin-address', values['admin-address']);
  const dataDir = path.resolve(values['data-dir'] ?? DEFAULT_DATA_DIR);
  if (values['data-dir'] === '') {
    throw new UsageError('server: --data-dir must name a directory, got ""', SERVER_USAGE);
  }
  const workers = values.workers === undefined ? 1 : parseWorkerCount(values.workers);
  if (workers === undefined) {
    throw new UsageError(
      `server: --workers must be a whole number from 1 to 9999, or 0 or auto for one per CPU, got "${values.workers}"`,
      SERVER_USAGE,
    );
  }
  const limits = connectionLimits(values['idle-timeout'], values['max-header-list-bytes']);

  // Signals are caught from the start, so that one arriving while the server starts (or
  // just after the listening line) stops it cleanly instead of killing the process.
  const slot = supervisedWorkerSlot();
  let forceStop = (): void => process.exit(1);
  // Only the supervisor turns a second signal into a hard stop: a worker's way out is the
  // supervisor's (which kills it after a while), and its own signals are all one request.
  const signals = catchStopSignals(slot === undefined ? () => forceStop() : undefined);
  try {
    if (slot !== undefined) {
      // The supervisor names the address to bind: the one asked for, or the port the first worker got.
      const workerAddress = process.env[WORKER_ADDRESS_ENV] ?? address;
      return await serveAsWorker(
        slot,
        // Each worker its own data: one spool belongs to one process.
        {
          configDir,
          address: workerAddress,
          adminAddress: undefined,
          dataDir: path.join(dataDir, `worker-${slot}`),
          limits,
        },
        output,
        signals,
      );
    }
    const serve = { configDir, address, adminAddress, dataDir, limits };
    if (workers > 1) {
      return await superviseWorkers(workers, args, serve, output, signals, (kill) => {
        forceStop = () => {
          kill();
          process.exit(1);
        };
      });
    }
    return await serveUntilSignalled(serve, output, signals);
  } finally {
    // A worker keeps catching stop signals until it exits: a signal arriving while it
    // exits would otherwise kill it (an exit by signal, not 0).
    if (slot === undefined) signals.dispose();
  }
}

function checkAddress(flag: string, address: string): string {
  try {
    parseAddress(address);
  } catch {
    throw new UsageError(
      `server: ${flag} must be HOST:PORT with a port from 0 to 65535, e.g. ${DEFAULT_ADDRESS}, got "${address}"`,
      SERVER_USAGE,
    );
  }
  return address;
}

/**
 * --idle-timeout and --max-header-list-bytes, checked.
 * @throws UsageError naming the flag, what it takes, and what it got
 */
function connectionLimits(idle: string | undefined, headerList: string | undefined): ConnectionLimits {
  const limits: { idleTimeoutMs?: number; maxHeaderListBytes?: number } = {};
  if (idle !== undefined) {
    const seconds = /^\d+(\.\d+)?$/.test(idle) ? Number(idle) : NaN;
    if (!(seconds <= MAX_IDLE_TIMEOUT_SECONDS)) {
      throw new UsageError(
        `server: --idle-timeout must be a number of seconds from 0 (never) to ${MAX_IDLE_TIMEOUT_SECONDS}, e.g. 300, got "${idle}"`,
        SERVER_USAGE,
      );
    }
    limits.idleTimeoutMs = Math.round(seconds * 1000);
  }
  if (headerList !== undefined) {
    const bytes = /^\d+$/.test(headerList) ? Number(headerList) : NaN;
    if (!(bytes >= MIN_HEADER_LIST_BYTES && bytes <= MAX_HEADER_LIST_BYTES)) {
      throw new UsageError(
        `server: --max-header-list-bytes must be a whole number of bytes from ${MIN_HEADER_LIST_BYTES} to ${MAX_HEADER_LIST_BYTES}, e.g. ${DEFAULT_MAX_HEADER_LIST_BYTES}, got "${headerList}"`,
        SERVER_USAGE,
      );
    }
    limits.maxHeaderListBytes = bytes;
  }
  return limits;
}

async function serveUntilSignalled(
  serve: ServeOptions,
  output: CommandOutput,
  signals: StopSignals,
): Promise<number> {
  const server = createPolicyServer({
    address: serve.address,
    configDir: serve.configDir,
    dataDir: serve.dataDir,
    ...serve.limits,
    ...(serve.adminAddress === undefined ? {} : { adminAddress: serve.adminAddress }),
  });
  let listening;
  try {
    listening = await server.start();
  } catch (error) {
    await server.close();
    reportStartFailure(error, serve.configDir, output);
    return 1;
  }

  output.stdout.write(
    listeningLine(listening.address, [], server.generation, server.snapshot?.resources.length ?? 0, serve) +
      (listening.admin === undefined ? '' : `, admin on ${listening.admin.address}`) +
      '\n',
  );
  const signal = await signals.next();
  output.stderr.write(`switchboard: ${signal} received, stopping\n`);
  await server.close();
  return 0;
}

/** A worker: serves like a single server, but tells the supervisor instead of printing. */
async function serveAsWorker(
  slot: number,
  serve: ServeOptions,
  output: CommandOutput,
  signals: StopSignals,
): Promise<number> {
  const prefix = `switchboard worker ${slot} (pid ${process.pid})`;
  const logger: PolicyServerLogger = { error: (message) => output.stderr.write(`${prefix}: ${message}\n`) };
  const server = createPolicyServer({
    address: serve.address,
    configDir: serve.configDir,
    dataDir: serve.dataDir,
    ...serve.limits,
    logger,
  });
  const link = connectToSupervisor(server, serve.configDir);
  try {
    let listening;
    try {
      listening = await server.start();
    } catch (error) {
      await server.close();
      reportStartFailure(error, serve.configDir, output);
      return 1;
    }
    link.reportListening(listening);
    // A terminal's Ctrl-C reaches the worker itself; a signal sent to the supervisor comes as a message.
    await Promise.race([signals.next(), link.stopRequested]);
    await server.close();
    return 0;
  } finally {
    link.close();
  }
}

/** The supervisor of `workers` worker processes, each running this command. */
async function superviseWorkers(
  workers: number,
  args: readonly string[],
  serve: ServeOptions,
  output: CommandOutput,
  signals: StopSignals,
  setForceStop: (kill: () => void) => void,
): Promise<number> {
  const log = (line: string): void => void output.stderr.write(`${line}\n`);
  const supervisor = createWorkerSupervisor({
    workers,
    // Workers run this CLI with the same arguments; they know they are workers from cluster.
    exec: path.join(__dirname, 'switchboard.js'),
    args: ['server', ...args],
    address: serve.address,
    ...(serve.adminAddress === undefined ? {} : { adminAddress: serve.adminAddress }),
    log,
  });
  setForceStop(() => supervisor.kill());
  let signalled = false;
  const stopped = signals.next().then(async (signal) => {
    signalled = true;
    log(`switchboard: ${signal} received, stopping ${workers} workers`);
    return supervisor.stop(signal);
  });
  let listening;
  try {
    listening = await supervisor.start();
  } catch (error) {
    // Stopped by a signal while starting: the workers were told to stop, not failing.
    if (signalled) return (await stopped) ? 0 : 1;
    log(`switchboard: ${(error as Error).message}`);
    await supervisor.stop('SIGTERM');
    return 1;
  }
  output.stdout.write(
    listeningLine(
      listening.address,
      [`${workers} workers`],
      listening.generation,
      listening.resources,
      serve,
    ) +
      (listening.admin === undefined ? '' : `, admin on ${listening.admin.address}`) +
      '\n',
  );
  return (await stopped) ? 0 : 1;
}

function listeningLine(
  address: string,
  extra: readonly string[],
  generation: number,
  resourceCount: number,
  serve: ServeOptions,
): string {
  const resources = `${resourceCount} ${resourceCount === 1 ? 'resource' : 'resources'} from ${serve.configDir}`;
  return `switchboard policy server listening on ${address} (${[...extra, `config generation ${generation}`, resources].join(', ')})`;
}

function reportStartFailure(error: unknown, configDir: string, output: CommandOutput): void {
  if (error instanceof ConfigLoadError) {
    const count = error.errors.length;
    output.stderr.write(
      `switchboard: configuration in ${configDir} does not load (${count} ${count === 1 ? 'error' : 'errors'}):\n`,
    );
    for (const e of error.errors) output.stderr.write(`${formatConfigError(e)}\n`);
  } else {
    output.stderr.write(`switchboard: ${(error as Error).message}\n`);
  }
}
