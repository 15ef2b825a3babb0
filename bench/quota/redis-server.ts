/**
 * The Redis of `npm run bench:quota`: one redis-server started for the run on a free
 * loopback port (no persistence), known by PID and stopped by it, plus the Redis command
 * line tools the benchmark drives (redis-cli, redis-benchmark).
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startServer, type Started } from '../check/processes';

export const REDIS_INSTALL_COMMAND = 'bash scripts/install-redis.sh';

/**
 * Fails, naming the command that installs them, when a Redis tool the benchmark needs is
 * missing.
 * @throws Error naming the missing tools and `bash scripts/install-redis.sh`
 */
export function requireRedisTools(): void {
  const missing = ['redis-server', 'redis-cli', 'redis-benchmark'].filter(
    (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0,
  );
  if (missing.length > 0) {
    throw new Error(
      `${missing.join(', ')} not installed; install with: ${REDIS_INSTALL_COMMAND} ` +
        '(Debian packages redis-server, redis-sentinel, redis-tools)',
    );
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

/** A redis-server this benchmark started. */
export interface RedisServer {
  readonly port: number;
  /** `127.0.0.1:PORT`. */
  readonly address: string;
  /** The process, for its CPU figures and to stop it. */
  readonly process: Started;
}

/**
 * Starts `redis-server` on a free loopback port, without persistence, logging to
 * `dir/redis.log`; resolves once it accepts connections.
 */
export async function startRedis(dir: string): Promise<RedisServer> {
  const port = await freePort();
  const args = [
    '--bind',
    '127.0.0.1',
    '--port',
    String(port),
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ];
  // startServer wants the address in its first group; redis-server prints its port, then readiness.
  const process = await startServer(
    'redis-server',
    'redis-server',
    args,
    /port=(\d+)[\s\S]*Ready to accept connections/,
    join(dir, 'redis.log'),
    30_000,
  );
  return { port, address: `127.0.0.1:${port}`, process };
}

/**
 * Runs `redis-cli -p PORT args…` and returns its output without the final newline.
 * @throws Error when redis-cli fails or answers an error
 */
export function redisCli(port: number, args: readonly string[]): string {
  const out = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  const text = (out.stdout ?? '').replace(/\n$/, '');
  if (out.status !== 0 || text.startsWith('ERR') || text.startsWith('(error)')) {
    throw new Error(`redis-cli ${args[0]} failed: ${text}${out.stderr ?? ''}`);
  }
  return text;
}

/** Redis's clock in milliseconds (`TIME`), the clock the quota script counts windows by. */
export function redisTimeMs(port: number): number {
  const [seconds, micros] = redisCli(port, ['TIME']).split('\n');
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** One command's totals from `INFO commandstats`: calls and microseconds Redis spent executing them. */
export interface CommandStats {
  readonly calls: number;
  readonly usec: number;
}

/**
 * Redis's own accounting of the script commands (EVALSHA and EVAL together): time inside
 * the command (the script), excluding reading, parsing and answering.
 */
export function scriptCommandStats(port: number): CommandStats {
  const text = redisCli(port, ['INFO', 'commandstats']);
  let calls = 0;
  let usec = 0;
  for (const match of text.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+),usec=(\d+)/gm)) {
    calls += Number(match[1]);
    usec += Number(match[2]);
  }
  return { calls, usec };
}
