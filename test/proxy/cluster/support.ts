/**
 * Helpers for the cluster tests: a seeded random source, a clock the test moves, polling with
 * a deadline, cluster configs from YAML, and real upstream servers on 127.0.0.1, port 0.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { parse as parseYaml } from 'yaml';
import {
  parseClusterConfig,
  type Cluster,
  type ClusterConfig,
  type ConfigProblem,
  type Endpoint,
} from '../../../proxy/cluster';

/**
 * A seeded source of uniform numbers in [0, 1): xorshift32 (Marsaglia) with a multiplicative
 * output scramble. Plenty for distribution tests, and the same sequence on every run.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 0x9e3779b9;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return (Math.imul(state, 0x2545f491) >>> 0) / 4294967296;
  };
}

/** A clock that moves only when the test says so. */
export class ManualClock {
  constructor(private current = 1_000_000) {}
  readonly now = (): number => this.current;
  advance(ms: number): void {
    this.current += ms;
  }
}

/** A cluster config from YAML; fails the test with the problems when it does not parse. */
export function clusterConfig(yaml: string): ClusterConfig {
  const problems: ConfigProblem[] = [];
  const config = parseClusterConfig(parseYaml(yaml), 'cluster', problems);
  assert.deepEqual(problems, []);
  assert.ok(config);
  return config;
}

/** The cluster's endpoint object for `id`, found by picking (the request path only gets endpoints from picks). */
export function endpointById(cluster: Cluster, id: string): Endpoint {
  for (let i = 0; i < 10_000; i++) {
    const endpoint = cluster.pick();
    if (endpoint?.id === id) return endpoint;
  }
  throw new Error(`${cluster.name} never picked ${id}`);
}

/** Polls `condition` every few milliseconds until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Counts per key. */
export function tally<T>(items: Iterable<T>): Map<T, number> {
  const counts = new Map<T, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

/**
 * Asserts that `count` successes out of `trials` fit probability `p`: within five standard
 * deviations of the binomial mean (a false failure is then about one in two million, and the
 * seeded source makes every run the same anyway).
 */
export function assertProportion(count: number, trials: number, p: number, what: string): void {
  const mean = trials * p;
  const bound = 5 * Math.sqrt(trials * p * (1 - p));
  assert.ok(
    Math.abs(count - mean) <= bound,
    `${what}: ${count} of ${trials}, expected ${mean.toFixed(0)} ± ${bound.toFixed(0)}`,
  );
}

/** An upstream that the test can make healthy or not, and that counts what it receives. */
export interface TestUpstream {
  readonly port: number;
  /** Requests or connections received. */
  readonly received: number;
  /** The most requests in flight at once. */
  readonly maxInFlight: number;
  /** Host headers (or :authority) and user agents of the requests received, in order. */
  readonly hosts: readonly string[];
  readonly userAgents: readonly string[];
  readonly paths: readonly string[];
  close(): Promise<void>;
}

export interface HttpUpstream extends TestUpstream {
  /** The status every request is answered with; undefined holds requests unanswered. */
  status: number | undefined;
}

function track(server: http.Server | http2.Http2Server, sockets: Set<net.Socket>): void {
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

function closeServer(server: net.Server, sockets: Set<net.Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** An HTTP/1.1 server (or h2c, with `http2`) on 127.0.0.1 answering `status` to every request. */
export async function startHttpUpstream(
  options: { http2?: boolean; status?: number } = {},
): Promise<HttpUpstream> {
  const sockets = new Set<net.Socket>();
  let inFlight = 0;
  const state = {
    // An explicit `status: undefined` holds requests; no status at all answers 200.
    status: ('status' in options ? options.status : 200) as number | undefined,
    received: 0,
    maxInFlight: 0,
    hosts: [] as string[],
    userAgents: [] as string[],
    paths: [] as string[],
  };
  const handle = (
    request: http.IncomingMessage | http2.Http2ServerRequest,
    response: http.ServerResponse | http2.Http2ServerResponse,
  ): void => {
    state.received++;
    inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, inFlight);
    state.hosts.push(String(request.headers['host'] ?? request.headers[':authority']));
    state.userAgents.push(String(request.headers['user-agent']));
    state.paths.push(String(request.url));
    let done = false;
    const end = (): void => {
      if (!done) inFlight--;
      done = true;
    };
    response.on('close', end);
    response.on('finish', end);
    if (state.status !== undefined) {
      response.statusCode = state.status;
      response.end('checked');
    }
  };
  const server = options.http2 === true ? http2.createServer(handle) : http.createServer(handle);
  track(server, sockets);
  const port = await listen(server);
  return Object.assign(state, {
    port,
    close: () => closeServer(server, sockets),
  }) as HttpUpstream;
}

/** A TCP server that accepts connections and closes them. */
export async function startTcpUpstream(): Promise<TestUpstream> {
  const sockets = new Set<net.Socket>();
  const state = { received: 0, maxInFlight: 1, hosts: [], userAgents: [], paths: [] };
  const server = net.createServer((socket) => {
    state.received++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.end();
  });
  const port = await listen(server);
  return Object.assign(state, { port, close: () => closeServer(server, sockets) });
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}
