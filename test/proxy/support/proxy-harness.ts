/**
 * Runs a proxy in the test process on a configuration written to a temporary file, and
 * talks to it: plain HTTP/1.1 requests (a fresh connection each unless an agent is given),
 * HTTP/2 requests, bounded waits.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createProxy, type Proxy, type ProxyLogger, type ProxyOptions } from '../../../proxy';
import type { ClusterStats } from '../../../proxy/cluster';

export interface ProxyHarness {
  readonly proxy: Proxy;
  readonly dir: string;
  readonly file: string;
  /** Lines the proxy logged. */
  readonly logged: string[];
  /** The bound port of the listener `name` (default: the first). */
  port(name?: string): number;
  /** Replaces the configuration file's text (the proxy reloads when watching, or on reload()). */
  rewrite(yaml: string): void;
  close(): Promise<void>;
}

/** Every harness a test started, closed by {@link closeAllHarnesses} in afterEach. */
const open = new Set<ProxyHarness>();

/** Starts a proxy on `yaml` (written to `proxy.yaml` in a fresh temporary directory). */
export async function startProxy(yaml: string, options: Partial<ProxyOptions> = {}): Promise<ProxyHarness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-proxy-'));
  const file = path.join(dir, 'proxy.yaml');
  // A short drain, so that a test that fails with connections open does not wait 30 s to close.
  writeFileSync(file, /^drainTimeout:/m.test(yaml) ? yaml : `${yaml}\ndrainTimeout: 2s\n`);
  const logged: string[] = [];
  const logger: ProxyLogger = { error: (m) => void logged.push(m), info: (m) => void logged.push(m) };
  const proxy = createProxy({ configFile: file, watch: false, logger, ...options });
  try {
    await proxy.start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const harness: ProxyHarness = {
    proxy,
    dir,
    file,
    logged,
    port(name) {
      const listeners = proxy.listening();
      const found = name === undefined ? listeners[0] : listeners.find((l) => l.name === name);
      if (found === undefined) throw new Error(`no listener ${name}`);
      return found.port;
    },
    rewrite(text) {
      // Write then rename, as editors and ConfigMap updates do: a reader never sees half a file.
      const next = path.join(dir, `.proxy.yaml.${process.pid}`);
      writeFileSync(next, text);
      renameSync(next, file);
    },
    async close() {
      open.delete(harness);
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  open.add(harness);
  return harness;
}

export async function closeAllHarnesses(): Promise<void> {
  await Promise.all([...open].map((h) => h.close()));
}

export interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly trailers: NodeJS.Dict<string>;
}

export interface RequestOptions {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: http.OutgoingHttpHeaders;
  readonly body?: string | Buffer;
  /** Default: a fresh connection (agent: false). */
  readonly agent?: http.Agent;
  readonly timeoutMs?: number;
}

/** One HTTP/1.1 request to 127.0.0.1:`port`; rejects on a connection error or after timeoutMs. */
export function request(port: number, options: RequestOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path ?? '/',
        headers: options.headers,
        agent: options.agent ?? false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, trailers: res.trailers }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface Http2Answer {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: string;
  readonly trailers: http2.IncomingHttpHeaders | undefined;
}

/** One HTTP/2 request on `session`. */
export function request2(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: string | Buffer,
): Promise<Http2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    let data = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (responseHeaders = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: string) => (data += c));
    stream.on('end', () =>
      resolve({ status: Number(responseHeaders[':status']), headers: responseHeaders, body: data, trailers }),
    );
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

/** Polls `condition` until it holds, at most `timeoutMs`; never a fixed sleep. */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** What cluster `name` of the running generation counts, as the admin `/stats` shows it. */
export function clusterStats(harness: ProxyHarness, name = 'up'): Required<ClusterStats> {
  return harness.proxy.stats().clusters[name] as Required<ClusterStats>;
}

/** The proxy's own answers and cuts so far, by reason. */
export function reasons(harness: ProxyHarness): Readonly<Record<string, number>> {
  return harness.proxy.stats().counters.reasons;
}

/** A cluster entry for one local endpoint. */
export function clusterYaml(name: string, ports: readonly number[], extra = ''): string {
  const endpoints = ports.map((p) => `{host: 127.0.0.1, port: ${p}}`).join(', ');
  return `  - name: ${name}\n    endpoints: [${endpoints}]\n${extra}`;
}
