/**
 * Weights into the blocked layouts the decode kernels stream (workers/kernels/assembly/decode.ts):
 * 4 output rows at a time, so one pass over a matrix reads it in address order.
 * - int8: [Npad/4][Kpad/16][4 rows][16 inputs], from onnxruntime's [K, N] (DynamicQuantizeMatMul's B).
 * - fp32: [Npad/4][Kpad/4][4 rows][4 inputs], from [K, N] (MatMul's B).
 * - bf16: [Npad/4][Kpad/8][4 rows][8 inputs] u16, from fp32 [K, N] whose values are all bf16
 *   (isBf16Exact): the top half of each, inputs 0..3 in the even slots and 4..7 in the odd ones.
 * Padding rows and inputs are zero, so they add nothing to a product.
 *
 * @example
 * const { Kpad, Npad } = int8Padding(K, N);
 * packInt8Columns(weight.b, K, N, heap.i8(ptr, Kpad * Npad));
 */

/** `n` rounded up to a multiple of `m`. */
export function roundUp(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}

/** Padded shape of an int8 matrix of K inputs and N outputs. */
export function int8Padding(K: number, N: number): { Kpad: number; Npad: number } {
  return { Kpad: roundUp(K, 16), Npad: roundUp(N, 4) };
}

/** Padded shape of an fp32 matrix of K inputs and N outputs. */
export function f32Padding(K: number, N: number): { Kpad: number; Npad: number } {
  return { Kpad: roundUp(K, 4), Npad: roundUp(N, 4) };
}

/**
 * src [K, N] (column n is output n) -> out [Npad/4][Kpad/kBlock][4 rows][kBlock inputs], the one
 * layout both products read, with kBlock inputs per row of a block (out zeroed beforehand,
 * Kpad * Npad long, Kpad = K rounded up to kBlock).
 */
function packColumns<T extends Int8Array | Float32Array>(src: T, K: number, N: number, kBlock: 4 | 16, out: T): void {
  const block = 4 * kBlock; // values in one block of 4 rows by kBlock inputs
  const rowOfBlocks = (roundUp(K, kBlock) / kBlock) * block; // values of 4 output rows over every input
  for (let k = 0; k < K; k++) {
    const kOff = Math.floor(k / kBlock) * block + (k % kBlock);
    const row = k * N;
    for (let n = 0; n < N; n++) out[(n >> 2) * rowOfBlocks + kOff + (n & 3) * kBlock] = src[row + n]!;
  }
}

/** b int8 [K, N] -> out int8 [Npad/4][Kpad/16][4][16] (int8Padding; out zeroed beforehand). */
export function packInt8Columns(b: Int8Array, K: number, N: number, out: Int8Array): void {
  packColumns(b, K, N, 16, out);
}

/** w fp32 [K, N] -> out [Npad/4][Kpad/4][4][4] (f32Padding; out zeroed beforehand). */
export function packF32Columns(w: Float32Array, K: number, N: number, out: Float32Array): void {
  packColumns(w, K, N, 4, out);
}

/** Padded shape of a bf16 matrix of K inputs and N outputs. */
export function bf16Padding(K: number, N: number): { Kpad: number; Npad: number } {
  return { Kpad: roundUp(K, 8), Npad: roundUp(N, 4) };
}

/**
 * Whether every value of `w` is a bf16 value (its low 16 bits are zero), so a bf16 copy holds it
 * exactly: true of weights widened from a bf16 checkpoint, false of most fp32-trained ones.
 */
export function isBf16Exact(w: Float32Array): boolean {
  const bits = new Uint32Array(w.buffer, w.byteOffset, w.length);
  for (let i = 0; i < bits.length; i++) if ((bits[i]! & 0xffff) !== 0) return false;
  return true;
}

/**
 * w fp32 [K, N], every value bf16 (isBf16Exact) -> out u16 [Npad/4][Kpad/8][4][8] (bf16Padding;
 * out zeroed beforehand). Input i of a row's 8 goes to slot 2i (i < 4) or 2(i - 4) + 1, the
 * order gemvBf16 widens them in.
 */
export function packBf16Columns(w: Float32Array, K: number, N: number, out: Uint16Array): void {
  const bits = new Uint32Array(w.buffer, w.byteOffset, w.length);
  const rowOfBlocks = (roundUp(K, 8) / 8) * 32;
  for (let k = 0; k < K; k++) {
    const i = k % 8;
    const kOff = Math.floor(k / 8) * 32 + (i < 4 ? 2 * i : 2 * (i - 4) + 1);
    const row = k * N;
    for (let n = 0; n < N; n++) out[(n >> 2) * rowOfBlocks + kOff + (n & 3) * 8] = bits[row + n]! >>> 16;
  }
}
