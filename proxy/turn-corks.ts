/**
 * Writes held until the end of the current turn of the event loop, then sent together.
 *
 * Each write to a socket whose reader sleeps wakes that reader, and on these machines (small
 * virtual machines, where a wake-up of an idle CPU is an interrupt to another virtual CPU)
 * waking is the dearest part of a small write. Under load one turn of the loop handles many
 * connections' events: a proxy that writes each answer as it is made wakes the client and the
 * upstream once per request, where one that holds its writes to the end of the turn wakes each
 * about once per turn. Writes are held only while the proxy is busy — the write before was
 * less than {@link BUSY_GAP_MS} ago — and then until the end of the turn: the I/O callbacks of
 * one poll, then `setImmediate`, so no write waits for anything but the events already in
 * hand. At a low rate a turn holds one event and nothing is gained by holding its writes:
 * holding every write added 60 µs to the median at 1,000 requests/s (a request's upstream
 * write waited for the rest of its callback), and even a `setImmediate` per turn to find the
 * turn's first write cost ~20 µs of CPU per request there.
 *
 * Only for writes the socket may queue: a string, or bytes the caller will not reuse (see
 * `holdsWrittenBytes` in http-exchange-types.ts, which a held write keeps true).
 */
import type * as net from 'node:net';

/** A socket's owner that holds its writes for a turn; `corkedForTurn` is this file's. */
export interface TurnCorkable {
  readonly socket: net.Socket;
  corkedForTurn: boolean;
}

/** A write less than this after the one before finds the proxy busy, in milliseconds. */
export const BUSY_GAP_MS = 0.02;

/**
 * The held writes of one event loop. The proxy uses {@link TURN_CORKS} (a process has one
 * loop); tests make their own with a clock they move.
 */
export class TurnCorks {
  /** Owners whose sockets are corked until the end of this turn. */
  private readonly corked: TurnCorkable[] = [];
  /** When the last write was asked for (`now()`). */
  private lastWriteAtMs = Number.NEGATIVE_INFINITY;
  /** Writes are held in this turn, and its end is scheduled. */
  private holding = false;

  /** `now` in milliseconds; default performance.now. */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /**
   * Call before a write to `owner.socket`: it goes at once, unless the proxy is busy (see
   * {@link BUSY_GAP_MS}); then the socket's writes are held until the end of the turn.
   */
  cork(owner: TurnCorkable): void {
    if (owner.corkedForTurn) return;
    const nowMs = this.now();
    const busy = nowMs - this.lastWriteAtMs < BUSY_GAP_MS;
    this.lastWriteAtMs = nowMs;
    if (!this.holding) {
      if (!busy) return;
      this.holding = true;
      setImmediate(this.flushTurn);
    }
    owner.corkedForTurn = true;
    owner.socket.cork();
    this.corked.push(owner);
  }

  /**
   * Sends what `owner.socket` holds now, ahead of the turn's end: before a body's bytes, which
   * stream as they did uncorked (a write the kernel takes at once lets the caller reuse them,
   * and a large one held to the end of the turn would only fill the socket's buffer).
   */
  send(owner: TurnCorkable): void {
    if (!owner.corkedForTurn) return;
    owner.corkedForTurn = false;
    owner.socket.uncork();
  }

  private readonly flushTurn = (): void => {
    this.holding = false;
    const corked = this.corked;
    // An owner corked again while these flush (a drain handler writing) waits for its own turn.
    const count = corked.length;
    for (let i = 0; i < count; i++) {
      const owner = corked[i]!;
      // Not when sent early (send; an owner corked again after that is listed twice).
      if (!owner.corkedForTurn) continue;
      owner.corkedForTurn = false;
      // After `end()` or `destroy()` the socket is uncorked already: this is then a no-op.
      owner.socket.uncork();
    }
    corked.splice(0, count);
  };
}

/** The proxy's: one per process, as the event loop. */
export const TURN_CORKS = new TurnCorks();

/** {@link TurnCorks.cork} of {@link TURN_CORKS}. */
export function corkForTurn(owner: TurnCorkable): void {
  TURN_CORKS.cork(owner);
}

/** {@link TurnCorks.send} of {@link TURN_CORKS}. */
export function sendTurnWrites(owner: TurnCorkable): void {
  TURN_CORKS.send(owner);
}
