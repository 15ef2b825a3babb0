/**
 * A real Apache Kafka broker for tests: one KRaft node (broker and controller in one JVM),
 * started from the Kafka 4.4.0 jars that `bash scripts/install-kafka.sh` copies from Maven
 * Central, on free loopback ports in a temporary directory, and stopped by PID. It can be
 * stopped and started again on the same ports and log directory (the outage tests), keeping
 * its topics and records.
 *
 * Startup takes 12–15 s on an idle machine and up to 80 s on a loaded one: start one broker
 * per test file (in `before`), never per test. When the jars are missing, start() fails with
 * the command that installs them, never silently.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis-servers';

export const KAFKA_VERSION = '4.4.0';
const INSTALL_HINT =
  'run: bash scripts/install-kafka.sh (copies the Kafka jars from Maven Central, installs kcat)';
/** How long a start may take before it counts as failed: 80 s were seen on a loaded 2-core machine. */
const START_TIMEOUT_MS = 120_000;
/** How long a SIGTERM may take before SIGKILL: a clean KRaft shutdown takes a few seconds. */
const STOP_TIMEOUT_MS = 20_000;

/** The folder of the broker's jars. */
export function kafkaLibsDir(): string {
  const cache = process.env['SWITCHBOARD_CACHE'] ?? join(homedir(), '.cache', 'switchboard');
  return join(cache, 'kafka', 'libs');
}

/** Throws, naming the install command, when the jars or java are missing. */
export function requireKafkaJars(): string {
  const libs = kafkaLibsDir();
  if (!existsSync(join(libs, `kafka_2.13-${KAFKA_VERSION}.jar`))) {
    throw new Error(`the Kafka ${KAFKA_VERSION} jars are not in ${libs}; ${INSTALL_HINT}`);
  }
  if (spawnSync('sh', ['-c', 'command -v java']).status !== 0) {
    throw new Error('java is not installed; install Debian openjdk-17-jre-headless, then ' + INSTALL_HINT);
  }
  return libs;
}

/** Throws, naming the install command, when kcat is missing. */
export function requireKcat(): void {
  if (spawnSync('sh', ['-c', 'command -v kcat']).status !== 0) {
    throw new Error(`kcat is not installed; ${INSTALL_HINT}`);
  }
}

// Logs INFO to the broker's stdout (read for the readiness line), WARN and above only for
// kafka.* chatter that would fill the pipe.
const LOG4J2_BROKER = `Configuration:
  status: warn
  Appenders:
    Console:
      name: STDOUT
      target: SYSTEM_OUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: info
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: org.apache.kafka
        level: warn
      - name: kafka.server.KafkaServer
        level: info
      - name: kafka.server.KafkaRaftServer
        level: info
      - name: kafka.server.BrokerServer
        level: info
      - name: kafka.log
        level: warn
      - name: state.change.logger
        level: warn
`;

// The storage tool must log nothing to stdout: `random-uuid`'s stdout is the cluster id.
const LOG4J2_TOOL = `Configuration:
  status: warn
  Appenders:
    Console:
      name: STDERR
      target: SYSTEM_ERR
      PatternLayout:
        pattern: "%p %m%n"
  Loggers:
    Root:
      level: warn
      AppenderRef:
        - ref: STDERR
`;

function waitForPort(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.end();
      resolve(true);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * Options of a broker: a SASL (SCRAM) listener besides the plaintext one, a TLS one, and with
 * both a SASL_SSL listener for PLAIN (the same user and password).
 */
export interface KafkaBrokerOptions {
  /** A user the SASL listener accepts with SCRAM-SHA-256 and SCRAM-SHA-512. */
  readonly scramUser?: { readonly name: string; readonly password: string };
  /** A TLS listener too, with a self-signed certificate for 127.0.0.1 made by openssl (see caFile). */
  readonly tls?: boolean;
}

/** One KRaft node on loopback. */
export class KafkaBroker {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';

  private constructor(
    readonly port: number,
    readonly controllerPort: number,
    readonly dir: string,
    private readonly libs: string,
    /** The SASL_PLAINTEXT listener's port (SCRAM), when asked for; else 0. */
    readonly saslPort: number,
    /** The SSL listener's port, when asked for; else 0. */
    readonly tlsPort: number,
    /** The SASL_SSL listener's port (PLAIN, the SCRAM user's password), with both of the above; else 0. */
    readonly saslTlsPort: number,
    private readonly options: KafkaBrokerOptions,
  ) {}

  /**
   * Formats storage in a new temporary directory and starts the node; resolves once the log
   * says `Kafka Server started` and the port accepts.
   * @throws Error naming `bash scripts/install-kafka.sh` when the jars are missing
   */
  static async start(options: KafkaBrokerOptions = {}): Promise<KafkaBroker> {
    const libs = requireKafkaJars();
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-kafka-'));
    const ports = new Set<number>();
    while (ports.size < 5) ports.add(await freePort());
    const [port, controllerPort, saslPort, tlsPort, saslTlsPort] = [...ports] as [
      number,
      number,
      number,
      number,
      number,
    ];
    const broker = new KafkaBroker(
      port,
      controllerPort,
      dir,
      libs,
      options.scramUser === undefined ? 0 : saslPort,
      options.tls === true ? tlsPort : 0,
      options.scramUser !== undefined && options.tls === true ? saslTlsPort : 0,
      options,
    );
    try {
      broker.writeConfig();
      broker.formatStorage();
      await broker.run();
    } catch (error) {
      await broker.stop();
      throw error;
    }
    return broker;
  }

  /** `127.0.0.1:PORT`, for clients' broker lists. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last 20,000 characters the broker logged. */
  log(): string {
    return this.output;
  }

  /** Stops the node (SIGTERM to its PID, SIGKILL after 20 s), keeping its directory for start(). */
  async halt(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /** Starts the node again, after halt(), on the same ports and log directory. */
  async resume(): Promise<void> {
    if (this.running) return;
    await this.run();
  }

  /** Stops the node and removes its directory. Idempotent. */
  async stop(): Promise<void> {
    await this.halt();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private get configFile(): string {
    return join(this.dir, 'server.properties');
  }

  /** `127.0.0.1:PORT` of the SASL (SCRAM) listener. */
  get saslAddress(): string {
    return `127.0.0.1:${this.saslPort}`;
  }

  /** `127.0.0.1:PORT` of the SASL_SSL listener (PLAIN). */
  get saslTlsAddress(): string {
    return `127.0.0.1:${this.saslTlsPort}`;
  }

  /** `127.0.0.1:PORT` of the TLS listener. */
  get tlsAddress(): string {
    return `127.0.0.1:${this.tlsPort}`;
  }

  /** The PEM certificate of the TLS listener (self-signed: it is its own CA). */
  get caFile(): string {
    return join(this.dir, 'cert.pem');
  }

  private makeCertificate(): void {
    if (spawnSync('sh', ['-c', 'command -v openssl']).status !== 0) {
      throw new Error('openssl is not installed; run: bash scripts/install-test-tools.sh');
    }
    const made = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout', join(this.dir, 'key.pem'), '-out', this.caFile], // prettier-ignore
      { encoding: 'utf8' },
    );
    if (made.status !== 0) throw new Error(`openssl could not make a certificate: ${made.stderr}`);
    // Kafka's PEM key store: the private key (unencrypted PKCS#8) and its certificate in one file.
    writeFileSync(
      join(this.dir, 'keystore.pem'),
      readFileSync(join(this.dir, 'key.pem'), 'utf8') + readFileSync(this.caFile, 'utf8'),
    );
  }

  private writeConfig(): void {
    const sasl = this.saslPort !== 0;
    const tls = this.tlsPort !== 0;
    const plain = this.saslTlsPort !== 0;
    if (tls) this.makeCertificate();
    const extra =
      (sasl ? `,SASL://127.0.0.1:${this.saslPort}` : '') +
      (tls ? `,SSL://127.0.0.1:${this.tlsPort}` : '') +
      (plain ? `,SASLSSL://127.0.0.1:${this.saslTlsPort}` : '');
    const scram = 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
    const user = this.options.scramUser;
    const plainLogin =
      user === undefined
        ? ''
        : `org.apache.kafka.common.security.plain.PlainLoginModule required user_${user.name}="${user.password}";`;
    const logs = join(this.dir, 'logs');
    mkdirSync(logs, { recursive: true });
    writeFileSync(join(this.dir, 'log4j2.yaml'), LOG4J2_BROKER);
    writeFileSync(join(this.dir, 'log4j2-tool.yaml'), LOG4J2_TOOL);
    writeFileSync(
      this.configFile,
      [
        'process.roles=broker,controller',
        'node.id=1',
        `controller.quorum.bootstrap.servers=127.0.0.1:${this.controllerPort}`,
        `listeners=PLAINTEXT://127.0.0.1:${this.port},CONTROLLER://127.0.0.1:${this.controllerPort}` + extra,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${this.port}` + extra,
        'controller.listener.names=CONTROLLER',
        'inter.broker.listener.name=PLAINTEXT',
        'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT' +
          (sasl ? ',SASL:SASL_PLAINTEXT' : '') +
          (tls ? ',SSL:SSL' : '') +
          (plain ? ',SASLSSL:SASL_SSL' : ''),
        ...(tls ? ['ssl.keystore.type=PEM', `ssl.keystore.location=${join(this.dir, 'keystore.pem')}`] : []),
        ...(sasl
          ? [
              'sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512',
              `listener.name.sasl.scram-sha-256.sasl.jaas.config=${scram}`,
              `listener.name.sasl.scram-sha-512.sasl.jaas.config=${scram}`,
            ]
          : []),
        ...(plain
          ? [
              'listener.name.saslssl.sasl.enabled.mechanisms=PLAIN',
              `listener.name.saslssl.plain.sasl.jaas.config=${plainLogin}`,
            ]
          : []),
        `log.dirs=${logs}`,
        'num.partitions=1',
        'offsets.topic.replication.factor=1',
        'offsets.topic.num.partitions=1',
        'transaction.state.log.replication.factor=1',
        'transaction.state.log.min.isr=1',
        'share.coordinator.state.topic.replication.factor=1',
        'share.coordinator.state.topic.min.isr=1',
        'group.initial.rebalance.delay.ms=0',
        // Tests create their topics themselves (or through the adapter's createTopics).
        'auto.create.topics.enable=false',
        '',
      ].join('\n'),
    );
  }

  private java(mainClass: string, args: readonly string[], log4j: string): string[] {
    return [
      '-Xmx512m',
      '-XX:+UseSerialGC',
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${join(this.dir, log4j)}`,
      '-cp',
      `${this.libs}/*`,
      mainClass,
      ...args,
    ];
  }

  /** The storage tool's arguments that store the SCRAM user's credentials. */
  private scramArgs(): string[] {
    const user = this.options.scramUser;
    if (user === undefined) return [];
    return ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((mechanism) => [
      '--add-scram',
      `${mechanism}=[name=${user.name},password=${user.password}]`,
    ]);
  }

  private formatStorage(): void {
    const uuid = spawnSync(
      'java',
      this.java('kafka.tools.StorageTool', ['random-uuid'], 'log4j2-tool.yaml'),
      {
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    const clusterId = uuid.stdout.trim();
    if (uuid.status !== 0 || !/^[A-Za-z0-9_-]{22}$/.test(clusterId)) {
      throw new Error(`kafka StorageTool random-uuid failed (${uuid.status}): ${uuid.stdout}${uuid.stderr}`);
    }
    const format = spawnSync(
      'java',
      this.java(
        'kafka.tools.StorageTool',
        ['format', '-t', clusterId, '-c', this.configFile, '--standalone', ...this.scramArgs()],
        'log4j2-tool.yaml',
      ),
      { encoding: 'utf8', timeout: 120_000 },
    );
    if (format.status !== 0) {
      throw new Error(`kafka StorageTool format failed (${format.status}): ${format.stdout}${format.stderr}`);
    }
  }

  private async run(): Promise<void> {
    this.output = '';
    const child = spawn('java', this.java('kafka.Kafka', [this.configFile], 'log4j2.yaml'), {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const append = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    const deadline = Date.now() + START_TIMEOUT_MS;
    let started = false;
    for (;;) {
      if (!this.running) {
        throw new Error(`kafka broker on port ${this.port} exited while starting:\n${this.output}`);
      }
      started ||= this.output.includes('Kafka Server started');
      if (started && (await waitForPort(this.port, 1000))) return;
      if (Date.now() > deadline) {
        await this.halt();
        throw new Error(
          `kafka broker on port ${this.port} was not ready within ${START_TIMEOUT_MS / 1000} s:\n${this.output}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
