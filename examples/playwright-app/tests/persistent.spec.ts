// The persistent-context recipe: for models larger than Playwright's default context can store
// (it keeps storage in memory under a small quota), and for a model store that outlives the run.
// whittlePersistentTest runs each worker's tests in one persistent Chromium context whose profile
// lives in node_modules/.cache/whittle-playwright/<project>-<settings digest>/ (or under
// whittleUserDataDir): a model seeded once is found there, re-hashed, by every later test and run.
import { whittlePersistentTest as test, expect, seedModelCache, expectGoldenTokens } from 'whittle/playwright';

const MODEL = { dir: 'public/models/stories260K', url: '/models/stories260K/', files: ['stories260K.bin', 'tok512.bin'] };
/** stories260K's greedy tokens from BOS, from llama2.c's run.c (an independent implementation). */
const GOLDEN = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];

test('the model stays in the persistent profile: seeding again finds it present and fetches nothing', async ({
  page,
  whittleBackend,
  baseURL,
}) => {
  // 'seeded' in a fresh profile, 'present' where an earlier test or run seeded it.
  const first = await seedModelCache(page, MODEL);
  const again = await seedModelCache(page, MODEL);
  expect(again).toMatchObject({ key: first.key, status: 'present', bytesWritten: 0 });

  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`/?backend=${whittleBackend.backend}`);
  await page.waitForFunction(() => 'storyResult' in window, null, { timeout: 90_000, polling: 250 });
  const result = await page.evaluate(() => (window as unknown as { storyResult: { tokens: number[]; source: string } }).storyResult);
  expectGoldenTokens(result.tokens, GOLDEN);
  expect(result.source).toBe('cache');
  expect(requests.filter((u) => u.includes('/models/'))).toEqual([]);
  expect(await (await page.request.get(`${baseURL}/__requests`)).json()).toEqual([]);
});
