/**
 * Where the demo mesh's pieces listen, and its configuration rendered for one run.
 *
 * `examples/mesh/` is written with fixed loopback ports (below) so that each file also runs
 * by hand. A run copies it into its run directory: with `freePorts` every one of those
 * ports is replaced by a free one (tests; a second demo beside the first), the access log
 * goes into the run directory, and relative bundle paths become absolute.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/** The ports as written in examples/mesh/. */
export const EXAMPLE_PORTS = {
  policyServer: 19091,
  policyAdmin: 19092,
  frontendApp: 16080,
  catalogApp: 16090,
  frontendInbound: 15080,
  frontendOutbound: 15081,
  catalogInbound: 15090,
  catalogOutbound: 15091,
  frontendInboundAdmin: 15180,
  frontendOutboundAdmin: 15181,
  catalogInboundAdmin: 15190,
  catalogOutboundAdmin: 15191,
} as const;

export type MeshPorts = { readonly [K in keyof typeof EXAMPLE_PORTS]: number };

/** The four proxies: their configuration file (examples/mesh/proxies/NAME.yaml) and ports. */
export const PROXIES = [
  { name: 'frontend-inbound', port: 'frontendInbound', admin: 'frontendInboundAdmin' },
  { name: 'frontend-outbound', port: 'frontendOutbound', admin: 'frontendOutboundAdmin' },
  { name: 'catalog-inbound', port: 'catalogInbound', admin: 'catalogInboundAdmin' },
  { name: 'catalog-outbound', port: 'catalogOutbound', admin: 'catalogOutboundAdmin' },
] as const satisfies readonly { name: string; port: keyof MeshPorts; admin: keyof MeshPorts }[];

/** Free loopback ports, one per piece (each found by binding port 0; released before use). */
export async function freePorts(): Promise<MeshPorts> {
  const servers: net.Server[] = [];
  const ports: Record<string, number> = {};
  try {
    for (const key of Object.keys(EXAMPLE_PORTS)) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      ports[key] = (server.address() as net.AddressInfo).port;
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
  return ports as MeshPorts;
}

/** Whether every port is free on loopback now. */
export async function portsAvailable(ports: MeshPorts): Promise<boolean> {
  for (const port of Object.values(ports)) {
    const server = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (free) await new Promise((resolve) => server.close(resolve));
    if (!free) return false;
  }
  return true;
}

/** The rendered configuration of one run. */
export interface RenderedMesh {
  readonly policyDir: string;
  /** Proxy name → its configuration file. */
  readonly proxyFiles: Readonly<Record<string, string>>;
  /** Where the stdio handler writes the access log. */
  readonly accessLog: string;
}

/** Copies `exampleDir` (examples/mesh) into `runDir`, with `ports` and the run's log file. */
export function renderMesh(exampleDir: string, runDir: string, ports: MeshPorts): RenderedMesh {
  const byExamplePort = new Map<string, number>();
  for (const [key, port] of Object.entries(EXAMPLE_PORTS))
    byExamplePort.set(String(port), ports[key as keyof MeshPorts]);
  const portPattern = new RegExp(`\\b(${[...byExamplePort.keys()].join('|')})\\b`, 'g');
  const withPorts = (text: string): string => text.replace(portPattern, (p) => String(byExamplePort.get(p)));

  const accessLog = path.join(runDir, 'access.log');
  const policyDir = path.join(runDir, 'policy');
  mkdirSync(policyDir, { recursive: true });
  const sourcePolicy = path.join(exampleDir, 'policy');
  for (const file of readdirSync(sourcePolicy).filter((f) => f.endsWith('.yaml'))) {
    const text = readFileSync(path.join(sourcePolicy, file), 'utf8')
      .replace(/^(\s*outputPath:\s*)\S+/m, (_, key: string) => `${key}${JSON.stringify(accessLog)}`)
      .replace(
        /^(\s*bundle:\s*)(\S+)/m,
        (_, key: string, bundle: string) => `${key}${JSON.stringify(path.resolve(sourcePolicy, bundle))}`,
      );
    writeFileSync(path.join(policyDir, file), text);
  }
  const proxyDir = path.join(runDir, 'proxies');
  mkdirSync(proxyDir, { recursive: true });
  const proxyFiles: Record<string, string> = {};
  for (const proxy of PROXIES) {
    const target = path.join(proxyDir, `${proxy.name}.yaml`);
    writeFileSync(
      target,
      withPorts(readFileSync(path.join(exampleDir, 'proxies', `${proxy.name}.yaml`), 'utf8')),
    );
    proxyFiles[proxy.name] = target;
  }
  return { policyDir, proxyFiles, accessLog };
}
