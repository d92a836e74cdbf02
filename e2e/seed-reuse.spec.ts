/**
 * `seedModelCache` against the store it fills, in Playwright's default context (the persistent
 * one, across runs, is e2e/persistent-context.spec.ts): a second seeding of an intact entry
 * fetches nothing and says `present`; stored bytes damaged afterwards (a flipped byte at the same
 * size, a file cut short) make it seed again; and a storage quota that runs out mid-seeding is a
 * QUOTA WhittleError that points at the persistent context and leaves nothing in the store. The
 * files are the real stories260K; the quota is Chromium's own (Storage.overrideQuotaForOrigin,
 * which OPFS writes are checked against), and the store is the SDK's, nothing mocked.
 */
import type { Page } from '@playwright/test';
import { seedModelCache, expectGoldenTokens } from 'whittle/playwright';
import { test, expect, modelFile, STORIES260K_GOLDEN as GOLDEN } from './fixtures.ts';
import { damageStoredFile, opfsNames } from './opfs.ts';

const DIR = 'public/models/stories260K';
const FILES = ['stories260K.bin', 'tok512.bin'];
const FOLDER = '/__e2e/hf/-/stories260K/';
const BYTES = FILES.reduce((n, f) => n + modelFile('stories260K', f).size, 0);

test.beforeEach(({ whittleBackend }) => {
  test.skip(whittleBackend.backend === 'webgpu', 'the store does not depend on the backend');
});

/** The seed route's requests (runner -> page bytes) from now on. */
function seedRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (r) => {
    if (r.url().includes('/__whittle_playwright__/seed/')) urls.push(r.url());
  });
  return urls;
}

/** Whether the store holds one entry and its every file hashes to the sha256 it was seeded with (the SDK's own check). */
async function storeIsIntact(page: Page): Promise<{ intact: boolean; entries: number }> {
  await page.goto('/e2e/pages/harness.html');
  await expect(page.locator('#status')).toHaveText('ready');
  return page.evaluate(async (folder) => {
    const store = await window.harness.whittle.ModelStore.open({ verifyOnLoad: true });
    const entries = await store.list();
    if (entries.length !== 1) return { intact: false, entries: entries.length };
    const { id, revision, files } = entries[0]!;
    const base = new URL(folder, location.href);
    const manifest = { id, revision, files: files.map((f) => ({ ...f, url: new URL(f.name, base).href })) };
    return { intact: (await store.loadCached(manifest)) !== null, entries: 1 };
  }, FOLDER);
}

test('an intact seeded entry is present on the next seeding: its files re-hashed, nothing fetched, reported in whittle-seed', async ({
  page,
}) => {
  const first = await seedModelCache(page, { dir: DIR, url: FOLDER, files: FILES });
  expect(first).toMatchObject({ status: 'seeded', bytes: BYTES, bytesWritten: BYTES, discarded: [] });
  const requests = seedRequests(page);
  const again = await seedModelCache(page, { dir: DIR, url: FOLDER, files: FILES });
  expect(again).toMatchObject({ key: first.key, status: 'present', bytes: BYTES, bytesWritten: 0, discarded: [] });
  expect(requests).toEqual([]);
  const reports = test
    .info()
    .attachments.filter((a) => a.name === 'whittle-seed')
    .map((a) => JSON.parse(a.body!.toString()) as { status: string; bytes: number; seconds: number; context: string });
  expect(reports.map((r) => [r.status, r.bytes, r.context])).toEqual([
    ['seeded', BYTES, 'default'],
    ['present', BYTES, 'default'],
  ]);
  for (const r of reports) expect(r.seconds).toBeGreaterThan(0);
});

test('a stored file damaged in place or cut short is not present: the entry is dropped and seeded again, and loads golden', async ({
  page,
}) => {
  const model = modelFile('stories260K', 'stories260K.bin');
  const tokenizer = modelFile('stories260K', 'tok512.bin');
  await seedModelCache(page, { dir: DIR, url: FOLDER, files: FILES });

  // Same size, one byte flipped: only hashing tells.
  expect(await damageStoredFile(page, model.sha256, 'flip')).toBe(model.size);
  const afterFlip = await seedModelCache(page, { dir: DIR, url: FOLDER, files: FILES });
  expect(afterFlip.status).toBe('seeded');
  expect(afterFlip.discarded).toEqual([
    { file: 'stories260K.bin', reason: expect.stringMatching(/^sha256 [0-9a-f]{64} != [0-9a-f]{64}$/) },
  ]);
  expect(afterFlip.bytesWritten).toBe(model.size); // the intact tokenizer is kept

  // Cut short: a partial file.
  await damageStoredFile(page, tokenizer.sha256, 'truncate');
  const afterCut = await seedModelCache(page, { dir: DIR, url: FOLDER, files: FILES });
  expect(afterCut).toMatchObject({
    status: 'seeded',
    bytesWritten: tokenizer.size,
    discarded: [{ file: 'tok512.bin', reason: `size ${Math.floor(tokenizer.size / 2)} != ${tokenizer.size}` }],
  });

  // Both damaged: the entry is dropped at the first, and the second, left without an entry, must
  // still be hashed before it is reused (it is not: it is written again).
  await damageStoredFile(page, model.sha256, 'flip');
  await damageStoredFile(page, tokenizer.sha256, 'flip');
  const afterBoth = await seedModelCache(page, { dir: DIR, url: FOLDER, files: FILES });
  expect(afterBoth).toMatchObject({ status: 'seeded', bytesWritten: BYTES });
  expect(await storeIsIntact(page)).toEqual({ intact: true, entries: 1 });

  const tokens = await page.evaluate(async (folder) => {
    const lm = await (
      await window.harness.whittle.Whittle.create({ backend: 'wasm' })
    ).text({ url: folder, files: ['stories260K.bin', 'tok512.bin'] });
    const done = await lm.complete([1], { maxTokens: 20, temperature: 0 });
    const source = lm.source;
    lm.dispose();
    return { tokens: done.tokens, source };
  }, FOLDER);
  expect(tokens.source).toBe('cache');
  expectGoldenTokens(tokens.tokens, GOLDEN);
});

test("seeding past the origin's storage quota is a QUOTA WhittleError that names the persistent context, and leaves nothing in the store", async ({
  page,
  baseURL,
}) => {
  const origin = new URL(baseURL!).origin;
  await page.goto('/e2e/pages/harness.html');
  // Chromium's quota for this origin: 64 KiB, enough for the tokenizer (6 KB, written first and
  // committed) but not the 1 MB model file, so the quota runs out in the middle of the seeding.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 64 * 1024 });
  const failure = await seedModelCache(page, { dir: DIR, url: FOLDER, files: ['tok512.bin', 'stories260K.bin'] }).then(
    () => null,
    (err: unknown) => err as Error & { code?: string; details?: Record<string, unknown> },
  );
  expect(failure?.name).toBe('WhittleError');
  expect(failure?.code).toBe('QUOTA');
  expect(failure?.message).toMatch(
    /^seedModelCache: \/__e2e\/hf\/-\/stories260K\/ \(\d+ bytes\) on http:\/\/127\.0\.0\.1:\d+: the browser's storage quota ran out/,
  );
  expect(failure?.message).toContain(
    "run the test in a persistent context (import { whittlePersistentTest as test } from 'whittle/playwright')",
  );
  expect(failure?.message).toContain('nothing of this seeding was kept');
  // Nothing half-written: no blob, no partial segment, no entry.
  expect(await opfsNames(page)).toEqual([]);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin }); // back to the browser's own quota
  expect(await storeIsIntact(page)).toEqual({ intact: false, entries: 0 });
});
