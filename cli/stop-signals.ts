/**
 * SIGINT and SIGTERM, caught for as long as a serving command (server, proxy) runs: from
 * the start, so that a signal arriving while it starts (or just after the listening line)
 * stops it cleanly instead of killing the process.
 */

export interface StopSignals {
  /** Resolves with the first stop signal (at once if one came already). */
  next(): Promise<NodeJS.Signals>;
  dispose(): void;
}

/** Catches stop signals; `onSecond` (when given) runs on the second one, which is otherwise ignored. */
export function catchStopSignals(onSecond: (() => void) | undefined): StopSignals {
  let received: NodeJS.Signals | undefined;
  let wake: ((signal: NodeJS.Signals) => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received !== undefined) {
      onSecond?.(); // a second signal cuts the graceful wait short
      return;
    }
    received = signal;
    wake?.(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    next: () =>
      received !== undefined
        ? Promise.resolve(received)
        : new Promise<NodeJS.Signals>((resolve) => {
            wake = resolve;
          }),
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
