import { describe, expect, it } from 'vitest';
import { applyRepetitionPenalty, argmax, createRng, drawFrom, filterTopKTopP, sample, softmax } from './sampler.ts';

describe('sampler', () => {
  it('argmax takes the first maximum', () => {
    expect(argmax(new Float32Array([1, 3, 3, -1]))).toBe(1);
  });

  it('softmax sums to one and sharpens with low temperature', () => {
    const p = softmax(new Float32Array([1, 2, 3]));
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(p[2]).toBeCloseTo(Math.exp(3) / (Math.exp(1) + Math.exp(2) + Math.exp(3)), 12);
    expect(softmax(new Float32Array([1, 2, 3]), 0.1)[2]).toBeGreaterThan(0.99);
  });

  it('repetition penalty divides positive and multiplies negative logits of seen tokens only', () => {
    const out = applyRepetitionPenalty(new Float32Array([2, -2, 2]), [0, 1, 1], 2);
    expect(Array.from(out)).toEqual([1, -4, 2]);
  });

  it('top-k keeps k tokens, top-p the smallest nucleus reaching p, renormalized', () => {
    const p = Float64Array.from([0.1, 0.4, 0.2, 0.3]);
    expect(Array.from(filterTopKTopP(p, 2))).toEqual([0, 0.4 / 0.7, 0, 0.3 / 0.7]);
    const nucleus = filterTopKTopP(p, 0, 0.65); // 0.4 + 0.3 >= 0.65
    expect(Array.from(nucleus).map((x) => +x.toFixed(6))).toEqual([0, +(0.4 / 0.7).toFixed(6), 0, +(0.3 / 0.7).toFixed(6)]);
  });

  it('draws by cumulative probability', () => {
    const p = Float64Array.from([0.25, 0, 0.75]);
    expect(drawFrom(p, 0.1)).toBe(0);
    expect(drawFrom(p, 0.3)).toBe(2);
    expect(drawFrom(p, 0.999999999)).toBe(2);
  });

  it('the seeded PRNG is reproducible and roughly uniform', () => {
    const a = createRng(42);
    const b = createRng(42);
    const xs = Array.from({ length: 10000 }, () => a());
    expect(xs.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => b()));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.48);
    expect(mean).toBeLessThan(0.52);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });

  it('sampling frequencies follow the distribution; greedy and temperature 0 are argmax', () => {
    const logits = Float32Array.from([Math.log(0.2), Math.log(0.5), Math.log(0.3)]);
    const rng = createRng(1);
    const counts = [0, 0, 0];
    for (let i = 0; i < 20000; i++) counts[sample(logits, {}, [], rng)]!++;
    expect(counts[0]! / 20000).toBeCloseTo(0.2, 1);
    expect(counts[1]! / 20000).toBeCloseTo(0.5, 1);
    expect(sample(logits, { greedy: true }, [], rng)).toBe(1);
    expect(sample(logits, { temperature: 0 }, [], rng)).toBe(1);
    expect(sample(logits, { topK: 1 }, [], rng)).toBe(1);
  });
});
