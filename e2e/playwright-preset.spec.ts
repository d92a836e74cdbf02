/**
 * `whittle/playwright` on this repository's own app pages (dogfood): `whittleTest` probes the
 * backend and attaches it; `seedModelCache` fills the SDK's store from public/models so that a
 * URL load of stories260K makes no model request at all (the fixture server's log and the
 * browser's request log both stay empty), while the same load unseeded downloads (the control
 * that shows both logs see model requests when there are some). Golden: run.c's tokens.
 *
 * The skip-or-fail behaviour for an absent backend is proven in e2e/preset/ (a nested run whose
 * JSON report is checked: a skipped test cannot check itself).
 */
import type { Page } from '@playwright/test';
import { whittleTest as test, expect, seedModelCache, expectGoldenTokens, recordStats, statsFromGenerate } from 'whittle/playwright';
import { readFileSync } from 'node:fs';
import type { ModelManifest } from 'whittle';
import { serverLog, modelFile, STORIES260K_GOLDEN as GOLDEN } from './fixtures.ts';

const FILES = ['stories260K.bin', 'tok512.bin'];
const SHA256 = Object.fromEntries(FILES.map((n) => [n, modelFile('stories260K', n).sha256]));
const FOLDER = '/__e2e/hf/-/stories260K/';

interface Run {
  tokens: number[];
  source: string;
  stats: { decodeTokensPerSecond: number; timeToFirstTokenMs: number; generatedTokens: number };
  backend: string;
}

/** The app: loads the folder by URL (pinned sha256s) and generates 20 greedy tokens from BOS. */
async function runApp(page: Page, backend: 'webgpu' | 'wasm'): Promise<Run> {
  await page.goto('/e2e/pages/harness.html');
  await expect(page.locator('#status')).toHaveText('ready');
  return page.evaluate(
    async ({ folder, files, sha256, backend }) => {
      const w = await window.harness.whittle.Whittle.create({ backend });
      const lm = await w.text({ url: folder, files, sha256 });
      let run: Omit<Run, 'source' | 'backend'> | null = null;
      for await (const ev of lm.generate([1], { maxTokens: 20, temperature: 0 }))
        if (ev.type === 'done') run = { tokens: ev.tokens, stats: ev.stats };
      const result = { ...run!, source: lm.source, backend: lm.info.runtime.backend };
      lm.dispose();
      return result;
    },
    { folder: FOLDER, files: FILES, sha256: SHA256, backend },
  );
}

function modelRequests(urls: string[]): string[] {
  return urls.filter((u) => u.includes('/stories260K/'));
}

test('whittleBackend reports the backend the page really got', async ({ whittleBackend, whittleTarget }) => {
  expect(whittleBackend.target).toBe(whittleTarget);
  expect(whittleBackend.available).toBe(true);
  // This machine's Chromium: WebGPU only through SwiftShader, which the probe must call software.
  expect(whittleBackend.adapter?.architecture).toBe('swiftshader');
  expect(whittleBackend.adapter?.software).toBe(true);
  expect(whittleBackend.adapter?.features.length).toBeGreaterThan(0);
  const attached = test.info().attachments.find((a) => a.name === 'whittle-backend');
  expect(JSON.parse(attached!.body!.toString())).toMatchObject({ target: whittleTarget, available: true });
});

test('seedModelCache: the app loads the seeded model with zero model requests on the wire', async ({ page, whittleBackend }) => {
  // WebGPU (SwiftShader) takes ~20 s here: examples/playwright-app runs this on webgpu-swiftshader from the tarball.
  test.skip(whittleBackend.backend === 'webgpu', 'covered on webgpu-swiftshader by e2e/consumers/example.spec.ts');
  const browserRequests: string[] = [];
  page.on('request', (r) => browserRequests.push(r.url()));
  await serverLog(page, true);
  const seeded = await seedModelCache(page, { dir: 'public/models/stories260K', url: FOLDER, files: FILES });
  expect(seeded.key).toBe(`${new URL(page.url()).origin}${FOLDER}@seeded`);
  expect(seeded.bytes).toBe(FILES.reduce((s, n) => s + modelFile('stories260K', n).size, 0));

  const run = await runApp(page, whittleBackend.backend);
  expectGoldenTokens(run.tokens, GOLDEN);
  expect(run.source).toBe('cache');
  expect(run.backend).toBe(whittleBackend.backend);
  expect(modelRequests((await serverLog(page)).map((r) => r.url))).toEqual([]);
  expect(modelRequests(browserRequests)).toEqual([]);
  await recordStats(statsFromGenerate(run.stats));
});

test('seedModelCache with a registry manifest: w.text(id) loads from the cache; only manifests.json is fetched', async ({
  page,
  whittleBackend,
}) => {
  test.skip(whittleBackend.backend === 'webgpu', 'the store does not depend on the backend');
  const manifests = JSON.parse(readFileSync('public/models/manifests.json', 'utf8')) as { models: ModelManifest[] };
  const manifest = manifests.models.find((m) => m.id === 'stories260K')!;
  const seeded = await seedModelCache(page, { dir: 'public/models/stories260K', manifest });
  expect(seeded.key).toBe(`stories260K@${manifest.revision}`);
  const browserRequests: string[] = [];
  page.on('request', (r) => browserRequests.push(new URL(r.url()).pathname));
  await page.goto('/e2e/pages/harness.html');
  await expect(page.locator('#status')).toHaveText('ready');
  const run = await page.evaluate(async () => {
    const lm = await (await window.harness.whittle.Whittle.create({ backend: 'wasm' })).text('stories260K');
    const done = await lm.complete([1], { maxTokens: 20, temperature: 0 });
    const result = { tokens: done.tokens, source: lm.source };
    lm.dispose();
    return result;
  });
  expectGoldenTokens(run.tokens, GOLDEN);
  expect(run.source).toBe('cache');
  // (Vite's dev server also serves the source tree's models/*.ts modules under /models/: those are code.)
  expect(browserRequests.filter((p) => p.startsWith('/models/stories260K/'))).toEqual([]);
  expect(browserRequests).toContain('/models/manifests.json');
});

test('control: unseeded, the same load downloads the files, and both logs see it', async ({ page, whittleBackend }) => {
  test.skip(whittleBackend.backend === 'webgpu', 'the control needs no second backend');
  const browserRequests: string[] = [];
  page.on('request', (r) => browserRequests.push(r.url()));
  await serverLog(page, true);
  const run = await runApp(page, whittleBackend.backend);
  expectGoldenTokens(run.tokens, GOLDEN);
  expect(run.source).toBe('network');
  expect(modelRequests((await serverLog(page)).map((r) => r.url)).some((u) => u.endsWith('stories260K.bin'))).toBe(true);
  expect(modelRequests(browserRequests).some((u) => u.endsWith('stories260K.bin'))).toBe(true);
});

test('seedModelCache refuses bytes that do not match the manifest, and writes nothing', async ({ page }) => {
  const manifest = {
    id: 'stories260K',
    revision: 'x',
    files: FILES.map((name) => ({
      name,
      url: `/models/stories260K/${name}`,
      size: modelFile('stories260K', name).size,
      sha256: SHA256[name]!,
    })),
  };
  manifest.files[1]!.sha256 = SHA256['stories260K.bin']!; // tok512.bin claimed to have the model's digest
  await expect(seedModelCache(page, { dir: 'public/models/stories260K', manifest })).rejects.toThrow(/INTEGRITY|tok512\.bin has sha256/);
  await page.goto('/e2e/pages/harness.html');
  const listed = await page.evaluate(
    async () => (await (await window.harness.whittle.Whittle.create({ backend: 'wasm' })).store.list()).length,
  );
  expect(listed).toBe(0);
});

test.describe('whittleProbe', () => {
  test.describe.configure({ mode: 'serial' }); // one worker, in order: the second test sees the first's probe
  test("'once' (default): probed before this worker's first test, the report reused after", async ({ page, whittleBackend }) => {
    expect(whittleBackend.available).toBe(true);
    expect(['about:blank', expect.stringContaining('/__whittle_playwright__/')]).toContainEqual(page.url());
  });
  test("'once': a later test gets the same report without a probe (its page starts blank)", async ({ page, whittleBackend, whittleTarget }) => {
    expect(page.url()).toBe('about:blank');
    expect(whittleBackend).toMatchObject({ target: whittleTarget, available: true });
    expect(test.info().attachments.map((a) => a.name)).toContain('whittle-backend');
  });
  test.describe("'each-test'", () => {
    test.use({ whittleProbe: 'each-test' });
    test('probes again before this test (its page is on the probe page of the origin)', async ({ page, whittleBackend, baseURL }) => {
      expect(page.url()).toBe(new URL('/__whittle_playwright__/blank.html', baseURL).href);
      expect(whittleBackend.available).toBe(true);
    });
  });
});

