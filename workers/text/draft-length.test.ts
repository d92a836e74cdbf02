import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/random.ts';
import { AdaptiveDraft, expectedSpeedup, expectedTokensPerRound } from './draft-length.ts';

/** Rounds of a simulated drafter: draft steps cost `draftMs`, verify costs fixed + perPos * S, each draft accepted with probability `a` until the first rejection. */
function simulate(a: number, draftMs: number, fixed: number, perPos: number, rounds = 200): AdaptiveDraft {
  const ctl = new AdaptiveDraft();
  const rng = createRng(11);
  for (let i = 0; i < rounds; i++) {
    const d = ctl.next;
    let accepted = 0;
    while (accepted < d && rng() < a) accepted++;
    ctl.observe({ drafted: d, accepted, draftMs: (d + 1) * draftMs, verifyMs: fixed + perPos * (d + 1) });
  }
  return ctl;
}

describe('draft length', () => {
  it('expected tokens per round is the geometric sum, d + 1 at full acceptance', () => {
    expect(expectedTokensPerRound(0.5, 2)).toBeCloseTo(1 + 0.5 + 0.25, 12);
    expect(expectedTokensPerRound(1, 4)).toBe(5);
    expect(expectedTokensPerRound(0, 4)).toBe(1);
    // LayerSkip paper's regime: cheap drafts, verify ~ one step -> about 2x at a = 0.8, d = 4
    expect(expectedSpeedup(0.8, 4, 0.15, () => 1)).toBeGreaterThan(1.9);
  });

  it('grows the draft when drafts are cheap and mostly accepted', () => {
    const ctl = simulate(0.95, 0.1, 1, 0);
    expect(ctl.next).toBe(ctl.max);
  });

  it('shrinks to one draft when almost nothing is accepted', () => {
    const ctl = simulate(0.05, 0.5, 1, 0.2);
    expect(ctl.next).toBe(ctl.min);
  });

  it('settles in between when verify cost grows with the positions (a CPU)', () => {
    const ctl = simulate(0.7, 0.3, 0.4, 0.25);
    // brute force over d of tokens / ms with the same costs
    const rate = (d: number) => expectedTokensPerRound(0.7, d) / ((d + 1) * 0.3 + 0.4 + 0.25 * (d + 1));
    const best = [1, 2, 3, 4, 5, 6, 7, 8].reduce((b, d) => (rate(d) > rate(b) ? d : b), 1);
    const late = ctl.history.slice(100);
    expect(Math.abs(late.reduce((s, d) => s + d, 0) / late.length - best)).toBeLessThanOrEqual(1);
    expect(ctl.acceptance).toBeGreaterThan(0.5);
    expect(ctl.acceptance).toBeLessThan(0.9);
  });
});
