/**
 * The demo mesh (`npm start`, `switchboard demo`): on this one machine, with the embedded
 * defaults and nothing else installed —
 *
 * - the policy server on examples/mesh/policy/ (listchecker, denier, opa from a precompiled
 *   bundle, memquota, stdio access log to a file);
 * - two sample services, `frontend` calling `catalog` (which asks `stock`), each behind an
 *   inbound and an outbound proxy: four proxies from examples/mesh/proxies/, run in this
 *   process by the same code as `switchboard proxy` (createProxy with the policy client),
 *   each with its admin endpoint;
 * - a short traffic script, each step printed with its outcome and the rule that decided,
 *   then a summary from the proxies' and the server's counters and the access log.
 *
 * After the traffic it stops by itself, unless `keepRunning`: then it serves until stop()
 * (Ctrl-C in the CLI), so you can send your own requests. stop() is idempotent and closes
 * everything in order: traffic, proxies (which send their last Reports), services, server.
 */
import { setMaxListeners } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createPolicyServer, type PolicyServer } from '../policy-server';
import {
  createProxy,
  createProxyAdminEndpoint,
  PolicyClient,
  type Proxy,
  type ProxyAdminEndpoint,
} from '../proxy';
import { EXAMPLE_PORTS, freePorts, portsAvailable, PROXIES, renderMesh, type MeshPorts } from './mesh-layout';
import { startCatalog, startFrontend, type SampleService } from './sample-services';
import { runStep, SCRIPT, type StepResult } from './traffic';

/** Options of {@link startMeshDemo}. */
export interface MeshDemoOptions {
  /** Where each line of the demo's story goes. */
  readonly print: (line: string) => void;
  /** The example configuration. Default: examples/mesh of this package. */
  readonly exampleDir?: string;
  /** Where the run's configuration copy and access log go. Default: a new temporary directory. */
  readonly runDir?: string;
  /** Free ports instead of those written in examples/mesh. Default false. */
  readonly freePorts?: boolean;
  /** Keep serving after the traffic until stop(). Default false. */
  readonly keepRunning?: boolean;
}

export interface MeshDemo {
  /** Resolves with the exit code once the demo stopped: 0 after a clean run, 1 when it could not start. */
  readonly finished: Promise<number>;
  /** Stops now (traffic in flight is abandoned); idempotent. */
  stop(): Promise<void>;
}

interface RunningProxy {
  readonly name: string;
  readonly proxy: Proxy;
  readonly policy: PolicyClient;
  readonly admin: ProxyAdminEndpoint;
}

export function startMeshDemo(options: MeshDemoOptions): MeshDemo {
  const print = options.print;
  const traffic = new AbortController();
  // Every request of a burst listens for the abort.
  setMaxListeners(100, traffic.signal);
  let stopRequested: () => void = () => undefined;
  const stopSignal = new Promise<void>((resolve) => (stopRequested = resolve));
  let server: PolicyServer | undefined;
  const services: SampleService[] = [];
  const proxies: RunningProxy[] = [];
  let stopping: Promise<void> | undefined;

  const shutdown = (): Promise<void> =>
    (stopping ??= (async () => {
      traffic.abort();
      await Promise.all(proxies.map(async (p) => (await p.proxy.close(), await p.admin.close())));
      await Promise.all(services.map((s) => s.close()));
      await server?.close();
    })());

  const run = async (): Promise<number> => {
    const exampleDir = options.exampleDir ?? path.resolve(__dirname, '..', '..', 'examples', 'mesh');
    const runDir = options.runDir ?? mkdtempSync(path.join(tmpdir(), 'switchboard-demo-'));
    let ports: MeshPorts = EXAMPLE_PORTS;
    if (options.freePorts === true) ports = await freePorts();
    else if (!(await portsAvailable(EXAMPLE_PORTS))) {
      print(`Some ports of examples/mesh are taken (another demo running?): using free ones instead.`);
      ports = await freePorts();
    }
    const mesh = renderMesh(exampleDir, runDir, ports);
    const at = (port: number): string => `127.0.0.1:${port}`;
    print(
      `Switchboard demo mesh: policy server, frontend → catalog → stock, four proxies, a short traffic script`,
    );
    print(`  configuration  ${path.relative(process.cwd(), exampleDir) || '.'} (copied to ${runDir})`);

    try {
      server = createPolicyServer({
        address: at(ports.policyServer),
        adminAddress: at(ports.policyAdmin),
        configDir: mesh.policyDir,
        dataDir: path.join(runDir, 'data'),
        logger: { error: (m) => print(`  [policy server] ${m}`) },
      });
      await server.start();
      services.push(await startCatalog(ports.catalogApp, ports.catalogOutbound));
      services.push(await startFrontend(ports.frontendApp, ports.frontendOutbound));
      for (const spec of PROXIES) {
        const policy = new PolicyClient((m) => print(`  [${spec.name}] ${m}`));
        const proxy = createProxy({
          configFile: mesh.proxyFiles[spec.name]!,
          hook: policy,
          logger: { error: (m) => print(`  [${spec.name}] ${m}`), info: () => undefined },
        });
        const admin = createProxyAdminEndpoint({ address: at(ports[spec.admin]), proxy, policy });
        proxies.push({ name: spec.name, proxy, policy, admin });
        await admin.start();
        await proxy.start();
      }
    } catch (error) {
      const message = (error as Error).message;
      print(`The demo could not start: ${message}`);
      if (/EADDRINUSE/.test(message) && options.freePorts !== true) {
        print(
          `A port of examples/mesh is taken (another demo running?); run with --free-ports to use free ones.`,
        );
      }
      await shutdown();
      return 1;
    }

    print(
      `  policy server  ${at(ports.policyServer)}   admin http://${at(ports.policyAdmin)}/stats  /config`,
    );
    print(
      `  frontend       app ${at(ports.frontendApp)}, behind frontend-inbound ${at(ports.frontendInbound)}`,
    );
    print(`                 and frontend-outbound ${at(ports.frontendOutbound)} (to catalog)`);
    print(`  catalog        app ${at(ports.catalogApp)}, behind catalog-inbound ${at(ports.catalogInbound)}`);
    print(
      `                 and catalog-outbound ${at(ports.catalogOutbound)} (to stock, answered by the proxy)`,
    );
    for (const spec of PROXIES)
      print(`  ${spec.name.padEnd(18)} admin http://${at(ports[spec.admin])}/stats`);
    print(`  access log     ${mesh.accessLog} (one JSON line per request each proxy reports)`);
    print('');
    print(`Traffic to the frontend (http://${at(ports.frontendInbound)}, user in x-user):`);

    const tallies = new Map<string, number>();
    for (const step of SCRIPT) {
      if (traffic.signal.aborted) break;
      const result = await runStep(ports.frontendInbound, step, traffic.signal);
      if (traffic.signal.aborted) break;
      print(describeStep(result));
      for (const [outcome, n] of result.outcomes) tallies.set(outcome, (tallies.get(outcome) ?? 0) + n);
    }
    if (!traffic.signal.aborted) {
      await reportsDelivered(proxies, traffic.signal);
      printSummary(print, tallies, proxies, server, mesh.accessLog);
      if (options.keepRunning === true) {
        print('');
        print(`The mesh keeps running; try: curl -H 'x-user: bob' http://${at(ports.frontendInbound)}/shop`);
        print(`Edit the rules in ${mesh.policyDir} (the server reloads them). Ctrl-C stops.`);
        await stopSignal;
      } else {
        print('');
        print(`Traffic done; stopping (run with --keep-running to keep the mesh up).`);
      }
    }
    await shutdown();
    print('Demo stopped: proxies drained and sent their last reports, services and policy server closed.');
    return 0;
  };

  const finished = run();
  return {
    finished,
    async stop() {
      traffic.abort();
      stopRequested();
      await finished;
    },
  };
}

function describeStep(result: StepResult): string {
  const { step } = result;
  const what = `  ${step.say} (${step.method} ${step.path})`;
  const parts =
    (step.count ?? 1) === 1
      ? [...result.outcomes.keys()].map((outcome) => `${result.statuses[0]} ${outcome}`)
      : [...result.outcomes].map(([outcome, n]) => `${n}× ${outcome}`);
  const reason = result.reason === undefined ? '' : `\n      reason: ${result.reason.trim()}`;
  return `${what}\n    → ${parts.join(', ')}${reason}`;
}

/** Waits until every proxy has no Report pending (a few seconds at most). */
async function reportsDelivered(proxies: readonly RunningProxy[], signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!signal.aborted && Date.now() < deadline) {
    if (proxies.every((p) => p.policy.view().reportsPending === 0)) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // The server writes the log a moment after it answers the Report.
  await new Promise((resolve) => setTimeout(resolve, 200));
}

function printSummary(
  print: (line: string) => void,
  tallies: ReadonlyMap<string, number>,
  proxies: readonly RunningProxy[],
  server: PolicyServer | undefined,
  accessLog: string,
): void {
  print('');
  print('Summary');
  print(`  requests by outcome: ${[...tallies].map(([o, n]) => `${o} ${n}`).join(', ')}`);
  for (const { name, policy } of proxies) {
    const v = policy.view();
    print(
      `  ${name.padEnd(18)} checks sent ${v.checks}, answered from its decision cache ${v.cacheHits}, ` +
        `quota calls ${v.quotaCalls}, denied ${v.denied + v.quotaDenied}, reports sent ${v.reportsSent}, dropped ${v.reportsDropped}`,
    );
  }
  const stats = server?.runtime?.current().dispatcher.stats;
  if (stats !== undefined) {
    print(
      `  policy server      Checks ${stats.checks}, Report batches ${stats.reports}, handler faults ${stats.handlerFaults}`,
    );
  }
  let lines = 0;
  try {
    lines = readFileSync(accessLog, 'utf8')
      .split('\n')
      .filter((l) => l !== '').length;
  } catch {
    // No request was reported yet: no file.
  }
  print(`  access log         ${lines} records in ${accessLog}`);
}
