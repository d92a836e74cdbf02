/**
 * `seedModelCache`: puts a model's files from the test runner's disk into the browser's model
 * store before the app runs, so the app loads it from the cache and makes no model requests.
 *
 * The bytes reach the page through Playwright's own routing (seed-route.ts: a random path on the
 * app's origin that no app serves, answered in chunks read from disk as the page fetches them),
 * never from the app's server: the app's server log and the app's model URLs in the browser's
 * request log stay empty. The page writes each chunk into the same store (OPFS or Cache Storage,
 * metadata in IndexedDB) the app's `Whittle.create()` opens, through the SDK's own
 * `ModelStore.importChunks` (hashed as written), so neither process holds a file whole.
 *
 * Already there: when the store holds the entry and every one of its files hashes to the local
 * file's sha256, nothing is fetched or written (`status: 'present'`): in a persistent context
 * (`whittlePersistentTest`) a model seeded once is ready at once in later tests and runs. A damaged
 * or partial entry is dropped and seeded again (`discarded` says which file and why). Each call
 * attaches what it did to the test's report (`whittle-seed`: seeded or present, bytes, seconds).
 *
 * The browser's storage quota applies: a context without a user-data dir (Playwright's default
 * `newContext`) keeps storage in memory under a small one, and the 2.48 GB Llama-3.2-1B folder
 * failed there. Running out is a WhittleError `QUOTA` whose message says to use a persistent
 * context, and leaves nothing of the seeding in the store. Other failures are WhittleErrors too:
 * `INVALID_ARGUMENT` (no such folder or file), `INTEGRITY` (bytes that do not match a manifest).
 * The entry is keyed as the app's load will look it up:
 * - `{ dir, url }`: a folder the app loads by URL (`w.text({ url, files?, sha256? })`); the key
 *   is the folder's absolute URL and `revision` (default 'seeded'; an app that names a revision
 *   must be seeded with the same one). Give `files` when the app does.
 * - `{ dir, manifest }`: a registry model (`w.text('stories260K')`): the manifest the app's
 *   manifests.json lists for it. The app still fetches manifests.json itself (an index, no model).
 *
 * @example
 * test('answers offline', async ({ page }) => {
 *   await seedModelCache(page, { dir: 'public/models/stories260K', url: '/models/stories260K/', files: ['stories260K.bin', 'tok512.bin'] });
 *   await page.goto('/');
 * });
 */
import { test, type Page, type TestInfo } from '@playwright/test';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { WhittleError } from '../../core/errors.ts';
import type { BlobBackend } from '../store/blobs.ts';
import type { ModelManifest } from '../store/manifest.ts';
import { contextKind, type ContextKind } from './context-kind.ts';
import { fileSha256 } from './file-digest.ts';
import { openOriginPage } from './origin-page.ts';
import { seedFailure } from './seed-error.ts';
import { routeSeedFiles } from './seed-route.ts';
import type { SeedFile, SeedOutcome, SeedRequest, SeedResult } from './page-helpers.ts';

/**
 * What to seed and where the app will look for it (see the top of this file).
 *
 * @example
 * const source: SeedSource = { dir: 'public/models/stories260K', url: '/models/stories260K/', files: ['stories260K.bin', 'tok512.bin'] };
 */
export interface SeedSource {
  /** The local folder holding the model's files. */
  dir: string;
  /** The folder URL the app loads, absolute or relative to the origin. */
  url?: string;
  /** The manifest of a registry model (instead of `url`). */
  manifest?: ModelManifest;
  /** Which files of `dir` (default: every file in it, or the manifest's). */
  files?: string[];
  /** The revision of a URL folder's entry (default 'seeded'). */
  revision?: string;
  /** The app's `storeName` (default 'whittle'). */
  storeName?: string;
  /** The app's `cache` (default 'auto'). */
  cache?: BlobBackend;
  /** The app's origin; default the project's `baseURL`, else the page's current origin. */
  origin?: string;
  /** Whether the app's server sends COOP/COEP (storage does not depend on it; default false). */
  isolated?: boolean;
}

/**
 * What seeding did: the store entry's key and backend, `status` ('seeded': written now;
 * 'present': found intact, nothing fetched), the model's `bytes`, the `bytesWritten`, what was
 * `discarded` (stored files that failed their check, and why), and the `seconds` it took
 * (hashing the local files included). The same object is the test's `whittle-seed` attachment,
 * with `context` ('persistent', 'default', or 'unknown' outside Chromium: context-kind.ts).
 *
 * @example
 * const { key, status, seconds } = await seedModelCache(page, source); // 'http://127.0.0.1:5173/models/stories260K/@seeded', 'present', 0.4
 */
export type SeededModel = SeedResult & { seconds: number };

function seedError(message: string): WhittleError {
  return new WhittleError('INVALID_ARGUMENT', `seedModelCache: ${message}`);
}

function originOf(page: Page, source: SeedSource): string {
  const candidates: (string | undefined)[] = [source.origin];
  try {
    candidates.push(test.info().project.use.baseURL);
  } catch {
    // Called outside a test: no project to ask.
  }
  candidates.push(page.url());
  for (const c of candidates) {
    if (c && /^https?:/.test(c)) return new URL(c).origin;
  }
  throw seedError("no origin to seed: give source.origin, set use.baseURL, or navigate the page to the app's origin first");
}

/**
 * Fills the app's model store on the page's origin from local files; see the top of this file.
 * Leaves `page` on a blank page of that origin: navigate to the app afterwards.
 *
 * @example
 * await seedModelCache(page, { dir: 'public/models/stories260K', url: '/models/stories260K/', files: ['stories260K.bin', 'tok512.bin'] });
 * await page.goto('/'); // the app's w.text({ url: '/models/stories260K/', … }) loads from the cache
 */
export async function seedModelCache(page: Page, source: SeedSource): Promise<SeededModel> {
  const started = performance.now();
  if ((source.url === undefined) === (source.manifest === undefined))
    throw seedError('give exactly one of url (a folder the app loads by URL) and manifest (a registry model)');
  const dir = resolve(source.dir);
  let names: string[];
  try {
    names = source.files ?? source.manifest?.files.map((f) => f.name) ?? readdirSync(dir).filter((n) => statSync(join(dir, n)).isFile());
  } catch (err) {
    throw seedError(`cannot read ${dir}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (names.length === 0) throw seedError(`${dir} has no files to seed`);
  const files: SeedFile[] = [];
  // sha256 by the runner: the store checks every file against it as it writes, and a stored entry
  // counts as present only if its files hash to it.
  for (const name of names) {
    try {
      const path = join(dir, name);
      files.push({ name, size: statSync(path).size, sha256: await fileSha256(path) });
    } catch (err) {
      throw seedError(`cannot read ${name} in ${dir}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const origin = originOf(page, source);
  await openOriginPage(page, origin, { isolated: source.isolated ?? false });
  const route = await routeSeedFiles(
    page,
    origin,
    files.map((f) => ({ name: f.name, path: join(dir, f.name), size: f.size })),
  );
  let outcome: SeedOutcome;
  try {
    const request: SeedRequest = {
      ...(source.url !== undefined ? { url: source.url } : {}),
      ...(source.manifest ? { manifest: source.manifest } : {}),
      revision: source.revision ?? 'seeded',
      files,
      from: route.sources,
      storeName: source.storeName ?? 'whittle',
      cache: source.cache ?? 'auto',
    };
    outcome = await page.evaluate((r) => globalThis.whittlePlaywright.seed(r), request);
  } finally {
    await route.close();
  }
  const context = await contextKind(page);
  if (!outcome.ok)
    throw seedFailure(outcome.error, {
      model: source.url ?? source.manifest!.id,
      origin,
      bytes: files.reduce((n, f) => n + f.size, 0),
      persistent: context === 'persistent',
    });
  const seeded: SeededModel = { ...outcome.result, seconds: Math.round(performance.now() - started) / 1000 };
  await attachToTest(seeded, context);
  return seeded;
}

/** The `whittle-seed` attachment of the running test (none when called outside a test). */
async function attachToTest(seeded: SeededModel, context: ContextKind): Promise<void> {
  let info: TestInfo;
  try {
    info = test.info();
  } catch {
    return;
  }
  const body = JSON.stringify({ ...seeded, context }, null, 2);
  await info.attach('whittle-seed', { body, contentType: 'application/json' });
}
