import { describe, expect, it } from 'vitest';
import { readLlama2cCheckpoint } from '../import/llama2c/checkpoint.ts';
import { readLocalModelFile } from '../local.ts';
import { LlamaReference, referenceGreedy, rope } from './llama-ref.ts';

/** run.c's greedy output for stories260K from BOS (token 1), 20 steps. */
const GOLDEN = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];

describe('LlamaReference', () => {
  it('reproduces run.c greedy tokens for stories260K', () => {
    const { config, weights } = readLlama2cCheckpoint(readLocalModelFile('stories260K', 'stories260K.bin'));
    expect(referenceGreedy(new LlamaReference(config, weights), [1], 20)).toEqual(GOLDEN);
  });

  it("rotates 'half' layout pairs like 'interleaved' after the matching permutation", () => {
    const hs = 8;
    const inter = Float32Array.from({ length: 2 * hs }, (_, i) => Math.sin(i + 1));
    // half layout puts pair i at (i, i + hs/2): element 2i -> i, 2i+1 -> i + hs/2
    const half = new Float32Array(inter.length);
    for (let h = 0; h < 2; h++) for (let i = 0; i < hs / 2; i++) {
      half[h * hs + i] = inter[h * hs + 2 * i]!;
      half[h * hs + i + hs / 2] = inter[h * hs + 2 * i + 1]!;
    }
    rope(inter, 2, hs, 7, 10000, 'interleaved');
    rope(half, 2, hs, 7, 10000, 'half');
    for (let h = 0; h < 2; h++) for (let i = 0; i < hs / 2; i++) {
      expect(half[h * hs + i]).toBeCloseTo(inter[h * hs + 2 * i]!, 6);
      expect(half[h * hs + i + hs / 2]).toBeCloseTo(inter[h * hs + 2 * i + 1]!, 6);
    }
  });
});
