/**
 * The model store: verified, resumable, quota-aware downloads into OPFS (or Cache Storage),
 * with metadata in IndexedDB and LRU eviction to a byte budget.
 *
 * Guarantees:
 * - an entry is visible (`has`, `list`, `load` from cache) only after every file was hashed
 *   and committed;
 * - a cached model loads with zero network requests and without reading its bytes (the entry
 *   is the verified marker); with `verifyOnLoad: true` a cached file that fails its sha256 is
 *   discarded and downloaded again;
 * - one download per blob at a time, across tabs: a Web Lock per blob covers its download and
 *   commit, and whoever waited for it finds the committed blob;
 * - models in use are pinned (`lease()`, held by the SDK while a model handle is alive): LRU
 *   eviction skips them and says so, or fails with QUOTA when only they could make room;
 * - quota is checked before the first byte is written (`QUOTA`), never discovered halfway;
 * - every operation takes an AbortSignal; an abort keeps only an invisible, resumable partial.
 *
 * @example
 * const store = await ModelStore.open();
 * const model = await store.load(manifest, { onProgress: (e) => e.type === 'progress' && bar(e.overallLoaded / e.overallTotal) });
 * const bytes = await model.files.get('stories260K.bin')!.arrayBuffer();
 */
import { createSHA256, sha256 as sha256Hex, type IHasher } from 'hash-wasm';
import { WhittleError, throwIfAborted } from '../../core/errors.ts';
import { openBlobStore, type BlobBackend, type BlobStore } from './blobs.ts';
import { downloadFile, sha256OfBlob } from './download.ts';
import type { StoreEvent } from './events.ts';
import { holdShared, heldNames, withExclusiveLock } from './locks.ts';
import { pickEvictions } from './lru.ts';
import { entryKey, fullyVerified, manifestBytes, validateManifest, type ManifestFile, type ModelManifest } from './manifest.ts';
import { MetaStore, type CacheEntry } from './meta.ts';

/**
 * How a {@link ModelStore} stores, budgets and fetches.
 *
 * @example
 * const store = await ModelStore.open({ backend: 'auto', budgetBytes: 500e6, name: 'my-app' } satisfies StoreOptions);
 */
export interface StoreOptions {
  /** Where blobs go; 'auto' = OPFS, falling back to Cache Storage. */
  backend?: BlobBackend;
  /** Upper bound on the bytes this store keeps; least recently used models are evicted to stay under it. */
  budgetBytes?: number;
  /** Namespace (separate OPFS folder, Cache and IndexedDB database). */
  name?: string;
  /** Injected for embedding apps (auth headers, custom CDNs). */
  fetch?: typeof fetch;
  /** Storage estimate; defaults to navigator.storage.estimate(). */
  estimate?: () => Promise<StorageEstimate>;
  /**
   * Re-hash every cached file on every load (default false). A cache entry is the verified
   * marker: it is written only after each file's sha256 matched, and blobs are named by their
   * sha256 and never written after commit, so a load checks entry, presence and size and reads
   * none of the bytes on the main thread (re-hashing cost about 1 s per GB there, every load).
   * What that cannot catch is a cached file damaged later (a disk error, another script of this
   * origin writing into OPFS): ask for `true` where that matters; a mismatch is then discarded
   * and downloaded again. (A cheaper stamp does not work: Chromium's OPFS keeps a file's
   * lastModified across createWritable() writes.)
   */
  verifyOnLoad?: boolean;
  /** Retry policy for network failures mid-file. */
  maxRetries?: number;
  retryDelayMs?: number;
}

/**
 * Cancellation and progress for a load.
 *
 * @example
 * const lm = await w.text('stories260K', { signal: AbortSignal.timeout(60_000), onProgress: (e) => console.log(e.type) } satisfies LoadOptions);
 */
export interface LoadOptions {
  signal?: AbortSignal;
  onProgress?: (event: StoreEvent) => void;
}

/**
 * A model whose every file is verified and in the store.
 *
 * @example
 * const { files, source }: LoadedModel = await store.load(manifest);
 * console.log(source, await files.get('config.json')!.text());
 */
export interface LoadedModel {
  manifest: ModelManifest;
  /** File name -> bytes (lazy Blobs backed by OPFS/Cache Storage). */
  files: Map<string, Blob>;
  source: 'cache' | 'network';
}

/**
 * A pin on a model's cache entry: while held (in this or another tab), eviction leaves the
 * entry's files alone. `release()` is idempotent.
 *
 * @example
 * const lease = await store.lease(manifest);
 * try { await use(await store.load(manifest)); } finally { lease.release(); }
 */
export interface StoreLease {
  readonly key: string;
  release(): void;
}

/** A Blob's bytes in 8 MiB reads (the whole of a GB file is never one ArrayBuffer). */
async function* blobChunks(blob: Blob): AsyncIterable<Uint8Array> {
  const CHUNK = 8 << 20;
  for (let at = 0; at < blob.size; at += CHUNK) yield new Uint8Array(await blob.slice(at, at + CHUNK).arrayBuffer());
}

/** The store entry of a model written now (a load, an import or a derived variant). */
function newEntry(
  key: string,
  model: { id: string; revision: string; license?: string },
  integrity: 'none' | undefined,
  files: readonly { name: string; size: number; sha256: string }[],
  bytes: number,
): CacheEntry {
  const now = Date.now();
  return {
    key,
    id: model.id,
    revision: model.revision,
    ...(model.license ? { license: model.license } : {}),
    ...(integrity ? { integrity } : {}),
    files: files.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
    bytes,
    createdAt: now,
    lastUsed: now,
  };
}

/**
 * The verified, resumable, quota-aware model cache (see the top of this file); `Whittle.store`
 * is one, and `ModelStore.open()` makes another.
 *
 * @example
 * const store = await ModelStore.open({ budgetBytes: 1e9 });
 * const model = await store.load(manifest, { onProgress: (e) => e.type === 'progress' && bar(e.overallLoaded / e.overallTotal) });
 * console.log(await store.list()); // CacheEntry[]
 */
export class ModelStore {
  private constructor(
    private readonly blobs: BlobStore,
    private readonly meta: MetaStore,
    private readonly options: StoreOptions,
    private readonly name: string,
  ) {}

  static async open(options: StoreOptions = {}): Promise<ModelStore> {
    const name = options.name ?? 'whittle';
    return new ModelStore(await openBlobStore(options.backend ?? 'auto', name), new MetaStore(name), options, name);
  }

  /** Lock names are per origin; the store's name keeps namespaces (separate folders) apart. */
  private blobLock(blob: string): string {
    return `whittle-blob:${this.name}:${blob}`;
  }

  private get pinPrefix(): string {
    return `whittle-pin:${this.name}:`;
  }

  /**
   * Pins a model's entry (id@revision) against eviction until `release()`; cross-tab (a shared
   * Web Lock, dropped by the browser if the tab dies). Take it before `load()` so that no other
   * load evicts the files between the load and the worker reading them.
   */
  async lease(model: Pick<ModelManifest, 'id' | 'revision'>): Promise<StoreLease> {
    const key = entryKey(model);
    return { key, release: await holdShared(this.pinPrefix + key) };
  }

  /** Keys of the entries pinned right now, by any tab. */
  async pinned(): Promise<Set<string>> {
    const prefix = this.pinPrefix;
    return new Set([...(await heldNames(prefix))].map((n) => n.slice(prefix.length)));
  }

  get backend(): BlobStore['kind'] {
    return this.blobs.kind;
  }

  async has(id: string, revision?: string): Promise<boolean> {
    return (await this.entry(id, revision)) !== undefined;
  }

  async list(): Promise<CacheEntry[]> {
    return (await this.meta.all()).sort((a, b) => b.lastUsed - a.lastUsed);
  }

  /** Bytes held by complete entries (files shared between models counted once). */
  async usage(): Promise<number> {
    const seen = new Map<string, number>();
    for (const e of await this.meta.all()) for (const f of e.files) seen.set(f.sha256, f.size);
    return [...seen.values()].reduce((a, b) => a + b, 0);
  }

  /** The complete cache entry of a model at `revision` (the most recently used revision when none is given). */
  async entry(id: string, revision?: string): Promise<CacheEntry | undefined> {
    if (revision !== undefined) return this.meta.get(entryKey({ id, revision }));
    return (await this.meta.all()).filter((e) => e.id === id).sort((a, b) => b.lastUsed - a.lastUsed)[0];
  }

  /** Deletes a model's entry, its derived entries (compressed variants), and the blobs no other entry uses. */
  async delete(id: string, revision?: string): Promise<boolean> {
    const entry = await this.entry(id, revision);
    if (!entry) return false;
    await this.removeEntry(entry);
    // A variant is only as current as its source: it goes with it (eviction, by contrast, leaves
    // it, since a variant loads on its own).
    for (const e of await this.meta.all()) if (e.derivedFrom && entryKey(e.derivedFrom) === entry.key) await this.removeEntry(e);
    return true;
  }

  /**
   * A complete entry's files from the cache, or null (never downloads): for derived entries,
   * which have nowhere to download from. Same checks as a cached `load` (presence, size, sha256
   * with `verifyOnLoad`); an entry that fails them is dropped and reported as `discarded`.
   */
  async loadCached(manifest: ModelManifest, opts: LoadOptions = {}): Promise<LoadedModel | null> {
    const cache = await this.fromCache(validateManifest(manifest), opts);
    return 'loaded' in cache ? cache.loaded : null;
  }

  /**
   * Writes a derived entry (a compressed variant made on this device): `files` are new bytes
   * (hashed here and stored content-addressed like downloads) or files of existing blobs named by
   * sha256 (a variant shares its source's tokenizer and config.json, stored once). Room is made
   * as for a download (budget, LRU skipping pinned entries, quota) before a byte is written:
   * QUOTA when it cannot fit. Returns the manifest to load it with `loadCached`.
   */
  async putDerived(
    derived: { id: string; revision: string; derivedFrom: NonNullable<CacheEntry['derivedFrom']>; integrity?: 'none'; license?: string },
    files: { name: string; blob?: Blob; sha256?: string; size?: number }[],
    opts: LoadOptions = {},
  ): Promise<ModelManifest> {
    const { signal, onProgress } = opts;
    const emit = (e: StoreEvent) => onProgress?.(e);
    const key = entryKey(derived);
    const listed: { name: string; size: number; sha256: string; blob?: Blob }[] = [];
    for (const f of files) {
      if (f.blob) listed.push({ name: f.name, size: f.blob.size, sha256: await sha256OfBlob(f.blob, signal), blob: f.blob });
      else if (f.sha256 !== undefined && f.size !== undefined) listed.push({ name: f.name, size: f.size, sha256: f.sha256 });
      else throw new WhittleError('INVALID_ARGUMENT', `putDerived: ${f.name} has neither bytes nor a sha256 and size`);
    }
    const total = listed.reduce((s, f) => s + f.size, 0);
    let needed = 0;
    for (const f of listed) {
      const have = await this.blobs.get(f.sha256);
      if (!have || have.size !== f.size) {
        if (!f.blob) throw new WhittleError('STORAGE', `putDerived: ${f.name} (${f.sha256}) is not in the store`);
        needed += f.size;
      }
    }
    await this.ensureRoom(key, total, needed, emit, derived.id);
    for (const f of listed) if (f.blob) await this.writeBlob(f.sha256, f.size, () => blobChunks(f.blob!), signal);
    throwIfAborted(signal);
    await this.meta.put({ ...newEntry(key, derived, derived.integrity, listed, total), derivedFrom: derived.derivedFrom });
    return derivedManifest({ ...derived, files: listed });
  }

  /**
   * `putDerived` for a file that arrives as a stream of bytes whose digest nobody knows yet (a
   * variant compressed a block at a time in a worker, sdk/text-variant.ts): room for `file.size`
   * is made first (QUOTA before a byte is written), the bytes go to a partial of their own and are
   * hashed as they arrive, then committed under their digest (or dropped, when the store holds
   * those bytes already). A stream that ends short of `file.size` or runs past it is INTEGRITY;
   * any failure or abort removes the partial, so nothing is left half-written. `shared` are files
   * of existing blobs named by sha256, as putDerived's.
   */
  async putDerivedStream(
    derived: { id: string; revision: string; derivedFrom: NonNullable<CacheEntry['derivedFrom']>; integrity?: 'none'; license?: string },
    file: { name: string; size: number; chunks: AsyncIterable<Uint8Array> },
    shared: { name: string; sha256: string; size: number }[],
    opts: LoadOptions = {},
  ): Promise<ModelManifest> {
    const { signal, onProgress } = opts;
    const emit = (e: StoreEvent) => onProgress?.(e);
    const key = entryKey(derived);
    for (const f of shared) {
      const have = await this.blobs.get(f.sha256);
      if (!have || have.size !== f.size) throw new WhittleError('STORAGE', `putDerivedStream: ${f.name} (${f.sha256}) is not in the store`);
    }
    const total = file.size + shared.reduce((n, f) => n + f.size, 0);
    await this.ensureRoom(key, total, file.size, emit, derived.id);
    // The digest, which names the committed file, is known only at the end: the partial is named
    // after the entry instead, written fresh under its own lock, so what a closed tab left of it
    // is replaced by the next save of the same entry rather than kept, and two tabs never write
    // one partial at once.
    const partial = `stream-${(await sha256Hex(key)).slice(0, 32)}`;
    const sha256 = await withExclusiveLock(
      this.blobLock(partial),
      async () => {
        try {
          const hasher = await createSHA256();
          const written = await this.writePartial(partial, file.chunks, file.size, hasher, signal);
          throwIfAborted(signal);
          if (written > file.size) throw new WhittleError('INTEGRITY', `putDerivedStream: ${file.name} runs past the ${file.size} bytes it announced`, { file: file.name });
          if (written < file.size) throw new WhittleError('INTEGRITY', `putDerivedStream: ${file.name} ended at ${written} of the ${file.size} bytes it announced`, { file: file.name });
          const digest = hasher.digest('hex');
          await withExclusiveLock(
            this.blobLock(digest),
            async () => {
              const have = await this.blobs.get(digest);
              // Bytes already under this digest are kept only when they hash to it (as importChunks
              // does): an entry's blobs were checked as written, an unnamed one may be damaged.
              if (have && have.size === file.size && (await this.named(digest) || (await sha256OfBlob(have, signal)) === digest)) return this.blobs.delete(partial);
              if (have) await this.blobs.delete(digest);
              try {
                await this.blobs.commit(partial, digest);
              } catch (err) {
                await this.blobs.delete(digest); // the target a failed multi-segment commit had begun
                throw err;
              }
            },
            signal,
          );
          return digest;
        } catch (err) {
          await this.blobs.delete(partial).catch(() => undefined);
          throw err;
        }
      },
      signal,
    );
    const listed = [{ name: file.name, size: file.size, sha256 }, ...shared];
    await this.meta.put({ ...newEntry(key, derived, derived.integrity, listed, total), derivedFrom: derived.derivedFrom });
    return derivedManifest({ ...derived, files: listed });
  }

  /**
   * Writes a model's files from bytes the caller already has (a test runner's local copies, an
   * app's own bundle), so a later `load(manifest)` or `w.text(url)` is served from the cache with
   * zero requests. Every file of the manifest must be given; each is checked against the
   * manifest's size and sha256 (a manifest without sha256s must say `integrity: 'none'`, as for a
   * download) before anything is written, and the entry is written last, as after a download:
   * `INVALID_ARGUMENT` for a missing or extra file, `INTEGRITY` for bytes that do not match,
   * `QUOTA` when it cannot fit. Returns the entry's key.
   *
   * @example
   * const files = new Map([['stories260K.bin', modelBlob], ['tok512.bin', tokenizerBlob]]);
   * await store.import(manifest, files);
   * (await store.load(manifest)).source; // 'cache'
   */
  async import(manifestInput: ModelManifest, files: Map<string, Blob>, opts: LoadOptions = {}): Promise<string> {
    const manifest = validateManifest(manifestInput);
    const { signal, onProgress } = opts;
    const emit = (e: StoreEvent) => onProgress?.(e);
    const key = entryKey(manifest);
    const extra = [...files.keys()].filter((n) => !manifest.files.some((f) => f.name === n));
    if (extra.length > 0) throw new WhittleError('INVALID_ARGUMENT', `import: ${extra.join(', ')} not in ${manifest.id}'s manifest`, { id: manifest.id });
    const listed: { name: string; size: number; sha256: string; blob: Blob }[] = [];
    for (const f of manifest.files) {
      const blob = files.get(f.name);
      if (!blob) throw new WhittleError('INVALID_ARGUMENT', `import: no bytes given for ${f.name} of ${manifest.id}`, { id: manifest.id, file: f.name });
      if (blob.size !== f.size) throw new WhittleError('INTEGRITY', `import: ${f.name} has ${blob.size} bytes, the manifest says ${f.size}`, { file: f.name });
      const digest = await sha256OfBlob(blob, signal);
      if (f.sha256 !== undefined && digest !== f.sha256) throw new WhittleError('INTEGRITY', `import: ${f.name} has sha256 ${digest}, the manifest says ${f.sha256}`, { file: f.name });
      listed.push({ name: f.name, size: f.size, sha256: digest, blob });
    }
    const total = manifestBytes(manifest);
    let needed = 0;
    for (const f of listed) {
      const have = await this.blobs.get(f.sha256);
      if (!have || have.size !== f.size) needed += f.size;
    }
    await this.ensureRoom(key, total, needed, emit, manifest.id);
    for (const f of listed) await this.writeBlob(f.sha256, f.size, () => blobChunks(f.blob), signal);
    throwIfAborted(signal);
    await this.meta.put(newEntry(key, manifest, fullyVerified(manifest) ? undefined : 'none', listed, total));
    return key;
  }

  /**
   * `import` for bytes that arrive in chunks (a test runner's seeding of a multi-GB model, which a
   * page cannot hold as Blobs): each file is hashed while it is written to a partial, committed
   * only if its size and sha256 are the manifest's, and the entry is written last. Every file
   * needs a sha256 (INVALID_ARGUMENT otherwise); a file that does not match is INTEGRITY, and
   * what this call committed before it is removed again, so a failed import leaves nothing (a
   * storage quota that runs out mid-file is QUOTA, and leaves nothing either). A file the store
   * holds already, with no entry naming it (what an interrupted import or a discarded entry left),
   * is reused only if its bytes hash to its sha256, as `load` does; otherwise it is written again.
   * `chunks(name)` is asked once per file the store does not hold intact.
   *
   * @example
   * await store.importChunks(manifest, async function* (name) { for (const url of urlsOf(name)) yield new Uint8Array(await (await fetch(url)).arrayBuffer()); });
   */
  async importChunks(manifestInput: ModelManifest, chunks: (name: string) => AsyncIterable<Uint8Array>, opts: LoadOptions = {}): Promise<string> {
    const manifest = validateManifest(manifestInput);
    const { signal, onProgress } = opts;
    const emit = (e: StoreEvent) => onProgress?.(e);
    const key = entryKey(manifest);
    const unhashed = manifest.files.find((f) => f.sha256 === undefined);
    if (unhashed) throw new WhittleError('INVALID_ARGUMENT', `importChunks: ${unhashed.name} has no sha256 in ${manifest.id}'s manifest`, { id: manifest.id, file: unhashed.name });
    const listed = manifest.files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256! }));
    const missing: typeof listed = [];
    for (const f of listed) {
      const have = await this.blobs.get(f.sha256);
      if (have && have.size === f.size && (await sha256OfBlob(have, signal)) === f.sha256) continue;
      // Damaged bytes under a digest's name (same size or not) go, under the blob's lock: writeBlob
      // would otherwise take a same-size blob for one another tab just wrote.
      if (have) await withExclusiveLock(this.blobLock(f.sha256), () => this.blobs.delete(f.sha256), signal);
      missing.push(f);
    }
    await this.ensureRoom(key, manifestBytes(manifest), missing.reduce((n, f) => n + f.size, 0), emit, manifest.id);
    const committed: string[] = [];
    try {
      for (const f of missing) if (await this.writeBlob(f.sha256, f.size, () => chunks(f.name), signal, f.name)) committed.push(f.sha256);
      throwIfAborted(signal);
      await this.meta.put(newEntry(key, manifest, undefined, listed, manifestBytes(manifest)));
    } catch (err) {
      // Nothing half-imported stays: the files this call committed go again (no entry names them).
      for (const sha of committed) await this.blobs.delete(sha);
      throw err;
    }
    return key;
  }

  /**
   * Writes and commits one content-addressed blob of `size` bytes under its lock from its bytes in
   * chunks; a no-op (false) when it is there already. With `verifying` (the file's name), the
   * bytes are hashed as they are written and must be `size` bytes of `sha256`: INTEGRITY
   * otherwise. Whatever fails (a mismatch, a QUOTA mid-file, an abort), nothing of the blob stays:
   * no caller resumes such a partial, and a half-written one would only hold quota. True when it
   * wrote the blob.
   */
  private async writeBlob(sha256: string, size: number, chunks: () => AsyncIterable<Uint8Array>, signal: AbortSignal | undefined, verifying?: string): Promise<boolean> {
    return withExclusiveLock(
      this.blobLock(sha256),
      async () => {
        const have = await this.blobs.get(sha256);
        if (have && have.size === size) return false; // another tab wrote the same bytes meanwhile
        const hasher = verifying === undefined ? null : await createSHA256();
        try {
          const written = await this.writePartial(sha256, chunks(), size, hasher, signal);
          if (hasher) {
            const digest = written === size ? hasher.digest('hex') : null;
            if (digest !== sha256)
              throw written === size
                ? new WhittleError('INTEGRITY', `importChunks: ${verifying} has sha256 ${digest}, the manifest says ${sha256}`, { file: verifying! })
                : new WhittleError('INTEGRITY', `importChunks: ${verifying} has ${written > size ? 'more than ' : ''}${written} bytes, the manifest says ${size}`, { file: verifying! });
          }
          await this.blobs.commit(sha256);
        } catch (err) {
          // The partial's segments, and the target a failed multi-segment commit had begun.
          await this.blobs.delete(sha256);
          throw err;
        }
        return true;
      },
      signal,
    );
  }

  /** Whether some cache entry lists the blob `sha256`. */
  private async named(sha256: string): Promise<boolean> {
    return (await this.meta.all()).some((e) => e.files.some((f) => f.sha256 === sha256));
  }

  /**
   * Writes `chunks` into a fresh partial `name` (hashed into `hasher` when given) and returns the
   * bytes they held, stopping at the chunk that runs past `limit` (a return over `limit` means the
   * source ran long). After a failed write the stream's close fails too; the write's error (QUOTA)
   * is the one reported. The caller removes the partial on failure.
   */
  private async writePartial(name: string, chunks: AsyncIterable<Uint8Array>, limit: number, hasher: IHasher | null, signal: AbortSignal | undefined): Promise<number> {
    const writer = await this.blobs.openPartial(name, true);
    let written = 0;
    let writing: unknown = null;
    try {
      for await (const chunk of chunks) {
        throwIfAborted(signal);
        written += chunk.byteLength;
        if (written > limit) break;
        hasher?.update(chunk);
        await writer.write(chunk);
      }
    } catch (err) {
      writing = err;
      throw err;
    } finally {
      await writer.close().catch((err: unknown) => {
        if (writing === null) throw err;
      });
    }
    return written;
  }

  async clear(): Promise<void> {
    await this.meta.clear();
    await this.blobs.clear();
  }

  /** Saves extra state (e.g. a pruning plan) with a cached model. */
  async setExtra(id: string, revision: string, extra: Record<string, unknown>): Promise<void> {
    const entry = await this.meta.get(entryKey({ id, revision }));
    if (!entry) throw new WhittleError('INVALID_ARGUMENT', `${id}@${revision} is not cached`);
    await this.meta.put({ ...entry, extra });
  }

  private async removeEntry(entry: CacheEntry): Promise<void> {
    // Metadata first: from this moment the entry is invisible even if blob removal fails.
    await this.meta.delete(entry.key);
    const stillUsed = new Set((await this.meta.all()).flatMap((e) => e.files.map((f) => f.sha256)));
    for (const f of entry.files) if (!stillUsed.has(f.sha256)) await this.blobs.delete(f.sha256);
  }

  /** Returns the model's files, from cache when complete and intact, else downloading what is missing. */
  async load(manifestInput: ModelManifest, opts: LoadOptions = {}): Promise<LoadedModel> {
    const manifest = validateManifest(manifestInput);
    const { signal, onProgress } = opts;
    const emit = (e: StoreEvent) => onProgress?.(e);
    const key = entryKey(manifest);
    throwIfAborted(signal);

    const cache = await this.fromCache(manifest, opts);
    if ('loaded' in cache) return cache.loaded;

    // Which files still need bytes, and how many.
    const present = new Map<string, Blob>();
    let cachedBytes = 0;
    let neededBytes = 0;
    // A file without a sha256 downloads under a name of its own (see partialName) and is
    // content-addressed only once its digest is known.
    const partials = new Map<string, string>();
    const digests = new Map<string, string>();
    for (const f of manifest.files) {
      const blob = f.sha256 === undefined ? null : await this.blobs.get(f.sha256);
      // Blobs fromCache already hashed (before another file failed) are not hashed twice.
      if (blob && f.sha256 && blob.size === f.size && (cache.verified.has(f.sha256) || (await sha256OfBlob(blob, signal)) === f.sha256)) {
        present.set(f.name, blob);
        digests.set(f.name, f.sha256);
        cachedBytes += f.size;
      } else {
        // A bad committed blob is deleted under its lock, below: another tab may be downloading it.
        const name = f.sha256 ?? (await partialName(manifest, f));
        if (f.sha256 === undefined) partials.set(f.name, name);
        const partial = await this.blobs.partial(name);
        neededBytes += f.size - (partial && partial.size <= f.size ? partial.size : 0);
      }
    }
    await this.ensureRoom(key, manifestBytes(manifest), neededBytes, emit, manifest.id);
    void navigator.storage?.persist?.().catch(() => false);

    const total = manifestBytes(manifest);
    emit({ type: 'start', modelId: manifest.id, files: manifest.files.length, totalBytes: total, cachedBytes });
    const loadedPerFile = new Map<string, number>();
    for (const [name, blob] of present) loadedPerFile.set(name, blob.size);
    const overall = () => [...loadedPerFile.values()].reduce((a, b) => a + b, 0);

    for (const f of manifest.files) {
      if (present.has(f.name)) {
        emit({ type: 'file-done', modelId: manifest.id, file: f.name, source: 'cache' });
        continue;
      }
      // One writer per blob, across tabs: the partial is appended to and renamed at commit, so two
      // writers would interleave bytes or commit each other's half. Whoever waited finds the blob.
      const lockName = this.blobLock(f.sha256 ?? partials.get(f.name)!);
      const fetched = await withExclusiveLock(
        lockName,
        () => this.fetchBlob(f, partials.get(f.name), { signal, emit, manifest, loadedPerFile, overall, total }),
        signal,
      );
      present.set(f.name, fetched.blob);
      digests.set(f.name, fetched.digest);
      emit({ type: 'file-done', modelId: manifest.id, file: f.name, source: fetched.source });
    }
    throwIfAborted(signal);
    const files = manifest.files.map(({ name, size }) => ({ name, size, sha256: digests.get(name)! }));
    await this.meta.put(newEntry(key, manifest, fullyVerified(manifest) ? undefined : 'none', files, total));
    emit({ type: 'done', modelId: manifest.id, source: 'network', bytes: total });
    return { manifest, files: present, source: 'network' };
  }

  /**
   * One file's blob, under its lock: the committed one when another load (maybe in another tab)
   * finished it while we waited, else downloaded and committed here.
   */
  private async fetchBlob(
    f: ManifestFile,
    partial: string | undefined,
    ctx: {
      signal: AbortSignal | undefined;
      emit: (e: StoreEvent) => void;
      manifest: ModelManifest;
      loadedPerFile: Map<string, number>;
      overall: () => number;
      total: number;
    },
  ): Promise<{ blob: Blob; digest: string; source: 'cache' | 'network' }> {
    const { signal, emit, manifest, loadedPerFile, overall, total } = ctx;
    if (f.sha256 !== undefined) {
      const committed = await this.blobs.get(f.sha256);
      if (committed && committed.size === f.size && (await sha256OfBlob(committed, signal)) === f.sha256) {
        loadedPerFile.set(f.name, f.size);
        return { blob: committed, digest: f.sha256, source: 'cache' };
      }
      if (committed) await this.blobs.delete(f.sha256);
    }
    const digest = await downloadFile(this.blobs, f, {
      partial,
      signal,
      fetch: this.options.fetch,
      maxRetries: this.options.maxRetries,
      retryDelayMs: this.options.retryDelayMs,
      onBytes: (loaded) => {
        loadedPerFile.set(f.name, loaded);
        emit({
          type: 'progress',
          modelId: manifest.id,
          file: f.name,
          loaded,
          total: f.size,
          overallLoaded: overall(),
          overallTotal: total,
        });
      },
      onRetry: (attempt, resumeFrom, reason) => emit({ type: 'retry', modelId: manifest.id, file: f.name, attempt, resumeFrom, reason }),
    });
    const blob = await this.blobs.get(digest);
    if (!blob) throw new WhittleError('STORAGE', `${f.name} vanished right after it was committed`);
    return { blob, digest, source: 'network' };
  }

  /** A complete entry whose files are all present and (optionally) re-verified; otherwise null. */
  /**
   * The model from cache when its entry is complete and every blob verifies; otherwise (entry
   * dropped) the sha256s that did verify, so the download path does not hash them again.
   */
  private async fromCache(manifest: ModelManifest, opts: LoadOptions): Promise<{ loaded: LoadedModel } | { verified: Set<string> }> {
    const verified = new Set<string>();
    const entry = await this.meta.get(entryKey(manifest));
    if (!entry) return { verified };
    // A file the manifest has no sha256 for matches by name and size; the entry's recorded digest
    // (computed when it downloaded) then verifies the cached copy.
    const sameFiles =
      entry.files.length === manifest.files.length &&
      manifest.files.every((f) =>
        entry.files.some((e) => e.name === f.name && (f.sha256 === undefined || e.sha256 === f.sha256) && e.size === f.size),
      );
    if (!sameFiles) {
      // Same id@revision but different files: the manifest changed under us; trust the new one.
      await this.removeEntry(entry);
      return { verified };
    }
    const files = new Map<string, Blob>();
    for (const mf of manifest.files) {
      const f = entry.files.find((e) => e.name === mf.name)!;
      const blob = await this.blobs.get(f.sha256);
      let reason: string | null = null;
      if (!blob) reason = 'missing from storage';
      else if (blob.size !== f.size) reason = `size ${blob.size} != ${f.size}`;
      else if (this.options.verifyOnLoad === true) {
        const digest = await sha256OfBlob(blob, opts.signal);
        if (digest !== f.sha256) reason = `sha256 ${digest} != ${f.sha256}`;
        else verified.add(f.sha256);
      }
      if (reason !== null || !blob) {
        opts.onProgress?.({ type: 'discarded', modelId: manifest.id, file: f.name, reason: reason ?? 'missing' });
        await this.meta.delete(entry.key);
        await this.blobs.delete(f.sha256);
        return { verified };
      }
      files.set(f.name, blob);
      opts.onProgress?.({ type: 'file-done', modelId: manifest.id, file: f.name, source: 'cache' });
    }
    await this.meta.put({ ...entry, lastUsed: Date.now() });
    opts.onProgress?.({ type: 'done', modelId: manifest.id, source: 'cache', bytes: entry.bytes });
    return { loaded: { manifest, files, source: 'cache' } };
  }

  /** Throws QUOTA before anything is written if the download cannot fit; evicts LRU entries to the budget. */
  private async ensureRoom(
    key: string,
    modelBytes: number,
    neededBytes: number,
    emit: (e: StoreEvent) => void,
    modelId: string,
  ): Promise<void> {
    const budget = this.options.budgetBytes;
    if (budget !== undefined) {
      if (modelBytes > budget) {
        throw new WhittleError('QUOTA', `${modelId} needs ${modelBytes} bytes but the store's budget is ${budget}`, {
          needed: modelBytes,
          budget,
        });
      }
      const entries = (await this.meta.all()).map((e) => ({ key: e.key, bytes: e.bytes, lastUsed: e.lastUsed }));
      // Models in use (a live handle in this or another tab) keep their files: their workers
      // re-read them when they respawn.
      const pinned = [...(await this.pinned())].filter((k) => k !== key && entries.some((e) => e.key === k));
      const evict = pickEvictions(entries, budget, modelBytes, new Set([key, ...pinned]));
      if (evict === null) {
        const inUse = pinned.length > 0 ? `; in use, so not evicted: ${pinned.join(', ')}` : '';
        throw new WhittleError('QUOTA', `cannot make room for ${modelId} (${modelBytes} bytes) within ${budget}${inUse}`, {
          needed: modelBytes,
          budget,
          pinned: pinned.join(','),
        });
      }
      if (evict.length > 0) {
        for (const k of evict) {
          const e = await this.meta.get(k);
          if (e) await this.removeEntry(e);
        }
        emit({ type: 'evicted', modelId, evicted: evict, pinned });
      }
    }
    const estimate = this.options.estimate ?? (() => navigator.storage?.estimate?.() ?? Promise.resolve({}));
    const { quota, usage } = await estimate();
    if (quota !== undefined && usage !== undefined && quota - usage < neededBytes) {
      throw new WhittleError('QUOTA', `${modelId} needs ${neededBytes} more bytes but only ${quota - usage} are available to this origin`, {
        needed: neededBytes,
        available: quota - usage,
      });
    }
  }
}

/**
 * The manifest of a derived entry (files named by their sha256; `derived:` URLs, since there is
 * nothing to download them from: load it with `loadCached`).
 */
export function derivedManifest(e: Pick<CacheEntry, 'id' | 'revision' | 'files' | 'license'>): ModelManifest {
  return { id: e.id, revision: e.revision, ...(e.license ? { license: e.license } : {}), files: e.files.map(({ name, size, sha256 }) => ({ name, size, sha256, url: `derived:${sha256}` })) };
}

/**
 * Where a file without a sha256 downloads: a name derived from the entry key, file name and size
 * (not the URL, whose query may be a rotating token), so an interrupted download resumes in a
 * later session but never mixes bytes of another revision (a URL model's revision includes the
 * server's ETags when it sends them).
 */
async function partialName(manifest: ModelManifest, f: Pick<ManifestFile, 'name' | 'size'>): Promise<string> {
  return `url-${await sha256Hex(`${entryKey(manifest)}\n${f.name}\n${f.size}`)}`;
}
