/**
 * Counts the GPU buffers a model worker creates and destroys, for leak checks: the e2e tap worker
 * (device-tap.worker.ts, read by e2e/text.spec.ts) and the soak's counting worker
 * (scripts/soak/gpu-count.worker.ts) both install it; their pages read it with `gpuBuffers`.
 *
 * onnxruntime keeps freed buffers in a pool and reuses them, so in a steady state
 * `created - destroyed` (the live buffers) stays flat; a tensor that is never disposed keeps its
 * buffer out of the pool and the next step creates another.
 *
 * The protocol is one message each way: the page posts `{ type: 'e2e:gpu-buffers' }`, the worker
 * answers `{ type: 'e2e:gpu-buffers', created, destroyed }` (the worker's RPC ignores messages of
 * types it does not know).
 */

/** GPU buffers created and destroyed so far in one worker. */
export interface GpuBufferCount {
  created: number;
  destroyed: number;
}

const MESSAGE = 'e2e:gpu-buffers';

/**
 * Inside a worker, before onnxruntime loads: wraps `GPUDevice.prototype.createBuffer` and
 * `GPUBuffer.prototype.destroy` to count, and answers the page's count requests.
 */
export function countGpuBuffers(): void {
  const count: GpuBufferCount = { created: 0, destroyed: 0 };
  const createBuffer = GPUDevice.prototype.createBuffer;
  GPUDevice.prototype.createBuffer = function (this: GPUDevice, descriptor: GPUBufferDescriptor): GPUBuffer {
    count.created++;
    return createBuffer.call(this, descriptor);
  };
  const destroyBuffer = GPUBuffer.prototype.destroy;
  GPUBuffer.prototype.destroy = function (this: GPUBuffer): undefined {
    count.destroyed++;
    destroyBuffer.call(this);
  };
  self.addEventListener('message', (ev: MessageEvent) => {
    if ((ev.data as { type?: unknown } | null)?.type === MESSAGE) self.postMessage({ type: MESSAGE, ...count });
  });
}

/** On the page: the GPU buffers `worker` (one that ran `countGpuBuffers`) has created and destroyed so far. */
export function gpuBuffers(worker: Worker): Promise<GpuBufferCount> {
  return new Promise((resolve) => {
    const onMessage = (ev: MessageEvent) => {
      const data = ev.data as ({ type?: string } & GpuBufferCount) | null;
      if (data?.type !== MESSAGE) return;
      worker.removeEventListener('message', onMessage);
      resolve({ created: data.created, destroyed: data.destroyed });
    };
    worker.addEventListener('message', onMessage);
    worker.postMessage({ type: MESSAGE });
  });
}
