/**
 * A Whittle model worker that can lose its WebGPU device on demand, for e2e/device-faults.spec.ts.
 *
 * The browser has no way to lose a device on request but `device.destroy()`, which resolves the
 * device's `lost` promise as a driver reset does; onnxruntime creates its device inside the
 * worker and keeps it to itself, so this worker keeps every device the adapter hands out and
 * destroys them when the page posts `{ type: 'e2e:destroy-device' }` (the worker's RPC ignores
 * messages of types it does not know). It also counts its GPU buffers (gpu-buffer-count.ts).
 * Then it runs the real worker entry its name asks for: the codec's for a `whittle-codec:…`
 * worker, else the text worker.
 */
import { countGpuBuffers } from './gpu-buffer-count.ts';

const devices: GPUDevice[] = [];
const requestDevice = GPUAdapter.prototype.requestDevice;
GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, descriptor?: GPUDeviceDescriptor): Promise<GPUDevice> {
  const device = await requestDevice.call(this, descriptor);
  devices.push(device);
  return device;
};

// GPU buffers created and destroyed, for leak checks (e2e/text.spec.ts): gpu-buffer-count.ts.
countGpuBuffers();

/**
 * `{ type: 'e2e:destroy-device', holdReport: true }` also holds back the worker's device-lost
 * report (DEVICE_LOST_MESSAGE) until the next RPC call arrives, then sends it before that call
 * runs: the owner's next call reaches this worker after it recorded the loss but before the
 * owner heard of it, the ordering a busy page sees when the report is slow to cross.
 * The page learns that the report is held from `{ type: 'e2e:report-held' }`.
 */
let holdReport = false;
let heldReport: unknown = null;
const original = self.postMessage.bind(self) as (message: unknown, transfer?: Transferable[]) => void;
const post = (message: unknown) => original(message);
(self as unknown as { postMessage: (message: unknown, transfer?: Transferable[]) => void }).postMessage = (message, transfer) => {
  if (holdReport && (message as { type?: unknown } | null)?.type === 'whittle:device-lost') {
    heldReport = message;
    post({ type: 'e2e:report-held' });
    return;
  }
  original(message, transfer ?? []);
};

// Registered before the real worker's own listener (imported below), so it runs first.
self.addEventListener('message', (ev: MessageEvent) => {
  const data = ev.data as { type?: unknown; holdReport?: unknown } | null;
  if (data?.type === 'APPLY' && heldReport) {
    post(heldReport);
    heldReport = null;
    holdReport = false;
  }
  if (data?.type !== 'e2e:destroy-device') return;
  holdReport = data.holdReport === true;
  for (const device of devices) device.destroy();
});

if (self.name.startsWith('whittle-codec')) await import('../../workers/codec.worker.ts');
else await import('../../workers/text.worker.ts');
