/**
 * Whether a page's context keeps its storage on disk (a persistent context, launched with a
 * user-data dir) or in memory (a context Playwright made with `browser.newContext()`, which
 * Chromium creates off the record): what a QUOTA while seeding means depends on it.
 *
 * Playwright gives a persistent context a Browser object too, so `context.browser()` cannot tell.
 * Chromium can: a persistent context is the browser's default context, and
 * `Target.getBrowserContexts` lists only the contexts created besides it.
 *
 * @example
 * await contextKind(page); // 'persistent' | 'default' | 'unknown' (not Chromium)
 */
import type { Page } from '@playwright/test';

export type ContextKind = 'persistent' | 'default' | 'unknown';

export async function contextKind(page: Page): Promise<ContextKind> {
  const browser = page.context().browser();
  if (!browser || browser.browserType().name() !== 'chromium') return 'unknown';
  try {
    const pageSession = await page.context().newCDPSession(page);
    const { targetInfo } = await pageSession.send('Target.getTargetInfo');
    await pageSession.detach();
    const browserSession = await browser.newBrowserCDPSession();
    const { browserContextIds } = await browserSession.send('Target.getBrowserContexts');
    await browserSession.detach();
    if (targetInfo.browserContextId === undefined) return 'unknown';
    return browserContextIds.includes(targetInfo.browserContextId) ? 'default' : 'persistent';
  } catch {
    // A browser that refuses CDP sessions (connected over a restricted endpoint): no verdict.
    return 'unknown';
  }
}
