/**
 * `whittlePersistentTest`: `whittleTest` whose tests run in a persistent Chromium context (a
 * user-data dir on disk, `launchPersistentContext`) instead of Playwright's default one.
 *
 * Why: Playwright's default context has no user-data dir, so Chromium keeps OPFS, IndexedDB and
 * Cache Storage in memory under a small quota; a model of a few GB does not fit (seeding it is a
 * QUOTA error), and nothing survives the test. A persistent context stores on disk under the
 * profile's quota, and what `seedModelCache` wrote stays for the next test and the next run: a
 * model seeded once is found intact (`status: 'present'`, its files re-hashed, nothing fetched).
 *
 * - One context per worker, launched on first use with the project's browser settings (browser,
 *   channel, headless, `launchOptions`, so every `projects` preset works unchanged) and its `use`
 *   context options (`baseURL`, `viewport`, `contextOptions`, …, read from the project's config:
 *   a `test.use` of those in a spec file does not reach a context the worker already launched).
 *   Each test gets a new `page` in it, closed after the test; `context` is the shared context.
 *   Everything else of `whittleTest` (the backend report, skip or fail, `seedModelCache`, golden
 *   asserts, stats) works as before.
 * - The user-data dir: `whittleUserDataDir` (a worker option, for `use` or a file's `test.use`) is
 *   the root, default `node_modules/.cache/whittle-playwright` beside the Playwright config; under
 *   it each project has a folder named by a digest of its browser settings, and each parallel
 *   worker one inside that (persistent-profile.ts): never shared between projects with different
 *   flags, never opened by two browsers at once. Delete the root to start from empty profiles.
 * - Tests of a worker share the context's storage and cookies (that is the point): a test that
 *   needs an empty store clears it itself.
 *
 * @example
 * // tests/big-model.spec.ts
 * import { whittlePersistentTest as test, seedModelCache } from 'whittle/playwright';
 * test.use({ whittleUserDataDir: '.profiles' }); // optional
 * test('answers with the 1B model', async ({ page }) => {
 *   await seedModelCache(page, { dir: 'models/llama-3.2-1b', url: '/models/llama-3.2-1b/' }); // seconds once seeded
 *   await page.goto('/');
 * });
 */
import type { BrowserContext } from '@playwright/test';
import { dirname, resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import { WhittleError } from '../../core/errors.ts';
import { whittleTest } from './fixtures.ts';
import { defaultProfileRoot, persistentContextOptions, profileDir } from './persistent-profile.ts';

/**
 * The worker option of `whittlePersistentTest`.
 *
 * @example
 * whittlePersistentTest.use({ whittleUserDataDir: '/var/cache/my-app-profiles' } satisfies Partial<PersistentContextOptions>);
 */
export interface PersistentContextOptions {
  /** The root of the persistent profiles (see the top of this file); default beside the config in node_modules/.cache. */
  whittleUserDataDir: string | undefined;
}

/**
 * The worker's persistent context and the user-data dir it runs on.
 *
 * @example
 * whittlePersistentTest('where', async ({ whittlePersistentContext }) => console.log(whittlePersistentContext.userDataDir));
 */
export interface PersistentContext {
  context: BrowserContext;
  userDataDir: string;
}

/**
 * `whittleTest` in a persistent context, one per worker and project (see the top of this file).
 *
 * @example
 * import { whittlePersistentTest as test, expect, seedModelCache } from 'whittle/playwright';
 * test('seeded once, present after', async ({ page }) => {
 *   const { status } = await seedModelCache(page, { dir: 'public/models/stories260K', url: '/models/stories260K/' });
 *   expect(['seeded', 'present']).toContain(status);
 * });
 */
export const whittlePersistentTest = whittleTest.extend<object, PersistentContextOptions & { whittlePersistentContext: PersistentContext }>(
  {
    whittleUserDataDir: [undefined, { option: true, scope: 'worker' }],
    whittlePersistentContext: [
      async ({ playwright, browserName, channel, headless, launchOptions, whittleUserDataDir }, use, workerInfo) => {
        const configDir = workerInfo.config.configFile ? dirname(workerInfo.config.configFile) : process.cwd();
        const root = resolve(configDir, whittleUserDataDir ?? defaultProfileRoot(configDir));
        const userDataDir = profileDir(
          root,
          { projectName: workerInfo.project.name, browserName, channel, headless, launchOptions },
          workerInfo.parallelIndex,
        );
        mkdirSync(userDataDir, { recursive: true });
        let context: BrowserContext;
        try {
          context = await playwright[browserName].launchPersistentContext(userDataDir, {
            ...launchOptions,
            headless,
            ...(channel ? { channel } : {}),
            ...persistentContextOptions(workerInfo.project.use as Record<string, unknown>),
          });
        } catch (err) {
          // Chromium refuses a user-data dir another browser has open (another run on the same root).
          throw new WhittleError(
            'STORAGE',
            `whittle/playwright: cannot launch a persistent context on ${userDataDir} (is another run using it?): ${err instanceof Error ? err.message : String(err)}`,
            { userDataDir },
            { cause: err },
          );
        }
        await use({ context, userDataDir });
        await context.close();
      },
      { scope: 'worker' },
    ],
    context: async ({ whittlePersistentContext, actionTimeout, navigationTimeout }, use) => {
      const { context } = whittlePersistentContext;
      // As Playwright's own context fixture does (0, its default, means no limit).
      context.setDefaultTimeout(actionTimeout || 0);
      context.setDefaultNavigationTimeout(navigationTimeout || 0);
      await use(context);
    },
    page: async ({ context }, use) => {
      const page = await context.newPage();
      await use(page);
      await page.close();
    },
  },
);
