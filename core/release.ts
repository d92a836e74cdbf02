/**
 * Freeing a big typed array now instead of at the next garbage collection. Loading a model makes
 * one large temporary after another (a layer's bf16 bytes, its fp32 tensors, their prepared
 * copies, each segment's weights once onnxruntime holds them): V8 collects such garbage late,
 * so at Llama-3.2-1B gigabytes of it piled up beside the heap at the load's peak.
 * `ArrayBuffer.prototype.transfer(0)` (Chromium 114+, Firefox 122+, Safari 17.4+, Node 21+)
 * detaches the buffer and frees its memory at once. Where it is missing this does nothing, and
 * the array is collected as before.
 *
 * Only for arrays the caller made and nothing else uses: afterwards the array, and every other
 * view of its buffer, is empty. A view into part of a larger buffer is never released (other
 * views may share that buffer).
 *
 * @example
 * const fp32 = decodeBf16(bytes);
 * releaseNow(bytes); // the bf16 read is garbage from here on
 */
type Transferable = ArrayBuffer & { transfer?: (length?: number) => ArrayBuffer; readonly detached?: boolean };

/** Whether releaseNow frees memory in this runtime. */
export const canReleaseNow = typeof (ArrayBuffer.prototype as Transferable).transfer === 'function';

/** Frees `array`'s buffer now where the runtime can; see the file's header for when that is safe. */
export function releaseNow(array: ArrayBufferView | null | undefined): void {
  if (!canReleaseNow || !array) return;
  const buffer = array.buffer as Transferable;
  if (!(buffer instanceof ArrayBuffer) || buffer.detached || array.byteOffset !== 0 || array.byteLength !== buffer.byteLength) return;
  buffer.transfer!(0);
}

/** Every typed array inside `value` (itself, or in its fields, up to three levels deep). */
export function arraysIn(value: unknown): ArrayBufferView[] {
  const out: ArrayBufferView[] = [];
  const visit = (x: unknown, depth: number): void => {
    if (ArrayBuffer.isView(x)) out.push(x);
    else if (x !== null && typeof x === 'object' && depth < 3) for (const v of Object.values(x)) visit(v, depth + 1);
  };
  visit(value, 0);
  return out;
}

/** releaseNow for every typed array inside `value` (a prepared layer, a quantized weight). */
export function releaseAllIn(value: unknown): void {
  for (const a of arraysIn(value)) releaseNow(a);
}
