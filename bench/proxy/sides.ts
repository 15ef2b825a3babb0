/**
 * The sides `npm run bench:proxy` compares, each a process tree started here and stopped by
 * PID: the upstream (nginx, one worker, a fixed small body), and in front of it the
 * Switchboard proxy, nginx and Envoy as plain reverse proxies, and the prototypes of
 * bench/proxy/prototypes/ (measurement aids).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import { startProcess, type Started } from '../check/processes';
import { envoyConfig, nginxProxyConfig, nginxUpstreamConfig, switchboardProxyConfig } from './configs';

/** A side ready to be loaded. */
export interface Side {
  /** Short name used in tables (`direct`, `switchboard`, `nginx`, `envoy`, `proto naive`…). */
  readonly name: string;
  readonly kind: 'direct' | 'switchboard' | 'peer' | 'prototype';
  /** What it is, for the header of the report. */
  readonly description: string;
  readonly h1Url: string;
  /** Where it serves h2c; undefined when it does not (decided by {@link verifySide}). */
  h2cUrl: string | undefined;
  /** Its process tree; for `direct`, the upstream's. */
  readonly process: Started;
}

export interface SideContext {
  readonly root: string;
  readonly dir: string;
  readonly workers: number;
  readonly upstreamPort: number;
  readonly upstreamH2cPort: number;
  /** The upstream's fixed body (for the prototypes that answer it themselves). */
  readonly body: string;
}

/** A port free at the time of asking on 127.0.0.1 (nginx and Envoy cannot report a port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** One GET over HTTP/1.1; resolves with status and body, or undefined on any failure. */
export function getOnce(
  url: string,
  method = 'GET',
  body?: string,
  chunked = false,
): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const headers: http.OutgoingHttpHeaders = {};
    if (body !== undefined && !chunked) headers['content-length'] = Buffer.byteLength(body);
    const req = http.request(url, { method, agent: false, headers, timeout: 3000 }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', () => resolve(undefined));
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    if (body !== undefined && chunked) {
      req.write(body.slice(0, 3));
      req.end(body.slice(3));
    } else req.end(body);
  });
}

/** One GET over h2c (prior knowledge); undefined on any failure. */
export function getOnceH2c(url: string): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const session = http2.connect(url);
    const done = (result: { status: number; body: string } | undefined): void => {
      clearTimeout(timer);
      session.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(undefined), 3000);
    session.on('error', () => done(undefined));
    const stream = session.request({ ':path': new URL(url).pathname });
    let status = 0;
    let text = '';
    stream.setEncoding('latin1');
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (c: string) => (text += c));
    stream.on('end', () => done({ status, body: text }));
    stream.on('error', () => done(undefined));
  });
}

const answers200 = async (url: string): Promise<boolean> => (await getOnce(url))?.status === 200;

/** Starts the upstream: nginx, one worker, answering `body` on HTTP/1.1 and h2c ports. */
export async function startUpstream(
  dir: string,
  body: string,
): Promise<{ process: Started; port: number; h2cPort: number }> {
  const port = await freePort();
  const h2cPort = await freePort();
  const home = join(dir, 'upstream-nginx');
  mkdirSync(home, { recursive: true });
  const config = join(home, 'nginx.conf');
  writeFileSync(config, nginxUpstreamConfig(home, port, h2cPort, body));
  const process = await startProcess('upstream nginx', nginxBinary(), ['-p', home, '-c', config], {
    logFile: join(home, 'stderr.log'),
    address: `127.0.0.1:${port}`,
    probe: () => answers200(`http://127.0.0.1:${port}/`),
  });
  return { process, port, h2cPort };
}

export function nginxBinary(): string {
  const found = spawnSync('bash', ['-c', 'command -v nginx || echo /usr/sbin/nginx'], { encoding: 'utf8' });
  return found.stdout.trim();
}

export function directSide(upstream: { process: Started; port: number; h2cPort: number }): Side {
  return {
    name: 'direct',
    kind: 'direct',
    description: 'the upstream itself (nginx, 1 worker, fixed body)',
    h1Url: `http://127.0.0.1:${upstream.port}/`,
    h2cUrl: `http://127.0.0.1:${upstream.h2cPort}/`,
    process: upstream.process,
  };
}

export async function startNginxProxy(ctx: SideContext): Promise<Side> {
  const port = await freePort();
  const h2cPort = await freePort();
  const home = join(ctx.dir, 'proxy-nginx');
  mkdirSync(home, { recursive: true });
  const config = join(home, 'nginx.conf');
  writeFileSync(config, nginxProxyConfig(home, ctx.workers, port, h2cPort, ctx.upstreamPort));
  const process = await startProcess('nginx proxy', nginxBinary(), ['-p', home, '-c', config], {
    logFile: join(home, 'stderr.log'),
    address: `127.0.0.1:${port}`,
    probe: () => answers200(`http://127.0.0.1:${port}/`),
  });
  return {
    name: 'nginx',
    kind: 'peer',
    description: `nginx ${nginxVersion()} as plain reverse proxy, ${ctx.workers} worker(s), keep-alive upstream`,
    h1Url: `http://127.0.0.1:${port}/`,
    h2cUrl: `http://127.0.0.1:${h2cPort}/`,
    process,
  };
}

function nginxVersion(): string {
  const out = spawnSync(nginxBinary(), ['-v'], { encoding: 'utf8' });
  return /nginx\/(\S+)/.exec(out.stderr)?.[1] ?? '?';
}

export async function startEnvoy(ctx: SideContext, binary: string): Promise<Side> {
  const port = await freePort();
  const config = join(ctx.dir, 'envoy.yaml');
  writeFileSync(config, envoyConfig(port, ctx.upstreamPort));
  // A base id of our own: two Envoys with the same one on a machine refuse to start.
  const baseId = 100_000 + (process.pid % 100_000);
  const started = await startProcess(
    'envoy',
    binary,
    ['-c', config, '--concurrency', String(ctx.workers), '--base-id', String(baseId), '-l', 'warn'],
    {
      logFile: join(ctx.dir, 'envoy.log'),
      address: `127.0.0.1:${port}`,
      probe: () => answers200(`http://127.0.0.1:${port}/`),
      timeoutMs: 120_000,
    },
  );
  const version = /\/(\d+\.\d+\.\d+)\//.exec(
    spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout,
  )?.[1];
  return {
    name: 'envoy',
    kind: 'peer',
    description: `Envoy ${version ?? '?'} as plain reverse proxy, --concurrency ${ctx.workers}, codec AUTO`,
    h1Url: `http://127.0.0.1:${port}/`,
    h2cUrl: `http://127.0.0.1:${port}/`,
    process: started,
  };
}

/** The prototypes of bench/proxy/prototypes/ (measurement aids): name → main.js arguments. */
export const PROTOTYPES: Readonly<
  Record<string, { args: readonly string[]; workers?: number; about: string }>
> = {
  naive: { args: ['naive'], about: '(i) http.createServer + http.request, keep-alive Agent' },
  tuned: {
    args: ['tuned'],
    about: '(ii) node:http tuned: raw header arrays, no per-request closures, pooled',
  },
  raw: { args: ['raw'], about: '(iii) node:net, own HTTP/1.1 head parsing, pooled upstream sockets' },
  'raw-plain': { args: ['raw', '--plain'], about: '(iii) without adding x-forwarded-*/x-request-id' },
  'raw-onread': {
    args: ['raw', '--onread'],
    about: '(iv) (iii) reading upstream sockets with onread into reused buffers',
  },
  'answer-http': {
    args: ['answer-http'],
    about: 'NOT A PROXY: node:http answering the body itself (prices the serving half)',
  },
  'answer-raw': {
    args: ['answer-raw'],
    about: 'NOT A PROXY: node:net + raw parsing answering the body itself (prices the serving half)',
  },
  'raw-2w': { args: ['raw'], workers: 2, about: '(iv) (iii) in 2 node:cluster workers' },
  'tuned-2w': { args: ['tuned'], workers: 2, about: '(iv) (ii) in 2 node:cluster workers' },
};

export async function startPrototype(ctx: SideContext, key: string, label = `proto ${key}`): Promise<Side> {
  const prototype = PROTOTYPES[key];
  if (prototype === undefined) {
    throw new Error(
      `BENCH_PROTOTYPES: unknown prototype '${key}'; known: ${Object.keys(PROTOTYPES).join(', ')}`,
    );
  }
  const workers = prototype.workers ?? ctx.workers;
  const port = await freePort();
  const main = join(ctx.root, 'dist', 'bench', 'proxy', 'prototypes', 'main.js');
  const args = [
    main,
    ...prototype.args,
    '--port', String(port),
    '--upstream', `127.0.0.1:${ctx.upstreamPort}`,
    '--workers', String(workers),
    '--body', ctx.body,
  ]; // prettier-ignore
  const process = await startProcess(label, globalThis.process.execPath, args, {
    logFile: join(ctx.dir, `${label.replace(/\W+/g, '-')}.log`),
    address: `127.0.0.1:${port}`,
    probe: () => answers200(`http://127.0.0.1:${port}/`),
  });
  return {
    name: label,
    kind: label.startsWith('switchboard') ? 'switchboard' : 'prototype',
    description: `${prototype.about}, ${workers} worker(s)`,
    h1Url: `http://127.0.0.1:${port}/`,
    h2cUrl: `http://127.0.0.1:${port}/`, // decided by the h2c probe
    process,
  };
}

/**
 * The command line that runs the Switchboard proxy, from BENCH_PROXY_COMMAND when set: a
 * template split on spaces (no shell) whose placeholders {node} {root} {config} {port}
 * {upstreamPort} {workers} are replaced. Default: the CLI's `proxy` command.
 */
export function switchboardCommand(
  template: string | undefined,
  values: { root: string; config: string; port: number; upstreamPort: number; workers: number },
): string[] {
  const text =
    template ?? '{node} {root}/dist/cli/switchboard.js proxy --config {config} --workers {workers}';
  const replacements: Record<string, string> = {
    node: process.execPath,
    root: values.root,
    config: values.config,
    port: String(values.port),
    upstreamPort: String(values.upstreamPort),
    workers: String(values.workers),
  };
  return text
    .trim()
    .split(/\s+/)
    .map((word) => word.replace(/\{(\w+)\}/g, (all, name: string) => replacements[name] ?? all));
}

/** Whether the built CLI has a `proxy` command (`switchboard help proxy` exits 0). */
export function cliHasProxyCommand(root: string): boolean {
  const out = spawnSync(process.execPath, [join(root, 'dist', 'cli', 'switchboard.js'), 'help', 'proxy'], {
    encoding: 'utf8',
  });
  return out.status === 0;
}

export async function startSwitchboard(
  ctx: SideContext,
  template: string | undefined,
  /** `baseline`: a second build to compare with (BENCH_BASELINE_COMMAND), named `sb-baseline`. */
  baseline = false,
): Promise<Side> {
  const port = await freePort();
  const config = join(ctx.dir, baseline ? 'switchboard-baseline.yaml' : 'switchboard-proxy.yaml');
  writeFileSync(config, switchboardProxyConfig(port, ctx.upstreamPort));
  const [command, ...args] = switchboardCommand(template, {
    root: ctx.root,
    config,
    port,
    upstreamPort: ctx.upstreamPort,
    workers: ctx.workers,
  });
  const process = await startProcess(
    baseline ? 'switchboard baseline' : 'switchboard proxy',
    command!,
    args,
    {
      logFile: join(ctx.dir, baseline ? 'switchboard-baseline.log' : 'switchboard-proxy.log'),
      address: `127.0.0.1:${port}`,
      probe: () => answers200(`http://127.0.0.1:${port}/`),
    },
  );
  return {
    name: baseline ? 'sb-baseline' : 'switchboard',
    kind: baseline ? 'prototype' : 'switchboard',
    description: `${[command, ...args].join(' ')}`,
    h1Url: `http://127.0.0.1:${port}/`,
    h2cUrl: `http://127.0.0.1:${port}/`, // decided by the h2c probe
    process,
  };
}

/**
 * Checks a side answers right before it is measured: GET, a POST with a Content-Length body
 * and a chunked POST all answer 200 with the upstream's body over HTTP/1.1; then probes h2c
 * and clears `side.h2cUrl` when it does not answer the same way.
 * @returns what was wrong over HTTP/1.1, or '' when all was right
 */
export async function verifySide(side: Side, body: string): Promise<string> {
  const problems: string[] = [];
  const checks: [string, Promise<{ status: number; body: string } | undefined>][] = [
    ['GET', getOnce(side.h1Url)],
    ['POST with content-length', getOnce(side.h1Url, 'POST', 'name=value&other=1')],
    ['chunked POST', getOnce(side.h1Url, 'POST', 'a chunked request body', true)],
  ];
  for (const [what, promise] of checks) {
    const answer = await promise;
    if (answer === undefined) problems.push(`${what}: no answer`);
    else if (answer.status !== 200 || answer.body !== body)
      problems.push(`${what}: ${answer.status} '${answer.body.slice(0, 40)}'`);
  }
  if (side.h2cUrl !== undefined) {
    const answer = await getOnceH2c(side.h2cUrl);
    if (answer === undefined || answer.status !== 200 || answer.body !== body) side.h2cUrl = undefined;
  }
  return problems.join('; ');
}
