import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/random.ts';
import { defaultRates, dropProbabilities, drawDrops, normalizeMinMax, relevanceIndex, resolveDropout, vote } from './dropout-members.ts';

describe('vote', () => {
  it('takes the majority', () => {
    expect(vote([5, 7, 5], 7)).toEqual({ token: 5, margin: 1 / 3 });
    expect(vote([9, 9, 9], 1)).toEqual({ token: 9, margin: 1 });
  });
  it('gives a tie to the base token, whether or not it is among the tied', () => {
    expect(vote([5, 7, 8], 7).token).toBe(7);
    expect(vote([5, 7, 8], 2).token).toBe(2);
    expect(vote([5, 5, 8, 8], 3)).toEqual({ token: 3, margin: 0 });
  });
  it('with no members keeps the base token', () => {
    expect(vote([], 4).token).toBe(4);
  });
});

describe('drop probabilities', () => {
  const norm = normalizeMinMax([2, 4, 3, 6]); // -> 0, 0.5, 0.25, 1
  it('normalize min-max; equal values rank nothing (all 1: each member drops at its rate)', () => {
    expect([...norm]).toEqual([0, 0.5, 0.25, 1]);
    expect([...normalizeMinMax([3, 3])]).toEqual([1, 1]);
  });
  it('q_i = q_min + (r_m - q_min) * norm(epi_i) over the relevant tokens', () => {
    const q = dropProbabilities([1, 3, 0], norm, 0.7, 0.1, 'epistemic');
    expect(q[0]).toBeCloseTo(0.1 + 0.6 * 0.5, 12);
    expect(q[1]).toBeCloseTo(0.7, 12);
    expect(q[2]).toBeCloseTo(0.1, 12);
  });
  it("'uniform' spreads the same expected drops evenly", () => {
    const guided = dropProbabilities([1, 3, 0], norm, 0.7, 0.1, 'epistemic');
    const uniform = dropProbabilities([1, 3, 0], norm, 0.7, 0.1, 'uniform');
    const mean = (guided[0]! + guided[1]! + guided[2]!) / 3;
    expect([...uniform].every((x) => Math.abs(x - mean) < 1e-12)).toBe(true);
  });
  it('draws drop each token with its probability (seeded: 20000 draws within 1.5%)', () => {
    const relevant = [0, 1, 2];
    const q = Float64Array.of(0.1, 0.5, 0.9);
    const rng = createRng(11);
    const counts = [0, 0, 0];
    const N = 20000;
    for (let t = 0; t < N; t++) for (const i of drawDrops(relevant, q, rng)) counts[i]!++;
    counts.forEach((c, i) => expect(Math.abs(c / N - q[i]!)).toBeLessThan(0.015));
    // The same seed draws the same drops.
    const a = createRng(5);
    const b = createRng(5);
    for (let t = 0; t < 50; t++) expect(drawDrops(relevant, q, a)).toEqual(drawDrops(relevant, q, b));
  });
});

describe('relevance', () => {
  it('maps a token to the context tokens whose top-k holds it', () => {
    const index = relevanceIndex(Int32Array.of(4, 9, 9, 2, 4, -1), 2);
    expect(index.get(4)).toEqual([0, 2]);
    expect(index.get(9)).toEqual([0, 1]);
    expect(index.get(2)).toEqual([1]);
    expect(index.has(-1)).toBe(false);
  });
});

describe('resolveDropout', () => {
  const prompt = [1, 10, 11, 12, 13];
  it('defaults: 3 members at [0.3, 0.5, 0.7], topK 5, q_min 0.1, guided', () => {
    const s = resolveDropout({ context: [[1, 3], [2, 5]] }, prompt, 1, 32, 7);
    expect(s).toMatchObject({ positions: [1, 2, 3, 4], members: 3, topK: 5, minRate: 0.1, seed: 7, guidance: 'epistemic' });
    expect(s.rates.map((r) => +r.toFixed(12))).toEqual([0.3, 0.5, 0.7]);
    expect(defaultRates(1)).toEqual([0.5]);
  });
  it("'prompt' marks every token but a leading BOS", () => {
    expect(resolveDropout({ context: 'prompt' }, prompt, 1, 32, 0).positions).toEqual([1, 2, 3, 4]);
    expect(resolveDropout({ context: 'prompt' }, [10, 11], 1, 32, 0).positions).toEqual([0, 1]);
  });
  it.each([
    [{ context: [[0, 6]] }],
    [{ context: [[3, 3]] }],
    [{ context: [[-1, 2]] }],
    [{ context: 'all' }],
    [{ context: 'prompt', members: 17 }],
    [{ context: 'prompt', members: 1.5 }],
    [{ context: 'prompt', rates: [0.3, 1.2, 0.5] }],
    [{ context: 'prompt', topK: 0 }],
    [{ context: 'prompt', topK: 33 }],
    [{ context: 'prompt', minRate: -0.1 }],
    [{ context: 'prompt', seed: 0.5 }],
    [{ context: 'prompt', guidance: 'random' }],
  ])('rejects %j with INVALID_ARGUMENT', (options) => {
    expect(() => resolveDropout(options as never, prompt, 1, 32, 0)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
  it('other member counts get evenly spread default rates; given rates need one per member', () => {
    expect(resolveDropout({ context: 'prompt', members: 2 }, prompt, 1, 32, 0).rates).toEqual([0.3, 0.7]);
    expect(() => resolveDropout({ context: 'prompt', members: 2, rates: [0.5] }, prompt, 1, 32, 0)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
