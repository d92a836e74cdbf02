/**
 * The page e2e/device-faults.spec.ts (and text.spec.ts's WebGPU leak check) drives: the public
 * SDK, and model workers that lose their WebGPU device when told to and count their GPU buffers
 * (device-tap.worker.ts, gpu-buffer-count.ts).
 */
import * as whittle from 'whittle';
import { gpuBuffers } from './gpu-buffer-count.ts';

/** Starts a model's worker from device-tap.worker.ts (a `ModelLoadOptions.spawn`). */
const tapWorker = (name: string): Worker => new Worker(new URL('./device-tap.worker.ts', import.meta.url), { type: 'module', name });

/**
 * Destroys the WebGPU devices of `worker` and resolves once it has told its owner the device
 * is lost (the message the SDK's worker client acts on), so the page knows the SDK has heard.
 */
function loseDevice(worker: Worker): Promise<{ type: string; message: string; reason: string }> {
  const told = new Promise<{ type: string; message: string; reason: string }>((resolve) => {
    const onMessage = (ev: MessageEvent) => {
      const data = ev.data as { type?: string; message: string; reason: string } | null;
      if (data?.type !== 'whittle:device-lost') return;
      worker.removeEventListener('message', onMessage);
      resolve(data as { type: string; message: string; reason: string });
    };
    worker.addEventListener('message', onMessage);
  });
  worker.postMessage({ type: 'e2e:destroy-device' });
  return told;
}

/**
 * Destroys the WebGPU devices of `worker` and holds its device-lost report back until the next
 * call reaches it (device-tap.worker.ts); resolves once the worker has recorded the loss, while
 * the SDK has not heard of it yet.
 */
function loseDeviceQuietly(worker: Worker): Promise<void> {
  const held = new Promise<void>((resolve) => {
    const onMessage = (ev: MessageEvent) => {
      if ((ev.data as { type?: string } | null)?.type !== 'e2e:report-held') return;
      worker.removeEventListener('message', onMessage);
      resolve();
    };
    worker.addEventListener('message', onMessage);
  });
  worker.postMessage({ type: 'e2e:destroy-device', holdReport: true });
  return held;
}

/** What a rejected promise carried, as JSON: its code and whether it is a WhittleError. */
async function failure(promise: Promise<unknown>): Promise<{ code?: string; message?: string; isWhittle: boolean } | null> {
  try {
    await promise;
    return null;
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message, isWhittle: e instanceof whittle.WhittleError };
  }
}

const faults = { whittle, tapWorker, loseDevice, loseDeviceQuietly, gpuBuffers, failure };
declare global {
  interface Window {
    faults: typeof faults;
  }
}
window.faults = faults;
document.getElementById('status')!.textContent = 'ready';
