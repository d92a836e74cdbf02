/**
 * `whittle/playwright`: end-to-end testing of Whittle apps with Playwright, on GPUs and in CI.
 * Projects per backend (`projects`, `whittleProject`), a `test` that probes and reports the
 * backend the page really got and skips (or fails, when required) where it is absent
 * (`whittleTest`), the same in a persistent Chromium context for GB models and a store that
 * survives runs (`whittlePersistentTest`), `seedModelCache` for model-free e2e runs (skipped when
 * the store holds the files intact), golden checks and report stats, and the page's errors in the
 * runner's output (`logPageErrors`).
 * `@playwright/test` is an optional peer dependency: install it to use this entry.
 *
 * @example
 * // playwright.config.ts
 * import { defineConfig } from '@playwright/test';
 * import { projects } from 'whittle/playwright';
 * export default defineConfig({ projects, use: { baseURL: 'http://127.0.0.1:4173' }, webServer: { command: 'npm run preview', url: 'http://127.0.0.1:4173' } });
 *
 * // app.spec.ts
 * import { whittleTest as test, expect, seedModelCache } from 'whittle/playwright';
 * test('writes a story', async ({ page, whittleBackend }) => {
 *   await seedModelCache(page, { dir: 'public/models/stories260K', url: '/models/stories260K/' });
 *   await page.goto(`/?backend=${whittleBackend.backend}`);
 *   await expect(page.locator('#out')).toContainText('Once upon a time');
 * });
 */
export {
  projects,
  whittleProject,
  chromiumFlags,
  WHITTLE_TARGETS,
  type WhittleTarget,
  type WhittleTestOptions,
  type ProjectOptions,
} from './playwright/projects.ts';
export { whittleTest, expect, requiredBackendMessage, type WhittleFixtures } from './playwright/fixtures.ts';
export { targetAvailability, probeBackend, type BackendReport } from './playwright/backend.ts';
export { seedModelCache, type SeedSource, type SeededModel } from './playwright/seed.ts';
export { whittlePersistentTest, type PersistentContextOptions, type PersistentContext } from './playwright/persistent-context.ts';
export { expectGoldenTokens, expectLogitsClose, type LogitsComparison } from './playwright/golden.ts';
export { recordStats, statsFromGenerate, codecRealTimeFactor, type WhittleStats } from './playwright/stats.ts';
export { logPageErrors, isOnnxRuntimeNote } from './playwright/page-errors.ts';
export { openConformance, type ConformanceRunOptions } from './playwright/conformance.ts';
export type { ConformanceReport, ConformanceCheck } from './conformance/report.ts';
export { CONFORMANCE_REPORT_SCHEMA } from './conformance/report.ts';
export { validateJsonSchema } from './conformance/json-schema.ts';
