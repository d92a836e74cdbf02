/**
 * The scoring oracle is itself checked against the reference forward pass it is built on:
 * `applyBlock` stacked over every block, then the final norm + head, gives `LlamaReference`'s
 * logits (on shapes with Q/K/V biases, an explicit head size and RoPE scaling too), and
 * `exitRates`' last exit is the full model.
 */
import { describe, expect, it } from 'vitest';
import { randomLlama } from '../llama/testing/random-model.ts';
import { headSizeOf, type LlamaConfig } from '../llama/types.ts';
import { LlamaReference, matvec, rmsnorm } from './llama-ref.ts';
import { applyBlock, exitRates } from './scoring-ref.ts';

const shapes: [string, Partial<LlamaConfig>][] = [
  ['GQA, half RoPE', { nLayers: 3 }],
  ['Qwen2-shaped: biases, head size 12, linear RoPE scaling', { nLayers: 3, headDim: 12, qkvBias: true, tiedEmbeddings: true, ropeScaling: { type: 'linear', factor: 4 } }],
  ['llama3 RoPE scaling, interleaved', { nLayers: 2, ropeLayout: 'interleaved', ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8 } }],
];

describe.each(shapes)('%s', (_, overrides) => {
  const { config, weights } = randomLlama(overrides, 5);
  const tokens = [1, 7, 30, 12, 5, 39, 22];

  it('applyBlock over every block + final norm + head reproduces the reference logits (1e-5)', () => {
    const kvDim = config.nKvHeads * headSizeOf(config);
    const keys = weights.layers.map(() => new Float32Array(config.maxSeqLen * kvDim));
    const values = weights.layers.map(() => new Float32Array(config.maxSeqLen * kvDim));
    const ref = new LlamaReference(config, weights);
    tokens.forEach((t, pos) => {
      const x = weights.tokenEmbedding.slice(t * config.dim, (t + 1) * config.dim);
      weights.layers.forEach((lw, l) => applyBlock(config, lw, x, pos, keys[l]!, values[l]!));
      const got = matvec(weights.lmHead, rmsnorm(x, weights.finalNorm, config.normEps), config.vocabSize);
      const want = ref.forward(t, pos);
      const scale = Math.max(...want.map(Math.abs));
      got.forEach((g, i) => expect(Math.abs(g - want[i]!) / scale).toBeLessThan(1e-5));
    });
  });

  it('exitRates: the last exit agrees with itself everywhere; rates are in [0, 1]', () => {
    const layers = Array.from({ length: config.nLayers }, (_, l) => l);
    const r = exitRates(config, weights, layers, tokens, 0.9);
    expect(r.positions).toBe(tokens.length);
    expect(r.agreement[layers.length - 1]).toBe(1);
    expect(Math.abs(r.acceptance[layers.length - 1]! - 1)).toBeLessThan(1e-9);
    for (const v of [...r.agreement, ...r.acceptance]) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1 + 1e-9);
    }
  });
});
