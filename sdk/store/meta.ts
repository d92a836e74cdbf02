/**
 * Cache metadata in IndexedDB (idb-keyval). An entry exists only for a model whose every
 * file was verified and committed; that is what makes `has()` trustworthy.
 */
import { createStore, del, entries, get, set, clear, type UseStore } from 'idb-keyval';

/**
 * A cached model, as `store.list()` and `store.entry()` report it.
 *
 * @example
 * for (const e of await w.store.list()) console.log(e.id, e.revision, e.bytes, new Date(e.lastUsed));
 */
export interface CacheEntry {
  key: string;
  id: string;
  revision: string;
  license?: string;
  /**
   * Every file's sha256: the manifest's when it gave one, else the digest computed while the
   * file downloaded (so a damaged cached copy is still caught on load).
   */
  files: { name: string; size: number; sha256: string }[];
  /** 'none' when some file had no sha256 from its publisher or caller (only its size was checked). */
  integrity?: 'none';
  bytes: number;
  createdAt: number;
  lastUsed: number;
  /** Free-form state saved with the model (e.g. a pruning plan). */
  extra?: Record<string, unknown>;
  /**
   * A derived entry (a compressed variant the SDK wrote after a load with `compress`): the model it
   * was made from and how (`variant`: the setting's tag, e.g. 'q4-g32-rtn'). Deleting that model
   * deletes its variants.
   */
  derivedFrom?: { id: string; revision: string; variant: string };
}

export class MetaStore {
  private readonly idb: UseStore;
  constructor(name = 'whittle') {
    this.idb = createStore(`${name}-meta`, 'entries');
  }
  get(key: string): Promise<CacheEntry | undefined> {
    return get<CacheEntry>(key, this.idb);
  }
  put(entry: CacheEntry): Promise<void> {
    return set(entry.key, entry, this.idb);
  }
  delete(key: string): Promise<void> {
    return del(key, this.idb);
  }
  async all(): Promise<CacheEntry[]> {
    return (await entries<string, CacheEntry>(this.idb)).map(([, e]) => e);
  }
  clear(): Promise<void> {
    return clear(this.idb);
  }
}
