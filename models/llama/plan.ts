/**
 * Plan -> segments. Each contiguous run of kept layers (contiguous *in the plan*, i.e. consecutive
 * entries of `plan.layers`) becomes one ONNX graph, so one `session.run` per segment per step.
 * The early exit splits a run: the exit segment ends after `plan.exit` kept blocks and carries
 * its own norm + head. The embedding folds into the first segment and the final norm + head into
 * the last, so a full-depth plan is a single graph.
 *
 * Why runs are "consecutive in the plan" and not "consecutive in the model": a pruned plan
 * [0,1,3,4] is still one stream of blocks (block 3 reads block 1's output); nothing forces a
 * graph boundary at the hole, so splitting there would only add a session.run per step.
 * Boundaries are only where the host must see the hidden state: the early exit.
 *
 * @example
 * planSegments({ layers: [0, 1, 3, 4], exit: 2 }, 5)
 * // -> [{ layers: [0,1], embed: true, head: 'exit', hiddenOut: true },
//     { layers: [3,4], embed: false, head: 'final', hiddenOut: false, allLogits: true }]
 */
import { WhittleError } from '../../core/errors.ts';
import type { LlamaPlan } from './types.ts';

export interface Segment {
  /** Model block indices this graph runs, in order. */
  layers: number[];
  /** Starts from token ids (embedding inside) rather than a hidden state. */
  embed: boolean;
  /** Which norm + head this graph ends with: the final one, the early exit's, or none (hidden out only). */
  head: 'final' | 'exit' | null;
  /** Also outputs the hidden state for a later segment. */
  hiddenOut: boolean;
  /**
   * Logits for every position of the step, not just the last: the segment after an early exit
   * verifies several drafted tokens in one pass (self-speculative decoding).
   */
  allLogits?: boolean;
}

/** Throws INVALID_ARGUMENT unless `plan` names distinct, existing blocks and a reachable exit. */
export function validatePlan(plan: LlamaPlan, nLayers: number): void {
  const { layers, exit } = plan;
  if (!Array.isArray(layers) || layers.length === 0) {
    throw new WhittleError('INVALID_ARGUMENT', 'a plan needs at least one layer');
  }
  const seen = new Set<number>();
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= nLayers) {
      throw new WhittleError('INVALID_ARGUMENT', `plan layer ${l} does not exist (the model has ${nLayers} layers)`, { layer: l, nLayers });
    }
    if (seen.has(l)) throw new WhittleError('INVALID_ARGUMENT', `plan names layer ${l} twice`, { layer: l });
    seen.add(l);
  }
  if (exit !== undefined && (!Number.isInteger(exit) || exit < 1 || exit > layers.length)) {
    throw new WhittleError('INVALID_ARGUMENT', `plan exit ${exit} must be between 1 and the number of kept layers (${layers.length})`, { exit });
  }
}

export function planSegments(plan: LlamaPlan, nLayers: number): Segment[] {
  validatePlan(plan, nLayers);
  const { layers, exit } = plan;
  // An exit after the last kept block is the final head itself: no extra segment.
  if (exit === undefined || exit === layers.length) {
    return [{ layers: [...layers], embed: true, head: 'final', hiddenOut: false }];
  }
  return [
    { layers: layers.slice(0, exit), embed: true, head: 'exit', hiddenOut: true },
    { layers: layers.slice(exit), embed: false, head: 'final', hiddenOut: false, allLogits: true },
  ];
}

/**
 * Splits each segment into consecutive chunks whose layers weigh at most `budget` bytes together
 * (a layer heavier than the budget is a chunk of its own), so no single session is compiled from
 * more than about `budget` bytes of block weights. Why: creating a session holds its weights
 * twice (the caller's arrays, which onnxruntime copies, and its heap copy, plus MLAS's prepacked
 * copy before the original is freed), so one whole-model session peaks at 2–3x the model while
 * chunks peak at the model plus a chunk. Each chunk costs one more `session.run` per step, which
 * is small beside a step of a model big enough to need it.
 *
 * The first chunk of a segment keeps its `embed`; the last keeps its `head`, `allLogits` and
 * `hiddenOut`; the chunks between hand the hidden state on (`hiddenOut`, no head).
 *
 * @example
 * splitSegments([{ layers: [0, 1, 2], embed: true, head: 'final', hiddenOut: false }], () => 10, 20)
 * // -> [{ layers: [0, 1], embed: true, head: null, hiddenOut: true },
 * //     { layers: [2], embed: false, head: 'final', hiddenOut: false }]
 */
export function splitSegments(segments: readonly Segment[], layerBytes: (layer: number) => number, budget: number): Segment[] {
  if (!(budget > 0)) throw new WhittleError('INVALID_ARGUMENT', `a segment budget must be a positive number of bytes, not ${budget}`);
  const out: Segment[] = [];
  for (const seg of segments) {
    const chunks: number[][] = [];
    let current: number[] = [];
    let bytes = 0;
    for (const l of seg.layers) {
      const b = layerBytes(l);
      if (current.length > 0 && bytes + b > budget) {
        chunks.push(current);
        current = [];
        bytes = 0;
      }
      current.push(l);
      bytes += b;
    }
    chunks.push(current);
    chunks.forEach((layers, i) => {
      const first = i === 0;
      const last = i === chunks.length - 1;
      if (last) out.push({ ...seg, layers, embed: first && seg.embed });
      else out.push({ layers, embed: first && seg.embed, head: null, hiddenOut: true });
    });
  }
  return out;
}
