/**
 * The browser half of `whittle/playwright`: a self-contained script (dist/playwright-page.js,
 * built by scripts/build-lib.ts) that the preset injects into a blank page on the app's origin.
 * It probes the device with the SDK's own probe and fills the SDK's own model store through its
 * public `ModelStore.import`, so a seeded model sits exactly where the app will look for it.
 *
 * It sets `globalThis.whittlePlaywright`; the Node half (seed.ts, backend.ts) calls it with
 * `page.evaluate`. A seeded model's bytes are fetched in chunks the test runner answers
 * (seed-route.ts) and written into the store chunk by chunk (`ModelStore.importChunks`), never
 * passed as evaluate arguments.
 *
 * @example
 * await page.addScriptTag({ content: pageHelpersSource() });
 * const caps = await page.evaluate(() => whittlePlaywright.probe());
 */
import { probeCapabilities, softwareAdapterReason, type Capabilities } from '../probe.ts';
import { ModelStore } from '../store/store.ts';
import { folderLocation } from '../store/url-folder.ts';
import type { BlobBackend } from '../store/blobs.ts';
import type { ModelManifest } from '../store/manifest.ts';
import { WhittleError } from '../../core/errors.ts';

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

/** What the page reports back: the entry it wrote, and where. */
export interface SeedResult {
  key: string;
  id: string;
  backend: 'opfs' | 'cache';
  bytes: number;
}

const helpers = {
  probe: (): Promise<Capabilities> => probeCapabilities(),
  softwareAdapterReason,
  async seed(request: SeedRequest): Promise<SeedResult> {
    const manifest = seedManifest(request);
    for (const f of request.files) if (request.from[f.name] === undefined) throw new WhittleError('INVALID_ARGUMENT', `seedModelCache: no source for ${f.name}`);
    // Chunk by chunk into the store (hashed as written): a multi-GB model is never held whole,
    // as Blobs in a Playwright context without a user-data dir would be (in memory).
    async function* chunksOf(name: string): AsyncIterable<Uint8Array> {
      for (const url of request.from[name]!.chunks) {
        const response = await fetch(url, { cache: 'no-store' });
        if (!response.ok) throw new WhittleError('NETWORK', `seedModelCache: ${name} answered ${response.status}`);
        yield new Uint8Array(await response.arrayBuffer());
      }
    }
    const store = await ModelStore.open({ backend: request.cache, name: request.storeName });
    const key = await store.importChunks(manifest, chunksOf);
    return { key, id: manifest.id, backend: store.backend, bytes: manifest.files.reduce((s, f) => s + f.size, 0) };
  },
};

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
