/**
 * A blank page on the app's origin, for the preset's work before the app runs: storage (OPFS,
 * IndexedDB, Cache Storage) and WebGPU are per origin, so seeding and probing must happen there.
 * The page is answered by Playwright (`page.route`), so it never reaches the app's server and
 * runs none of the app's code.
 *
 * @example
 * await openOriginPage(page, 'http://127.0.0.1:5173', { isolated: true });
 * const caps = await page.evaluate(() => whittlePlaywright.probe());
 */
import type { Page } from '@playwright/test';
import { pageHelpersSource } from './page-source.ts';

/** The path of the blank page; chosen so no app serves anything there. */
export const ORIGIN_PAGE_PATH = '/__whittle_playwright__/blank.html';

const ISOLATION_HEADERS = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

/**
 * Navigates `page` to the blank page on `origin` (with COOP/COEP when `isolated`, as the app's
 * server sends them) and injects the page helpers (`globalThis.whittlePlaywright`).
 */
export async function openOriginPage(page: Page, origin: string, { isolated }: { isolated: boolean }): Promise<void> {
  const url = new URL(ORIGIN_PAGE_PATH, origin).href;
  const handler = (route: {
    fulfill(r: { status: number; contentType: string; headers: Record<string, string>; body: string }): Promise<void>;
  }) =>
    route.fulfill({
      status: 200,
      contentType: 'text/html',
      headers: isolated ? ISOLATION_HEADERS : {},
      body: '<!doctype html><title>whittle/playwright</title>',
    });
  await page.route(url, handler);
  try {
    await page.goto(url);
  } finally {
    await page.unroute(url, handler);
  }
  await page.addScriptTag({ content: await pageHelpersSource() });
}

/** Whether a server answers `url` with both cross-origin isolation headers. */
export function sendsIsolationHeaders(headers: Record<string, string>): boolean {
  return (
    headers['cross-origin-opener-policy'] === 'same-origin' &&
    /^(require-corp|credentialless)$/.test(headers['cross-origin-embedder-policy'] ?? '')
  );
}
