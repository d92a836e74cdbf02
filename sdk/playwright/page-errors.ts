/**
 * The page's errors in the test runner's output: a Whittle app that fails in the browser often
 * says why only in its console (a worker's failed import, a rejected promise nobody awaited).
 * onnxruntime-web logs, as console errors, notes that are expected on every WebGPU session (nodes
 * it leaves on the CPU, by design, such as shape computations); those are left out, so what is
 * printed is worth reading.
 *
 * @example
 * test('generates', async ({ page }) => {
 *   logPageErrors(page);
 *   await page.goto('/');
 * });
 */
import type { Page } from '@playwright/test';

const ONNXRUNTIME_NOTES = /not assigned to the preferred execution providers|VerifyEachNodeIsAssignedToAnEp/;

/**
 * Whether a console message is one of onnxruntime-web's expected notes (not an error of the app).
 *
 * @example
 * isOnnxRuntimeNote('Some nodes were not assigned to the preferred execution providers'); // true
 */
export function isOnnxRuntimeNote(text: string): boolean {
  return ONNXRUNTIME_NOTES.test(text);
}

/**
 * Prints `page`'s console errors (less onnxruntime's expected notes) and its uncaught exceptions
 * with `log` (default `console.log`), from now until the page closes.
 *
 * @example
 * logPageErrors(page, (line) => process.stderr.write(`${line}\n`));
 */
export function logPageErrors(page: Page, log: (line: string) => void = console.log): void {
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !isOnnxRuntimeNote(msg.text())) log(`[page error] ${msg.text()}`);
  });
  page.on('pageerror', (error) => log(`[page uncaught] ${error.stack ?? error.message}`));
}
