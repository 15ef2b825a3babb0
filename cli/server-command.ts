/**
 * `switchboard server --config DIR [--address HOST:PORT]`: runs the policy server until
 * SIGINT or SIGTERM.
 */
import { parseArgs } from 'node:util';
import {
  ConfigLoadError,
  createPolicyServer,
  DEFAULT_ADDRESS,
  formatConfigError,
  parseAddress,
} from '../policy-server';
import { UsageError } from './usage-error';

export const SERVER_USAGE = `Usage: switchboard server --config DIR [--address HOST:PORT]

Runs the policy server: Istio Mixer's Check/Report API and the gRPC health service.

Options:
  -c, --config DIR         directory of YAML configuration (*.yaml, *.yml, recursively)
  -a, --address HOST:PORT  where to listen; port 0 picks a free port (default ${DEFAULT_ADDRESS})
  -h, --help               show this help

Stops gracefully on SIGINT or SIGTERM; a second signal stops it at once (exit code 1).`;

/** Where the command writes; the process's streams unless a caller (a test) says otherwise. */
export interface CommandOutput {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/**
 * Runs the server command and resolves with the exit code once the server has stopped:
 * 0 after a clean stop on a signal, 1 when the configuration does not load or the address
 * cannot be bound.
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
  const address = values.address ?? DEFAULT_ADDRESS;
  try {
    parseAddress(address);
  } catch {
    throw new UsageError(
      `server: --address must be HOST:PORT with a port from 0 to 65535, e.g. ${DEFAULT_ADDRESS}, got "${address}"`,
      SERVER_USAGE,
    );
  }

  // Signals are caught from the start, so that one arriving while the server starts (or
  // just after the listening line) stops it cleanly instead of killing the process.
  let stopSignal: NodeJS.Signals | undefined;
  let wake: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopSignal !== undefined) process.exit(1); // a second signal cuts the graceful wait short
    stopSignal = signal;
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await serveUntilSignalled(configDir, address, output, () => {
      if (stopSignal !== undefined) return Promise.resolve(stopSignal);
      return new Promise<NodeJS.Signals>((resolve) => {
        wake = () => resolve(stopSignal as NodeJS.Signals);
      });
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function serveUntilSignalled(
  configDir: string,
  address: string,
  output: CommandOutput,
  nextSignal: () => Promise<NodeJS.Signals>,
): Promise<number> {
  const server = createPolicyServer({ address, configDir });
  let listening;
  try {
    listening = await server.start();
  } catch (error) {
    await server.close();
    if (error instanceof ConfigLoadError) {
      const count = error.errors.length;
      output.stderr.write(
        `switchboard: configuration in ${configDir} does not load (${count} ${count === 1 ? 'error' : 'errors'}):\n`,
      );
      for (const e of error.errors) output.stderr.write(`${formatConfigError(e)}\n`);
    } else {
      output.stderr.write(`switchboard: ${(error as Error).message}\n`);
    }
    return 1;
  }

  const resourceCount = server.snapshot?.resources.length ?? 0;
  output.stdout.write(
    `switchboard policy server listening on ${listening.address} ` +
      `(config generation ${server.generation}, ${resourceCount} ${resourceCount === 1 ? 'resource' : 'resources'} from ${configDir})\n`,
  );
  const signal = await nextSignal();
  output.stderr.write(`switchboard: ${signal} received, stopping\n`);
  await server.close();
  return 0;
}
