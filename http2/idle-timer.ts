/**
 * The idle timeout of an HTTP/2 server connection, shared by our own server
 * (http2-server-connection.ts) and the `node:http2` choice (idle-session-timeout.ts): counted
 * from the end of the last stream (or the start), never refreshed per frame. The timer is
 * armed when the connection becomes idle and lapses while a stream is open; when it fires
 * early — after a stream came and went, or because libuv's clock lags performance.now() — it
 * waits on for what is left.
 */
export class IdleTimer {
  /** When the connection last became idle (performance.now() ms). */
  private idleSinceMs = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly onTimer = (): void => this.check();

  /**
   * @param timeoutMs idle time before `onIdle`, > 0
   * @param isBusy whether a stream is open (or the connection is going away: the timer then lapses)
   * @param onIdle the connection has been idle `timeoutMs`: close it gracefully
   */
  constructor(
    private readonly timeoutMs: number,
    private readonly isBusy: () => boolean,
    private readonly onIdle: () => void,
  ) {
    this.arm(timeoutMs);
  }

  /** The last stream ended: the idle time counts from now. */
  becameIdle(): void {
    this.idleSinceMs = performance.now();
    if (this.timer === undefined) this.arm(this.timeoutMs);
  }

  /** The connection closed or goes away: no timer any more. Idempotent. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(this.onTimer, delayMs);
    // The connection's socket keeps the process alive, not its idle timer.
    this.timer.unref();
  }

  private check(): void {
    this.timer = undefined;
    // A stream open: armed again when the last one leaves.
    if (this.stopped || this.isBusy()) return;
    const leftMs = this.idleSinceMs + this.timeoutMs - performance.now();
    if (leftMs > 0) this.arm(Math.max(1, Math.ceil(leftMs)));
    else this.onIdle();
  }
}
