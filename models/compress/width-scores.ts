/**
 * Importance scores for structured width pruning, from calibration statistics of each block's
 * o_proj and down_proj inputs (workers/text/activation-stats.ts) and those linears' weights, in
 * the prepared [in, out] layout (models/llama/prepare.ts): input channel c's weights are row c.
 *
 * Units: a KV group (one KV head and the nHeads / nKvHeads query heads that read it: GQA can
 * only lose whole groups, or the grouping breaks) and an FFN channel (one gate/up column and the
 * matching down row).
 *
 * - FLAP (An et al. 2024, "Fluctuation-based adaptive structured pruning", their `prune_flap`
 *   with the WIFV metric): channel c of a linear scores var(x_c) * ||W[c, :]||^2, the fluctuation
 *   of the input times the squared norm of the weights it multiplies; removing a channel whose
 *   input barely varies loses little once its mean is put back as a bias (width-slice.ts).
 *   Attention channel scores are squared, as in their code. `flapScores` returns these raw
 *   per-channel scores; width-select.ts standardizes and groups them.
 * - Wanda-sp (the structured Wanda baseline of the same paper, `prune_wanda_sp`): channel c scores
 *   mean over outputs of |W[c, o]| * ||x_c|| (the L2 norm over calibration positions); a KV group
 *   scores the sum over its channels. Its ratio is uniform across layers (width-select.ts).
 *
 * Plain functions over typed arrays; the test checks them against a naive reimplementation.
 *
 * @example
 * const s = flapScores(layer.wo, layer.down, stats.wo.variance, stats.down.variance, dim);
 * // s.attention [nHeads * hs] per o_proj input channel, s.ffn [hidden] per down_proj input channel
 */
import { WhittleError } from '../../core/errors.ts';

/** Per-input-channel scores of one block: o_proj's inputs (query heads' channels) and down_proj's (FFN channels). */
export interface ChannelScores {
  attention: Float64Array; // [nHeads * hs]
  ffn: Float64Array; // [hidden]
}

/** sum_o W[c, o]^2 per row c of a prepared [in, out] matrix. */
function rowSquaredNorms(w: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    for (let o = 0; o < cols; o++) acc += w[r * cols + o]! ** 2;
    out[r] = acc;
  }
  return out;
}

/** mean_o |W[c, o]| per row c. */
function rowMeanAbs(w: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    for (let o = 0; o < cols; o++) acc += Math.abs(w[r * cols + o]!);
    out[r] = acc / cols;
  }
  return out;
}

function rowsOf(name: string, w: Float32Array, stat: Float32Array, dim: number): number {
  if (stat.length === 0 || w.length !== stat.length * dim) {
    throw new WhittleError('INVALID_ARGUMENT', `${name}: ${w.length} weights do not make ${stat.length} input channels of ${dim} outputs`);
  }
  return stat.length;
}

/**
 * FLAP's WIFV scores. `wo` [nHeads * hs, dim] and `down` [hidden, dim] are prepared (fp32)
 * weights; `woVariance` / `downVariance` the per-channel input variances over calibration.
 */
export function flapScores(wo: Float32Array, down: Float32Array, woVariance: Float32Array, downVariance: Float32Array, dim: number): ChannelScores {
  const A = rowsOf('wo', wo, woVariance, dim);
  const F = rowsOf('down', down, downVariance, dim);
  const woNorm = rowSquaredNorms(wo, A, dim);
  const downNorm = rowSquaredNorms(down, F, dim);
  return {
    attention: Float64Array.from(woNorm, (n, c) => (woVariance[c]! * n) ** 2),
    ffn: Float64Array.from(downNorm, (n, j) => downVariance[j]! * n),
  };
}

/**
 * Wanda-sp's scores: mean_o |W[c, o]| * ||x_c||, where ||x_c|| = sqrt(positions * meanSquare_c)
 * (the constant sqrt(positions) does not change a ranking, but keeps the values Wanda's).
 */
export function wandaSpScores(wo: Float32Array, down: Float32Array, woMeanSquare: Float32Array, downMeanSquare: Float32Array, positions: number, dim: number): ChannelScores {
  const A = rowsOf('wo', wo, woMeanSquare, dim);
  const F = rowsOf('down', down, downMeanSquare, dim);
  const woAbs = rowMeanAbs(wo, A, dim);
  const downAbs = rowMeanAbs(down, F, dim);
  return {
    attention: Float64Array.from(woAbs, (a, c) => a * Math.sqrt(positions * woMeanSquare[c]!)),
    ffn: Float64Array.from(downAbs, (a, j) => a * Math.sqrt(positions * downMeanSquare[j]!)),
  };
}
