/**
 * Weights into the blocked layouts the decode kernels stream (workers/kernels/assembly/decode.ts):
 * 4 output rows at a time, so one pass over a matrix reads it in address order.
 * - int8: [Npad/4][Kpad/16][4 rows][16 inputs], from onnxruntime's [K, N] (DynamicQuantizeMatMul's B).
 * - fp32: [Npad/4][Kpad/4][4 rows][4 inputs], from [K, N] (MatMul's B) or from rows [N, K] (a tied table).
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

/** b int8 [K, N] -> out int8 [Npad/4][Kpad/16][4][16] (out zeroed beforehand, Kpad * Npad long). */
export function packInt8Columns(b: Int8Array, K: number, N: number, out: Int8Array): void {
  const { Kpad } = int8Padding(K, N);
  const kBlocks = Kpad / 16;
  for (let k = 0; k < K; k++) {
    const kOff = (k >> 4) * 64 + (k & 15);
    const row = k * N;
    for (let n = 0; n < N; n++) out[(n >> 2) * kBlocks * 64 + kOff + (n & 3) * 16] = b[row + n]!;
  }
}

/** w fp32 [K, N] -> out [Npad/4][Kpad/4][4][4] (out zeroed beforehand, Kpad * Npad long). */
export function packF32Columns(w: Float32Array, K: number, N: number, out: Float32Array): void {
  const { Kpad } = f32Padding(K, N);
  const kBlocks = Kpad / 4;
  for (let k = 0; k < K; k++) {
    const kOff = (k >> 2) * 16 + (k & 3);
    const row = k * N;
    for (let n = 0; n < N; n++) out[(n >> 2) * kBlocks * 16 + kOff + (n & 3) * 4] = w[row + n]!;
  }
}

/** rows fp32 [N, K] (a tied embedding table: one row per output) -> out [Npad/4][Kpad/4][4][4]. */
export function packF32Rows(rows: Float32Array, K: number, N: number, out: Float32Array): void {
  const { Kpad } = f32Padding(K, N);
  const kBlocks = Kpad / 4;
  for (let n = 0; n < N; n++) {
    const base = (n >> 2) * kBlocks * 16 + (n & 3) * 4;
    for (let k = 0; k < K; k++) out[base + (k >> 2) * 16 + (k & 3)] = rows[n * K + k]!;
  }
}
