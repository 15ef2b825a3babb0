/**
 * Real Redis for tests, started on free loopback ports and stopped by PID: a single server,
 * a three-primary Cluster, and a primary with a replica watched by a Sentinel. Needs
 * `redis-server`, `redis-sentinel` and `redis-cli` (Debian's redis-server, redis-sentinel
 * and redis-tools packages; `bash scripts/install-redis.sh` installs them). When they are
 * missing the start fails with that command, never silently.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const INSTALL_HINT =
  'install it with: bash scripts/install-redis.sh (Debian packages redis-server, redis-sentinel, redis-tools)';

function requireTool(name: string): void {
  if (spawnSync('sh', ['-c', `command -v ${name}`]).status !== 0) {
    throw new Error(`${name} is not installed; ${INSTALL_HINT}`);
  }
}

/** A port free on 127.0.0.1 now (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Sends one inline command and returns the raw reply (up to the first complete line set). */
export function rawCommand(port: number, command: string, timeoutMs = 1000, tls = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls
      ? connectTls({ port, host: '127.0.0.1', rejectUnauthorized: false })
      : connect(port, '127.0.0.1');
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no reply to ${command} on port ${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on(tls ? 'secureConnect' : 'connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.endsWith('\r\n') && isComplete(reply)) {
        clearTimeout(timer);
        socket.end();
        resolve(reply);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Whether a RESP reply is whole: simple lines, or a bulk string whose length has arrived. */
function isComplete(reply: string): boolean {
  if (reply.startsWith('$')) {
    const length = Number(reply.slice(1, reply.indexOf('\r\n')));
    return length < 0 || Buffer.byteLength(reply) >= reply.indexOf('\r\n') + 2 + length + 2;
  }
  return true;
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One redis-server (or redis-sentinel) process we started. */
export class RedisProcess {
  private exited: Promise<void>;

  constructor(
    readonly port: number,
    private readonly child: ChildProcess,
    readonly log: () => string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Stops it (SIGTERM to its PID, SIGKILL after 5 s) and waits for the exit. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Stops it at once, as a crash would. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Starts `redis-server` (or `redis-sentinel`) with `args` in `dir` and waits for PING. */
async function startProcess(
  binary: 'redis-server' | 'redis-sentinel',
  port: number,
  args: readonly string[],
  dir: string,
  tls = false,
): Promise<RedisProcess> {
  requireTool(binary);
  let output = '';
  const child = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  const process = new RedisProcess(port, child, () => output);
  try {
    await waitFor(`${binary} on port ${port}`, async () => {
      if (!process.running) throw new Error(`${binary} exited: ${output}`);
      // A server with a password answers NOAUTH: it is up all the same.
      const reply = await rawCommand(port, 'PING', 1000, tls);
      return reply.startsWith('+PONG') || reply.startsWith('-NOAUTH');
    });
  } catch (error) {
    await process.stop();
    throw new Error(`${binary} on port ${port} did not start: ${(error as Error).message}\n${output}`, {
      cause: error,
    });
  }
  return process;
}

function serverArgs(port: number, extra: readonly string[] = []): string[] {
  return ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', ...extra];
}

/** Options of a single server: a password, and TLS only (with a self-signed certificate made by openssl). */
export interface SingleRedisOptions {
  readonly password?: string;
  readonly tls?: boolean;
}

/** A single Redis server. */
export class SingleRedis {
  private constructor(
    readonly server: RedisProcess,
    private readonly dir: string,
    private readonly args: readonly string[],
    private readonly tls: boolean,
  ) {}

  static async start(options: SingleRedisOptions = {}): Promise<SingleRedis> {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-redis-'));
    const port = await freePort();
    const extra: string[] = [];
    if (options.password !== undefined) extra.push('--requirepass', options.password);
    if (options.tls === true) {
      requireTool('openssl');
      const made = spawnSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=IP:127.0.0.1,DNS:localhost',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { encoding: 'utf8' },
      );
      if (made.status !== 0) throw new Error(`openssl could not make a certificate: ${made.stderr}`);
      extra.push(
        '--tls-port',
        String(port),
        '--tls-cert-file',
        'cert.pem',
        '--tls-key-file',
        'key.pem',
        '--tls-ca-cert-file',
        'cert.pem',
        '--tls-auth-clients',
        'no',
      );
    }
    const args = options.tls === true ? [...serverArgs(0, extra)] : serverArgs(port, extra);
    const server = await startProcess('redis-server', port, args, dir, options.tls === true);
    return new SingleRedis(server, dir, args, options.tls === true);
  }

  get url(): string {
    return this.server.address;
  }

  /** The PEM file of the self-signed certificate of a TLS server. */
  get caFile(): string {
    return join(this.dir, 'cert.pem');
  }

  /** Starts it again on the same port after `stop()`. */
  async restart(): Promise<void> {
    await this.server.stop();
    const again = await startProcess('redis-server', this.server.port, this.args, this.dir, this.tls);
    (this as { server: RedisProcess }).server = again;
  }

  async stop(): Promise<void> {
    await this.server.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Three primaries, every slot covered, no replicas. */
export class RedisCluster {
  private constructor(
    readonly nodes: readonly RedisProcess[],
    private readonly dir: string,
  ) {}

  static async start(): Promise<RedisCluster> {
    requireTool('redis-cli');
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-redis-cluster-'));
    const nodes: RedisProcess[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const port = await freePort();
        const nodeDir = join(dir, String(port));
        spawnSync('mkdir', ['-p', nodeDir]);
        nodes.push(
          await startProcess(
            'redis-server',
            port,
            serverArgs(port, [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              'nodes.conf',
              '--cluster-node-timeout',
              '2000',
            ]),
            nodeDir,
          ),
        );
      }
      const created = spawnSync(
        'redis-cli',
        ['--cluster', 'create', ...nodes.map((n) => n.address), '--cluster-replicas', '0', '--cluster-yes'],
        { encoding: 'utf8', timeout: 30_000 },
      );
      if (created.status !== 0) {
        throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
      }
      for (const node of nodes) {
        await waitFor(`cluster node ${node.address}`, async () =>
          (await rawCommand(node.port, 'CLUSTER INFO')).includes('cluster_state:ok'),
        );
      }
    } catch (error) {
      await Promise.all(nodes.map((n) => n.stop()));
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    return new RedisCluster(nodes, dir);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A primary, its replica, and one Sentinel (quorum 1) watching them as `mymaster`. */
export class RedisSentinelSet {
  static readonly MASTER_NAME = 'mymaster';

  private constructor(
    readonly primary: RedisProcess,
    readonly replica: RedisProcess,
    readonly sentinel: RedisProcess,
    private readonly dir: string,
  ) {}

  static async start(): Promise<RedisSentinelSet> {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-redis-sentinel-'));
    const started: RedisProcess[] = [];
    try {
      const primaryPort = await freePort();
      const primaryDir = join(dir, 'primary');
      const replicaDir = join(dir, 'replica');
      spawnSync('mkdir', ['-p', primaryDir, replicaDir]);
      const primary = await startProcess('redis-server', primaryPort, serverArgs(primaryPort), primaryDir);
      started.push(primary);
      const replicaPort = await freePort();
      const replica = await startProcess(
        'redis-server',
        replicaPort,
        serverArgs(replicaPort, ['--replicaof', '127.0.0.1', String(primaryPort)]),
        replicaDir,
      );
      started.push(replica);
      await waitFor('replication', async () =>
        (await rawCommand(replicaPort, 'INFO replication')).includes('master_link_status:up'),
      );
      const sentinelPort = await freePort();
      const config = join(dir, 'sentinel.conf');
      writeFileSync(
        config,
        [
          `port ${sentinelPort}`,
          'bind 127.0.0.1',
          `sentinel monitor ${RedisSentinelSet.MASTER_NAME} 127.0.0.1 ${primaryPort} 1`,
          `sentinel down-after-milliseconds ${RedisSentinelSet.MASTER_NAME} 1000`,
          `sentinel failover-timeout ${RedisSentinelSet.MASTER_NAME} 5000`,
          '',
        ].join('\n'),
      );
      const sentinel = await startProcess('redis-sentinel', sentinelPort, [config], dir);
      started.push(sentinel);
      // The sentinel must know the replica before it can promote it.
      await waitFor('sentinel discovering the replica', async () =>
        (await rawCommand(sentinelPort, `SENTINEL REPLICAS ${RedisSentinelSet.MASTER_NAME}`)).includes(
          String(replicaPort),
        ),
      );
      return new RedisSentinelSet(primary, replica, sentinel, dir);
    } catch (error) {
      await Promise.all(started.map((p) => p.stop()));
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** Asks the sentinel to promote the replica now, and waits until it reports the new primary. */
  async failover(): Promise<void> {
    const reply = await rawCommand(this.sentinel.port, `SENTINEL FAILOVER ${RedisSentinelSet.MASTER_NAME}`);
    if (!reply.startsWith('+OK')) throw new Error(`SENTINEL FAILOVER answered ${reply.trim()}`);
    await waitFor('failover', async () =>
      (
        await rawCommand(
          this.sentinel.port,
          `SENTINEL GET-MASTER-ADDR-BY-NAME ${RedisSentinelSet.MASTER_NAME}`,
        )
      ).includes(String(this.replica.port)),
    );
    await waitFor('the new primary accepting writes', async () =>
      (await rawCommand(this.replica.port, 'INFO replication')).includes('role:master'),
    );
  }

  async stop(): Promise<void> {
    await Promise.all([this.sentinel.stop(), this.replica.stop(), this.primary.stop()]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
