/**
 * Writes held until the end of the current turn of the event loop, then sent together.
 *
 * Each write to a socket whose reader sleeps wakes that reader, and on these machines (small
 * virtual machines, where a wake-up of an idle CPU is an interrupt to another virtual CPU)
 * waking is the dearest part of a small write. Under load one turn of the loop handles many
 * connections' events: a proxy that writes each answer as it is made wakes the client and the
 * upstream once per request, where one that holds its writes to the end of the turn wakes each
 * about once per turn. The first write of a turn leaves at once: at a low rate a turn holds one
 * event, and nothing is gained by holding its writes (measured: +60 µs at the median at 1,000
 * requests/s when every write was held); the later writes of a busy turn are held until it
 * ends — the I/O callbacks of one poll, then `setImmediate` — so no write waits for anything
 * but the events already in hand.
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

/** Owners whose sockets are corked until the end of this turn (a process has one loop). */
const corked: TurnCorkable[] = [];
/** A write went out this turn (and the turn's end is scheduled). */
let turnWritten = false;

function flushTurn(): void {
  turnWritten = false;
  // An owner corked again while these flush (a drain handler writing) waits for its own turn.
  const count = corked.length;
  for (let i = 0; i < count; i++) {
    const owner = corked[i]!;
    // Not when sent early (sendTurnWrites; an owner corked again after that is listed twice).
    if (!owner.corkedForTurn) continue;
    owner.corkedForTurn = false;
    // After `end()` or `destroy()` the socket is uncorked already: this is then a no-op.
    owner.socket.uncork();
  }
  corked.splice(0, count);
}

/**
 * Call before a write to `owner.socket`: the first write of a turn goes at once; after it,
 * the socket's writes are held until the end of the turn.
 */
export function corkForTurn(owner: TurnCorkable): void {
  if (owner.corkedForTurn) return;
  if (!turnWritten) {
    turnWritten = true;
    setImmediate(flushTurn);
    return;
  }
  owner.corkedForTurn = true;
  owner.socket.cork();
  corked.push(owner);
}

/**
 * Sends what `owner.socket` holds now, ahead of the turn's end: before a body's bytes, which
 * stream as they did uncorked (a write the kernel takes at once lets the caller reuse them,
 * and a large one held to the end of the turn would only fill the socket's buffer).
 */
export function sendTurnWrites(owner: TurnCorkable): void {
  if (!owner.corkedForTurn) return;
  owner.corkedForTurn = false;
  owner.socket.uncork();
}
