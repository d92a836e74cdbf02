/**
 * Weights into the blocked layouts the decode kernels stream (workers/kernels/assembly/decode.ts):
 * 4 output rows at a time, so one pass over a matrix reads it in address order.
 * - int8: [Npad/4][Kpad/16][4 rows][16 inputs], from onnxruntime's [K, N] (DynamicQuantizeMatMul's B).
 * - fp32: [Npad/4][Kpad/4][4 rows][4 inputs], from [K, N] (MatMul's B).
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
