import { describe, expect, it } from 'vitest';
import { planSegments, validatePlan } from './plan.ts';

describe('planSegments', () => {
  it('a full plan, and a pruned one, are one graph with embedding and head', () => {
    expect(planSegments({ layers: [0, 1, 2, 3, 4] }, 5)).toEqual([{ layers: [0, 1, 2, 3, 4], embed: true, head: 'final', hiddenOut: false }]);
    expect(planSegments({ layers: [0, 1, 3, 4] }, 5)).toHaveLength(1);
  });

  it('an exit splits the plan: the exit segment has its own head and hands over the hidden state', () => {
    expect(planSegments({ layers: [0, 1, 3, 4], exit: 2 }, 5)).toEqual([
      { layers: [0, 1], embed: true, head: 'exit', hiddenOut: true },
      { layers: [3, 4], embed: false, head: 'final', hiddenOut: false, allLogits: true },
    ]);
  });

  it('an exit after the last kept layer is just the final head', () => {
    expect(planSegments({ layers: [0, 1], exit: 2 }, 5)).toHaveLength(1);
  });

  it.each([
    [{ layers: [] }],
    [{ layers: [0, 5] }],
    [{ layers: [1, 1] }],
    [{ layers: [0, 1], exit: 0 }],
    [{ layers: [0, 1], exit: 3 }],
    [{ layers: [0.5] }],
  ])('rejects %j with INVALID_ARGUMENT', (plan) => {
    expect(() => validatePlan(plan, 5)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
