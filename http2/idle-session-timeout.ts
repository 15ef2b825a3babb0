/**
 * The idle timeout of our own server connection (http2-server-connection.ts) for a
 * `node:http2` server session, so that both choices of `SWITCHBOARD_HTTP2_SERVER` close an
 * idle client alike. Node's own `setTimeout` on a session counts from the last byte either
 * way and destroys the session, streams open or not; this counts from the end of the last
 * stream and closes gracefully (GOAWAY NO_ERROR), never cutting a stream short.
 */
import type * as http2 from 'node:http2';

/**
 * Closes `session` (`session.close()`: GOAWAY NO_ERROR, then the socket closes) once it has had
 * no open stream for `idleTimeoutMs`, counted from now and from the end of its last stream.
 * Call it from the server's 'session' event. 0: nothing is done.
 */
export function closeSessionWhenIdle(session: http2.ServerHttp2Session, idleTimeoutMs: number): void {
  if (idleTimeoutMs > 0) new SessionIdleTimeout(session, idleTimeoutMs);
}

/** One per session: its open streams counted, its timer armed when the count drops to 0. */
class SessionIdleTimeout {
  private openStreams = 0;
  private idleSinceMs = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private readonly onTimer = (): void => this.check();
  private readonly onStreamClose = (): void => {
    if (--this.openStreams > 0) return;
    this.idleSinceMs = performance.now();
    if (this.timer === undefined) this.arm(this.idleTimeoutMs);
  };

  constructor(
    private readonly session: http2.ServerHttp2Session,
    private readonly idleTimeoutMs: number,
  ) {
    session.on('stream', (stream: http2.ServerHttp2Stream) => {
      this.openStreams++;
      // 'close' comes once: `on` spares the wrapper `once` makes per stream.
      stream.on('close', this.onStreamClose);
    });
    session.once('close', () => clearTimeout(this.timer));
    this.arm(idleTimeoutMs);
  }

  private arm(delayMs: number): void {
    if (this.session.closed || this.session.destroyed) return;
    this.timer = setTimeout(this.onTimer, delayMs);
    this.timer.unref();
  }

  /** As the own connection's timer: lapses while a stream is open, waits on when it fired early. */
  private check(): void {
    this.timer = undefined;
    if (this.openStreams > 0 || this.session.closed || this.session.destroyed) return;
    const leftMs = this.idleSinceMs + this.idleTimeoutMs - performance.now();
    if (leftMs > 0) this.arm(Math.max(1, Math.ceil(leftMs)));
    else this.session.close();
  }
}
