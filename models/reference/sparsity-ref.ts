/**
 * Wanda by hand, for tests only: the checkpoint's torch-layout weights ([out, in] rows) masked by
 * the metric |W[o, i]| * ||X[:, i]||_2, where X is every calibration position's input of that
 * linear, tapped from the reference block (scoring-ref.ts) running the unmasked model over the
 * windows in order. Plain loops and Array.prototype.sort (stable): independent of
 * models/compress/sparsity-*.ts, which the engine uses.
 *
 * @example
 * const masked = wandaByHand(config, weights, calibrationTokens, '2:4', 0.5);
 * new LlamaReference(config, masked).forward(token, pos);
 */
import { calibrationWindows } from '../llama/scoring.ts';
import { headSizeOf, type LlamaConfig, type LlamaLayerWeights, type LlamaWeights } from '../llama/types.ts';
import { applyBlock } from './scoring-ref.ts';

/** One [out, in] weight with Wanda's mask applied; `norm` [in] (null: all ones, magnitude). */
export function maskRowsByHand(w: Float32Array, out: number, inF: number, norm: ArrayLike<number> | null, pattern: '2:4' | 'unstructured', ratio: number): Float32Array {
  const res = w.slice();
  for (let o = 0; o < out; o++) {
    const metric = Array.from({ length: inF }, (_, i) => ({ m: Math.abs(w[o * inF + i]!) * (norm ? norm[i]! : 1), i }));
    const drop: number[] = [];
    if (pattern === 'unstructured') drop.push(...[...metric].sort((a, b) => a.m - b.m).slice(0, Math.floor(inF * ratio)).map((e) => e.i));
    else for (let g = 0; g < inF; g += 4) drop.push(...metric.slice(g, g + 4).sort((a, b) => a.m - b.m).slice(0, 2).map((e) => e.i));
    for (const i of drop) res[o * inF + i] = 0;
  }
  return res;
}

/** The checkpoint with every block linear masked by Wanda on `tokens` (windows of the context). */
export function wandaByHand(config: LlamaConfig, w: LlamaWeights, tokens: readonly number[], pattern: '2:4' | 'unstructured', ratio = 0.5): LlamaWeights {
  const c = config;
  const hs = headSizeOf(c);
  const kvDim = c.nKvHeads * hs;
  const A = c.nHeads * hs;
  const sq = w.layers.map(() => ({ qkv: new Float64Array(c.dim), wo: new Float64Array(A), gateUp: new Float64Array(c.dim), down: new Float64Array(c.hiddenDim) }));
  const add = (acc: Float64Array) => (x: Float32Array) => {
    for (let i = 0; i < x.length; i++) acc[i]! += x[i]! * x[i]!;
  };
  for (const window of calibrationWindows(tokens, c.maxSeqLen)) {
    const keys = w.layers.map(() => new Float32Array(window.length * kvDim));
    const values = w.layers.map(() => new Float32Array(window.length * kvDim));
    window.forEach((t, pos) => {
      const x = w.tokenEmbedding.slice(t * c.dim, (t + 1) * c.dim);
      w.layers.forEach((lw, l) => applyBlock(c, lw, x, pos, keys[l]!, values[l]!, { qkv: add(sq[l]!.qkv), wo: add(sq[l]!.wo), gateUp: add(sq[l]!.gateUp), down: add(sq[l]!.down) }));
    });
  }
  const layers = w.layers.map((lw, l): LlamaLayerWeights => {
    const n = { qkv: sq[l]!.qkv.map(Math.sqrt), wo: sq[l]!.wo.map(Math.sqrt), gateUp: sq[l]!.gateUp.map(Math.sqrt), down: sq[l]!.down.map(Math.sqrt) };
    const m = (x: Float32Array, out: number, inF: number, norm: Float64Array) => maskRowsByHand(x, out, inF, norm, pattern, ratio);
    return {
      ...lw,
      wq: m(lw.wq, A, c.dim, n.qkv),
      wk: m(lw.wk, kvDim, c.dim, n.qkv),
      wv: m(lw.wv, kvDim, c.dim, n.qkv),
      wo: m(lw.wo, c.dim, A, n.wo),
      w1: m(lw.w1, c.hiddenDim, c.dim, n.gateUp),
      w3: m(lw.w3, c.hiddenDim, c.dim, n.gateUp),
      w2: m(lw.w2, c.dim, c.hiddenDim, n.down),
    };
  });
  return { ...w, layers };
}
