/**
 * The browser half of `whittle/playwright`: a self-contained script (dist/playwright-page.js,
 * built by scripts/build-lib.ts) that the preset injects into a blank page on the app's origin.
 * It probes the device with the SDK's own probe and fills the SDK's own model store through its
 * public `ModelStore.import`, so a seeded model sits exactly where the app will look for it.
 *
 * It sets `globalThis.whittlePlaywright`; the Node half (seed.ts, backend.ts) calls it with
 * `page.evaluate`. Seeding first checks the store: an entry whose every file hashes to its
 * sha256 is left as it is (`present`, nothing fetched). Otherwise the model's bytes are fetched
 * in chunks the test runner answers (seed-route.ts) and written into the store chunk by chunk
 * (`ModelStore.importChunks`), never passed as evaluate arguments.
 *
 * @example
 * await page.addScriptTag({ content: pageHelpersSource() });
 * const caps = await page.evaluate(() => whittlePlaywright.probe());
 */
import { probeCapabilities, softwareAdapterReason, type Capabilities } from '../probe.ts';
import { ModelStore } from '../store/store.ts';
import { folderLocation } from '../store/url-folder.ts';
import type { BlobBackend } from '../store/blobs.ts';
import { entryKey, type ModelManifest } from '../store/manifest.ts';
import { WhittleError, toWire, type WireError } from '../../core/errors.ts';

/** One file's place in a seeded model: name, size and sha256 (computed by the test runner). */
export interface SeedFile {
  name: string;
  size: number;
  sha256: string;
}

/** Where a seeded file's bytes are: the URLs of its chunks, in order (seed-route.ts). */
export interface SeedSourceFile {
  chunks: string[];
}

/** What the Node half asks the page to import. */
export interface SeedRequest {
  /** The folder URL the app loads (`w.text({ url })`), resolved against the page; or a manifest's id. */
  url?: string;
  manifest?: ModelManifest;
  revision: string;
  files: SeedFile[];
  /** Where each file's bytes are (answered by the test runner: seed-route.ts). */
  from: Record<string, SeedSourceFile>;
  storeName: string;
  cache: BlobBackend;
}

/**
 * What the page reports back: the entry, where it is, and whether this call wrote it (`seeded`)
 * or found it intact (`present`: every file's stored bytes hashed to its sha256, nothing fetched).
 */
export interface SeedResult {
  key: string;
  id: string;
  backend: 'opfs' | 'cache';
  /** The model's bytes (every file). */
  bytes: number;
  status: 'seeded' | 'present';
  /** Bytes fetched from the runner and written (0 when present; less than `bytes` when intact files were reused). */
  bytesWritten: number;
  /** Stored files found damaged or missing before seeding, and why (what made a stored entry not count). */
  discarded: { file: string; reason: string }[];
}

/** The page's answer: a result, or the WhittleError it met, in a form `page.evaluate` can carry. */
export type SeedOutcome = { ok: true; result: SeedResult } | { ok: false; error: WireError };

const helpers = {
  probe: (): Promise<Capabilities> => probeCapabilities(),
  softwareAdapterReason,
  async seed(request: SeedRequest): Promise<SeedOutcome> {
    try {
      return { ok: true, result: await seed(request) };
    } catch (err) {
      // page.evaluate would flatten a rejection to a message; the Node half rebuilds the WhittleError.
      return { ok: false, error: toWire(err) };
    }
  },
};

async function seed(request: SeedRequest): Promise<SeedResult> {
  const manifest = seedManifest(request);
  for (const f of request.files) if (request.from[f.name] === undefined) throw new WhittleError('INVALID_ARGUMENT', `seedModelCache: no source for ${f.name}`);
  const bytes = manifest.files.reduce((s, f) => s + f.size, 0);
  // verifyOnLoad: "already there" means every stored file hashes to its sha256, not just that an
  // entry of that name exists; a damaged or partial entry is dropped (reported) and seeded again.
  const store = await ModelStore.open({ backend: request.cache, name: request.storeName, verifyOnLoad: true });
  const discarded: SeedResult['discarded'] = [];
  const cached = await store.loadCached(manifest, {
    onProgress: (e) => {
      if (e.type === 'discarded') discarded.push({ file: e.file, reason: e.reason });
    },
  });
  if (cached) return { key: entryKey(manifest), id: manifest.id, backend: store.backend, bytes, status: 'present', bytesWritten: 0, discarded };
  let bytesWritten = 0;
  // Chunk by chunk into the store (hashed as written): a multi-GB model is never held whole,
  // as Blobs in a Playwright context without a user-data dir would be (in memory).
  async function* chunksOf(name: string): AsyncIterable<Uint8Array> {
    for (const url of request.from[name]!.chunks) {
      const response = await fetch(url, { cache: 'no-store' });
      if (!response.ok) throw new WhittleError('NETWORK', `seedModelCache: ${name} answered ${response.status}`);
      const chunk = new Uint8Array(await response.arrayBuffer());
      bytesWritten += chunk.byteLength;
      yield chunk;
    }
  }
  const key = await store.importChunks(manifest, chunksOf);
  return { key, id: manifest.id, backend: store.backend, bytes, status: 'seeded', bytesWritten, discarded };
}

/** The manifest the app's own load will match: a URL folder's id is its absolute folder URL. */
function seedManifest(request: SeedRequest): ModelManifest {
  if (request.manifest) return request.manifest;
  if (request.url === undefined)
    throw new WhittleError('INVALID_ARGUMENT', 'seedModelCache: give the folder url the app loads, or a manifest');
  const { id, fileUrl } = folderLocation(request.url, location.href);
  return { id, revision: request.revision, files: request.files.map((f) => ({ ...f, url: fileUrl(f.name) })) };
}

export type PageHelpers = typeof helpers;
declare global {
  var whittlePlaywright: PageHelpers;
}
globalThis.whittlePlaywright = helpers;
