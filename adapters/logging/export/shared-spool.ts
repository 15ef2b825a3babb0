/**
 * One spool per directory in this process, shared by the handlers that use it, with one
 * sender at a time reading it.
 *
 * A reload that changes a handler's parameters builds the new handler while the old one
 * still serves, and closes the old one only after the new configuration serves; both write
 * to the same directory in between. So the spool is opened once and leased: every handler
 * appends to it, and only the newest handler's sender reads it. When a newer handler
 * leases it, the older sender stops after its batch in flight and the new one carries on
 * from the last acknowledgement (a batch the old sink took but did not confirm is sent
 * again: at least once). When the reading handler goes (the newest was abandoned by a failed
 * reload), the newest remaining one reads. The spool closes with its last handler; records
 * still undelivered then stay on disk for the next handler with that name, and a warning
 * says how many.
 */
import type { AdapterLogger, TimerHandle } from '../../contract';
import {
  Spool,
  SpoolSender,
  type SpoolEnvironment,
  type SpoolSenderEnvironment,
  type SpoolSenderSettings,
  type SpoolSettings,
  type SpoolSink,
} from '../spool';

/** A handler using a spool: where its records go. */
export interface SpoolUser {
  /** For messages: the handler's name. */
  readonly label: string;
  readonly sink: SpoolSink;
  readonly senderSettings: SpoolSenderSettings;
  readonly env: SpoolSenderEnvironment;
}

/** A handler's hold on a spool. */
export interface SpoolLease {
  readonly spool: Spool;
  /** Whether this handler's sender is the one reading. */
  isReading(): boolean;
  /** The sender reading now (whichever handler's), for stats and flushes. */
  sender(): SpoolSender | undefined;
  /** Lets go; the last lease of a spool closes it. Idempotent. */
  release(): Promise<void>;
}

interface Shared {
  readonly spool: Spool;
  readonly users: SpoolUser[];
  reading: { readonly user: SpoolUser; readonly sender: SpoolSender } | undefined;
  /** Lease changes, one at a time. */
  changes: Promise<void>;
}

const open = new Map<string, Promise<Shared>>();

/**
 * Leases the spool of `settings.directory`, opening it (and recovering what a previous
 * process left) when no handler holds it; a held spool takes the new settings. The new user's
 * sender becomes the reader.
 * @throws Error when the spool cannot be opened or the settings are unusable
 */
export async function leaseSpool(
  settings: SpoolSettings,
  user: SpoolUser,
  logger: AdapterLogger,
): Promise<SpoolLease> {
  let opening = open.get(settings.directory);
  if (opening === undefined) {
    opening = Spool.open(settings, ownTimers(logger), user.label).then((spool) => ({
      spool,
      users: [],
      reading: undefined,
      changes: Promise.resolve(),
    }));
    open.set(settings.directory, opening);
    opening.catch(() => open.delete(settings.directory));
  }
  const shared = await opening;
  await change(shared, async () => {
    if (shared.users.length > 0) shared.spool.reconfigure(settings);
    shared.users.push(user);
    await handOver(shared);
  });
  let released: Promise<void> | undefined;
  return {
    spool: shared.spool,
    isReading: () => shared.reading?.user === user,
    sender: () => shared.reading?.sender,
    release: () => (released ??= change(shared, () => leave(shared, user, settings.directory))),
  };
}

function change(shared: Shared, step: () => Promise<void>): Promise<void> {
  const next = shared.changes.then(step);
  shared.changes = next.catch(() => undefined);
  return next;
}

/** Makes the newest user the reader. */
async function handOver(shared: Shared): Promise<void> {
  const newest = shared.users.at(-1);
  if (shared.reading !== undefined && shared.reading.user === newest) return;
  if (shared.reading !== undefined) {
    await shared.reading.sender.close();
    shared.reading = undefined;
    shared.spool.rewindToAcknowledged();
  }
  if (newest === undefined) return;
  const sender = new SpoolSender(shared.spool, newest.sink, newest.senderSettings, newest.env, newest.label);
  shared.reading = { user: newest, sender };
  sender.start();
}

async function leave(shared: Shared, user: SpoolUser, directory: string): Promise<void> {
  const index = shared.users.indexOf(user);
  if (index >= 0) shared.users.splice(index, 1);
  if (shared.users.length > 0) {
    await handOver(shared);
    return;
  }
  if (shared.reading !== undefined) await shared.reading.sender.close();
  shared.reading = undefined;
  open.delete(directory);
  shared.spool.rewindToAcknowledged();
  const undelivered = shared.spool.hasUnread();
  await shared.spool.close();
  if (undelivered) {
    user.env.logger.warn(
      `${user.label}: closed with records not yet delivered to ${user.sink.description}; ` +
        `they stay in ${directory} and are sent when a handler of this name runs again`,
    );
  }
}

/** Timers for the spool itself, which can outlive the handler that opened it (and its env's timers). */
function ownTimers(logger: AdapterLogger): SpoolEnvironment {
  return {
    logger,
    every(callback: () => void, intervalMs: number): TimerHandle {
      const timer = setInterval(callback, intervalMs);
      timer.unref();
      return { cancel: () => clearInterval(timer) };
    },
  };
}
