/**
 * The page Playwright specs drive: it exposes the public SDK and the test oracles on `window`,
 * so specs run real SDK code in a real page (workers, OPFS, IndexedDB, WebGPU) via evaluate().
 */
import * as Comlink from 'comlink';
import * as whittle from 'whittle';
import { referenceHeadLogits } from '../../models/head/reference.ts';

// Test oracles (independent references, never the SDK's code) and the SDK under test, `whittle`,
// through its public entry only; its WAV and distance helpers are public too.
const { logSpectralDistance, parseWav, writeWav } = whittle;

/**
 * The text worker started as an app that hosts it itself would (`ModelLoadOptions.spawn`);
 * lifecycle specs wrap it to count worker starts, which are model loads (each start loads).
 */
const spawnTextWorker = (name: string): Worker => new Worker(new URL('../../workers/text.worker.ts', import.meta.url), { type: 'module', name });

/**
 * How many of the page's Whittle workers whose name starts with `prefix` are alive: each holds
 * a Web Lock named after itself until it is gone (workers/rpc.ts), so held locks count them.
 * With `settleTo`, polls (up to 5 s) until the count is that: a terminated worker's lock is
 * released a moment after terminate() returns.
 */
async function liveWorkers(prefix: string, settleTo?: number): Promise<number> {
  const count = async () => ((await navigator.locks.query()).held ?? []).filter((lock) => lock.name?.startsWith(prefix)).length;
  const until = performance.now() + 5000;
  let n = await count();
  while (settleTo !== undefined && n !== settleTo && performance.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    n = await count();
  }
  return n;
}

/** The one text worker method the probe calls (TextService.streamStats; e2e may not import workers/). */
interface StreamProbe {
  streamStats(): { held: number; running: number };
}
const probes = new WeakMap<Worker, Comlink.Remote<StreamProbe>>();
/**
 * The generation streams a live text worker still holds, asked over a second comlink channel on
 * the same worker (never released: a release would unexpose the worker's service for the SDK too).
 */
function workerStreams(worker: Worker): Promise<{ held: number; running: number }> {
  let remote = probes.get(worker);
  if (!remote) probes.set(worker, (remote = Comlink.wrap<StreamProbe>(worker)));
  return remote.streamStats();
}

const harness = { whittle, referenceHeadLogits, logSpectralDistance, parseWav, writeWav, spawnTextWorker, liveWorkers, workerStreams };
declare global {
  interface Window {
    harness: typeof harness;
  }
}
window.harness = harness;
document.getElementById('status')!.textContent = 'ready';
