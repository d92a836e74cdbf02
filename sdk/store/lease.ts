/**
 * Ties a store lease (a pin against eviction) to the life of a model handle: released by the
 * handle's dispose(), or when the handle is garbage-collected without one.
 */
import type { StoreLease } from './store.ts';

// A handle dropped without dispose() would otherwise pin its entry for the rest of the page's life.
const unreleased = new FinalizationRegistry<StoreLease>((lease) => lease.release());

/**
 * Returns `handle`, whose dispose() now also releases `lease` (the handle's own dispose is kept
 * and still runs).
 *
 * @example
 * const lease = await store.lease(manifest);
 * const lm = holdWhileAlive(await TextModel.start(...), lease);
 */
export function holdWhileAlive<T extends { dispose(): void }>(handle: T, lease: StoreLease): T {
  const dispose = handle.dispose.bind(handle);
  unreleased.register(handle, lease, lease);
  handle.dispose = () => {
    unreleased.unregister(lease);
    lease.release();
    dispose();
  };
  return handle;
}
