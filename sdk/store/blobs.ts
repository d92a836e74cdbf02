/**
 * Where file bytes live: OPFS by default, Cache Storage where OPFS is missing.
 * Blobs are content-addressed by sha256, so two models sharing a file store it once and
 * a partial download is tied to the exact bytes it is supposed to become.
 *
 * Each file has two names: `<sha>.part` while downloading (never visible as a cached file)
 * and `<sha>` once verified. Only `commit()` makes a file visible, and it is a rename (or one
 * atomic write), so an abort or a crash at any point leaves either nothing or a resumable partial.
 */
import { WhittleError } from '../../core/errors.ts';

export interface PartialWriter {
  /** Appends bytes. */
  write(chunk: Uint8Array): Promise<void>;
  /** Makes the bytes written so far durable (they survive a reload, for resume). */
  flush(): Promise<void>;
  /** Flushes and releases the writer. */
  close(): Promise<void>;
}

export interface BlobStore {
  readonly kind: 'opfs' | 'cache';
  /** A committed file, or null. */
  get(sha256: string): Promise<Blob | null>;
  /** The bytes of an unfinished download, or null. */
  partial(sha256: string): Promise<Blob | null>;
  /** Opens the partial for appending; `fresh` truncates it first. */
  openPartial(sha256: string, fresh: boolean): Promise<PartialWriter>;
  /**
   * Atomically turns the partial into the committed file. `as` names the committed file when it
   * differs from the partial's: a file downloaded without a known sha256 is written under a
   * name derived from its URL and committed under the digest computed while it arrived.
   */
  commit(partial: string, as?: string): Promise<void>;
  /** Removes the committed file and any partial. */
  delete(sha256: string): Promise<void>;
  /** Removes everything this store holds. */
  clear(): Promise<void>;
}

/** Quota errors look different in every storage API; normalize them. */
export function storageError(err: unknown, what: string): WhittleError {
  const name = (err as { name?: string } | null)?.name;
  if (name === 'QuotaExceededError') {
    return new WhittleError('QUOTA', `storage quota exceeded while ${what}`, {}, { cause: err });
  }
  if (err instanceof WhittleError) return err;
  return new WhittleError('STORAGE', `storage failed while ${what}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
}

// ---------------------------------------------------------------------------------------
// OPFS

/**
 * A checkpoint every this many bytes: the OPFS partial is kept as segment files, and a checkpoint
 * closes the current segment (its bytes become durable: a reload resumes from here) and starts
 * the next one at the next write.
 *
 * Why segments: createWritable() writes into a swap file that replaces the real one on close(),
 * and `keepExistingData: true` first copies the whole existing file into the swap. Checkpointing
 * one growing file by close + reopen therefore copied everything written so far at every
 * checkpoint: quadratic I/O (a 4 GB file at 4 MB checkpoints copied about 2 TB). A fresh segment
 * starts empty, so each byte is written once while downloading and once more when commit() joins
 * the segments (none when there is only one: a rename): linear. A sync access handle would write
 * in place, but only inside a worker, and the store runs on the page.
 */
const CHECKPOINT_BYTES = 8 << 20;

/** `<name>.part`, `<name>.part.1`, `<name>.part.2`, ...: the segments of a partial, in order. */
function segmentName(name: string, index: number): string {
  return index === 0 ? `${name}.part` : `${name}.part.${index}`;
}

export class OpfsBlobStore implements BlobStore {
  readonly kind = 'opfs';
  private constructor(private readonly dir: FileSystemDirectoryHandle) {}

  static async open(name = 'whittle'): Promise<OpfsBlobStore> {
    const root = await navigator.storage.getDirectory();
    return new OpfsBlobStore(await root.getDirectoryHandle(name, { create: true }));
  }

  private async file(name: string): Promise<FileSystemFileHandle | null> {
    try {
      return await this.dir.getFileHandle(name);
    } catch (err) {
      if ((err as { name?: string }).name === 'NotFoundError') return null;
      throw storageError(err, `opening ${name}`);
    }
  }

  /** The segment files of a partial, in order (a gap ends the list: later ones are stale). */
  private async segments(name: string): Promise<{ handle: FileSystemFileHandle; file: File }[]> {
    const out: { handle: FileSystemFileHandle; file: File }[] = [];
    for (let i = 0; ; i++) {
      const handle = await this.file(segmentName(name, i));
      if (!handle) return out;
      out.push({ handle, file: await handle.getFile() });
    }
  }

  private async removeSegments(name: string): Promise<void> {
    // Probe past a gap too: a crash may have left segments after one that was removed.
    for (let i = 0, misses = 0; misses < 2; i++) {
      const removed = await this.dir.removeEntry(segmentName(name, i)).then(
        () => true,
        () => false,
      );
      misses = removed ? 0 : misses + 1;
    }
  }

  async get(sha256: string): Promise<Blob | null> {
    return (await (await this.file(sha256))?.getFile()) ?? null;
  }

  async partial(sha256: string): Promise<Blob | null> {
    const segments = await this.segments(sha256);
    // A Blob over the segment files: no bytes are copied to read the partial as one.
    return segments.length === 0 ? null : new Blob(segments.map((s) => s.file));
  }

  async openPartial(sha256: string, fresh: boolean): Promise<PartialWriter> {
    if (fresh) await this.removeSegments(sha256);
    let next = (await this.segments(sha256)).length;
    let writable: FileSystemWritableFileStream | null = null;
    let unflushed = 0;
    const start = async () => {
      try {
        const handle = await this.dir.getFileHandle(segmentName(sha256, next++), { create: true });
        writable = await handle.createWritable({ keepExistingData: false });
      } catch (err) {
        throw storageError(err, `opening a segment of ${sha256}`);
      }
    };
    const flush = async () => {
      if (!writable) return;
      const w: FileSystemWritableFileStream = writable;
      writable = null;
      unflushed = 0;
      try {
        await w.close();
      } catch (err) {
        throw storageError(err, `closing ${sha256}`);
      }
    };
    // The first segment exists from the start, so an empty file commits like any other.
    if (next === 0) await start();
    return {
      write: async (chunk) => {
        if (!writable) await start();
        try {
          await writable!.write(chunk as Uint8Array<ArrayBuffer>);
        } catch (err) {
          throw storageError(err, `writing ${sha256}`);
        }
        unflushed += chunk.byteLength;
        if (unflushed >= CHECKPOINT_BYTES) await flush();
      },
      flush,
      close: flush,
    };
  }

  async commit(partial: string, as = partial): Promise<void> {
    const segments = await this.segments(partial);
    if (segments.length === 0) throw new WhittleError('STORAGE', `nothing to commit for ${partial}`);
    try {
      await this.dir.removeEntry(as).catch(() => undefined);
      const movable = segments[0]!.handle as FileSystemFileHandle & { move?: (name: string) => Promise<void> };
      if (segments.length === 1 && typeof movable.move === 'function') {
        await movable.move(as);
        return;
      }
      // Several segments (or no FileSystemHandle.move()): one pass writing them into the target,
      // which appears only when close() swaps it in, then drop the segments.
      const target = await this.dir.getFileHandle(as, { create: true });
      const w = await target.createWritable({ keepExistingData: false });
      for (const { file } of segments) await w.write(file);
      await w.close();
      await this.removeSegments(partial);
    } catch (err) {
      throw storageError(err, `committing ${as}`);
    }
  }

  async delete(sha256: string): Promise<void> {
    await this.dir.removeEntry(sha256).catch(() => undefined);
    await this.removeSegments(sha256);
  }

  async clear(): Promise<void> {
    const names: string[] = [];
    for await (const name of (this.dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
    for (const name of names) await this.dir.removeEntry(name, { recursive: true }).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------
// Cache Storage

/**
 * Cache Storage cannot append, so a partial is kept in memory as a list of chunks and
 * written back (as one Blob built from the previous partial plus the new chunks, no byte
 * copying in JS) on flush/close.
 */
/** Cache Storage writes: chunks held in JS at most this long before they are folded into a Blob. */
const FOLD_BYTES = 16 << 20;

export class CacheBlobStore implements BlobStore {
  readonly kind = 'cache';
  private constructor(private readonly cache: Cache, private readonly prefix: string) {}

  static async open(name = 'whittle'): Promise<CacheBlobStore> {
    return new CacheBlobStore(await caches.open(name), `https://whittle.invalid/${name}/`);
  }

  private url(name: string): string {
    return `${this.prefix}${name}`;
  }

  private async read(name: string): Promise<Blob | null> {
    const res = await this.cache.match(this.url(name));
    return res ? await res.blob() : null;
  }

  private async put(name: string, blob: Blob): Promise<void> {
    try {
      await this.cache.put(this.url(name), new Response(blob, { headers: { 'content-length': String(blob.size) } }));
    } catch (err) {
      throw storageError(err, `storing ${name}`);
    }
  }

  get(sha256: string): Promise<Blob | null> {
    return this.read(sha256);
  }

  partial(sha256: string): Promise<Blob | null> {
    return this.read(`${sha256}.part`);
  }

  async openPartial(sha256: string, fresh: boolean): Promise<PartialWriter> {
    let base: Blob = fresh ? new Blob([]) : ((await this.partial(sha256)) ?? new Blob([]));
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    /** Bytes written since the last put (folded or not). */
    let unput = false;
    // Folds the chunks written so far into the Blob (the browser's blob storage, not the JS heap).
    const fold = () => {
      base = new Blob([base, ...(pending as Uint8Array<ArrayBuffer>[])]);
      pending = [];
      pendingBytes = 0;
    };
    const flush = async () => {
      if (!unput && !fresh) return;
      fold();
      unput = false;
      await this.put(`${sha256}.part`, base);
    };
    return {
      write: async (chunk) => {
        pending.push(chunk);
        unput = true;
        pendingBytes += chunk.byteLength;
        // A multi-GB write would otherwise sit in the page's JS heap until close.
        if (pendingBytes >= FOLD_BYTES) fold();
      },
      flush,
      close: flush,
    };
  }

  async commit(partial: string, as = partial): Promise<void> {
    const part = await this.partial(partial);
    if (!part) throw new WhittleError('STORAGE', `nothing to commit for ${partial}`);
    await this.put(as, part);
    await this.cache.delete(this.url(`${partial}.part`));
  }

  async delete(sha256: string): Promise<void> {
    await this.cache.delete(this.url(sha256));
    await this.cache.delete(this.url(`${sha256}.part`));
  }

  async clear(): Promise<void> {
    for (const req of await this.cache.keys()) {
      if (req.url.startsWith(this.prefix)) await this.cache.delete(req);
    }
  }
}

/**
 * Where model files are stored: the Origin Private File System, Cache Storage, or 'auto'
 * (OPFS, falling back to Cache Storage).
 *
 * @example
 * const w = await Whittle.create({ cache: 'cache' satisfies BlobBackend });
 */
export type BlobBackend = 'opfs' | 'cache' | 'auto';

/** OPFS when the browser has it, Cache Storage otherwise. */
export async function openBlobStore(backend: BlobBackend, name = 'whittle'): Promise<BlobStore> {
  const hasOpfs = typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function';
  if (backend === 'opfs' || (backend === 'auto' && hasOpfs)) {
    try {
      return await OpfsBlobStore.open(name);
    } catch (err) {
      if (backend === 'opfs') throw storageError(err, 'opening OPFS');
    }
  }
  if (typeof caches === 'undefined') {
    throw new WhittleError('UNSUPPORTED', 'neither OPFS nor Cache Storage is available (insecure context?)');
  }
  return CacheBlobStore.open(name);
}
