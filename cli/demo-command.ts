/**
 * `switchboard demo [--keep-running] [--free-ports] [--run-dir DIR]` (what `npm start`
 * runs): the demo mesh of demo/mesh-demo.ts, printed as it goes.
 */
import { parseArgs } from 'node:util';
import { startMeshDemo } from '../demo';
import type { CommandOutput } from './server-command';
import { UsageError } from './usage-error';

export const DEMO_USAGE = `Usage: switchboard demo [--keep-running] [--free-ports] [--run-dir DIR]

Runs the demo mesh on this machine (what npm start runs): the policy server on
examples/mesh/policy (block list, denial, Rego RBAC, rate limit, access log to a file), two
sample services (frontend calling catalog) each behind inbound and outbound proxies
(examples/mesh/proxies), and a short traffic script. Each request is printed with what
happened and which rule decided; then a summary, and where to look (admin URLs, the log).

Options:
      --keep-running  keep the mesh up after the traffic, until Ctrl-C (default: stop after it)
      --free-ports    use free ports instead of those in examples/mesh (15080…, 16080…, 19091…;
                      free ones are used anyway when one of those is taken)
      --run-dir DIR   where the run's copy of the configuration and its access log go
                      (default: a new temporary directory)
  -h, --help          show this help

Ctrl-C stops it cleanly at any time; a second Ctrl-C stops it at once (exit code 1).`;

/** Resolves with the exit code: 0 after a clean run, 1 when the mesh could not start. */
export async function runDemoCommand(args: readonly string[], output: CommandOutput): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        'keep-running': { type: 'boolean' },
        'free-ports': { type: 'boolean' },
        'run-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError(`demo: ${(error as Error).message}`, DEMO_USAGE);
  }
  if (values.help === true) {
    output.stdout.write(`${DEMO_USAGE}\n`);
    return 0;
  }
  const demo = startMeshDemo({
    print: (line) => void output.stdout.write(`${line}\n`),
    keepRunning: values['keep-running'] === true,
    freePorts: values['free-ports'] === true,
    ...(values['run-dir'] === undefined ? {} : { runDir: values['run-dir'] }),
  });
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) process.exit(1);
    signalled = true;
    output.stdout.write(`\n${signal} received: stopping the demo mesh\n`);
    void demo.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await demo.finished;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
