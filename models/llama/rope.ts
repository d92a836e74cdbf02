/**
 * RoPE tables for the graphs: the inverse frequency of every rotation pair, with Hugging Face's
 * `rope_scaling` rules applied, and the cos/sin tables the `RotaryEmbedding` nodes index by
 * position. (The test reference, models/reference/llama-ref.ts, computes its own angles; nothing
 * here is shared with it.)
 *
 * Frequencies follow transformers' `modeling_rope_utils.py`:
 * - default: inv_freq[i] = theta^(-2i / hs), i < hs/2
 * - 'linear' (`_compute_linear_scaling_rope_parameters`): inv_freq / factor
 * - 'llama3' (`_compute_llama3_parameters`), with wavelen = 2*pi / inv_freq,
 *   lowWavelen = originalMax / lowFreqFactor, highWavelen = originalMax / highFreqFactor:
 *     wavelen < highWavelen  -> inv_freq                       (high frequencies kept)
 *     wavelen > lowWavelen   -> inv_freq / factor              (low frequencies interpolated)
 *     otherwise              -> (1 - s) * inv_freq / factor + s * inv_freq,
 *                               s = (originalMax / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
 * Neither rule scales the cos/sin themselves (transformers' attention_factor is 1 for both).
 *
 * Computed in float64 (transformers computes in float32): the tables are rounded to float32 once,
 * at the end.
 *
 * @example
 * const inv = ropeInverseFrequencies(64, 500000, { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
 */
import type { RopeScaling } from './types.ts';

/** Inverse frequency of each pair i < headSize/2: [headSize / 2]. */
export function ropeInverseFrequencies(headSize: number, theta: number, scaling?: RopeScaling): Float64Array {
  const half = headSize / 2;
  const inv = new Float64Array(half); // [hs/2]
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / headSize);
  if (!scaling) return inv;
  if (scaling.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] = inv[i]! / scaling.factor;
    return inv;
  }
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: orig } = scaling;
  const lowWavelen = orig / lowFreqFactor;
  const highWavelen = orig / highFreqFactor;
  for (let i = 0; i < half; i++) {
    const f = inv[i]!;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) continue;
    if (wavelen > lowWavelen) {
      inv[i] = f / factor;
      continue;
    }
    const s = (orig / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    inv[i] = (1 - s) * (f / factor) + s * f;
  }
  return inv;
}

/** cos/sin of position p times each inverse frequency: two [positions, hs/2] row-major tables. */
export function ropeTables(inverseFrequencies: Float64Array, positions: number): { cos: Float32Array; sin: Float32Array } {
  const half = inverseFrequencies.length;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * inverseFrequencies[i]!;
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
