/**
 * The "probe" segmentation: how block scoring and exit calibration see inside a model. Unlike a
 * plan (plan.ts), which fuses every run of kept blocks into one graph so the host sees as little
 * as possible, a probe wants the residual stream after every block and the logits of any hidden
 * state, so it is one graph per block plus one head-only graph:
 *
 *   block l: hidden_in [1, S, dim] -> block l -> hidden_out [1, S, dim]
 *   head:    hidden_in [1, S, dim] -> final norm + LM head -> logits [1, S, vocab]
 *
 * With these, any subset or order of blocks is a chain of block graphs (perplexity with block l
 * removed skips one link), and a LayerSkip exit after block e is the head graph applied to the
 * hidden state after e: exits share the final norm + head, so one head graph serves them all.
 *
 * No block graph carries the embedding, not even block 0's: the host gathers embedding rows
 * itself (an exact copy, the same values a Gather would produce), because scoring needs block
 * 0's input on the host anyway (its similarity), a plan without block 0 must start from the
 * embedding too, and a Gather would put another [vocab, dim] table into onnxruntime's memory.
 *
 * A variant for activation-aware quantization, linear-input-probe.ts, compiles block l's probe
 * graph with the inputs of its four linears as extra outputs (workers/text/activation-stats.ts).
 *
 * @example
 * const { blocks, head } = probeSegments(config.nLayers);
 * buildSegment(prepared, blocks[3]!, 'onnx'); // block 3 alone
 * buildSegment(prepared, head, 'onnx');       // final norm + head over every position
 */
import { WhittleError } from '../../core/errors.ts';
import type { Segment } from './plan.ts';

/** Block `layer` alone: hidden state in, hidden state out, no embedding, no head. */
export function probeBlockSegment(layer: number, nLayers: number): Segment {
  if (!Number.isInteger(layer) || layer < 0 || layer >= nLayers) {
    throw new WhittleError('INVALID_ARGUMENT', `probe layer ${layer} does not exist (the model has ${nLayers} layers)`, { layer, nLayers });
  }
  return { layers: [layer], embed: false, head: null, hiddenOut: true };
}

/** Final norm + LM head over every position of a hidden state, no block (graph.ts builds zero layers as norm + MatMul). */
export function probeHeadSegment(): Segment {
  return { layers: [], embed: false, head: 'final', hiddenOut: false, allLogits: true };
}

/** Every block's probe segment, by layer index, and the head's. */
export function probeSegments(nLayers: number): { blocks: Segment[]; head: Segment } {
  return { blocks: Array.from({ length: nLayers }, (_, l) => probeBlockSegment(l, nLayers)), head: probeHeadSegment() };
}
