/**
 * Watching a file or directory for changes, for the things Arbiter reloads
 * while it runs (JWKS files, the revocation list, the policy directory).
 *
 * File-system events are only a hint: editors replace files by rename, and
 * Kubernetes ConfigMaps swap a `..data` symlink, so the watcher listens to the
 * parent directory, debounces, and lets the caller decide (usually by reading
 * and hashing the content) whether anything changed. A slow poll backs the
 * events up on file systems that do not deliver them. Timers are unref'd so a
 * watcher never keeps a process alive.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

export interface WatchOptions {
  /** Quiet time after the last event before `onEvent` runs. */
  readonly debounceMs?: number;
  /** Poll interval; 0 disables polling. */
  readonly pollMs?: number;
  /** Watch the directory tree under the path (for a policy directory). */
  readonly recursive?: boolean;
}

export interface Watcher {
  close(): void;
}

/**
 * Calls `onEvent` (debounced) after something under `path` may have changed.
 * Calls never overlap: an event during a running call schedules one more.
 *
 * @example
 * const w = watchPath('keys/jwks.json', async () => reloadIfChanged());
 * w.close();
 */
export function watchPath(path: string, onEvent: () => Promise<void> | void, options: WatchOptions = {}): Watcher {
  const debounceMs = options.debounceMs ?? 50;
  const pollMs = options.pollMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  let closed = false;

  const run = async (): Promise<void> => {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await onEvent();
    } catch {
      // The callback reports its own failures; a watcher must survive them.
    } finally {
      running = false;
      if (again && !closed) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = (): void => {
    if (closed) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => void run(), debounceMs);
    timer.unref();
  };

  let fsWatcher: FSWatcher | undefined;
  try {
    const target = options.recursive === true ? path : dirname(path);
    fsWatcher = watch(target, { persistent: false, recursive: options.recursive === true }, schedule);
    fsWatcher.on('error', () => {
      // The directory went away or the watch limit was hit: the poll still runs.
      fsWatcher?.close();
      fsWatcher = undefined;
    });
  } catch {
    fsWatcher = undefined;
  }
  const poll = pollMs > 0 ? setInterval(() => void run(), pollMs) : undefined;
  poll?.unref();

  return {
    close(): void {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      if (poll !== undefined) clearInterval(poll);
      fsWatcher?.close();
    },
  };
}
