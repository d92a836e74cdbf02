import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/random.ts';
import { contextUncertainty, topKIds } from './uncertainty-ref.ts';

/**
 * The reference, written the naive way on purpose: probabilities by exp / sum (no log-softmax),
 * the mean distribution by averaging them, H = -Σ p ln p, KL = Σ p ln(p / p̄), top-k by sorting.
 */
function naive(logits: number[][]): { h: number[]; kl: number[]; top: number[][] } {
  const probs = logits.map((row) => {
    const max = Math.max(...row);
    const e = row.map((x) => Math.exp(x - max));
    const z = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / z);
  });
  const V = logits[0]!.length;
  const mean = Array.from({ length: V }, (_, v) => probs.reduce((a, p) => a + p[v]!, 0) / probs.length);
  const h = probs.map((p) => -p.reduce((a, x) => a + (x > 0 ? x * Math.log(x) : 0), 0));
  const kl = probs.map((p) => p.reduce((a, x, v) => a + (x > 0 ? x * Math.log(x / mean[v]!) : 0), 0));
  const top = logits.map((row) => row.map((x, v) => [x, v] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, v]) => v));
  return { h, kl, top };
}

function randomLogits(n: number, V: number, seed: number, scale: number): number[][] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => Array.from({ length: V }, () => Math.fround((rng() * 2 - 1) * scale)));
}

describe('contextUncertainty', () => {
  it.each([
    [7, 50, 1, 3],
    [12, 512, 2, 12], // peaked rows, a stories260K-sized vocabulary
    [1, 20, 3, 5], // one marked token: it is the mean, so KL is 0
  ])('matches a naive float64 computation (n %i, vocab %i, seed %i)', (n, V, seed, scale) => {
    const rows = randomLogits(n, V, seed, scale);
    const want = naive(rows);
    const u = contextUncertainty(Float32Array.from(rows.flat()), n, V, 5);
    for (let i = 0; i < n; i++) {
      expect(u.aleatoric[i]).toBeCloseTo(want.h[i]!, 10);
      expect(u.epistemic[i]).toBeCloseTo(want.kl[i]!, 10);
      expect([...u.topK.subarray(i * 5, i * 5 + 5)]).toEqual(want.top[i]!.slice(0, 5));
    }
    if (n === 1) expect(u.epistemic[0]).toBeCloseTo(0, 12);
  });

  it('the mean KL to the mixture is its entropy minus the mean entropy (Jensen-Shannon identity)', () => {
    const n = 9;
    const V = 64;
    const rows = randomLogits(n, V, 4, 4);
    const u = contextUncertainty(Float32Array.from(rows.flat()), n, V, 3);
    const probs = rows.map((r) => {
      const z = r.reduce((a, x) => a + Math.exp(x), 0);
      return r.map((x) => Math.exp(x) / z);
    });
    const mix = Array.from({ length: V }, (_, v) => probs.reduce((a, p) => a + p[v]!, 0) / n);
    const hMix = -mix.reduce((a, x) => a + x * Math.log(x), 0);
    const meanKl = u.epistemic.reduce((a, b) => a + b, 0) / n;
    const meanH = u.aleatoric.reduce((a, b) => a + b, 0) / n;
    expect(meanKl).toBeCloseTo(hMix - meanH, 10);
  });

  it('identical rows have no epistemic uncertainty; a one-hot row has no aleatoric one', () => {
    const V = 10;
    const row = Array.from({ length: V }, (_, v) => v * 0.3);
    const u = contextUncertainty(Float32Array.from([...row, ...row]), 2, V, 2);
    expect(u.epistemic[0]).toBeCloseTo(0, 12);
    expect(u.epistemic[1]).toBeCloseTo(0, 12);
    const peaked = new Float32Array(V).fill(-1e4);
    peaked[3] = 0;
    expect(contextUncertainty(peaked, 1, V, 1).aleatoric[0]).toBeCloseTo(0, 12);
  });

  it('topKIds breaks ties by the lower id and pads short rows with -1', () => {
    const out = new Int32Array(4);
    topKIds([1, 3, 3, 0], 0, 4, 3, out, 0);
    expect([...out.subarray(0, 3)]).toEqual([1, 2, 0]);
    const short = new Int32Array(3);
    topKIds([5, 1], 0, 2, 3, short, 0);
    expect([...short]).toEqual([0, 1, -1]);
  });

  it('rejects a topK outside the vocabulary', () => {
    expect(() => contextUncertainty(new Float32Array(4), 1, 4, 0)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => contextUncertainty(new Float32Array(4), 1, 4, 5)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
