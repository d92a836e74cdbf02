/**
 * The page Playwright specs drive: it exposes the public SDK and the test oracles on `window`,
 * so specs run real SDK code in a real page (workers, OPFS, IndexedDB, WebGPU) via evaluate().
 */
import * as whittle from 'whittle';
import { maxRelativeError, referenceHeadLogits } from '../../models/head/reference.ts';

// Test oracles (independent references, never the SDK's code) and the SDK under test, `whittle`,
// through its public entry only; its WAV and distance helpers are public too.
const { logSpectralDistance, parseWav, writeWav } = whittle;
const harness = { whittle, referenceHeadLogits, maxRelativeError, logSpectralDistance, parseWav, writeWav };
declare global {
  interface Window {
    harness: typeof harness;
  }
}
window.harness = harness;
document.getElementById('status')!.textContent = 'ready';
