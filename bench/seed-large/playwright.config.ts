/**
 * A demonstration, not a CI test: `seedModelCache` with a model of a few GB (the synthetic
 * Llama-3.2-1B folder, 2.48 GB), into a persistent context and into Playwright's default one.
 *
 *   WHITTLE_SEED_LARGE_DIR=public/models/synthetic-llama-3.2-1b \
 *   WHITTLE_SEED_LARGE_PROFILES=/tmp/whittle-seed-profiles \
 *   npx playwright test -c bench/seed-large/playwright.config.ts
 *
 * Run it twice: the second run finds the model present in the profile. The origin's server only
 * answers the backend probe's request (the preset's pages and the seed route are answered by
 * Playwright). Results go to stdout as one JSON line per test (and to bench/RESULTS.md by hand).
 */
import { defineConfig } from '@playwright/test';
import { whittleProject, type PersistentContextOptions } from 'whittle/playwright';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../e2e/chromium.ts';

export default defineConfig<object, PersistentContextOptions>({
  testDir: '.',
  testMatch: '*.bench.ts',
  workers: 1,
  timeout: 1_800_000,
  outputDir: 'test-results',
  reporter: [['list']],
  use: {
    baseURL: 'http://127.0.0.1:5391',
    headless: true,
    whittleUserDataDir: process.env.WHITTLE_SEED_LARGE_PROFILES ?? '/tmp/whittle-seed-profiles',
  },
  projects: [whittleProject('wasm', { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS })],
  webServer: {
    command: `node -e "require('node:http').createServer((q, s) => s.end('ok')).listen(5391, '127.0.0.1')"`,
    url: 'http://127.0.0.1:5391',
    reuseExistingServer: true,
  },
});
