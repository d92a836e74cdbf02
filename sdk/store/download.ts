/**
 * Downloads one file into a BlobStore partial with Range resume, hashing as it goes, and
 * commits it only if size and sha256 match. Network failures mid-file are retried from the
 * byte where they stopped (the partial is kept); integrity failures delete the partial.
 * A file without a known sha256 (a manifest with `integrity: 'none'`) is size-checked only and
 * committed under the digest computed on the way.
 */
import { createSHA256, type IHasher } from 'hash-wasm';
import { WhittleError, throwIfAborted } from '../../core/errors.ts';
import type { BlobStore, PartialWriter } from './blobs.ts';
import type { ManifestFile } from './manifest.ts';
import { planResponse, rangeHeaderFor } from './resume.ts';

export interface DownloadOptions {
  signal?: AbortSignal;
  fetch?: typeof fetch;
  /** Called with bytes of this file present so far. */
  onBytes?: (loaded: number) => void;
  /** Called before a retry after a network failure. */
  onRetry?: (attempt: number, resumeFrom: number, reason: string) => void;
  maxRetries?: number;
  /** Base delay between retries; doubles each time. */
  retryDelayMs?: number;
  /** Name of the partial when the file has no sha256 (stable across sessions, so it resumes). */
  partial?: string;
}

/** Feeds a Blob into the hasher in slices (resuming needs the hash of bytes already on disk). */
async function hashBlob(hasher: IHasher, blob: Blob, signal?: AbortSignal): Promise<void> {
  const SLICE = 8 << 20;
  for (let off = 0; off < blob.size; off += SLICE) {
    throwIfAborted(signal);
    hasher.update(new Uint8Array(await blob.slice(off, off + SLICE).arrayBuffer()));
  }
}

/** sha256 of a whole Blob (used to re-verify cached files on load). */
export async function sha256OfBlob(blob: Blob, signal?: AbortSignal): Promise<string> {
  const hasher = await createSHA256();
  hasher.init();
  await hashBlob(hasher, blob, signal);
  return hasher.digest('hex');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(new WhittleError('ABORTED', 'The operation was aborted'));
      },
      { once: true },
    );
  });
}

class NetworkCut extends Error {}

/** Returns the file's sha256 (the manifest's, or the one computed when it had none). */
export async function downloadFile(store: BlobStore, file: ManifestFile, opts: DownloadOptions = {}): Promise<string> {
  const { signal } = opts;
  const name = file.sha256 ?? opts.partial;
  if (name === undefined) throw new WhittleError('INTERNAL', `${file.name}: neither a sha256 nor a partial name to download it under`);
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const maxRetries = opts.maxRetries ?? 4;
  throwIfAborted(signal);

  const hasher = await createSHA256();
  hasher.init();
  let have = 0;
  const existing = await store.partial(name);
  if (existing && existing.size <= file.size) {
    await hashBlob(hasher, existing, signal);
    have = existing.size;
  }
  let writer: PartialWriter | null = null;
  const openWriter = async (fresh: boolean) => {
    await writer?.close();
    writer = await store.openPartial(name, fresh);
  };
  await openWriter(existing !== null && existing.size > file.size);
  opts.onBytes?.(have);
  // Set once a response was not the bytes asked for and the download started over from byte 0.
  let discarded = false;

  try {
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(signal);
      try {
        if (have === file.size) break;
        const headers: Record<string, string> = {};
        const range = rangeHeaderFor(have);
        if (range) headers.Range = range;
        let res: Response;
        try {
          res = await doFetch(file.url, { headers, signal, cache: 'no-store' });
        } catch (err) {
          throwIfAborted(signal);
          throw new NetworkCut(err instanceof Error ? err.message : String(err));
        }
        const plan = planResponse(file, have, res.status, {
          contentRange: res.headers.get('content-range'),
          contentLength: res.headers.get('content-length'),
          contentEncoding: res.headers.get('content-encoding'),
        });
        if (plan.kind === 'complete') break;
        if (plan.kind === 'discard') {
          await res.body?.cancel().catch(() => undefined);
          // Once: the partial may be what the server disagrees with (another upload, a size it no
          // longer has). A server that answers a plain GET with the wrong bytes too is broken.
          if (discarded) {
            throw new WhittleError('NETWORK', `${file.name}: ${plan.reason}, again after starting over from byte 0`, { file: file.name, status: res.status });
          }
          discarded = true;
          hasher.init();
          have = 0;
          await openWriter(true);
          opts.onBytes?.(0);
          opts.onRetry?.(attempt + 1, 0, `${plan.reason}; starting over from byte 0`);
          continue;
        }
        if (plan.kind === 'restart' && have > 0) {
          hasher.init();
          have = 0;
          await openWriter(true);
          opts.onBytes?.(0);
        }
        if (!res.body) throw new NetworkCut('response has no body');
        const reader = res.body.getReader();
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (err) {
            throwIfAborted(signal);
            throw new NetworkCut(err instanceof Error ? err.message : String(err));
          }
          if (chunk.done) break;
          const bytes = chunk.value;
          if (have + bytes.byteLength > file.size) {
            await reader.cancel().catch(() => undefined);
            throw new WhittleError('INTEGRITY', `${file.name}: more than the ${file.size} bytes the manifest promised`, {
              file: file.name,
              expected: file.size,
            });
          }
          await writer!.write(bytes);
          hasher.update(bytes);
          have += bytes.byteLength;
          opts.onBytes?.(have);
        }
        if (have < file.size) throw new NetworkCut(`connection closed at byte ${have} of ${file.size}`);
        break;
      } catch (err) {
        if (!(err instanceof NetworkCut)) throw err;
        if (attempt >= maxRetries) {
          throw new WhittleError('NETWORK', `${file.name}: ${err.message} (gave up after ${attempt + 1} attempts; ${have} bytes kept for resume)`, {
            file: file.name,
            have,
          });
        }
        await writer!.flush(); // keep what arrived so the retry (or a later session) resumes from here
        opts.onRetry?.(attempt + 1, have, err.message);
        await sleep((opts.retryDelayMs ?? 200) * 2 ** attempt, signal);
      }
    }
    await writer!.close();
    writer = null;
    const digest = hasher.digest('hex');
    if (file.sha256 !== undefined && digest !== file.sha256) {
      await store.delete(name);
      throw new WhittleError('INTEGRITY', `${file.name}: sha256 ${digest} does not match the manifest's ${file.sha256}`, {
        file: file.name,
        expected: file.sha256,
        actual: digest,
      });
    }
    await store.commit(name, digest);
    return digest;
  } catch (err) {
    // Keep a partial for resume after an abort or network failure; an integrity failure already deleted it.
    await (writer as PartialWriter | null)?.close().catch(() => undefined);
    if (err instanceof WhittleError && err.code === 'INTEGRITY') await store.delete(name).catch(() => undefined);
    throw err;
  }
}
