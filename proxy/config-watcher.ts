/**
 * Watches the configuration file for changes, two ways: fs.watch on its directory answers
 * at once (watching the directory, not the file, sees a file replaced by rename, as editors
 * and Kubernetes ConfigMap updates do), and a poll of the file's size, time and inode
 * catches whatever the watcher misses. Changes are debounced.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import * as path from 'node:path';

export interface ConfigWatcherOptions {
  /** Quiet time after a change before `onChange`, in ms. Default 200. */
  readonly delayMs?: number;
  /** How often the file is also polled, in ms. Default 2000. */
  readonly pollIntervalMs?: number;
  /** Told when watching fails (the poll goes on). */
  readonly onError: (message: string) => void;
}

export interface ConfigWatcher {
  /** Stops watching. Idempotent. */
  close(): void;
}

/** Calls `onChange` (debounced) whenever `file` may have changed. */
export function watchConfigFile(
  file: string,
  onChange: () => void,
  options: ConfigWatcherOptions,
): ConfigWatcher {
  const delayMs = options.delayMs ?? 200;
  const dir = path.dirname(file);
  const base = path.basename(file);
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let fingerprint: string | undefined;
  const schedule = (): void => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, delayMs);
    timer.unref();
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, (_event, name) => {
      if (name === null || name === base || name.startsWith(`${base}.`) || name.startsWith('..')) schedule();
    });
    watcher.on('error', (error) =>
      options.onError(`watching ${file} failed: ${error.message}; polling only`),
    );
    watcher.unref();
  } catch (error) {
    options.onError(`watching ${file} failed: ${(error as Error).message}; polling only`);
  }
  const fingerprintOf = async (): Promise<string> => {
    try {
      const st = await stat(file);
      return `${st.size}:${st.mtimeMs}:${st.ino}`;
    } catch {
      return 'missing';
    }
  };
  void fingerprintOf().then((f) => (fingerprint = f));
  const poller = setInterval(() => {
    void fingerprintOf().then((f) => {
      if (fingerprint !== undefined && f !== fingerprint) schedule();
      fingerprint = f;
    });
  }, options.pollIntervalMs ?? 2000);
  poller.unref();
  return {
    close() {
      closed = true;
      watcher?.close();
      clearInterval(poller);
      clearTimeout(timer);
    },
  };
}
