/**
 * The idle timeout of our own server connection (http2-server-connection.ts) for a
 * `node:http2` server session, so that both choices of `SWITCHBOARD_HTTP2_SERVER` close an
 * idle client alike. Node's own `setTimeout` on a session counts from the last byte either
 * way and destroys the session, streams open or not; this counts from the end of the last
 * stream and closes gracefully (GOAWAY NO_ERROR), never cutting a stream short.
 */
import type * as http2 from 'node:http2';
import { IdleTimer } from './idle-timer';

/**
 * Closes `session` (`session.close()`: GOAWAY NO_ERROR, then the socket closes) once it has had
 * no open stream for `idleTimeoutMs`, counted from now and from the end of its last stream.
 * Call it from the server's 'session' event. 0: nothing is done.
 */
export function closeSessionWhenIdle(session: http2.ServerHttp2Session, idleTimeoutMs: number): void {
  if (idleTimeoutMs > 0) new SessionIdleTimeout(session, idleTimeoutMs);
}

/** One per session: its open streams counted, its idle timer told when the count drops to 0. */
class SessionIdleTimeout {
  private openStreams = 0;
  private readonly timer: IdleTimer;
  private readonly onStreamClose = (): void => {
    if (--this.openStreams === 0) this.timer.becameIdle();
  };

  constructor(session: http2.ServerHttp2Session, idleTimeoutMs: number) {
    this.timer = new IdleTimer(
      idleTimeoutMs,
      () => this.openStreams > 0 || session.closed || session.destroyed,
      () => session.close(),
    );
    session.on('stream', (stream: http2.ServerHttp2Stream) => {
      this.openStreams++;
      // 'close' comes once: `on` spares the wrapper `once` makes per stream.
      stream.on('close', this.onStreamClose);
    });
    session.once('close', () => this.timer.stop());
  }
}
