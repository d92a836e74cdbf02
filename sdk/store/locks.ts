/**
 * Cross-tab coordination for the store, on the Web Locks API: an exclusive lock per blob around
 * its download and commit, and shared "pin" locks that keep the entries of models in use from
 * being evicted.
 *
 * Web Locks are held per origin (per storage partition), across every tab and worker of it, and
 * are released by the browser when the holder's tab closes or crashes, so a dead tab can never
 * leave a blob locked or a model pinned forever. Where the API is missing (Node, very old
 * browsers) an in-page equivalent keeps concurrent loads of one page apart; other tabs then are
 * not coordinated, as before.
 */
import { WhittleError, throwIfAborted } from '../../core/errors.ts';

type Locks = {
  request<T>(name: string, options: { mode?: 'exclusive' | 'shared'; signal?: AbortSignal }, callback: () => Promise<T>): Promise<T>;
  query(): Promise<{ held?: { name?: string }[] }>;
};

function webLocks(): Locks | null {
  const locks = (globalThis.navigator as { locks?: Locks } | undefined)?.locks;
  return locks && typeof locks.request === 'function' ? locks : null;
}

/** The in-page fallback: one promise chain per exclusive name, a count per pinned name. */
const localChains = new Map<string, Promise<unknown>>();
const localPins = new Map<string, number>();

function aborted(err: unknown, signal: AbortSignal | undefined): unknown {
  // navigator.locks rejects a waiting request with a DOMException named AbortError.
  if (signal?.aborted || (err as { name?: string } | null)?.name === 'AbortError') return new WhittleError('ABORTED', 'The operation was aborted', {}, { cause: err });
  return err;
}

/**
 * Runs `fn` while holding the exclusive lock `name`; waits (abortably) while another tab or load
 * holds it.
 */
export async function withExclusiveLock<T>(name: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  throwIfAborted(signal);
  const locks = webLocks();
  if (locks) {
    try {
      return await locks.request(name, signal ? { mode: 'exclusive', signal } : { mode: 'exclusive' }, fn);
    } catch (err) {
      throw aborted(err, signal);
    }
  }
  const before = localChains.get(name) ?? Promise.resolve();
  const run = before.catch(() => undefined).then(() => {
    throwIfAborted(signal);
    return fn();
  });
  const tail = run.catch(() => undefined);
  localChains.set(name, tail);
  void tail.then(() => {
    if (localChains.get(name) === tail) localChains.delete(name);
  });
  return run;
}

/**
 * Takes the shared lock `name` and holds it until the returned function is called (idempotent).
 * Resolves once the lock is granted.
 */
export async function holdShared(name: string): Promise<() => void> {
  const locks = webLocks();
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  if (locks) {
    await new Promise<void>((granted, refused) => {
      locks
        .request(name, { mode: 'shared' }, () => {
          granted();
          return released;
        })
        .catch(refused);
    });
    return release;
  }
  localPins.set(name, (localPins.get(name) ?? 0) + 1);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const n = (localPins.get(name) ?? 1) - 1;
    if (n > 0) localPins.set(name, n);
    else localPins.delete(name);
    release();
  };
}

/** Names starting with `prefix` whose lock is held right now, in any tab of this origin. */
export async function heldNames(prefix: string): Promise<Set<string>> {
  const locks = webLocks();
  const names = locks ? ((await locks.query()).held ?? []).map((l) => l.name ?? '') : [...localPins.keys()];
  return new Set(names.filter((n) => n.startsWith(prefix)));
}
