/**
 * The nested run's tests (see playwright.config.ts here), in order in one worker, so in one
 * persistent context: `seeds or finds` seeds stories260K, loads it in the app with golden tokens
 * and attaches what went over the wire (`wire`: the seed route's requests, the model requests in
 * the browser's and the server's logs) and where the profile is; `damaged` then flips a byte of
 * the stored model file, as a disk error would, and seeds again.
 */
import type { Page } from '@playwright/test';
import { whittlePersistentTest as test, expect, seedModelCache, expectGoldenTokens } from 'whittle/playwright';
import { damageStoredFile } from '../opfs.ts';
import { modelFile, serverLog, STORIES260K_GOLDEN as GOLDEN } from '../fixtures.ts';

const FILES = ['stories260K.bin', 'tok512.bin'];
const FOLDER = '/__e2e/hf/-/stories260K/';

test.describe.configure({ mode: 'serial' });

/** The app: the harness page loads the folder by URL and generates 20 greedy tokens from BOS. */
async function runApp(page: Page, backend: 'webgpu' | 'wasm'): Promise<{ tokens: number[]; source: string }> {
  await page.goto('/e2e/pages/harness.html');
  await expect(page.locator('#status')).toHaveText('ready');
  return page.evaluate(
    async ({ folder, files, backend }) => {
      const lm = await (await window.harness.whittle.Whittle.create({ backend })).text({ url: folder, files });
      const done = await lm.complete([1], { maxTokens: 20, temperature: 0 });
      const result = { tokens: done.tokens, source: lm.source };
      lm.dispose();
      return result;
    },
    { folder: FOLDER, files: FILES, backend },
  );
}

test('seeds or finds: stories260K from the persistent profile, golden, no model request', async ({
  page,
  whittleBackend,
  whittlePersistentContext,
}) => {
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await serverLog(page, true);
  await seedModelCache(page, { dir: 'public/models/stories260K', url: FOLDER, files: FILES });
  const run = await runApp(page, whittleBackend.backend);
  expectGoldenTokens(run.tokens, GOLDEN);
  expect(run.source).toBe('cache');
  const wire = {
    seedRequests: requests.filter((u) => u.includes('/__whittle_playwright__/seed/')).length,
    browserModelRequests: requests.filter((u) => u.includes('/stories260K/')).length,
    serverModelRequests: (await serverLog(page)).filter((r) => r.url.includes('/stories260K/')).length,
    userDataDir: whittlePersistentContext.userDataDir,
  };
  await test.info().attach('wire', { body: JSON.stringify(wire), contentType: 'application/json' });
});

test('damaged: a flipped byte in the stored model file is found and seeded again, golden after', async ({ page, whittleBackend }) => {
  await page.goto('/e2e/pages/harness.html');
  await damageStoredFile(page, modelFile('stories260K', 'stories260K.bin').sha256, 'flip');
  await seedModelCache(page, { dir: 'public/models/stories260K', url: FOLDER, files: FILES });
  const run = await runApp(page, whittleBackend.backend);
  expectGoldenTokens(run.tokens, GOLDEN);
  expect(run.source).toBe('cache');
});
