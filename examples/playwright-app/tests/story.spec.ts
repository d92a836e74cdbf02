import { whittleTest as test, expect, seedModelCache, expectGoldenTokens, recordStats, statsFromGenerate } from 'whittle/playwright';

/** What the app leaves on `window.storyResult` (src/main.js). */
interface StoryResult {
  error?: string;
  tokens: number[];
  source: 'cache' | 'network';
  runtime: { backend: string; numThreads: number };
  stats: { decodeTokensPerSecond: number; timeToFirstTokenMs: number; generatedTokens: number };
}

/** stories260K's greedy tokens from BOS, from llama2.c's run.c (an independent implementation). */
const GOLDEN = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];

test('writes the golden story from the seeded model, with no model download', async ({ page, whittleBackend, whittleTarget, baseURL }) => {
  // The model comes from disk into the browser's store; the app then finds it cached.
  await seedModelCache(page, { dir: 'public/models/stories260K', url: '/models/stories260K/', files: ['stories260K.bin', 'tok512.bin'] });
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));

  await page.goto(`/?backend=${whittleBackend.backend}`);
  await page.waitForFunction(() => 'storyResult' in window, null, { timeout: 90_000, polling: 250 });
  const result = await page.evaluate(() => (window as unknown as { storyResult: StoryResult }).storyResult);
  expect(result.error).toBeUndefined();

  expectGoldenTokens(result.tokens, GOLDEN);
  expect(result.source).toBe('cache');
  expect(result.runtime).toMatchObject({ backend: whittleBackend.backend });
  if (whittleTarget === 'wasm-threads') expect(result.runtime.numThreads).toBeGreaterThan(1);
  // Nothing under /models/ on the wire: neither in the browser's log nor in the server's.
  expect(requests.filter((u) => u.includes('/models/'))).toEqual([]);
  expect(await (await page.request.get(`${baseURL}/__requests`)).json()).toEqual([]);

  await recordStats(statsFromGenerate(result.stats));
});
