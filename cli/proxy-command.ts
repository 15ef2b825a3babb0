/**
 * `switchboard proxy --config FILE [--workers N]`: runs the sidecar proxy until SIGINT or
 * SIGTERM — in this process with one worker, or in N worker processes sharing the
 * listeners, this process supervising them (see proxy/proxy-workers.ts).
 */
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parseWorkerCount } from '../policy-server';
import {
  connectProxyWorker,
  createProxy,
  createProxyAdminEndpoint,
  createProxySupervisor,
  proxyAdminSource,
  formatProxyConfigError,
  loadProxyConfigFile,
  PolicyClient,
  ProxyConfigLoadError,
  proxyWorkerSlot,
  whilePolicyConfigured,
  type ListeningAddress,
  type ProxyLogger,
} from '../proxy';
import type { CommandOutput } from './server-command';
import { UsageError } from './usage-error';
import { catchStopSignals, type StopSignals } from './stop-signals';

export const PROXY_USAGE = `Usage: switchboard proxy --config FILE [--workers N] [--admin HOST:PORT]

Runs the sidecar proxy: HTTP/1.1, HTTP/2, gRPC, WebSocket and TCP listeners, routes and
clusters from one YAML file (see README.md, "The sidecar proxy"), reloaded when it changes.

Options:
  -c, --config FILE   the proxy configuration (YAML)
  -w, --workers N     proxy processes sharing the listeners; 0 or auto for one per CPU
                      (default: one per CPU). With N > 1 this process supervises them and
                      restarts a worker that dies; listeners then need fixed ports (not 0)
      --admin HOST:PORT  serve the admin endpoint there: GET /stats (counters of the data
                      path and the policy client: checks, cache hits, quotas, reports sent
                      and dropped) and /ready, as JSON; port 0 picks a free port. With N > 1
                      workers the supervisor serves it: /stats lists each worker and sums them
  -h, --help          show this help

Stops gracefully on SIGINT or SIGTERM (requests in flight finish, up to the configuration's
drainTimeout); a second signal stops it at once (exit code 1).`;

/**
 * Runs the proxy command; resolves with the exit code once the proxy stopped: 0 after a
 * clean stop, 1 when the configuration does not load or a listener cannot bind.
 * @throws UsageError on bad flags
 */
export async function runProxyCommand(args: readonly string[], output: CommandOutput): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        config: { type: 'string', short: 'c' },
        workers: { type: 'string', short: 'w' },
        admin: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError(`proxy: ${(error as Error).message}`, PROXY_USAGE);
  }
  if (values.help === true) {
    output.stdout.write(`${PROXY_USAGE}\n`);
    return 0;
  }
  const configFile = values.config;
  if (configFile === undefined || configFile === '')
    throw new UsageError('proxy: --config FILE is required', PROXY_USAGE);
  const workers = values.workers === undefined ? availableParallelism() : parseWorkerCount(values.workers);
  if (workers === undefined) {
    throw new UsageError(
      `proxy: --workers must be a whole number from 1 to 9999, or 0 or auto for one per CPU, got "${values.workers}"`,
      PROXY_USAGE,
    );
  }

  const admin = values.admin;
  if (admin !== undefined && !/^\S+:\d{1,5}$/.test(admin)) {
    throw new UsageError(
      `proxy: --admin must be HOST:PORT, e.g. 127.0.0.1:15000, got "${admin}"`,
      PROXY_USAGE,
    );
  }

  const slot = proxyWorkerSlot();
  let forceStop = (): void => process.exit(1);
  const signals = catchStopSignals(slot === undefined ? () => forceStop() : undefined);
  try {
    if (slot !== undefined) return await serveAsWorker(slot, configFile, output, signals);
    if (workers === 1) return await serveInProcess(configFile, admin, output, signals);
    return await supervise(workers, args, configFile, admin, output, signals, (kill) => {
      forceStop = () => {
        kill();
        process.exit(1);
      };
    });
  } finally {
    if (slot === undefined) signals.dispose();
  }
}

function loggerFor(output: CommandOutput, prefix: string): ProxyLogger {
  return {
    error: (message) => void output.stderr.write(`${prefix}${message}\n`),
    info: (message) => void output.stderr.write(`${prefix}${message}\n`),
  };
}

async function serveInProcess(
  configFile: string,
  adminAddress: string | undefined,
  output: CommandOutput,
  signals: StopSignals,
): Promise<number> {
  const logger = loggerFor(output, '');
  const policy = new PolicyClient((m) => logger.error(m));
  const proxy = createProxy({ configFile, logger, hook: whilePolicyConfigured(policy) });
  const admin =
    adminAddress === undefined
      ? undefined
      : createProxyAdminEndpoint({ address: adminAddress, proxy, policy });
  let listeners;
  let adminBound;
  try {
    adminBound = await admin?.start();
    listeners = await proxy.start();
  } catch (error) {
    await proxy.close();
    await admin?.close();
    reportStartFailure(error, output);
    return 1;
  }
  const extra = adminBound === undefined ? [] : [`admin http://${adminBound.address}/stats`];
  output.stdout.write(`${listeningLine(listeners, extra, proxy.generation, configFile)}\n`);
  const signal = await signals.next();
  output.stderr.write(`switchboard proxy: ${signal} received, draining\n`);
  await proxy.close();
  await admin?.close();
  return 0;
}

async function serveAsWorker(
  slot: number,
  configFile: string,
  output: CommandOutput,
  signals: StopSignals,
): Promise<number> {
  const logger = loggerFor(output, `switchboard proxy worker ${slot} (pid ${process.pid}): `);
  const policy = new PolicyClient((m) => logger.error(m));
  const proxy = createProxy({ configFile, logger, hook: whilePolicyConfigured(policy) });
  const link = connectProxyWorker(proxyAdminSource(proxy, policy));
  try {
    let listeners;
    try {
      listeners = await proxy.start();
    } catch (error) {
      await proxy.close();
      reportStartFailure(error, output);
      return 1;
    }
    link.reportListening(listeners, proxy.generation);
    await Promise.race([signals.next(), link.stopRequested]);
    await proxy.close();
    return 0;
  } finally {
    link.close();
  }
}

async function supervise(
  workers: number,
  args: readonly string[],
  configFile: string,
  adminAddress: string | undefined,
  output: CommandOutput,
  signals: StopSignals,
  setForceStop: (kill: () => void) => void,
): Promise<number> {
  // Validate once here: a bad file is reported once, and port 0 cannot be shared by workers.
  try {
    const { config } = await loadProxyConfigFile(configFile);
    const portZero = config.listeners.filter((l) => l.port === 0).map((l) => l.name);
    if (portZero.length > 0) {
      output.stderr.write(
        `switchboard proxy: listener ${portZero.join(', ')} ${portZero.length === 1 ? 'has' : 'have'} port 0, which each worker would resolve on its own; ` +
          `give fixed ports, or run with --workers 1\n`,
      );
      return 1;
    }
  } catch (error) {
    reportStartFailure(error, output);
    return 1;
  }
  const log = (line: string): void => void output.stderr.write(`${line}\n`);
  const supervisor = createProxySupervisor({
    workers,
    exec: path.join(__dirname, 'switchboard.js'),
    args: ['proxy', ...args],
    log,
    ...(adminAddress === undefined ? {} : { adminAddress }),
  });
  setForceStop(() => supervisor.kill());
  let signalled = false;
  const stopped = signals.next().then(async (signal) => {
    signalled = true;
    log(`switchboard proxy: ${signal} received, draining ${workers} workers`);
    return supervisor.stop(signal);
  });
  let listening;
  try {
    listening = await supervisor.start();
  } catch (error) {
    if (signalled) return (await stopped) ? 0 : 1;
    log(`switchboard proxy: ${(error as Error).message}`);
    await supervisor.stop('SIGTERM');
    return 1;
  }
  const extra = [`${workers} workers`];
  if (listening.admin !== undefined) extra.push(`admin http://${listening.admin.address}/stats`);
  output.stdout.write(`${listeningLine(listening.listeners, extra, listening.generation, configFile)}\n`);
  return (await stopped) ? 0 : 1;
}

function listeningLine(
  listeners: readonly ListeningAddress[],
  extra: readonly string[],
  generation: number,
  configFile: string,
): string {
  const where = listeners
    .map((l) => `${l.name} (${l.protocol}, ${l.role}) on ${l.address}:${l.port}`)
    .join(', ');
  return `switchboard proxy listening: ${where} (${[...extra, `config generation ${generation}`, configFile].join(', ')})`;
}

function reportStartFailure(error: unknown, output: CommandOutput): void {
  if (error instanceof ProxyConfigLoadError) {
    const count = error.errors.length;
    output.stderr.write(
      `switchboard proxy: configuration ${error.file} does not load (${count} ${count === 1 ? 'error' : 'errors'}):\n`,
    );
    for (const e of error.errors) output.stderr.write(`${formatProxyConfigError(e)}\n`);
  } else {
    output.stderr.write(`switchboard proxy: ${(error as Error).message}\n`);
  }
}
