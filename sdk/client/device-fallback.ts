/**
 * `Whittle.create({ deviceLoss: 'wasm' })`: after a model's WebGPU device is lost, its next
 * worker starts on WASM instead of asking for a fresh GPU device.
 *
 * Why through the spawn function: every fresh worker of a model comes from it, and the load that
 * runs on each fresh worker reads the model's runtime config when it runs (TextModel.start,
 * Codec.start: `remote.init(runtime)`), so switching `runtime.backend` before the respawn is
 * enough. A device that was lost once (a driver reset, a GPU process crash) is likely to be lost
 * again, and an app that asks for this prefers slower to failing twice.
 */
import type { RuntimeConfig } from '../../workers/ort/runtime.ts';
import { DEVICE_LOST_MESSAGE, type SpawnWorker } from './worker-client.ts';

/** Wraps `spawn` so that a worker's device loss switches `runtime` (the model's own copy) to WASM for the workers after it. */
export function wasmAfterDeviceLoss(spawn: SpawnWorker, runtime: RuntimeConfig): SpawnWorker {
  return (name) => {
    const worker = spawn(name);
    worker.addEventListener('message', (ev: MessageEvent) => {
      if ((ev.data as { type?: unknown } | null)?.type === DEVICE_LOST_MESSAGE) runtime.backend = 'wasm';
    });
    return worker;
  };
}
