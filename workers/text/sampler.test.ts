import { describe, expect, it } from 'vitest';
import { acceptDraft, applyRepetitionPenalty, argmax, createRng, drawFrom, filterTopKTopP, residualDistribution, sample, softmax, tokenDistribution } from './sampler.ts';

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

describe('speculative sampling rule', () => {
  /** One draft-and-verify step: x ~ q, accept with min(1, p/q), else a draw from norm(max(0, p - q)). */
  const speculativeDraw = (p: Float64Array, q: Float64Array, rng: () => number): number => {
    const x = drawFrom(q, rng());
    return acceptDraft(p, q, x, rng()) ? x : drawFrom(residualDistribution(p, q), rng());
  };

  it('gives tokens distributed as the verifier p, whatever the draft q (Monte Carlo, 200k draws)', () => {
    const rng = createRng(7);
    const cases = [
      [softmax(new Float32Array([2, 1, 0.5, -1, 0])), softmax(new Float32Array([0, 1, 2, 0.5, -2]))], // disagreeing
      [softmax(new Float32Array([3, 0, 0, 0, 0])), softmax(new Float32Array([3, 0, 0, 0, 0]))], // identical: always accepted
      [filterTopKTopP(softmax(new Float32Array([1, 2, 3, 4, 5])), 2), softmax(new Float32Array([5, 4, 3, 2, 1]))], // p has zeros
    ] as const;
    for (const [p, q] of cases) {
      const n = 200_000;
      const counts = new Float64Array(p.length);
      for (let i = 0; i < n; i++) counts[speculativeDraw(p, q, rng)]!++;
      // Total variation distance to p; the sampling noise of 200k draws over 5 outcomes is ~0.002.
      const tv = 0.5 * p.reduce((s, pi, i) => s + Math.abs(pi - counts[i]! / n), 0);
      expect(tv).toBeLessThan(0.006);
      expect(p.every((pi, i) => pi > 0 || counts[i] === 0)).toBe(true); // never a token p forbids
    }
  });

  it('accepts with probability min(1, p/q) and falls back to p when the residual is empty', () => {
    const p = Float64Array.of(0.5, 0.5);
    const q = Float64Array.of(0.25, 0.75);
    expect(acceptDraft(p, q, 0, 0.99)).toBe(true); // p/q = 2: always
    expect(acceptDraft(p, q, 1, 0.66)).toBe(true); // p/q = 2/3
    expect(acceptDraft(p, q, 1, 0.67)).toBe(false);
    expect(Array.from(residualDistribution(p, q))).toEqual([1, 0]);
    expect(Array.from(residualDistribution(p, p))).toEqual([0.5, 0.5]);
  });

  it('tokenDistribution is one-hot at the (penalized) argmax when greedy, and what sample draws from otherwise', () => {
    const logits = new Float32Array([1, 3, 2]);
    expect(Array.from(tokenDistribution(logits, { greedy: true }, []))).toEqual([0, 1, 0]);
    expect(Array.from(tokenDistribution(logits, { greedy: true, repetitionPenalty: 4 }, [1]))).toEqual([0, 0, 1]);
    const opts = { temperature: 0.7, topK: 2 };
    const d = tokenDistribution(logits, opts, []);
    expect(d[0]).toBe(0);
    const a = createRng(3);
    const b = createRng(3);
    for (let i = 0; i < 50; i++) expect(sample(logits, opts, [], a)).toBe(drawFrom(d, b()));
  });
});
