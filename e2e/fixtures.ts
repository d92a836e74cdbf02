/** Shared Playwright fixtures: the harness page, the backend under test, the server's request log. */
import { test as base, expect, type Page } from '@playwright/test';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LoggedRequest {
  url: string;
  range: string | null;
  status: number;
}

export const test = base.extend<{ backendName: 'wasm' | 'webgpu'; harness: Page }>({
  backendName: ['wasm', { option: true }],
  harness: async ({ page }, use) => {
    page.on('console', (msg) => {
      const text = msg.text();
      // ORT's "nodes not assigned to the preferred EP" notes are expected noise.
      if (msg.type() === 'error' && !/not assigned to the preferred execution providers|VerifyEachNodeIsAssignedToAnEp/.test(text)) {
        console.log(`[page ${msg.type()}] ${text}`);
      }
    });
    await page.goto('/e2e/pages/harness.html');
    await expect(page.locator('#status')).toHaveText('ready');
    await use(page);
  },
});
export { expect };

export async function serverLog(page: Page, clear = false): Promise<LoggedRequest[]> {
  const res = await page.request.get(`/__e2e/log${clear ? '?clear=1' : ''}`);
  return (await res.json()) as LoggedRequest[];
}

/** Facts about a real model file (as fetched by `npm run models`), computed in Node. */
export function modelFile(id: string, name: string): { size: number; sha256: string } {
  const bytes = readFileSync(join(process.cwd(), 'public/models', id, name));
  return { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}
