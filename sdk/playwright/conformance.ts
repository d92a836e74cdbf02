/**
 * The conformance page from a Playwright test: opens it (served by `npx whittle conformance`),
 * waits for its report, attaches the report to the test (`whittle-conformance`) and returns it,
 * so a device matrix in CI leaves one JSON report per device.
 *
 * @example
 * const report = await openConformance(page, { url: 'http://127.0.0.1:8787/', backends: ['wasm'] });
 * expect(report.summary.fail).toBe(0);
 */
import { test, type Page } from '@playwright/test';
import type { ConformanceReport } from '../conformance/report.ts';

/**
 * Where the page is and what to run.
 *
 * @example
 * const options: ConformanceRunOptions = { url: 'http://127.0.0.1:8787/', backends: ['webgpu', 'wasm'], timeoutMs: 600_000 };
 */
export interface ConformanceRunOptions {
  /** The page's address (what `whittle conformance` prints). */
  url: string;
  /** Backends for the model checks (default both; each runs only where the device has it). */
  backends?: ('webgpu' | 'wasm')[];
  /** The models folder as the page sees it (default '/models/'). */
  models?: string;
  /** How long the whole run may take (default 10 minutes: WebGPU on a CPU emulation is slow). */
  timeoutMs?: number;
}

/**
 * Runs the conformance page in `page` and returns its report (attached to the running test).
 *
 * @example
 * const { summary } = await openConformance(page, { url: 'http://127.0.0.1:8787/' });
 */
export async function openConformance(page: Page, options: ConformanceRunOptions): Promise<ConformanceReport> {
  const url = new URL(options.url);
  if (options.backends) url.searchParams.set('backends', options.backends.join(','));
  if (options.models) url.searchParams.set('models', options.models);
  await page.goto(url.href);
  // Interval polling: requestAnimationFrame polling can stall in a headless page that is not painting.
  await page.waitForFunction(() => 'whittleConformance' in window, null, { timeout: options.timeoutMs ?? 600_000, polling: 500 });
  const report = await page.evaluate(() => (window as unknown as { whittleConformance: ConformanceReport }).whittleConformance);
  try {
    await test.info().attach('whittle-conformance', { body: JSON.stringify(report, null, 2), contentType: 'application/json' });
  } catch {
    // Outside a test (a script driving the page): nothing to attach to.
  }
  return report;
}
