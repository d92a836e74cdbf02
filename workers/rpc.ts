/**
 * Worker-side half of Whittle's RPC: every `*.worker.ts` calls `exposeEngine(new Engine())`.
 *
 * - errors keep their `WhittleError` code across the boundary (core/rpc-errors.ts);
 * - typed arrays an engine returns are *transferred*, not copied (engines hand over the
 *   buffers they return and must not keep using them);
 * - every call is counted as it arrives, and refused unrun once this worker's WebGPU device is
 *   known lost (workers/ort/device-loss.ts callArrived), so the owner can tell the calls that
 *   may have run on the lost device from those it can send again to a fresh worker;
 * - the worker holds a Web Lock named after itself for its whole life. The client asks for
 *   the same lock: it is granted exactly when this worker is gone (terminated, crashed,
 *   closed), which is how pending calls learn they will never be answered.
 */
import * as Comlink from 'comlink';
import { installErrorTransfer } from '../core/rpc-errors.ts';
import { callArrived } from './ort/device-loss.ts';

export const READY_MESSAGE = 'whittle:ready';

function buffersOf(value: unknown, depth = 0): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) return value.buffer instanceof ArrayBuffer ? [value.buffer] : [];
  if (value instanceof ArrayBuffer) return [value];
  if (depth < 2 && value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.values(value).flatMap((v) => buffersOf(v, depth + 1));
  }
  return [];
}

function withTransfer<T>(value: T): T {
  const buffers = [...new Set(buffersOf(value))];
  return buffers.length > 0 ? Comlink.transfer(value, buffers) : value;
}

/**
 * Wraps an engine so each method's (awaited) result is marked for transfer, and each call is
 * counted (Comlink invokes a method synchronously as its message arrives, so this is arrival order).
 */
function transferringProxy<T extends object>(engine: T): T {
  return new Proxy(engine, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const refused = callArrived();
        if (refused) return Promise.reject(refused);
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        return result instanceof Promise ? result.then(withTransfer) : withTransfer(result);
      };
    },
  });
}

export function exposeEngine(engine: object): void {
  installErrorTransfer();
  Comlink.expose(transferringProxy(engine));
  const lockName = self.name;
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (lockName && locks) {
    void locks.request(lockName, () => {
      self.postMessage({ type: READY_MESSAGE, lock: true });
      return new Promise<never>(() => {}); // held until this worker dies
    });
  } else {
    self.postMessage({ type: READY_MESSAGE, lock: false });
  }
}
