/**
 * A real Elasticsearch node for tests and benchmarks: one node (8.19.21, installed by
 * `bash scripts/install-elasticsearch.sh` into ~/.cache/switchboard/elasticsearch) started
 * on a free loopback port with its own temporary config, data, logs and tmp folders, run
 * as the system user the script creates (Elasticsearch refuses root), and stopped by the
 * PID in its pid file. When the installation is missing, `start` fails naming the script.
 *
 * Startup takes 30-180 s on a busy 2-core machine: start one node per test file (in
 * `before`), call `warmUp()` once, and `dispose()` it in `after`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis-servers';

export const ELASTICSEARCH_VERSION = '8.19.21';
const INSTALL_HINT = 'install it with: bash scripts/install-elasticsearch.sh';
/** How long a start (or a stop) may take before it is an error. */
export const ELASTICSEARCH_START_MS = 180_000;
const STOP_MS = 60_000;

/** Where install-elasticsearch.sh puts the distribution. */
export function elasticsearchHome(): string {
  const cache = process.env['SWITCHBOARD_CACHE'] ?? join(homedir(), '.cache', 'switchboard');
  return join(cache, 'elasticsearch', `elasticsearch-${ELASTICSEARCH_VERSION}`);
}

const ES_USER = process.env['SWITCHBOARD_ES_USER'] ?? 'switchboard-es';

function javaHome(): string {
  const given = process.env['ES_JAVA_HOME'];
  if (given !== undefined && given !== '') return given;
  for (const candidate of ['/usr/lib/jvm/java-17-openjdk-amd64', '/usr/lib/jvm/java-17-openjdk-arm64']) {
    if (existsSync(join(candidate, 'bin', 'java'))) return candidate;
  }
  throw new Error(`Elasticsearch ${ELASTICSEARCH_VERSION} needs Java 17 (or ES_JAVA_HOME); ${INSTALL_HINT}`);
}

export interface ElasticsearchNodeOptions {
  /** Extra lines of elasticsearch.yml, such as `{ 'thread_pool.write.queue_size': 1 }`. */
  readonly settings?: Readonly<Record<string, string | number | boolean>>;
  /** Heap (-Xms and -Xmx) in MiB; default 512. */
  readonly heapMb?: number;
}

/** An answer of the node's REST API, body parsed when it is JSON. */
export interface RestAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** One node we started. */
export class ElasticsearchNode {
  private pid: number | undefined;

  private constructor(
    /** The node's own folder: config/, data/, logs/, tmp/, node.pid. */
    readonly dir: string,
    readonly port: number,
    private readonly heapMb: number,
  ) {}

  /** `http://127.0.0.1:<port>`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The PID of the running node, from its pid file; undefined when stopped. */
  get processId(): number | undefined {
    return this.pid;
  }

  /** Starts a node and waits until it is healthy (yellow at least). */
  static async start(options: ElasticsearchNodeOptions = {}): Promise<ElasticsearchNode> {
    const home = elasticsearchHome();
    if (!existsSync(join(home, 'bin', 'elasticsearch'))) {
      throw new Error(`Elasticsearch ${ELASTICSEARCH_VERSION} is not installed in ${home}; ${INSTALL_HINT}`);
    }
    if (spawnSync('id', ['-u', ES_USER]).status !== 0) {
      throw new Error(`the system user ${ES_USER} that runs Elasticsearch does not exist; ${INSTALL_HINT}`);
    }
    // /tmp is traversable by every user; the folder itself is handed to the node's user.
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-es-'));
    chmodSync(dir, 0o755);
    const port = await freePort();
    cpSync(join(home, 'config'), join(dir, 'config'), { recursive: true });
    const settings: Record<string, string | number | boolean> = {
      'cluster.name': 'switchboard-test',
      'node.name': 'node-0',
      'discovery.type': 'single-node',
      'network.host': '127.0.0.1',
      'http.port': port,
      'transport.port': 0,
      'path.data': join(dir, 'data'),
      'path.logs': join(dir, 'logs'),
      'xpack.security.enabled': false,
      'action.destructive_requires_name': false,
      'cluster.routing.allocation.disk.threshold_enabled': false,
      'node.store.allow_mmap': false,
      ...options.settings,
    };
    writeFileSync(
      join(dir, 'config', 'elasticsearch.yml'),
      Object.entries(settings)
        .map(([key, value]) => `${key}: ${JSON.stringify(value)}\n`)
        .join(''),
    );
    // The shipped jvm.options writes gc logs and heap dumps to the working folder: keep them in logs/.
    const jvmOptions = readFileSync(join(dir, 'config', 'jvm.options'), 'utf8')
      .replace(
        /^-Xlog:gc.*$/m,
        `-Xlog:gc*:file=${join(dir, 'logs', 'gc.log')}:utctime:filecount=2,filesize=8m`,
      )
      .replace(/^-XX:ErrorFile=.*$/m, `-XX:ErrorFile=${join(dir, 'logs', 'hs_err_pid%p.log')}`)
      .replace(/^-XX:\+HeapDumpOnOutOfMemoryError$/m, '-XX:-HeapDumpOnOutOfMemoryError');
    writeFileSync(join(dir, 'config', 'jvm.options'), jvmOptions);
    for (const sub of ['data', 'logs', 'tmp']) spawnSync('mkdir', ['-p', join(dir, sub)]);
    const chowned = spawnSync('chown', ['-R', `${ES_USER}:`, dir], { encoding: 'utf8' });
    if (chowned.status !== 0) throw new Error(`chown ${ES_USER} ${dir} failed: ${chowned.stderr}`);
    const node = new ElasticsearchNode(dir, port, options.heapMb ?? 512);
    try {
      await node.launch();
    } catch (error) {
      await node.dispose();
      throw error;
    }
    return node;
  }

  /** Runs `bin/elasticsearch -d -p node.pid` as the node's user, then waits for health. */
  private async launch(): Promise<void> {
    const pidFile = join(this.dir, 'node.pid');
    rmSync(pidFile, { force: true });
    const home = elasticsearchHome();
    const launcher = spawn(
      'runuser',
      ['-u', ES_USER, '--', join(home, 'bin', 'elasticsearch'), '-d', '-p', pidFile],
      {
        cwd: this.dir,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          ES_JAVA_HOME: javaHome(),
          ES_PATH_CONF: join(this.dir, 'config'),
          ES_TMPDIR: join(this.dir, 'tmp'),
          ES_JAVA_OPTS: `-Xms${this.heapMb}m -Xmx${this.heapMb}m`,
        },
      },
    );
    let output = '';
    launcher.stdout
      .setEncoding('utf8')
      .on('data', (chunk: string) => (output = (output + chunk).slice(-20_000)));
    launcher.stderr
      .setEncoding('utf8')
      .on('data', (chunk: string) => (output = (output + chunk).slice(-20_000)));
    // With -d the launcher returns once the node has started (or failed to).
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        launcher.kill('SIGKILL');
        reject(new Error(`the Elasticsearch launcher did not return within ${ELASTICSEARCH_START_MS} ms`));
      }, ELASTICSEARCH_START_MS);
      launcher.once('error', reject);
      launcher.once('close', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    if (existsSync(pidFile)) this.pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (code !== 0) {
      throw new Error(`Elasticsearch did not start (launcher exit ${code}): ${output}\n${this.logTail()}`);
    }
    if (this.pid === undefined) throw new Error(`Elasticsearch wrote no pid file: ${output}`);
    const deadline = Date.now() + ELASTICSEARCH_START_MS;
    for (;;) {
      const health = await this.request('GET', '/_cluster/health?wait_for_status=yellow&timeout=10s').catch(
        () => undefined,
      );
      if (health?.status === 200) return;
      if (!this.alive()) throw new Error(`Elasticsearch exited while starting:\n${this.logTail()}`);
      if (Date.now() > deadline) {
        throw new Error(`Elasticsearch not healthy within ${ELASTICSEARCH_START_MS} ms:\n${this.logTail()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /** The last lines of the node's own log, for failure messages. */
  logTail(lines = 40): string {
    const log = join(this.dir, 'logs', 'switchboard-test.log');
    if (!existsSync(log)) return '(no log yet)';
    return readFileSync(log, 'utf8').split('\n').slice(-lines).join('\n');
  }

  private alive(): boolean {
    if (this.pid === undefined) return false;
    try {
      process.kill(this.pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** One REST call with a JSON (or NDJSON string) body. */
  async request(method: string, path: string, body?: unknown): Promise<RestAnswer> {
    const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers:
        text === undefined
          ? {}
          : { 'content-type': path.includes('_bulk') ? 'application/x-ndjson' : 'application/json' },
      ...(text === undefined ? {} : { body: text }),
      signal: AbortSignal.timeout(60_000),
    });
    const raw = await response.text();
    let parsed: unknown = raw;
    try {
      parsed = JSON.parse(raw);
    } catch {
      // not JSON: kept as text
    }
    return { status: response.status, body: parsed };
  }

  /** Like request, but an answer other than 2xx is an error. */
  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const answer = await this.request(method, path, body);
    if (answer.status < 200 || answer.status > 299) {
      throw new Error(`${method} ${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    }
    return answer.body;
  }

  /**
   * Indexes and deletes a few thousand throw-away documents, so the JIT is warm before a
   * test measures or waits on indexing (a cold node indexes several times slower).
   */
  async warmUp(documents = 2000): Promise<void> {
    const index = 'switchboard-warm-up';
    let body = '';
    for (let i = 0; i < documents; i++) {
      body += `{"index":{"_index":"${index}","_id":"${i}"}}\n{"n":${i},"text":"warm up ${i}"}\n`;
    }
    await this.call('POST', '/_bulk?refresh=true', body);
    await this.call('DELETE', `/${index}`);
  }

  /** Stops the node: SIGTERM to its PID, SIGKILL after 60 s; waits until it is gone. */
  async stop(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    if (this.alive()) {
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + STOP_MS;
      let killed = false;
      while (this.alive()) {
        if (!killed && Date.now() > deadline) {
          process.kill(pid, 'SIGKILL');
          killed = true;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    this.pid = undefined;
  }

  /** Stops and starts it again with the same port, settings and data. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Stops it and removes its folder. Idempotent. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
