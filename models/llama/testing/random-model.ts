/**
 * Test support: a small random LLaMA-family model of any shape (seeded), for shape-generic graph
 * tests. Honours `headDim` (Q/K/V widths nHeads*headDim, which may differ from dim) and `qkvBias`
 * (Qwen2's Q/K/V biases, drawn at `biasScale` so they move the logits visibly).
 */
import { headSizeOf, type LlamaConfig, type LlamaLayerWeights, type LlamaWeights } from '../types.ts';
import { createRng as prng } from '../../../core/random.ts';

export function randomLlama(overrides: Partial<LlamaConfig> = {}, seed = 1, biasScale = 0.5): { config: LlamaConfig; weights: LlamaWeights } {
  const config: LlamaConfig = {
    dim: 32, hiddenDim: 48, nLayers: 3, nHeads: 4, nKvHeads: 2, vocabSize: 40, maxSeqLen: 32,
    ropeTheta: 500000, normEps: 1e-6, tiedEmbeddings: false, ropeLayout: 'half', bosTokenId: 1, eosTokenId: 2,
    ...overrides,
  };
  const rand = prng(seed);
  const mat = (n: number, scale: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
  const norm = (n: number) => Float32Array.from({ length: n }, () => 0.8 + 0.4 * rand());
  const { dim, hiddenDim: hid, nHeads, nKvHeads, vocabSize } = config;
  const hs = headSizeOf(config);
  const s = 1 / Math.sqrt(dim);
  const tokenEmbedding = mat(vocabSize * dim, 1);
  return {
    config,
    weights: {
      tokenEmbedding,
      layers: Array.from({ length: config.nLayers }, (): LlamaLayerWeights => {
        const layer: LlamaLayerWeights = {
          attnNorm: norm(dim), wq: mat(nHeads * hs * dim, s * 2), wk: mat(nKvHeads * hs * dim, s * 2), wv: mat(nKvHeads * hs * dim, s),
          wo: mat(dim * nHeads * hs, 1 / Math.sqrt(nHeads * hs)), ffnNorm: norm(dim), w1: mat(hid * dim, s), w2: mat(dim * hid, 1 / Math.sqrt(hid)), w3: mat(hid * dim, s),
        };
        if (config.qkvBias) {
          layer.bq = mat(nHeads * hs, biasScale);
          layer.bk = mat(nKvHeads * hs, biasScale);
          layer.bv = mat(nKvHeads * hs, biasScale);
        }
        return layer;
      }),
      finalNorm: norm(dim),
      lmHead: config.tiedEmbeddings ? tokenEmbedding : mat(vocabSize * dim, s),
    },
  };
}
