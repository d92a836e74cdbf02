/**
 * The page Playwright specs drive: it exposes the public SDK and the test oracles on `window`,
 * so specs run real SDK code in a real page (workers, OPFS, IndexedDB, WebGPU) via evaluate().
 */
import * as whittle from '../../sdk/index.ts';
import { maxRelativeError, referenceHeadLogits } from '../../models/head/reference.ts';
import { logSpectralDistance } from '../../workers/codec/metrics.ts';
import { parseWav, writeWav } from '../../workers/codec/wav.ts';

// Test oracles and helpers (pure functions); the SDK under test is `whittle`.
const harness = { whittle, referenceHeadLogits, maxRelativeError, logSpectralDistance, parseWav, writeWav };
declare global {
  interface Window {
    harness: typeof harness;
  }
}
window.harness = harness;
document.getElementById('status')!.textContent = 'ready';
