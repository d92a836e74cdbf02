/**
 * The page Playwright specs drive: it exposes the public SDK and the test oracles on `window`,
 * so specs run real SDK code in a real page (workers, OPFS, IndexedDB, WebGPU) via evaluate().
 */
import * as whittle from '../../sdk/index.ts';
import { maxRelativeError, referenceHeadLogits } from '../../models/head/reference.ts';

const harness = { whittle, referenceHeadLogits, maxRelativeError };
declare global {
  interface Window {
    harness: typeof harness;
  }
}
window.harness = harness;
document.getElementById('status')!.textContent = 'ready';
