/**
 * One active health check of one endpoint: an HTTP GET of the configured path (HTTP/1.1, or
 * HTTP/2 with prior knowledge when the cluster speaks http2) whose status must be one of the
 * expected ones, or, without `http`, a TCP connect. The probe ends with exactly one verdict
 * (or none, when cancelled) and leaves no socket behind.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { ClusterConfig, HealthCheckConfig } from './contract';

/** Sent with HTTP checks, so upstream logs can tell checks from traffic. */
export const HEALTH_CHECK_USER_AGENT = 'switchboard-health-check';

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  /** `host:port`: the Host header (or :authority) of HTTP checks. */
  readonly id: string;
}

export interface HealthProbe {
  /** Stops the probe without a verdict and releases its socket. Idempotent. */
  cancel(): void;
}

/** Starts a probe of `target`; `done` is called once, asynchronously, unless the probe is cancelled first. */
export function startProbe(
  target: ProbeTarget,
  check: HealthCheckConfig,
  protocol: ClusterConfig['protocol'],
  done: (passed: boolean) => void,
): HealthProbe {
  const probe =
    check.http === undefined
      ? new TcpProbe(target, done)
      : protocol === 'http2'
        ? new Http2Probe(target, check.http, done)
        : new Http1Probe(target, check.http, done);
  probe.start(check.timeoutMs);
  return probe;
}

function ignore(): void {}

abstract class Probe implements HealthProbe {
  private settled = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly done: (passed: boolean) => void) {}

  start(timeoutMs: number): void {
    this.timer = setTimeout(() => this.finish(false), timeoutMs);
    try {
      this.open();
    } catch {
      // Node refuses some targets synchronously; the verdict still comes asynchronously.
      process.nextTick(() => this.finish(false));
    }
  }

  cancel(): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.release();
  }

  protected finish(passed: boolean): void {
    if (this.settled) return;
    this.cancel();
    this.done(passed);
  }

  /** Opens the connection and sends the check. */
  protected abstract open(): void;
  /** Destroys whatever `open` created. */
  protected abstract release(): void;
}

class TcpProbe extends Probe {
  private socket: net.Socket | undefined;

  constructor(
    private readonly target: ProbeTarget,
    done: (passed: boolean) => void,
  ) {
    super(done);
  }

  protected open(): void {
    const socket = net.connect({ host: this.target.host, port: this.target.port });
    this.socket = socket;
    socket.on('connect', () => this.finish(true));
    socket.on('error', () => this.finish(false));
  }

  protected release(): void {
    this.socket?.destroy();
  }
}

class Http1Probe extends Probe {
  private request: http.ClientRequest | undefined;

  constructor(
    private readonly target: ProbeTarget,
    private readonly check: NonNullable<HealthCheckConfig['http']>,
    done: (passed: boolean) => void,
  ) {
    super(done);
  }

  protected open(): void {
    const request = http.request({
      host: this.target.host,
      port: this.target.port,
      method: 'GET',
      path: this.check.path,
      // A connection per check: a pooled one could hide an endpoint that no longer accepts new ones.
      agent: false,
      headers: { host: this.target.id, 'user-agent': HEALTH_CHECK_USER_AGENT, connection: 'close' },
    });
    this.request = request;
    request.on('response', (response) => {
      // The verdict is the status; the body is not waited for (release destroys the request).
      response.on('error', ignore);
      response.resume();
      this.finish(this.check.expectedStatuses.includes(response.statusCode ?? 0));
    });
    request.on('error', () => this.finish(false));
    request.end();
  }

  protected release(): void {
    this.request?.destroy();
  }
}

class Http2Probe extends Probe {
  private session: http2.ClientHttp2Session | undefined;

  constructor(
    private readonly target: ProbeTarget,
    private readonly check: NonNullable<HealthCheckConfig['http']>,
    done: (passed: boolean) => void,
  ) {
    super(done);
  }

  protected open(): void {
    const session = http2.connect(`http://${this.target.id}`);
    this.session = session;
    session.on('error', () => this.finish(false));
    const stream = session.request(
      {
        ':method': 'GET',
        ':path': this.check.path,
        ':authority': this.target.id,
        'user-agent': HEALTH_CHECK_USER_AGENT,
      },
      { endStream: true },
    );
    stream.on('response', (headers) => {
      this.finish(this.check.expectedStatuses.includes(Number(headers[':status'])));
    });
    stream.on('error', () => this.finish(false));
    // A stream closed without a response (refused, reset, session gone) is a failed check.
    stream.on('close', () => this.finish(false));
  }

  protected release(): void {
    this.session?.destroy();
  }
}
