/**
 * What an onnxruntime failure means, as a WhittleError code: the one place that reads
 * onnxruntime's (and Emscripten's, and the browser's) error text.
 *
 * onnxruntime-web reports nearly everything as a plain `Error` whose message wraps the C++
 * one ("Can't create a session. ERROR_CODE: 6, ERROR_MESSAGE: std::bad_alloc"), so the codes
 * come from the text. Out of memory is singled out because it is the caller's to act on (a
 * smaller plan, a shorter context, compressed weights, the other backend), where a malformed
 * graph is not; a lost WebGPU device because the next call recovers on a fresh one.
 *
 * @example
 * try { await ort.InferenceSession.create(bytes) } catch (err) { throw ortError(err, 'create', 'wasm') }
 */
import { WhittleError, asWhittleError, type WhittleErrorCode } from '../../core/errors.ts';
import type { Backend } from './runtime.ts';

/**
 * Out-of-memory texts, each seen from a real failure:
 * - `std::bad_alloc`: onnxruntime's allocator when the WASM heap cannot grow (Node and browsers;
 *   e.g. "failed to call OrtRun(). ERROR_CODE: 6, ERROR_MESSAGE: std::bad_alloc");
 * - `Failed to allocate memory`: onnxruntime's arena (BFCArena) and its WebGPU buffer manager;
 * - `Aborted(OOM)` / `Cannot enlarge memory`: Emscripten's abort when `sbrk` fails (builds
 *   without C++ exceptions around the allocation);
 * - `Array buffer allocation failed`, `Unable to grow instance memory`, `Maximum memory size
 *   exceeded` (RangeErrors) and `WebAssembly.Memory(): could not allocate memory` / `Out of
 *   memory`: V8 refusing a JS buffer or WASM heap growth;
 * - `GPUOutOfMemoryError` / `out of memory`: WebGPU's error scope for createBuffer;
 * - createBuffer's size validation ("exceeds the max buffer size", "maxBufferSize",
 *   "maxStorageBufferBindingSize"): a tensor larger than the adapter lets one buffer be, which
 *   is a memory limit of this device, not a flaw of the model.
 */
const OUT_OF_MEMORY: readonly RegExp[] = [
  /\bbad_alloc\b/,
  /Failed to allocate/i,
  /Aborted\(OOM\)/,
  /Cannot enlarge memory/i,
  /Array buffer allocation failed/i,
  /Unable to grow instance memory/i,
  /Maximum memory size exceeded/i,
  /could not allocate memory/i,
  /out of memory/i,
  /GPUOutOfMemoryError/,
  /exceeds the max(imum)? buffer size/i,
  /\bmax(Storage)?Buffer(Binding)?Size\b/,
];

/** WebGPU device-loss texts (Dawn and Chromium): calls on a destroyed or lost device. */
const DEVICE_LOST: readonly RegExp[] = [/\bdevice (is |was )?lost\b/i, /\bdevice.{0,40}destroyed\b/i, /\bDevice\]? is lost\b/i];

/** True when `err` says an allocation failed (see OUT_OF_MEMORY above). */
export function isOutOfMemory(err: unknown): boolean {
  const text = errorText(err);
  return OUT_OF_MEMORY.some((re) => re.test(text));
}

/** True when `err` says the WebGPU device is gone. */
export function isDeviceLost(err: unknown): boolean {
  const text = errorText(err);
  return DEVICE_LOST.some((re) => re.test(text));
}

/**
 * Maps an onnxruntime failure to a WhittleError: OUT_OF_MEMORY and DEVICE_LOST by their texts;
 * otherwise BAD_MODEL when a session could not be created (onnxruntime rejected the graph) and
 * INTERNAL when a run failed (the graph loaded, so a failing run is Whittle's bug or
 * onnxruntime's). A WhittleError or an abort passes through as it is.
 */
export function ortError(err: unknown, op: 'create' | 'run', backend: Backend): WhittleError {
  if (err instanceof WhittleError) return err;
  const passed = asWhittleError(err);
  if (passed.code === 'ABORTED') return passed;
  const text = errorText(err);
  const code: WhittleErrorCode = isDeviceLost(err)
    ? 'DEVICE_LOST'
    : isOutOfMemory(err)
      ? 'OUT_OF_MEMORY'
      : op === 'create'
        ? 'BAD_MODEL'
        : 'INTERNAL';
  const what = op === 'create' ? `could not create a ${backend} session` : `failed a ${backend} run`;
  const hint =
    code === 'OUT_OF_MEMORY'
      ? backend === 'wasm'
        ? ' (the WASM heap is at most 4 GiB: try a smaller plan, a shorter context or compressed weights)'
        : ' (the GPU refused the allocation: try a smaller plan, a shorter context, compressed weights or the wasm backend)'
      : '';
  return new WhittleError(code, `onnxruntime ${what}: ${text}${hint}`, { backend, op }, { cause: err });
}

/** The message with the error's name in front: a RangeError or GPUOutOfMemoryError says as much by its name alone. */
function errorText(err: unknown): string {
  if (err instanceof Error) return err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message;
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string') {
    const { name, message } = err as { name?: unknown; message: string };
    return typeof name === 'string' && name ? `${name}: ${message}` : message;
  }
  return String(err);
}
