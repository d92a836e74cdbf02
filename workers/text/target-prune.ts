/**
 * `lm.compress({ target })` (issue #14): Sheared LLaMA's idea of a target (a parameter budget or
 * a block shape) reached one-shot, without its learned masks or training: a small grid of
 * depth / width splits is compiled and measured, and the split whose calibration perplexity
 * (teacher-forced through the compiled graphs, `TextEngine.perplexity`) is lowest is kept.
 *
 *   { params: f }                 keep f of the blocks' linear parameters (Q, K, V, O, gate, up,
 *                                 down; embedding and head are not counted): for k blocks
 *                                 removed by depth pruning (the 'perplexity' criterion), the
 *                                 remaining blocks lose w = 1 - f L / (L - k) of theirs by width
 *                                 pruning (FLAP by default), so every split has f L blocks' worth;
 *                                 up to `candidates` values of k from 0 to the most that can go.
 *   { layers, heads, ffn }        exactly `layers` blocks of `heads` query heads (whole KV groups)
 *                                 and `ffn` channels each: the shape fixes the split, so the
 *                                 candidates are which blocks and units go: depth criterion
 *                                 ('perplexity', 'angular') x width scores ('flap', 'wanda-sp').
 *
 * Block scores come from the full-depth model once, each split's width scores from its own
 * depth-pruned blocks, both on the calibration text's first two thirds; the deciding perplexity
 * on its last third (splitCalibration). fp32 weights at full width only (as width pruning). On an error or abort
 * the plan compiled before the call is restored.
 *
 * @example
 * const { plan, candidates, chosen } = await pruneToTarget(engine, { target: { params: 0.5 } });
 */
import { throwIfAborted, WhittleError } from '../../core/errors.ts';
import { blockParams, type BlockShape } from '../../models/compress/width-select.ts';
import { choosePrunePlan, maxRemovable, type PruneCriterion } from '../../models/llama/scoring.ts';
import type { LlamaPlan } from '../../models/llama/types.ts';
import { DEFAULT_CALIBRATION_TEXT } from './calibration.ts';
import type { TextEngine } from './engine.ts';
import type { WidthMethod } from './width-prune.ts';

/**
 * What `lm.compress({ target })` reaches: `{ params }`, the fraction of the blocks' linear
 * parameters to keep, or `{ layers, heads, ffn }`, a shape (blocks, query heads per block as whole
 * KV groups, FFN channels per block).
 *
 * @example
 * const half: CompressTarget = { params: 0.5 };
 * const shape: CompressTarget = { layers: 6, heads: 4, ffn: 256 };
 */
export type CompressTarget = { params: number } | { layers: number; heads: number; ffn: number };

export interface TargetOptions {
  target: CompressTarget;
  /** Width scores for a `params` target: 'flap' (default; adaptive ratios, bias compensation) or 'wanda-sp'. */
  method?: WidthMethod;
  /** Calibration text (BOS is prepended) or token ids: scoring and the perplexity that decides. Default: DEFAULT_CALIBRATION_TEXT. */
  calibration?: string | readonly number[];
  /** Most depth / width splits a `params` target tries (default 4, at least 2). */
  candidates?: number;
  signal?: AbortSignal;
}

/**
 * One depth / width split `compress({ target })` compiled and measured.
 *
 * @example
 * const { candidates, chosen } = await lm.compress({ target: { params: 0.5 } });
 * for (const c of candidates) console.log(c.removeBlocks, c.width, c.perplexity, c === candidates[chosen]);
 */
export interface TargetCandidate {
  /** Blocks removed by depth pruning, and by which block score. */
  removeBlocks: number;
  criterion: PruneCriterion;
  /** Fraction of the remaining blocks' linear parameters asked of width pruning (0: depth only). */
  width: number;
  method: WidthMethod | null;
  plan: LlamaPlan;
  /** Block linear parameters the split keeps. */
  params: number;
  /** Calibration perplexity of the compiled split. */
  perplexity: number;
}

export interface TargetResult {
  /** The plan now compiled: the chosen candidate's. */
  plan: LlamaPlan;
  candidates: TargetCandidate[];
  /** Index of the chosen (lowest-perplexity) candidate. */
  chosen: number;
  /** Block linear parameters of the full model and of the chosen plan. */
  params: { before: number; after: number };
}

interface Split {
  removeBlocks: number;
  criterion: PruneCriterion;
  width: number;
  method: WidthMethod | null;
  keep?: { kvHeads: number; ffn: number };
}

const bad = (message: string, details: Record<string, number> = {}) => new WhittleError('INVALID_ARGUMENT', `compress target: ${message}`, details);

/** The splits a target tries (see the file header); INVALID_ARGUMENT for a target the model cannot reach. */
export function targetSplits(target: CompressTarget, s: BlockShape, nLayers: number, options: { method?: WidthMethod; candidates?: number } = {}): Split[] {
  const most = maxRemovable(nLayers, true);
  if ('params' in target) {
    const f = target.params;
    if (!(typeof f === 'number' && f > 0 && f <= 1)) throw bad(`params must be the fraction of the block parameters to keep, in (0, 1], not ${String(f)}`);
    const n = options.candidates ?? 4;
    if (!(Number.isInteger(n) && n >= 2)) throw bad(`candidates must be an integer >= 2, not ${n}`);
    // k blocks can go when the rest, at full width, still has f L blocks' worth.
    const ks = Array.from({ length: most + 1 }, (_, k) => k).filter((k) => nLayers - k >= f * nLayers - 1e-9);
    const picked = ks.length <= n ? ks : [...new Set(Array.from({ length: n }, (_, i) => ks[Math.round((i * (ks.length - 1)) / (n - 1))]!))];
    const method = options.method ?? 'flap';
    return picked.map((k) => {
      const width = Math.max(0, 1 - (f * nLayers) / (nLayers - k));
      return { removeBlocks: k, criterion: 'perplexity' as const, width: width < 1e-9 ? 0 : width, method: width < 1e-9 ? null : method };
    });
  }
  const { layers, heads, ffn } = target;
  const group = s.nHeads / s.nKvHeads;
  if (!Number.isInteger(layers) || layers < nLayers - most || layers > nLayers) throw bad(`layers must be an integer in ${nLayers - most}..${nLayers} (the first and last block stay), not ${layers}`, { layers });
  if (!Number.isInteger(heads) || heads < group || heads > s.nHeads || heads % group !== 0) throw bad(`heads must be a multiple of ${group} (whole KV groups) in ${group}..${s.nHeads}, not ${heads}`, { heads });
  if (!Number.isInteger(ffn) || ffn < 1 || ffn > s.hidden) throw bad(`ffn must be an integer in 1..${s.hidden}, not ${ffn}`, { ffn });
  const narrow = heads < s.nHeads || ffn < s.hidden;
  const keep = { kvHeads: heads / group, ffn };
  const criteria: PruneCriterion[] = layers < nLayers ? ['perplexity', 'angular'] : ['perplexity'];
  const methods: (WidthMethod | null)[] = narrow ? ['flap', 'wanda-sp'] : [null];
  const width = 1 - blockParams(s, keep.kvHeads, ffn) / blockParams(s);
  return criteria.flatMap((criterion) => methods.map((method) => ({ removeBlocks: nLayers - layers, criterion, width: narrow ? width : 0, method, ...(narrow ? { keep } : {}) })));
}

/**
 * The calibration tokens split in two: the splits are scored on the first part and decided on
 * the tail (the first token, BOS where the tokenizer adds one, then the last third, at most a
 * context). Deciding on the text the blocks were scored on favours depth pruning: its
 * 'perplexity' criterion picked the blocks whose removal costs that very text least (measured:
 * bench/PRUNING.md). Under 48 tokens both use all of them.
 */
export function splitCalibration(tokens: readonly number[], maxSeqLen: number): { scoring: number[]; deciding: number[] } {
  if (tokens.length < 48) return { scoring: [...tokens], deciding: tokens.slice(0, maxSeqLen + 1) };
  const cut = tokens.length - Math.min(maxSeqLen, Math.floor(tokens.length / 3));
  return { scoring: tokens.slice(0, cut), deciding: [tokens[0]!, ...tokens.slice(cut)] };
}

export async function pruneToTarget(engine: TextEngine, options: TargetOptions): Promise<TargetResult> {
  const { signal } = options;
  throwIfAborted(signal);
  const c = engine.config;
  const shape: BlockShape = { dim: c.dim, headSize: engine.headSize, nHeads: c.nHeads, nKvHeads: c.nKvHeads, hidden: c.hiddenDim };
  const splits = targetSplits(options.target, shape, c.nLayers, options);
  const full = blockParams(shape);
  const { scoring: tokens, deciding: measured } = splitCalibration(engine.tokenIds(options.calibration ?? DEFAULT_CALIBRATION_TEXT), c.maxSeqLen);
  const before = engine.plan;
  try {
    const scores = await engine.scoreBlocks(tokens, { ...(signal ? { signal } : {}) });
    /** Compiles a split (depth plan, then width pruning of its blocks) and returns the parameters it keeps. */
    const apply = async (split: Split): Promise<number> => {
      throwIfAborted(signal);
      await engine.setPlan(choosePrunePlan(scores, { remove: split.removeBlocks, criterion: split.criterion }).plan, signal);
      if (!split.method) return (c.nLayers - split.removeBlocks) * full;
      const r = await engine.pruneWidth({ ratio: split.keep ? 0 : split.width, method: split.method, calibration: tokens, ...(split.keep ? { keep: split.keep } : {}), ...(signal ? { signal } : {}) });
      return r.params.after;
    };
    const candidates: TargetCandidate[] = [];
    for (const split of splits) {
      const params = await apply(split);
      const { perplexity } = await engine.perplexity(measured, { ...(signal ? { signal } : {}) });
      candidates.push({ removeBlocks: split.removeBlocks, criterion: split.criterion, width: split.width, method: split.method, plan: engine.plan, params, perplexity });
    }
    // Lowest perplexity; NaN never wins; ties keep the earlier (less depth-pruned) split.
    let chosen = 0;
    candidates.forEach((cand, i) => {
      const best = candidates[chosen]!.perplexity;
      if (cand.perplexity < best || (Number.isNaN(best) && !Number.isNaN(cand.perplexity))) chosen = i;
    });
    const pick = candidates[chosen]!;
    // Pruned again rather than setPlan(pick.plan): FLAP's compensation means are the pruning's
    // own (of this split's blocks, on this calibration text), so the compiled plan is the one measured.
    if (chosen !== candidates.length - 1) await apply(splits[chosen]!);
    return { plan: engine.plan, candidates, chosen, params: { before: c.nLayers * full, after: pick.params } };
  } catch (err) {
    await engine.setPlan(before).catch(() => undefined);
    throw err;
  }
}
