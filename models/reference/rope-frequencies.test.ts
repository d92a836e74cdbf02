/**
 * RoPE scaling frequencies pinned to values worked out by hand from the published rule, so the
 * reference (ropeFrequency) and the graphs' tables (models/llama/rope.ts) cannot agree on a
 * shared mistake.
 *
 * Llama 3.1 / 3.2 (`rope_scaling` of Llama-3.2-1B: factor 32, low_freq_factor 1,
 * high_freq_factor 4, original_max_position_embeddings 8192; rope_theta 5e5; head_dim 64), as in
 * transformers' `_compute_llama3_parameters`:
 *   f_i = theta^(-2i/64) = 500000^(-i/32), wavelen_i = 2*pi / f_i
 *   wavelen < 8192/4 = 2048 -> f_i;  wavelen > 8192/1 = 8192 -> f_i / 32;
 *   else s = (8192 / wavelen - 1) / (4 - 1), f'_i = (1 - s) * f_i / 32 + s * f_i
 * Worked values:
 *   i = 0:  f = 1, wavelen 2*pi -> kept: 1
 *   i = 8:  f = 500000^(-1/4) = 0.0376060309..., wavelen 167.08 -> kept
 *   i = 14: f = 0.00321144599..., wavelen 1956.50 (< 2048) -> kept
 *   i = 16: f = 500000^(-1/2) = sqrt(2) / 1000 = 0.00141421356..., wavelen = 2000*pi/sqrt(2) = 4442.883
 *           s = (8192 / 4442.883 - 1) / 3 = 0.2812826..., f' = f * (1 + 31 s) / 32 = 0.0004295567966...
 *   i = 17: f = 0.000938473870..., wavelen 6695.109, s = 0.0745265..., f' = f * (1 + 31 s) / 32 = 9.7082878...e-5
 *   i = 18: f = 0.000622772422..., wavelen 10089.06 (> 8192) -> f / 32 = 1.94616382...e-5
 *   i = 24: f = 500000^(-3/4) = 5.31829...e-5, wavelen 118142 -> f / 32 = 1.66196...e-6
 */
import { describe, expect, it } from 'vitest';
import { ropeInverseFrequencies } from '../llama/rope.ts';
import type { RopeScaling } from '../llama/types.ts';
import { ropeFrequency } from './llama-ref.ts';

const LLAMA32: RopeScaling = { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };

const s16 = (8192 / ((2000 * Math.PI) / Math.SQRT2) - 1) / 3;
const HAND: [number, number][] = [
  [0, 1],
  [8, 1 / Math.pow(500000, 0.25)],
  [14, 0.003211445994752591],
  [16, (Math.SQRT2 / 1000) * (1 + 31 * s16) / 32],
  [17, 9.70828780262767e-5],
  [18, 0.000622772421914596 / 32],
  [24, 1 / Math.pow(500000, 0.75) / 32],
];

describe('llama3 RoPE scaling (Llama-3.2-1B settings), against hand-worked values', () => {
  it('the blend weight at i = 16 is the worked 0.28128', () => {
    expect(s16).toBeCloseTo(0.2812826, 6);
    expect(HAND[3]![1]).toBeCloseTo(0.000429556797, 12);
  });

  it.each(HAND)('pair %i: reference frequency', (i, want) => {
    expect(ropeFrequency(i, 64, 500000, LLAMA32) / want).toBeCloseTo(1, 12);
  });

  it.each(HAND)('pair %i: graph table frequency', (i, want) => {
    expect(ropeInverseFrequencies(64, 500000, LLAMA32)[i]! / want).toBeCloseTo(1, 12);
  });

  it('frequencies fall monotonically across the three bands', () => {
    const f = ropeInverseFrequencies(64, 500000, LLAMA32);
    for (let i = 1; i < 32; i++) expect(f[i]!).toBeLessThan(f[i - 1]!);
  });
});

describe('linear RoPE scaling', () => {
  it('divides every frequency by the factor: pair 3 of 16 at theta 1e4, factor 4 is 10000^(-3/8) / 4', () => {
    const want = Math.pow(10000, -3 / 8) / 4;
    expect(ropeFrequency(3, 16, 10000, { type: 'linear', factor: 4 }) / want).toBeCloseTo(1, 12);
    expect(ropeInverseFrequencies(16, 10000, { type: 'linear', factor: 4 })[3]! / want).toBeCloseTo(1, 12);
  });
});
