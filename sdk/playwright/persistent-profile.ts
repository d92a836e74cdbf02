/**
 * Where a persistent Chromium context's user-data dir lives, and the context options it is
 * launched with: the pure half of `whittlePersistentTest` (persistent-context.ts).
 *
 * A profile is never shared between projects whose browsers differ: its folder is named after the
 * project and a digest of everything that shapes the browser (browser, channel, executable,
 * headless, flags), so `wasm` and `webgpu-swiftshader` (other flags) or a changed flag get a fresh
 * profile instead of one written under other settings. Parallel workers of one project get one
 * folder each (Chromium locks a user-data dir to one browser), by `parallelIndex`, which a
 * restarted worker keeps, so it finds its predecessor's seeded store.
 *
 * @example
 * profileDir('/app/node_modules/.cache/whittle-playwright', { projectName: 'wasm', browserName: 'chromium', headless: true, launchOptions: { args: [] } }, 0);
 * // '/app/node_modules/.cache/whittle-playwright/wasm-3f0c9a1b2e/worker-0'
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { BrowserContextOptions, LaunchOptions } from '@playwright/test';

/** What makes two browsers' profiles incompatible (see the top of this file). */
export interface ProfileKey {
  projectName: string;
  browserName: string;
  channel?: string | undefined;
  headless: boolean;
  launchOptions: Pick<LaunchOptions, 'executablePath' | 'args' | 'ignoreDefaultArgs' | 'chromiumSandbox'>;
}

/**
 * The default root of the profiles: the conventional cache folder of the project whose
 * Playwright config runs (`node_modules/.cache`, ignored by git and by Playwright's own
 * clean-up of its output folder, which would otherwise empty the profiles at every run).
 */
export function defaultProfileRoot(configDir: string): string {
  return join(configDir, 'node_modules', '.cache', 'whittle-playwright');
}

/** The user-data dir of one worker of one project under `root`. */
export function profileDir(root: string, key: ProfileKey, parallelIndex: number): string {
  const { executablePath, args, ignoreDefaultArgs, chromiumSandbox } = key.launchOptions;
  const shape = JSON.stringify([
    key.browserName,
    key.channel ?? null,
    key.headless,
    executablePath ?? null,
    args ?? [],
    ignoreDefaultArgs ?? null,
    chromiumSandbox ?? null,
  ]);
  const digest = createHash('sha256').update(shape).digest('hex').slice(0, 10);
  // A project name may hold anything; the folder name keeps letters, digits and ._- only.
  const name = key.projectName.replace(/[^A-Za-z0-9._-]+/g, '_') || 'project';
  return join(root, `${name}-${digest}`, `worker-${parallelIndex}`);
}

/**
 * The `use` settings of a project that are context options, as `launchPersistentContext` takes
 * them (Playwright's own `context` fixture applies the same ones to `browser.newContext`).
 * `contextOptions` first, so the named settings win, as in Playwright.
 */
const CONTEXT_SETTINGS = [
  'acceptDownloads',
  'baseURL',
  'bypassCSP',
  'colorScheme',
  'deviceScaleFactor',
  'extraHTTPHeaders',
  'geolocation',
  'hasTouch',
  'httpCredentials',
  'ignoreHTTPSErrors',
  'isMobile',
  'javaScriptEnabled',
  'locale',
  'offline',
  'permissions',
  'proxy',
  'serviceWorkers',
  'timezoneId',
  'userAgent',
  'viewport',
] as const satisfies readonly (keyof BrowserContextOptions)[];

/**
 * The context options of a project's `use` (see CONTEXT_SETTINGS).
 *
 * @example
 * persistentContextOptions({ baseURL: 'http://127.0.0.1:4173', launchOptions: {}, contextOptions: { locale: 'fr-FR' } });
 * // { locale: 'fr-FR', baseURL: 'http://127.0.0.1:4173' }
 */
export function persistentContextOptions(
  use: { contextOptions?: BrowserContextOptions } & Partial<Record<string, unknown>>,
): BrowserContextOptions {
  const options: Record<string, unknown> = { ...use.contextOptions };
  for (const setting of CONTEXT_SETTINGS) if (use[setting] !== undefined) options[setting] = use[setting];
  return options as BrowserContextOptions;
}
