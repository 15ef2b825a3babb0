/**
 * The connections of a redisquota handler: `connectionPoolSize` ioredis clients of one kind
 * (a single server, a primary found through Sentinel, or a Cluster), used in turn, each
 * with the quota script defined on it (ioredis sends EVALSHA and, when Redis has forgotten
 * the script — a restart, SCRIPT FLUSH, a failover to a replica that never saw it — EVAL
 * once more, which loads it again).
 *
 * A decision must never wait long nor be sent twice: commands are not queued while a
 * client is disconnected (they fail at once, and the quota's failure policy answers), a
 * command in flight when the connection drops is failed rather than resent (a resent
 * charge could count twice), and every command has `timeout` to answer. Clients reconnect
 * on their own, backing off up to 2 s.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import Redis, { Cluster, type RedisOptions } from 'ioredis';
import type { AdapterLogger } from '../../contract';
import { parseRedisEndpoint, type RedisquotaParams } from './config';
import { QUOTA_SCRIPT } from './quota-script';

type ScriptedClient = (Redis | Cluster) & {
  switchboardQuota(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown>;
};

const MAX_RECONNECT_DELAY_MS = 2000;
const CONNECT_TIMEOUT_MS = 2000;

export class RedisPool {
  private next = 0;

  private constructor(private readonly clients: readonly ScriptedClient[]) {}

  /**
   * Creates the clients and waits (up to 2 s) for them to connect. A Redis that does not
   * answer yet is not an error: the clients keep trying, and until then the quotas' failure
   * policies answer; `onError` hears every connection error.
   * @throws Error when a TLS file cannot be read
   */
  static async open(params: RedisquotaParams, onError: (error: Error) => void): Promise<RedisPool> {
    const clients: ScriptedClient[] = [];
    for (let i = 0; i < params.connectionPoolSize; i++) {
      const client = createClient(params);
      client.on('error', onError);
      client.defineCommand('switchboardQuota', { lua: QUOTA_SCRIPT });
      clients.push(client as ScriptedClient);
    }
    await Promise.all(clients.map((client) => waitReady(client, CONNECT_TIMEOUT_MS)));
    return new RedisPool(clients);
  }

  /**
   * Runs the quota script on the next connected client in turn (the next one whatever its
   * state when none is connected); rejects when Redis does not answer. After an outage the
   * clients reconnect one by one, each on its own back-off: a call sent to one still
   * reconnecting would fail though Redis answers, and start a false outage.
   */
  runQuotaScript(keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    const clients = this.clients;
    let client = clients[this.next] as ScriptedClient;
    for (let tried = 1; client.status !== 'ready' && tried < clients.length; tried++) {
      this.next = (this.next + 1) % clients.length;
      const other = clients[this.next] as ScriptedClient;
      if (other.status === 'ready') client = other;
    }
    this.next = (this.next + 1) % clients.length;
    return client.switchboardQuota(keys.length, ...keys, ...args);
  }

  /** Whether any client is connected now. */
  get connected(): boolean {
    return this.clients.some((client) => client.status === 'ready');
  }

  /** Closes every client; commands in flight fail. Idempotent. */
  async close(logger: AdapterLogger): Promise<void> {
    await Promise.all(
      this.clients.map(async (client) => {
        try {
          if (client.status === 'ready') await client.quit();
          else client.disconnect();
        } catch (error) {
          logger.warn(`redisquota: closing a Redis connection: ${String(error)}`);
          client.disconnect();
        }
      }),
    );
  }
}

function createClient(params: RedisquotaParams): Redis | Cluster {
  const common: RedisOptions = {
    enableOfflineQueue: false,
    // Commands issued in one turn of the event loop go out in one write (one syscall, one
    // read on Redis's side) instead of one each: the policy server issues many at once.
    enableAutoPipelining: true,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: params.timeout,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), MAX_RECONNECT_DELAY_MS),
    ...(params.username === '' ? {} : { username: params.username }),
    ...(params.password === '' ? {} : { password: params.password }),
    ...(params.tls === undefined ? {} : { tls: tlsOptions(params.tls) }),
  };
  if (params.cluster !== undefined) {
    return new Cluster(
      params.cluster.nodes.map((node) => splitHostPort(node)),
      {
        enableOfflineQueue: false,
        // Not here: ioredis's cluster pipelines by slot and fails scripts with a key count
        // given per call (ours: one key, or two with a deduplication id).
        redisOptions: { ...common, enableAutoPipelining: false },
        clusterRetryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), MAX_RECONNECT_DELAY_MS),
        slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
      },
    );
  }
  if (params.sentinel !== undefined) {
    return new Redis({
      ...common,
      db: params.db,
      name: params.sentinel.masterName,
      sentinels: params.sentinel.addresses.map((address) => splitHostPort(address)),
      ...(params.sentinel.password === '' ? {} : { sentinelPassword: params.sentinel.password }),
      sentinelRetryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), MAX_RECONNECT_DELAY_MS),
    });
  }
  const endpoint = parseRedisEndpoint(params.redisServerUrl);
  if (typeof endpoint === 'string') throw new Error(`redisServerUrl ${endpoint}`);
  return new Redis({
    ...common,
    host: endpoint.host,
    port: endpoint.port,
    db: endpoint.db ?? params.db,
    ...(endpoint.username === undefined ? {} : { username: endpoint.username }),
    ...(endpoint.password === undefined ? {} : { password: endpoint.password }),
    ...(endpoint.tls && params.tls === undefined ? { tls: {} } : {}),
  });
}

function tlsOptions(tls: NonNullable<RedisquotaParams['tls']>): ConnectionOptions {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new Error(`cannot read tls.${what} ${file}: ${(error as Error).message}`, { cause: error });
    }
  };
  return {
    ...(tls.caFile === '' ? {} : { ca: read(tls.caFile, 'caFile') }),
    ...(tls.certFile === '' ? {} : { cert: read(tls.certFile, 'certFile') }),
    ...(tls.keyFile === '' ? {} : { key: read(tls.keyFile, 'keyFile') }),
    ...(tls.serverName === '' ? {} : { servername: tls.serverName }),
    ...(tls.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
  };
}

function splitHostPort(text: string): { host: string; port: number } {
  const colon = text.lastIndexOf(':');
  return { host: text.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(text.slice(colon + 1)) };
}

/** Resolves once the client is ready, or after `timeoutMs` whatever its state. */
function waitReady(client: Redis | Cluster, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    client.on('ready', done);
  });
}
