/**
 * On-device depth pruning: which blocks can go? The scores' definitions and the pure arithmetic
 * over hidden states and logits (typed arrays, no DOM, Node or onnxruntime); the forward passes
 * that produce those run through the compiled ONNX probe segments (workers/text/block-scoring.ts).
 *
 * Three per-block scores from calibration token ids:
 * - block influence (ShortGPT): BI_l = 1 - mean_t cos(h_in[t], h_out[t]), the hidden state
 *   before and after block l at every position t, from ONE forward pass;
 * - angular distance (Gromov et al., "The Unreasonable Ineffectiveness of the Deeper Layers"):
 *   mean_t arccos(cos(h_in[t], h_out[t])) / pi, from the same pass;
 * - perplexity with block l removed (Shortened LLaMA's PPL criterion): a teacher-forced pass
 *   through every block but l, plus the full-depth perplexity.
 * Low scores mean "this block changes little": `choosePrunePlan` drops the lowest ones (one shot,
 * not iteratively re-scored), keeping the first and last block by default as Shortened LLaMA does.
 *
 * The independent oracle for all of it (plain loops over the reference forward pass) is test
 * code: models/reference/scoring-ref.ts.
 *
 * @example
 * const scores = await engine.scoreBlocks([config.bosTokenId, ...tokenizer.encode(text)]);
 * const { plan, removed } = choosePrunePlan(scores, { remove: 2, criterion: 'perplexity' });
 * await engine.setPlan(plan);
 */
import { WhittleError } from '../../core/errors.ts';
import type { LlamaConfig, LlamaPlan } from './types.ts';

/**
 * How blocks are ranked for depth pruning: ShortGPT block influence, angular distance, or the
 * calibration perplexity with each block removed.
 *
 * @example
 * await lm.prune({ remove: 2, criterion: 'perplexity' satisfies PruneCriterion });
 */
export type PruneCriterion = 'influence' | 'angular' | 'perplexity';

/**
 * Each block's importance under every criterion, from one calibration pass.
 *
 * @example
 * const { scores } = await lm.prune({ remove: 2 });
 * console.log(scores.influence.map((s, i) => `${i}: ${s.toFixed(3)}`));
 */
export interface BlockScores {
  nLayers: number;
  /** Calibration positions the similarity scores average over (all tokens of all windows). */
  positions: number;
  /** Next-token predictions the perplexities average over (positions minus one per window). */
  predictions: number;
  /** [nLayers] ShortGPT block influence: 1 - mean cosine similarity of the block's input and output. */
  influence: number[];
  /** [nLayers] mean angular distance arccos(cos) / pi of the block's input and output, in [0, 1]. */
  angular: number[];
  /** [nLayers] calibration perplexity with block l removed; empty when not computed. */
  perplexity: number[];
  /** Calibration perplexity of the full-depth model; NaN when not computed. */
  fullPerplexity: number;
  /** Wall time of the similarity pass and of the perplexity passes (ms). */
  timing: { similarityMs: number; perplexityMs: number };
}

export interface ScoreOptions {
  /** Also compute the perplexity scores (nLayers + 1 passes). Default true. */
  perplexity?: boolean;
}

/**
 * Token ids -> windows of at most `maxSeqLen` tokens (the model's context), each run
 * from position 0. Windows shorter than 2 tokens predict nothing and are dropped, except that a
 * single short sequence is kept for the similarity scores.
 */
export function calibrationWindows(tokens: readonly number[], maxSeqLen: number): number[][] {
  const windows: number[][] = [];
  for (let i = 0; i < tokens.length; i += maxSeqLen) windows.push(tokens.slice(i, i + maxSeqLen));
  const useful = windows.filter((w) => w.length >= 2);
  return useful.length > 0 ? useful : windows;
}

/** INVALID_ARGUMENT unless `tokens` is a non-empty list of ids inside the vocabulary. */
export function checkCalibrationTokens(config: LlamaConfig, tokens: readonly number[]): void {
  if (tokens.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'no calibration tokens');
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= config.vocabSize) {
      throw new WhittleError('INVALID_ARGUMENT', `calibration token ${t} is outside the vocabulary (${config.vocabSize})`, { token: t });
    }
  }
}

/** Per-block sums over positions, filled window by window: cos[l] of cos(h_in, h_out), angle[l] of arccos(cos) / pi. */
export interface SimilaritySums {
  cos: Float64Array; // [nLayers]
  angle: Float64Array; // [nLayers]
}

export function similaritySums(nLayers: number): SimilaritySums {
  return { cos: new Float64Array(nLayers), angle: new Float64Array(nLayers) };
}

/**
 * cos(a[row], b[row]) of two [rows, dim] arrays, in float64; 1 when both rows are zero (an
 * unchanged zero vector), 0 when only one is, clamped to [-1, 1] so arccos stays defined.
 */
export function rowCosine(a: Float32Array, b: Float32Array, row: number, dim: number): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = row * dim; i < (row + 1) * dim; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  if (na === 0 && nb === 0) return 1;
  if (na === 0 || nb === 0) return 0;
  return Math.max(-1, Math.min(1, dot / Math.sqrt(na * nb)));
}

/** Adds block `layer`'s similarity at every position of one window: hIn, hOut [S, dim], the residual stream before and after it. */
export function addBlockSimilarity(sums: SimilaritySums, layer: number, hIn: Float32Array, hOut: Float32Array, dim: number): void {
  if (hIn.length !== hOut.length || hIn.length % dim !== 0) throw new WhittleError('INTERNAL', `hidden states of ${hIn.length} and ${hOut.length} values are not the same [S, ${dim}]`);
  for (let t = 0; t < hIn.length / dim; t++) {
    const cos = rowCosine(hIn, hOut, t, dim);
    sums.cos[layer] = sums.cos[layer]! + cos;
    sums.angle[layer] = sums.angle[layer]! + Math.acos(cos) / Math.PI;
  }
}

/** The per-block means: influence 1 - mean cos, angular mean arccos(cos) / pi, over `positions`. */
export function similarityScores(sums: SimilaritySums, positions: number): { influence: number[]; angular: number[] } {
  return {
    influence: Array.from(sums.cos, (s) => 1 - s / positions),
    angular: Array.from(sums.angle, (s) => s / positions),
  };
}

/**
 * Sum over rows r of -log softmax(logits[r])[targets[r]] (float64 log-sum-exp): the
 * teacher-forced negative log-likelihood of `targets` [count] under `logits` [count, vocab].
 */
export function nllSum(logits: Float32Array, vocab: number, targets: ArrayLike<number>): number {
  if (logits.length !== targets.length * vocab) throw new WhittleError('INTERNAL', `${logits.length} logits are not ${targets.length} rows of ${vocab}`);
  let nll = 0;
  for (let r = 0; r < targets.length; r++) {
    const base = r * vocab;
    let max = -Infinity;
    for (let v = base; v < base + vocab; v++) max = Math.max(max, logits[v]!);
    let sum = 0;
    for (let v = base; v < base + vocab; v++) sum += Math.exp(logits[v]! - max);
    nll -= logits[base + targets[r]!]! - max - Math.log(sum);
  }
  return nll;
}

export interface PruneChoiceOptions {
  /** How many blocks to drop (an integer >= 0); or give `ratio` instead. */
  remove?: number;
  /** Fraction of all blocks to drop, rounded to the nearest count; exclusive with `remove`. */
  ratio?: number;
  /** Which score ranks the blocks (lowest dropped first). Default 'perplexity'. */
  criterion?: PruneCriterion;
  /** Never drop the first and last block (Shortened LLaMA). Default true. */
  keepFirstLast?: boolean;
}

export interface PruneChoice {
  /** The kept blocks in model order, no early exit. */
  plan: LlamaPlan;
  /** The dropped blocks, lowest score first. */
  removed: number[];
  scores: BlockScores;
}

/** How many blocks may be dropped: all but one, or all but the first and last with `keepFirstLast`. */
export function maxRemovable(nLayers: number, keepFirstLast = true): number {
  return keepFirstLast ? Math.max(0, nLayers - 2) : Math.max(0, nLayers - 1);
}

/**
 * The plan that drops the `remove` (or `ratio` * nLayers) blocks with the lowest `criterion`
 * score; ties go to the later block. INVALID_ARGUMENT when more blocks are asked for than may go.
 */
export function choosePrunePlan(scores: BlockScores, options: PruneChoiceOptions): PruneChoice {
  const L = scores.nLayers;
  const criterion = options.criterion ?? 'perplexity';
  const keepFirstLast = options.keepFirstLast ?? true;
  if ((options.remove === undefined) === (options.ratio === undefined)) {
    throw new WhittleError('INVALID_ARGUMENT', 'give exactly one of remove (a block count) and ratio');
  }
  let k: number;
  if (options.ratio !== undefined) {
    if (!(options.ratio >= 0 && options.ratio < 1)) throw new WhittleError('INVALID_ARGUMENT', `ratio must be in [0, 1), got ${options.ratio}`, { ratio: options.ratio });
    k = Math.round(options.ratio * L);
  } else {
    k = options.remove!;
    if (!Number.isInteger(k) || k < 0) throw new WhittleError('INVALID_ARGUMENT', `remove must be a non-negative integer, got ${k}`, { remove: k });
  }
  const allowed = maxRemovable(L, keepFirstLast);
  if (k > allowed) {
    throw new WhittleError('INVALID_ARGUMENT', `cannot remove ${k} of ${L} blocks (at most ${allowed}${keepFirstLast ? ', keeping the first and last' : ''})`, { remove: k, nLayers: L, allowed });
  }
  const score = scores[criterion];
  if (score.length !== L) throw new WhittleError('INVALID_ARGUMENT', `no '${criterion}' scores (compute them with perplexity: true)`, { criterion });
  const candidates = Array.from({ length: L }, (_, l) => l).filter((l) => !keepFirstLast || (l !== 0 && l !== L - 1));
  // Lowest score first; ties (e.g. two identity blocks, or two infinite perplexities) drop the
  // later block first; NaN ranks as most important.
  const nan = (l: number) => (Number.isNaN(score[l]!) ? 1 : 0);
  candidates.sort((a, b) => nan(a) - nan(b) || (score[a]! < score[b]! ? -1 : score[a]! > score[b]! ? 1 : b - a));
  const removed = candidates.slice(0, k);
  const plan: LlamaPlan = { layers: Array.from({ length: L }, (_, l) => l).filter((l) => !removed.includes(l)) };
  return { plan, removed, scores };
}
