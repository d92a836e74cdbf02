/**
 * `whittleTest`: Playwright's `test` with Whittle's fixtures.
 *
 * - `whittleBackend` (automatic, before every test): probes the device on the app's origin for the
 *   project's target (once per worker unless `whittleProbe: 'each-test'`), attaches what it found (`whittle-backend`: backend, adapter vendor,
 *   architecture, features, fallback or not, cross-origin isolation) to the report, and when the
 *   target's backend is absent skips the test with the reason, or fails it with that reason when
 *   the project requires the backend (`whittleRequireBackend`). Never a silent pass. The probe
 *   navigates the test's page to a blank page on the app's origin; probed once per worker, later
 *   tests start on Playwright's about:blank, as without the preset.
 * - For `wasm-threads`, after the test: the page the test left on the app's origin must be
 *   `crossOriginIsolated`, or the test fails (threads would silently have been one).
 *
 * @example
 * import { whittleTest as test, expect, seedModelCache } from 'whittle/playwright';
 * test('generates', async ({ page, whittleBackend }) => {
 *   await page.goto(`/?backend=${whittleBackend.backend}`);
 *   await expect(page.locator('#out')).toContainText('Once upon a time');
 * });
 */
import { test as base, expect } from '@playwright/test';
import { probeBackend, type BackendReport } from './backend.ts';
import { ORIGIN_PAGE_PATH } from './origin-page.ts';
import type { WhittleTestOptions } from './projects.ts';

/**
 * The fixtures `whittleTest` adds (besides its options).
 *
 * @example
 * whittleTest('x', async ({ whittleBackend }: WhittleFixtures) => console.log(whittleBackend.adapter));
 */
export interface WhittleFixtures {
  whittleBackend: BackendReport;
}

/**
 * The message of a required backend that is absent (the failure a GPU job must not miss).
 *
 * @example
 * requiredBackendMessage({ target: 'webgpu', reason: 'no hardware WebGPU adapter' });
 */
export function requiredBackendMessage(report: Pick<BackendReport, 'target' | 'reason'>): string {
  return `whittle/playwright: the ${report.target} backend is required (whittleRequireBackend) but absent: ${report.reason ?? 'unknown reason'}`;
}

/** Probe results of this worker process, per project, origin and target (`whittleProbe: 'once'`). */
const probed = new Map<string, Promise<BackendReport>>();

/**
 * Playwright's `test` with `whittleBackend` and the options `whittleTarget` (default 'wasm'),
 * `whittleRequireBackend` (default false), which `projects` sets per project, and
 * `whittleProbe` (default 'once').
 *
 * @example
 * whittleTest.use({ whittleRequireBackend: true });
 * whittleTest('needs the GPU', async ({ whittleBackend }) => expect(whittleBackend.adapter?.software).toBe(false));
 */
export const whittleTest = base.extend<WhittleTestOptions & WhittleFixtures>({
  whittleTarget: ['wasm', { option: true }],
  whittleRequireBackend: [false, { option: true }],
  whittleProbe: ['once', { option: true }],
  whittleBackend: [
    async ({ page, baseURL, whittleTarget, whittleRequireBackend, whittleProbe }, use, testInfo) => {
      if (!baseURL)
        throw new Error("whittle/playwright: set use.baseURL to the app's address; the backend probe and seedModelCache run on its origin");
      const origin = new URL(baseURL).origin;
      const key = JSON.stringify([testInfo.project.name, origin, whittleTarget]);
      let probe = whittleProbe === 'once' ? probed.get(key) : undefined;
      if (!probe) {
        probe = probeBackend(page, { origin, target: whittleTarget });
        if (whittleProbe === 'once') {
          probed.set(key, probe);
          // A probe that failed (the server was not up yet) is not kept: the next test probes again.
          probe.catch(() => probed.delete(key));
        }
      }
      const report = await probe;
      await testInfo.attach('whittle-backend', { body: JSON.stringify(report, null, 2), contentType: 'application/json' });
      const adapter = report.adapter
        ? `${report.adapter.vendor ?? '?'} ${report.adapter.architecture ?? '?'}${report.adapter.fallback ? ' (fallback)' : ''}`
        : 'no WebGPU adapter';
      testInfo.annotations.push({
        type: 'whittle-backend',
        description: `${report.target}: ${report.available ? 'available' : 'absent'}; ${adapter}; crossOriginIsolated ${report.crossOriginIsolated}`,
      });
      if (!report.available) {
        if (whittleRequireBackend) throw new Error(requiredBackendMessage(report));
        testInfo.skip(true, `${report.target} backend absent: ${report.reason}`);
      }
      await use(report);
      if (whittleTarget === 'wasm-threads' && !page.isClosed()) {
        const url = page.url();
        if (url.startsWith(origin) && !url.includes(ORIGIN_PAGE_PATH)) {
          const isolated = await page.evaluate(() => globalThis.crossOriginIsolated === true);
          if (!isolated)
            throw new Error(
              `whittle/playwright: wasm-threads: ${url} is not crossOriginIsolated, so WASM ran on one thread; serve it with COOP/COEP`,
            );
        }
      }
    },
    { auto: true },
  ],
});

/**
 * Playwright's own `expect`, re-exported so one import serves a spec.
 *
 * @example
 * import { whittleTest as test, expect } from 'whittle/playwright';
 */
export { expect };
