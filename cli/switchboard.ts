#!/usr/bin/env node
/**
 * The `switchboard` command line. Exit codes: 0 success, 1 failure (e.g. a configuration
 * that does not load), 2 a command line that cannot be run (unknown command, bad flags).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CHECK_USAGE,
  REPORT_USAGE,
  runCheckCommand,
  runReportCommand,
  runValidateCommand,
  VALIDATE_USAGE,
} from './config-commands';
import { DEMO_USAGE, runDemoCommand } from './demo-command';
import { EVAL_USAGE, runEvalCommand } from './eval-command';
import { POLICY_USAGE, runPolicyCommand } from './policy-command';
import { PROXY_USAGE, runProxyCommand } from './proxy-command';
import { runServerCommand, SERVER_USAGE } from './server-command';
import type { CommandOutput } from './server-command';
import { UsageError } from './usage-error';

export const USAGE = `Usage: switchboard <command> [options]

Commands:
  server --config DIR [--address HOST:PORT] [--admin-address HOST:PORT] [--workers N]
                                             run the policy server (Istio Mixer's Check/Report API)
  proxy --config FILE [--workers N] [--admin HOST:PORT]
                                             run the sidecar proxy (HTTP/1.1, HTTP/2, gRPC, WebSocket, TCP)
  demo [--keep-running] [--free-ports]       run the demo mesh (npm start): policy server, two services, four proxies, traffic
  validate DIR                               check a configuration directory, every error as file:line: path: message
  check --config DIR --attributes FILE.json [--quota NAME=AMOUNT]...
                                             run one Check offline and print the CheckResponse
  report --config DIR --attributes FILE.json run one Report offline
  eval EXPRESSION [--attributes FILE.json]   evaluate an expression against attributes
  policy test DIR [--opa PATH]               run a Rego policy's unit tests and decision cases
  help [COMMAND]                             show this help, or a command's

Options:
  -h, --help     show this help
  -v, --version  print the version`;

const PROCESS_OUTPUT: CommandOutput = { stdout: process.stdout, stderr: process.stderr };

/**
 * Runs the command line `args` (without `node` and the script) and resolves with the exit
 * code. Usage problems are printed with the usage and give 2.
 */
export async function main(args: readonly string[], output: CommandOutput = PROCESS_OUTPUT): Promise<number> {
  try {
    const [command, ...rest] = args;
    if (command === undefined) throw new UsageError('no command given', USAGE);
    if (command.startsWith('-')) return runGlobalOptions(args, output);
    switch (command) {
      case 'server':
        return await runServerCommand(rest, output);
      case 'proxy':
        return await runProxyCommand(rest, output);
      case 'demo':
        return await runDemoCommand(rest, output);
      case 'eval':
        return await runEvalCommand(rest);
      case 'validate':
        return await runValidateCommand(rest, output);
      case 'check':
        return await runCheckCommand(rest, output);
      case 'report':
        return await runReportCommand(rest, output);
      case 'policy':
        return await runPolicyCommand(rest, output);
      case 'help':
        return runHelp(rest, output);
      default:
        throw new UsageError(`unknown command '${command}'`, USAGE);
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.stderr.write(`switchboard: ${error.message}\n\n${error.usage}\n`);
    return 2;
  }
}

/** `switchboard --help` / `--version`, before any command. */
function runGlobalOptions(args: readonly string[], output: CommandOutput): number {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message, USAGE);
  }
  if (values.version === true && values.help !== true) {
    output.stdout.write(`switchboard ${readVersion()}\n`);
  } else {
    output.stdout.write(`${USAGE}\n`);
  }
  return 0;
}

/** `switchboard help [COMMAND]`. */
function runHelp(args: readonly string[], output: CommandOutput): number {
  if (args.length > 1) throw new UsageError('help takes at most one command', USAGE);
  const topic = args[0];
  if (topic === undefined || topic === 'help') output.stdout.write(`${USAGE}\n`);
  else if (topic === 'server') output.stdout.write(`${SERVER_USAGE}\n`);
  else if (topic === 'eval') output.stdout.write(`${EVAL_USAGE}\n`);
  else if (topic === 'proxy') output.stdout.write(`${PROXY_USAGE}\n`);
  else if (topic === 'demo') output.stdout.write(`${DEMO_USAGE}\n`);
  else if (topic === 'validate') output.stdout.write(`${VALIDATE_USAGE}\n`);
  else if (topic === 'check') output.stdout.write(`${CHECK_USAGE}\n`);
  else if (topic === 'report') output.stdout.write(`${REPORT_USAGE}\n`);
  else if (topic === 'policy') output.stdout.write(`${POLICY_USAGE}\n`);
  else throw new UsageError(`unknown command '${topic}'`, USAGE);
  return 0;
}

/** The version in the package.json next to the build output (dist/cli/ → ../../) or the sources (cli/ → ../). */
function readVersion(): string {
  for (const candidate of [
    path.join(__dirname, '..', '..', 'package.json'),
    path.join(__dirname, '..', 'package.json'),
  ]) {
    try {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'switchboard' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not there; try the next
    }
  }
  return 'unknown';
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      // Let pending output drain; nothing else is left running once a command resolves.
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(
        `switchboard: unexpected error: ${error instanceof Error ? error.stack : String(error)}\n`,
      );
      process.exitCode = 1;
    },
  );
}
