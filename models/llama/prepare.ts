/**
 * Checkpoint weights -> the layout the graphs use. Done once per model load; `setPlan` rebuilds
 * graphs from these arrays without touching the file again. The result shares no memory with
 * the input, so the checkpoint bytes can be dropped after this.
 *
 * - Linear weights are transposed to [in, out] so every projection is one plain MatMul
 *   (x [1, S, in] @ W [in, out]); Gemm would avoid the transpose but only takes 2-D inputs.
 * - Q, K and V are fused into one [dim, (H + 2K) * hs] matrix, gate and up into [dim, 2 * hidden]:
 *   one MatMul instead of three (two), since onnxruntime-web pays per node.
 * - Q rows are pre-multiplied by 1/sqrt(headSize) (RoPE is linear, so this commutes), which
 *   removes the score scaling node.
 * - 'half' (HF) RoPE layouts are permuted to 'interleaved' on Q and K rows, so the graph has one
 *   convention: pair i of a head moves from dims (i, i + hs/2) to (2i, 2i + 1). Q.K dot products
 *   are unchanged because both sides get the same permutation.
 */
import { WhittleError } from '../../core/errors.ts';
import type { LlamaConfig, LlamaWeights } from './types.ts';

export interface PreparedLayer {
  attnNorm: Float32Array; // [dim]
  qkv: Float32Array; // [dim, (nHeads + 2 * nKvHeads) * headSize], columns: q | k | v
  wo: Float32Array; // [nHeads * headSize, dim]
  ffnNorm: Float32Array; // [dim]
  gateUp: Float32Array; // [dim, 2 * hidden], columns: gate | up
  down: Float32Array; // [hidden, dim]
}

export interface PreparedWeights {
  config: LlamaConfig;
  headSize: number;
  embedding: Float32Array; // [vocab, dim] (row gather; not transposed)
  layers: PreparedLayer[];
  finalNorm: Float32Array; // [dim]
  head: Float32Array; // [dim, vocab]
  ropeCos: Float32Array; // [maxSeqLen, headSize / 2]
  ropeSin: Float32Array; // [maxSeqLen, headSize / 2]
}

/** [rows, cols] row-major -> [cols, rows], writing into `out` at column offset `col0` of width `outCols`. */
function transposeInto(src: Float32Array, rows: number, cols: number, out: Float32Array, outCols: number, col0: number, rowScale = 1, rowOrder?: (r: number) => number): void {
  for (let r = 0; r < rows; r++) {
    const srcRow = rowOrder ? rowOrder(r) : r;
    const base = srcRow * cols;
    for (let c = 0; c < cols; c++) out[c * outCols + col0 + r] = src[base + c]! * rowScale;
  }
}

/** Checks every array against the config; a mismatch is a BAD_MODEL error naming the tensor. */
export function checkWeightShapes(config: LlamaConfig, weights: LlamaWeights): void {
  const c = config;
  if (c.dim % c.nHeads !== 0 || c.nHeads % c.nKvHeads !== 0 || (c.dim / c.nHeads) % 2 !== 0) {
    throw new WhittleError('BAD_MODEL', `config: dim ${c.dim}, ${c.nHeads} heads, ${c.nKvHeads} KV heads do not make even, grouped heads`);
  }
  const hs = c.dim / c.nHeads;
  const expect = (name: string, arr: Float32Array | undefined, n: number) => {
    if (!arr || arr.length !== n) {
      throw new WhittleError('BAD_MODEL', `weights: ${name} has ${arr?.length ?? 0} values, the config implies ${n}`, { tensor: name, expected: n, actual: arr?.length ?? 0 });
    }
  };
  expect('tokenEmbedding', weights.tokenEmbedding, c.vocabSize * c.dim);
  expect('finalNorm', weights.finalNorm, c.dim);
  expect('lmHead', weights.lmHead, c.vocabSize * c.dim);
  if (weights.layers.length !== c.nLayers) {
    throw new WhittleError('BAD_MODEL', `weights: ${weights.layers.length} layers, the config says ${c.nLayers}`);
  }
  weights.layers.forEach((l, i) => {
    expect(`layers.${i}.attnNorm`, l.attnNorm, c.dim);
    expect(`layers.${i}.wq`, l.wq, c.nHeads * hs * c.dim);
    expect(`layers.${i}.wk`, l.wk, c.nKvHeads * hs * c.dim);
    expect(`layers.${i}.wv`, l.wv, c.nKvHeads * hs * c.dim);
    expect(`layers.${i}.wo`, l.wo, c.dim * c.nHeads * hs);
    expect(`layers.${i}.ffnNorm`, l.ffnNorm, c.dim);
    expect(`layers.${i}.w1`, l.w1, c.hiddenDim * c.dim);
    expect(`layers.${i}.w2`, l.w2, c.dim * c.hiddenDim);
    expect(`layers.${i}.w3`, l.w3, c.hiddenDim * c.dim);
  });
}

export function prepareWeights(config: LlamaConfig, weights: LlamaWeights): PreparedWeights {
  checkWeightShapes(config, weights);
  const { dim, nHeads, nKvHeads, hiddenDim, vocabSize, maxSeqLen } = config;
  const hs = dim / nHeads;
  const half = hs / 2;
  const qkvCols = (nHeads + 2 * nKvHeads) * hs;
  // Row r of a 'half'-layout head h holds pair i = r % half at (i, i + half); interleaved wants (2i, 2i+1).
  const toInterleaved = config.ropeLayout === 'half' ? (r: number) => {
    const h = Math.floor(r / hs);
    const j = r % hs; // destination dim within the head (interleaved)
    const src = j % 2 === 0 ? j / 2 : half + (j - 1) / 2;
    return h * hs + src;
  } : undefined;

  const layers = weights.layers.map((l): PreparedLayer => {
    const qkv = new Float32Array(dim * qkvCols);
    transposeInto(l.wq, nHeads * hs, dim, qkv, qkvCols, 0, 1 / Math.sqrt(hs), toInterleaved);
    transposeInto(l.wk, nKvHeads * hs, dim, qkv, qkvCols, nHeads * hs, 1, toInterleaved);
    transposeInto(l.wv, nKvHeads * hs, dim, qkv, qkvCols, (nHeads + nKvHeads) * hs);
    const wo = new Float32Array(nHeads * hs * dim);
    transposeInto(l.wo, dim, nHeads * hs, wo, dim, 0);
    const gateUp = new Float32Array(dim * 2 * hiddenDim);
    transposeInto(l.w1, hiddenDim, dim, gateUp, 2 * hiddenDim, 0);
    transposeInto(l.w3, hiddenDim, dim, gateUp, 2 * hiddenDim, hiddenDim);
    const down = new Float32Array(hiddenDim * dim);
    transposeInto(l.w2, dim, hiddenDim, down, dim, 0);
    return { attnNorm: l.attnNorm.slice(), qkv, wo, ffnNorm: l.ffnNorm.slice(), gateUp, down };
  });
  const head = new Float32Array(dim * vocabSize);
  transposeInto(weights.lmHead, vocabSize, dim, head, vocabSize, 0);

  const ropeCos = new Float32Array(maxSeqLen * half);
  const ropeSin = new Float32Array(maxSeqLen * half);
  for (let p = 0; p < maxSeqLen; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p / Math.pow(config.ropeTheta, (2 * i) / hs);
      ropeCos[p * half + i] = Math.cos(angle);
      ropeSin[p * half + i] = Math.sin(angle);
    }
  }
  // Everything is a copy (the few views are sliced too), so the checkpoint's buffer can be
  // garbage-collected once the caller drops it: memory stays at one copy of the weights.
  return { config, headSize: hs, embedding: weights.tokenEmbedding.slice(), layers, finalNorm: weights.finalNorm.slice(), head, ropeCos, ropeSin };
}
