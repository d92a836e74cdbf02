/**
 * Per-output-channel symmetric int8 quantization of a linear weight, in the layout onnxruntime's
 * `com.microsoft.DynamicQuantizeMatMul` (and `MatMulInteger` + a rescale) takes:
 *   B       int8    [K, N]   MatMul's B as it is (in features by out features), no transpose
 *   b_scale float32 [N]      one scale per column ("per-column quantization" in the op spec)
 *   b_zero_point  omitted    symmetric: 0
 *   dequantized W[k, n] = B[k, n] * b_scale[n]
 * The op quantizes A per tensor to uint8 at run time, so its result also carries activation
 * rounding; this file is only the weight side.
 *
 * Why symmetric and [-127, 127]: a zero point on B would cost the int8 kernels a correction term
 * per output; -128 is left out so the grid is symmetric (|q| * scale <= max |w| exactly).
 *
 * @example
 * const q = quantizePerChannelInt8(w, 576, 192); // w [576, 192]
 * const back = dequantizePerChannelInt8(q);       // |back - w| <= scale[n] / 2
 */
import { WhittleError } from '../../core/errors.ts';

export interface PerChannelInt8Weight {
  K: number;
  N: number;
  /** int8 [K, N] */
  b: Int8Array;
  /** float32 [N] */
  scales: Float32Array;
}

export const QMAX = 127;

/** Quantizes W (float32 [K, N] row-major) with one symmetric scale per column n. */
export function quantizePerChannelInt8(w: Float32Array, K: number, N: number): PerChannelInt8Weight {
  if (!Number.isInteger(K) || !Number.isInteger(N) || K < 1 || N < 1 || w.length !== K * N) {
    throw new WhittleError('INVALID_ARGUMENT', `weight has ${w.length} values, not K * N = ${K} * ${N}`, { K, N, length: w.length });
  }
  const amax = new Float64Array(N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      const a = Math.abs(w[k * N + n]!);
      if (a > amax[n]!) amax[n] = a;
    }
  }
  // An all-zero column gets scale 1 (any scale represents it); the rest map max |w| to 127.
  const scales = Float32Array.from(amax, (a) => (a === 0 ? 1 : Math.fround(a / QMAX)));
  const b = new Int8Array(K * N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      b[k * N + n] = Math.min(QMAX, Math.max(-QMAX, Math.round(w[k * N + n]! / scales[n]!)));
    }
  }
  return { K, N, b, scales };
}

/** float32 [K, N]: B * b_scale, what the op multiplies by (before activation rounding). */
export function dequantizePerChannelInt8(q: PerChannelInt8Weight): Float32Array {
  const { K, N } = q;
  if (q.b.length !== K * N || q.scales.length !== N) {
    throw new WhittleError('INVALID_ARGUMENT', `int8 weight sizes do not match K ${K}, N ${N}`);
  }
  const out = new Float32Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) out[k * N + n] = q.b[k * N + n]! * q.scales[n]!;
  return out;
}
