/**
 * The source of the browser half (page-helpers.ts) as one script to inject into a page.
 *
 * In the published package it is dist/playwright-page.js, built beside this module by
 * scripts/build-lib.ts. In a source checkout (this repository's own e2e imports the preset from
 * sdk/) there is no dist/, so it is bundled here on first use with rolldown, the bundler the
 * library build uses; the import is by a variable name so the published build never follows it.
 *
 * @example
 * await page.addScriptTag({ content: await pageHelpersSource() });
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { rolldown as Rolldown } from 'rolldown';

let cached: Promise<string> | null = null;

export function pageHelpersSource(): Promise<string> {
  cached ??= load();
  return cached;
}

async function load(): Promise<string> {
  const built = fileURLToPath(new URL('./playwright-page.js', import.meta.url));
  if (existsSync(built)) return readFileSync(built, 'utf8');
  const entry = fileURLToPath(new URL('./page-helpers.ts', import.meta.url));
  if (!existsSync(entry)) throw new Error(`whittle/playwright: ${built} is missing from the installed package; reinstall whittle`);
  const bundler = 'rolldown';
  const { rolldown } = (await import(bundler)) as { rolldown: typeof Rolldown };
  const bundle = await rolldown({ input: entry, platform: 'browser', logLevel: 'warn' });
  try {
    const { output } = await bundle.generate({ format: 'iife', codeSplitting: false });
    return output[0].code;
  } finally {
    await bundle.close();
  }
}
