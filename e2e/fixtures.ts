/**
 * What this repository's e2e specs need beyond `whittle/playwright` (which they use as a user
 * would: `whittleTest` probes the backend, skips or fails where it is absent, and reports it):
 * the repo's harness page, the e2e fixture server's request log, and facts about the model files
 * `npm run models` fetched. Everything general lives in the preset.
 */
import type { Page } from '@playwright/test';
import { whittleTest, expect, logPageErrors } from 'whittle/playwright';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LoggedRequest {
  url: string;
  range: string | null;
  status: number;
}

/** run.c's greedy tokens for stories260K from BOS: the independent golden several specs check. */
export const STORIES260K_GOLDEN = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];

/** `whittleTest` plus `harness`: e2e/pages/harness.html loaded and ready (window.harness). */
export const test = whittleTest.extend<{ harness: Page }>({
  harness: async ({ page }, use) => {
    logPageErrors(page);
    await page.goto('/e2e/pages/harness.html');
    await expect(page.locator('#status')).toHaveText('ready');
    await use(page);
  },
});
export { expect };

/** The e2e fixture server's request log (e2e/fixture-server.ts); `clear` empties it after reading. */
export async function serverLog(page: Page, clear = false): Promise<LoggedRequest[]> {
  const res = await page.request.get(`/__e2e/log${clear ? '?clear=1' : ''}`);
  return (await res.json()) as LoggedRequest[];
}

/** Facts about a real model file (as fetched by `npm run models`), computed in Node. */
export function modelFile(id: string, name: string): { size: number; sha256: string } {
  const bytes = readFileSync(join(process.cwd(), 'public/models', id, name));
  return { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}
