/**
 * A Whittle model worker that can lose its WebGPU device on demand, for e2e/device-faults.spec.ts.
 *
 * The browser has no way to lose a device on request but `device.destroy()`, which resolves the
 * device's `lost` promise as a driver reset does; onnxruntime creates its device inside the
 * worker and keeps it to itself, so this worker keeps every device the adapter hands out and
 * destroys them when the page posts `{ type: 'e2e:destroy-device' }` (the worker's RPC ignores
 * messages of types it does not know). Then it runs the real worker entry its name asks for:
 * the codec's for a `whittle-codec:…` worker, else the text worker.
 */
export {}; // a module: top-level await below

const devices: GPUDevice[] = [];
const requestDevice = GPUAdapter.prototype.requestDevice;
GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, descriptor?: GPUDeviceDescriptor): Promise<GPUDevice> {
  const device = await requestDevice.call(this, descriptor);
  devices.push(device);
  return device;
};

self.addEventListener('message', (ev: MessageEvent) => {
  if ((ev.data as { type?: unknown } | null)?.type !== 'e2e:destroy-device') return;
  for (const device of devices) device.destroy();
});

if (self.name.startsWith('whittle-codec')) await import('../../workers/codec.worker.ts');
else await import('../../workers/text.worker.ts');
