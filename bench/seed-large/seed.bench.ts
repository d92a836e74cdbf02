/**
 * See playwright.config.ts here. The persistent context seeds the folder (or finds it present);
 * the default context tries the same and reports what happened: seeded, or the QUOTA error.
 * Each prints one JSON line: status, bytes, seconds, the runner's peak RSS.
 */
import { whittlePersistentTest, whittleTest, seedModelCache } from 'whittle/playwright';
import { existsSync } from 'node:fs';

const dir = process.env.WHITTLE_SEED_LARGE_DIR ?? 'public/models/synthetic-llama-3.2-1b';
const source = { dir, url: '/models/synthetic-llama-3.2-1b/' };

function report(context: string, outcome: Record<string, unknown>): void {
  console.log(JSON.stringify({ context, dir, ...outcome, runnerPeakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }));
}

whittlePersistentTest(
  'persistent context: seeded, or present when an earlier run seeded it',
  async ({ page, whittlePersistentContext }) => {
    whittlePersistentTest.skip(!existsSync(dir), `${dir} is missing (bench/scale.ts generates it)`);
    const seeded = await seedModelCache(page, source);
    report('persistent', {
      status: seeded.status,
      bytes: seeded.bytes,
      bytesWritten: seeded.bytesWritten,
      seconds: seeded.seconds,
      profile: whittlePersistentContext.userDataDir,
    });
  },
);

whittleTest("Playwright's default context: seeded, or the QUOTA error", async ({ page }) => {
  whittleTest.skip(!existsSync(dir), `${dir} is missing (bench/scale.ts generates it)`);
  const started = performance.now();
  await seedModelCache(page, source).then(
    (seeded) => report('default', { status: seeded.status, bytes: seeded.bytes, seconds: seeded.seconds }),
    (err: Error & { code?: string }) =>
      report('default', {
        status: 'failed',
        code: err.code,
        message: err.message,
        seconds: Math.round(performance.now() - started) / 1000,
      }),
  );
});
