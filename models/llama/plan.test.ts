import { describe, expect, it } from 'vitest';
import { planSegments, splitSegments, validatePlan } from './plan.ts';

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

describe('splitSegments', () => {
  const tenEach = () => 10;

  it('cuts a run into chunks of at most the budget; the first embeds, the last keeps the head', () => {
    expect(splitSegments(planSegments({ layers: [0, 1, 2, 4, 5] }, 6), tenEach, 20)).toEqual([
      { layers: [0, 1], embed: true, head: null, hiddenOut: true },
      { layers: [2, 4], embed: false, head: null, hiddenOut: true },
      { layers: [5], embed: false, head: 'final', hiddenOut: false },
    ]);
  });

  it('splits each side of an early exit on its own; the exit chunk keeps its head and hidden output', () => {
    expect(splitSegments(planSegments({ layers: [0, 1, 2, 3], exit: 3 }, 4), tenEach, 20)).toEqual([
      { layers: [0, 1], embed: true, head: null, hiddenOut: true },
      { layers: [2], embed: false, head: 'exit', hiddenOut: true },
      { layers: [3], embed: false, head: 'final', hiddenOut: false, allLogits: true },
    ]);
  });

  it('keeps a segment under the budget whole, and gives a layer over it a chunk of its own', () => {
    const one = planSegments({ layers: [0, 1, 2] }, 3);
    expect(splitSegments(one, tenEach, 30)).toEqual(one);
    expect(splitSegments(one, (l) => (l === 1 ? 100 : 10), 30).map((s) => s.layers)).toEqual([[0], [1], [2]]);
  });

  it.each([0, -1, Number.NaN])('rejects a budget of %s', (budget) => {
    expect(() => splitSegments(planSegments({ layers: [0] }, 1), tenEach, budget)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
