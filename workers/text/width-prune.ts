/**
 * On-device structured width pruning (FLAP, Wanda-sp): one calibration pass through each block's
 * linear-input probe graph (activation-stats.ts) gives the o_proj / down_proj input statistics;
 * models/compress/width-scores.ts scores every input channel, width-select.ts picks the KV groups
 * and FFN channels each block keeps, and the engine compiles the sliced weights
 * (width-slice.ts). No gradients, no second pass.
 *
 * Statistics come from the unpruned blocks of `layers` in order (a depth-pruned plan's blocks:
 * each block sees what the kept blocks before it produce), as FLAP's one-shot pass does; the
 * pruned blocks are not re-measured (Wanda-sp's own code re-runs each pruned block before
 * measuring the next; one pass is what both share here).
 *
 * @example
 * const { width, means } = await scoreWidth(probe, tokens, { ratio: 0.2, method: 'flap', layers: plan.layers });
 */
import { WhittleError } from '../../core/errors.ts';
import { flapScores, wandaSpScores, type ChannelScores } from '../../models/compress/width-scores.ts';
import { blockParams, selectShape, selectWidth, type BlockShape, type Standardization } from '../../models/compress/width-select.ts';
import type { InputMeans } from '../../models/compress/width-slice.ts';
import { calibrationWindows } from '../../models/llama/scoring.ts';
import type { WidthPlan } from '../../models/llama/types.ts';
import { collectLinearInputStats } from './activation-stats.ts';
import type { ProbeSource } from './probe-runner.ts';

/** 'flap': fluctuation scores, adaptive ratios across blocks and modules, bias compensation. 'wanda-sp': |W| * ||x||, the same ratio in every block, no compensation. */
export type WidthMethod = 'flap' | 'wanda-sp';

export interface ScoreWidthOptions {
  /** Fraction of the `layers`' linear parameters to remove, in [0, 1) (ignored with `keep`). */
  ratio: number;
  /** A target shape instead of a ratio: each of `layers` keeps exactly this many KV heads and FFN channels (width-select.ts selectShape). */
  keep?: { kvHeads: number; ffn: number };
  method: WidthMethod;
  /** Blocks to prune, in plan order. */
  layers: readonly number[];
  /** FLAP only: where its scores are standardized (width-select.ts): 'model' (default) or 'block' (FLAP's code). */
  standardization?: Standardization;
  signal?: AbortSignal;
}

export interface WidthOutcome {
  width: WidthPlan;
  /** Per model block (undefined for blocks not in `layers`): its o_proj / down_proj input means, for FLAP's compensation. */
  means: (InputMeans | undefined)[];
  /** Linear parameters of `layers` before and after. */
  params: { before: number; after: number };
}

/** The full shape of the model's blocks. */
export function blockShape(source: Pick<ProbeSource, 'weights'>): BlockShape {
  const c = source.weights.config;
  return { dim: c.dim, headSize: source.weights.headSize, nHeads: c.nHeads, nKvHeads: c.nKvHeads, hidden: c.hiddenDim };
}

/** Measures, scores and selects (see the file header); `source` must hold full-width fp32 weights. */
export async function scoreWidth(source: ProbeSource, tokens: readonly number[], options: ScoreWidthOptions): Promise<WidthOutcome> {
  const c = source.weights.config;
  const { ratio, method, layers } = options;
  if (!(typeof ratio === 'number' && Number.isFinite(ratio) && ratio >= 0 && ratio < 1)) throw new WhittleError('INVALID_ARGUMENT', `width must be a fraction in [0, 1), got ${ratio}`);
  if (method !== 'flap' && method !== 'wanda-sp') throw new WhittleError('INVALID_ARGUMENT', `unknown width pruning method '${String(method)}' (use 'flap' or 'wanda-sp')`);
  const shape = blockShape(source);
  const positions = calibrationWindows(tokens, c.maxSeqLen).reduce((n, w) => n + w.length, 0);
  const scores = new Map<number, ChannelScores>();
  const means: (InputMeans | undefined)[] = Array.from({ length: c.nLayers }, () => undefined);
  await collectLinearInputStats(
    source,
    tokens,
    (layer, stats) => {
      const l = source.weights.layers[layer]!;
      if (!(l.wo instanceof Float32Array) || !(l.down instanceof Float32Array) || l.kvHeads !== undefined || l.hidden !== undefined) {
        throw new WhittleError('UNSUPPORTED', 'width pruning scores full-width fp32 weights (prune the width before compressing)');
      }
      scores.set(
        layer,
        method === 'flap'
          ? flapScores(l.wo, l.down, stats.wo.variance, stats.down.variance, c.dim)
          : wandaSpScores(l.wo, l.down, stats.wo.meanSquare, stats.down.meanSquare, positions, c.dim),
      );
      means[layer] = { wo: stats.wo.mean, down: stats.down.mean };
    },
    { rows: 0, layers, signal: options.signal },
  );
  const blockScores = layers.map((l) => scores.get(l)!);
  const kept = options.keep ? selectShape(blockScores, shape, options.keep) : selectWidth(blockScores, shape, ratio, method === 'flap' ? 'adaptive' : 'uniform', options.standardization);
  const all = (n: number) => Array.from({ length: n }, (_, i) => i);
  const width: WidthPlan = { kvHeads: Array.from({ length: c.nLayers }, () => all(c.nKvHeads)), ffn: Array.from({ length: c.nLayers }, () => all(c.hiddenDim)), bias: method === 'flap' };
  let after = 0;
  layers.forEach((layer, i) => {
    width.kvHeads[layer] = kept[i]!.kvHeads;
    width.ffn[layer] = kept[i]!.ffn;
    after += blockParams(shape, kept[i]!.kvHeads.length, kept[i]!.ffn.length);
  });
  return { width, means, params: { before: layers.length * blockParams(shape), after } };
}
