/**
 * Watches the WebGPU device onnxruntime runs on and turns its loss into DEVICE_LOST.
 *
 * A GPUDevice can be lost at any time (driver reset, GPU process crash, `device.destroy()`);
 * every session on it is then dead for good: onnxruntime has no way to move them to a new device.
 * So once the device a live session uses is lost, this worker's sessions are finished: every
 * later create/run here rejects with DEVICE_LOST, and the worker tells its owner (one message,
 * DEVICE_LOST_MESSAGE), whose WorkerClient rejects the calls in flight with DEVICE_LOST and ends
 * the worker; the next call starts a fresh worker, which gets a fresh device (or runs on WASM,
 * `Whittle.create({ deviceLoss: 'wasm' })`).
 *
 * onnxruntime's WebGPU context is reference-counted by its sessions and may destroy its device
 * itself once the last one is released; the device's `lost` promise then resolves with reason
 * 'destroyed', as it does for an outside `destroy()`. Only a loss while sessions still use the
 * device counts, hence the count per device.
 */
import { WhittleError } from '../../core/errors.ts';
import type { OrtModule } from './runtime.ts';

/** The message a worker posts to its owner when its device is lost (same literal as sdk/client/worker-client.ts). */
export const DEVICE_LOST_MESSAGE = 'whittle:device-lost';

interface LosableDevice {
  readonly lost: Promise<{ reason?: string; message?: string }>;
}

/** Live sessions per device: a loss with none is onnxruntime releasing its own device. */
const users = new WeakMap<LosableDevice, number>();
let lostError: WhittleError | null = null;
/** The device the latest WebGPU session runs on (what a failed run may have lost). */
let currentDevice: LosableDevice | null = null;
/**
 * How long a failed WebGPU create or run waits for its device's `lost` promise before it is
 * reported as the failure it says it is. A destroyed device fails the next run at once, but its
 * `lost` promise may settle many tasks later on a busy machine (seen in CI: the run's own text
 * said nothing of a loss, so one task's wait reported INTERNAL); failures on a live device are
 * rare bugs, which this delays by at most this much.
 */
const LOSS_GRACE_MS = 2000;
/** RPC calls this worker has received (callArrived); the loss message says how many came before it. */
let callsArrived = 0;

/** DEVICE_LOST once this worker's device has been lost while in use; null before. */
export function deviceLost(): WhittleError | null {
  return lostError;
}

/**
 * Counts one RPC call arriving at this worker (workers/rpc.ts, in the order the owner sent them).
 * Returns DEVICE_LOST with `afterLoss: true` when the device was already known lost: nothing of
 * that call may run here, and since nothing ran, its owner may send it again to a fresh worker.
 */
export function callArrived(): WhittleError | null {
  callsArrived++;
  if (!lostError) return null;
  return new WhittleError('DEVICE_LOST', lostError.message, { ...lostError.details, afterLoss: true });
}

/**
 * Counts `session` as a user of onnxruntime's current WebGPU device until it is released,
 * watching that device's `lost` promise the first time it is seen. Call right after a WebGPU
 * session is created: onnxruntime sets `env.webgpu.device` when it creates the session.
 */
export async function trackWebGpuSession(ort: OrtModule, session: { release(): Promise<void> }): Promise<void> {
  // A GPUDevice in onnxruntime-web 1.30 (a plain property); typed as a promise of one.
  const device = (await (ort.env.webgpu as { device?: unknown }).device) as LosableDevice | undefined;
  if (!device || typeof device !== 'object' || !(device.lost instanceof Promise)) return;
  currentDevice = device;
  if (!users.has(device)) {
    users.set(device, 0);
    void device.lost.then((info) => {
      if ((users.get(device) ?? 0) > 0) markLost(info);
    });
  }
  users.set(device, users.get(device)! + 1);
  const release = session.release.bind(session);
  let released = false;
  session.release = () => {
    // Counted down before onnxruntime lets go: its own destroy() of an unused device follows.
    if (!released) users.set(device, users.get(device)! - 1);
    released = true;
    return release();
  };
}

/**
 * After a WebGPU create or run failed: DEVICE_LOST if the device is gone. A failure whose text
 * says the device is lost (`fromText`, see workers/ort/errors.ts) counts as the loss itself;
 * otherwise the failure can come before the device's `lost` promise settles (a mapAsync rejected
 * on the destroyed device), so this waits for it, up to LOSS_GRACE_MS.
 */
export async function lossAfterFailure(fromText: WhittleError | null): Promise<WhittleError | null> {
  if (!lostError && fromText?.code === 'DEVICE_LOST') markLost({ reason: 'unknown', message: fromText.message });
  if (!lostError) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise((resolve) => (timer = setTimeout(resolve, currentDevice ? LOSS_GRACE_MS : 0)));
    // trackWebGpuSession's own reaction to `lost` (registered first) marks the loss before this resumes.
    await Promise.race([grace, currentDevice?.lost ?? grace]);
    clearTimeout(timer);
  }
  return lostError;
}

function markLost(info: { reason?: string; message?: string }): void {
  if (lostError) return;
  const why = [info.reason, info.message].filter(Boolean).join(': ') || 'no reason given';
  lostError = new WhittleError('DEVICE_LOST', `the WebGPU device was lost (${why}); the next call starts on a fresh device`, {
    reason: info.reason ?? 'unknown',
  });
  // Tell the worker's owner (a dedicated worker posts to the page that started it). Not in Node
  // or on a page's main thread, where there is no owner to tell.
  const scope = globalThis as { WorkerGlobalScope?: unknown; postMessage?: (message: unknown) => void };
  if (typeof scope.WorkerGlobalScope === 'function' && typeof scope.postMessage === 'function') {
    // `calls`: how many calls had arrived when the loss was recorded. The owner may have sent more
    // meanwhile (this message crosses them); those are refused unrun (callArrived) and can go
    // to a fresh worker, while the first `calls` may have been running on the lost device.
    scope.postMessage({ type: DEVICE_LOST_MESSAGE, message: lostError.message, reason: info.reason ?? 'unknown', calls: callsArrived });
  }
}
