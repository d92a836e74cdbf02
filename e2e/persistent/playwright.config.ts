/**
 * A nested Playwright run for e2e/persistent-context.spec.ts: `whittlePersistentTest` in one
 * project, against the outer run's dev server. The outer spec runs it twice on the same profile
 * root (WHITTLE_PERSISTENT_ROOT) and reads each JSON report. (One profile per project is checked
 * from the packed tarball, e2e/consumers/example.spec.ts, and its naming in persistent-profile.test.ts.)
 */
import { defineConfig } from '@playwright/test';
import { whittleProject, type PersistentContextOptions } from 'whittle/playwright';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../chromium.ts';

const chromium = { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, require: true };

export default defineConfig<object, PersistentContextOptions>({
  testDir: '.',
  testMatch: '*.nested.ts',
  workers: 1,
  timeout: 60_000,
  // Playwright empties its output folder at the start of a run, by default the package's
  // test-results/, which holds the outer run's output (this run's profiles and reports among it).
  outputDir: 'test-results',
  use: { baseURL: process.env.WHITTLE_PERSISTENT_BASE_URL, headless: true, whittleUserDataDir: process.env.WHITTLE_PERSISTENT_ROOT },
  projects: [whittleProject('wasm-threads', { ...chromium, name: 'threads' })],
});
