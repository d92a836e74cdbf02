/**
 * Test oracle for width pruning (models/compress/width-slice.ts): the checkpoint's [out, in]
 * arrays narrowed to the kept KV groups and FFN channels by plain index lists, and FLAP's
 * compensation biases summed term by term from the input means, for `LlamaReference` (which reads
 * a narrowed block's head and channel counts off its arrays). Shares nothing with the production
 * slicing, which works on the prepared, transposed and fused layout. Tests only.
 *
 * @example
 * const ref = new LlamaReference(config, narrowByHand(config, weights, width, means));
 */
import { headSizeOf, type LlamaConfig, type LlamaLayerWeights, type LlamaWeights, type WidthPlan } from '../llama/types.ts';
import type { ReferenceLayerWeights } from './llama-ref.ts';

/** A block's o_proj input means [nHeads * hs] and down_proj input means [hidden]. */
export interface MeansByHand {
  wo: Float32Array;
  down: Float32Array;
}

/** The checkpoint's arrays narrowed by hand, FLAP's biases summed by hand from `means`. */
export function narrowByHand(c: LlamaConfig, w: LlamaWeights, width: WidthPlan, means: readonly (MeansByHand | undefined)[]): LlamaWeights {
  const hs = headSizeOf(c);
  const G = c.nHeads / c.nKvHeads;
  const rows = (m: Float32Array, cols: number, keep: number[]) => Float32Array.from(keep.flatMap((r) => Array.from(m.subarray(r * cols, (r + 1) * cols))));
  const cols = (m: Float32Array, nRows: number, nCols: number, keep: number[]) => {
    const out: number[] = [];
    for (let r = 0; r < nRows; r++) for (const k of keep) out.push(m[r * nCols + k]!);
    return Float32Array.from(out);
  };
  const layers = w.layers.map((l: LlamaLayerWeights, i): ReferenceLayerWeights => {
    const kv = width.kvHeads[i]!;
    const ffn = width.ffn[i]!;
    const qRows = kv.flatMap((g) => Array.from({ length: G * hs }, (_, r) => g * G * hs + r));
    const kvRows = kv.flatMap((g) => Array.from({ length: hs }, (_, r) => g * hs + r));
    const out: ReferenceLayerWeights = {
      attnNorm: l.attnNorm,
      ffnNorm: l.ffnNorm,
      wq: rows(l.wq, c.dim, qRows),
      wk: rows(l.wk, c.dim, kvRows),
      wv: rows(l.wv, c.dim, kvRows),
      wo: cols(l.wo, c.dim, c.nHeads * hs, qRows),
      w1: rows(l.w1, c.dim, ffn),
      w3: rows(l.w3, c.dim, ffn),
      w2: cols(l.w2, c.dim, c.hiddenDim, ffn),
    };
    if (l.bq) {
      out.bq = Float32Array.from(qRows, (r) => l.bq![r]!);
      out.bk = Float32Array.from(kvRows, (r) => l.bk![r]!);
      out.bv = Float32Array.from(kvRows, (r) => l.bv![r]!);
    }
    if (width.bias) {
      out.woBias = new Float32Array(c.dim);
      out.downBias = new Float32Array(c.dim);
      for (let o = 0; o < c.dim; o++) {
        let a = 0;
        for (let ch = 0; ch < c.nHeads * hs; ch++) if (!qRows.includes(ch)) a += means[i]!.wo[ch]! * l.wo[o * c.nHeads * hs + ch]!;
        let d = 0;
        for (let j = 0; j < c.hiddenDim; j++) if (!ffn.includes(j)) d += means[i]!.down[j]! * l.w2[o * c.hiddenDim + j]!;
        out.woBias[o] = a;
        out.downBias[o] = d;
      }
    }
    return out;
  });
  return { ...w, layers };
}
