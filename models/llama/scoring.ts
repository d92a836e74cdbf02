/**
 * On-device depth pruning: which blocks can go? Pure TypeScript over typed arrays (no DOM, Node
 * or onnxruntime), built on the reference forward pass (models/reference/llama-ref.ts).
 *
 * Three per-block scores from calibration token ids:
 * - block influence (ShortGPT): BI_l = 1 - mean_t cos(h_in[t], h_out[t]), the hidden state
 *   before and after block l at every position t, from ONE forward pass;
 * - angular distance (Gromov et al., "The Unreasonable Ineffectiveness of the Deeper Layers"):
 *   mean_t arccos(cos(h_in[t], h_out[t])) / pi, from the same pass;
 * - perplexity with block l removed (Shortened LLaMA's PPL criterion): one teacher-forced pass
 *   per block through `LlamaReference` with a plan that skips it, plus the full-depth perplexity.
 * Low scores mean "this block changes little": `choosePrunePlan` drops the lowest ones (one shot,
 * not iteratively re-scored), keeping the first and last block by default as Shortened LLaMA does.
 *
 * Cost: plain loops with float64 sums, about (nLayers + 2) forward passes over the calibration
 * tokens. Fine for models of a few million parameters (stories260K: ~1 s; the 2.4M-parameter
 * LayerSkip recipe shape: tens of seconds, see bench/PRUNING.md); larger models want the same
 * scores computed through the ONNX segments (the engine) instead.
 *
 * @example
 * const scores = scoreBlocks(config, weights, [config.bosTokenId, ...tokenizer.encode(text)]);
 * const { plan, removed } = choosePrunePlan(scores, { remove: 2, criterion: 'perplexity' });
 * await engine.setPlan(plan);
 */
import { WhittleError } from '../../core/errors.ts';
import { LlamaReference, matvec, rmsnorm, rope, softmaxInPlace } from '../reference/llama-ref.ts';
import { fullPlan, type LlamaConfig, type LlamaLayerWeights, type LlamaPlan, type LlamaWeights } from './types.ts';

export type PruneCriterion = 'influence' | 'angular' | 'perplexity';

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
 * Token ids -> windows of at most `maxSeqLen` tokens (the reference's cache length), each run
 * from position 0. Windows shorter than 2 tokens predict nothing and are dropped, except that a
 * single short sequence is kept for the similarity scores.
 */
export function calibrationWindows(tokens: readonly number[], maxSeqLen: number): number[][] {
  const windows: number[][] = [];
  for (let i = 0; i < tokens.length; i += maxSeqLen) windows.push(tokens.slice(i, i + maxSeqLen));
  const useful = windows.filter((w) => w.length >= 2);
  return useful.length > 0 ? useful : windows;
}

function checkTokens(config: LlamaConfig, tokens: readonly number[]): void {
  if (tokens.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'no calibration tokens');
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= config.vocabSize) {
      throw new WhittleError('INVALID_ARGUMENT', `calibration token ${t} is outside the vocabulary (${config.vocabSize})`, { token: t });
    }
  }
}

/**
 * One transformer block at position `pos`, in place on the residual stream `x` [dim], writing
 * this position's K/V into `keyCache`/`valueCache` [maxSeqLen, kvDim]. The same arithmetic as
 * `LlamaReference.forward`'s loop body, exposed per block so the hidden state between blocks can
 * be observed (the reference only returns logits).
 */
export function applyBlock(config: LlamaConfig, lw: LlamaLayerWeights, x: Float32Array, pos: number, keyCache: Float32Array, valueCache: Float32Array): void {
  const c = config;
  const hs = c.dim / c.nHeads;
  const kvDim = c.nKvHeads * hs;
  const groups = c.nHeads / c.nKvHeads;
  // Attention
  const xb = rmsnorm(x, lw.attnNorm, c.normEps); // [dim]
  const q = matvec(lw.wq, xb, c.nHeads * hs); // [nHeads*hs]
  const k = matvec(lw.wk, xb, kvDim); // [kvDim]
  const v = matvec(lw.wv, xb, kvDim); // [kvDim]
  rope(q, c.nHeads, hs, pos, c.ropeTheta, c.ropeLayout);
  rope(k, c.nKvHeads, hs, pos, c.ropeTheta, c.ropeLayout);
  keyCache.set(k, pos * kvDim);
  valueCache.set(v, pos * kvDim);
  const att = new Float64Array(pos + 1); // [pos+1] scores of one head
  const heads = new Float32Array(c.nHeads * hs); // [nHeads*hs] attention output, heads concatenated
  for (let h = 0; h < c.nHeads; h++) {
    const kvh = Math.floor(h / groups);
    for (let t = 0; t <= pos; t++) {
      let score = 0;
      for (let i = 0; i < hs; i++) score += q[h * hs + i]! * keyCache[t * kvDim + kvh * hs + i]!;
      att[t] = score / Math.sqrt(hs);
    }
    softmaxInPlace(att);
    for (let i = 0; i < hs; i++) {
      let acc = 0;
      for (let t = 0; t <= pos; t++) acc += att[t]! * valueCache[t * kvDim + kvh * hs + i]!;
      heads[h * hs + i] = acc;
    }
  }
  const attnOut = matvec(lw.wo, heads, c.dim); // [dim]
  for (let i = 0; i < c.dim; i++) x[i] = x[i]! + attnOut[i]!;
  // SwiGLU MLP: w2( silu(w1 x) * w3 x )
  const xf = rmsnorm(x, lw.ffnNorm, c.normEps); // [dim]
  const gate = matvec(lw.w1, xf, c.hiddenDim); // [hidden]
  const up = matvec(lw.w3, xf, c.hiddenDim); // [hidden]
  for (let i = 0; i < c.hiddenDim; i++) {
    const g = gate[i]!;
    gate[i] = (g / (1 + Math.exp(-g))) * up[i]!;
  }
  const down = matvec(lw.w2, gate, c.dim); // [dim]
  for (let i = 0; i < c.dim; i++) x[i] = x[i]! + down[i]!;
}

/** cos(a, b) in float64; 1 when both are zero (an unchanged zero vector), 0 when only one is. */
function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  if (na === 0 && nb === 0) return 1;
  if (na === 0 || nb === 0) return 0;
  return Math.max(-1, Math.min(1, dot / Math.sqrt(na * nb)));
}

/**
 * One full-depth forward pass over each window that records, for every block l and position t,
 * cos(h_in[t], h_out[t]) of the residual stream around the block; returns the per-block means of
 * 1 - cos (influence) and arccos(cos) / pi (angular distance).
 */
export function blockSimilarities(config: LlamaConfig, weights: LlamaWeights, windows: readonly (readonly number[])[]): { influence: number[]; angular: number[]; positions: number } {
  const L = config.nLayers;
  const kvDim = (config.nKvHeads * config.dim) / config.nHeads;
  const cosSum = new Float64Array(L); // [L]
  const angleSum = new Float64Array(L); // [L]
  let positions = 0;
  for (const window of windows) {
    if (window.length > config.maxSeqLen) throw new WhittleError('INVALID_ARGUMENT', `window of ${window.length} tokens exceeds the context (${config.maxSeqLen})`);
    const keyCache = Array.from({ length: L }, () => new Float32Array(window.length * kvDim)); // L x [T, kvDim]
    const valueCache = Array.from({ length: L }, () => new Float32Array(window.length * kvDim));
    for (let pos = 0; pos < window.length; pos++) {
      const token = window[pos]!;
      const x = weights.tokenEmbedding.slice(token * config.dim, (token + 1) * config.dim); // [dim]
      for (let l = 0; l < L; l++) {
        const hIn = x.slice(); // [dim]
        applyBlock(config, weights.layers[l]!, x, pos, keyCache[l]!, valueCache[l]!);
        const cos = cosine(hIn, x);
        cosSum[l] = cosSum[l]! + cos;
        angleSum[l] = angleSum[l]! + Math.acos(cos) / Math.PI;
      }
      positions++;
    }
  }
  return {
    influence: Array.from(cosSum, (s) => 1 - s / positions),
    angular: Array.from(angleSum, (s) => s / positions),
    positions,
  };
}

/**
 * Teacher-forced perplexity of `windows` under `plan`: exp of the mean of -log p(w[t+1] | w[..t])
 * over every window (each from position 0, the first token of a window is not predicted).
 */
export function planPerplexity(config: LlamaConfig, weights: LlamaWeights, plan: LlamaPlan, windows: readonly (readonly number[])[]): { perplexity: number; predictions: number } {
  let nll = 0;
  let predictions = 0;
  const probs = new Float64Array(config.vocabSize); // [vocab]
  for (const window of windows) {
    if (window.length > config.maxSeqLen) throw new WhittleError('INVALID_ARGUMENT', `window of ${window.length} tokens exceeds the context (${config.maxSeqLen})`);
    const ref = new LlamaReference(config, weights, plan);
    for (let pos = 0; pos + 1 < window.length; pos++) {
      const logits = ref.forward(window[pos]!, pos); // [vocab]
      probs.set(logits);
      softmaxInPlace(probs);
      nll -= Math.log(probs[window[pos + 1]!]!);
      predictions++;
    }
  }
  if (predictions === 0) throw new WhittleError('INVALID_ARGUMENT', 'perplexity needs at least 2 tokens in a window');
  return { perplexity: Math.exp(nll / predictions), predictions };
}

/**
 * All three scores for every block from calibration token ids (include BOS yourself; longer than
 * the context is split into windows of `maxSeqLen`).
 */
export function scoreBlocks(config: LlamaConfig, weights: LlamaWeights, tokens: readonly number[], options: ScoreOptions = {}): BlockScores {
  checkTokens(config, tokens);
  if (weights.layers.length !== config.nLayers) throw new WhittleError('BAD_MODEL', `weights have ${weights.layers.length} layers, the config ${config.nLayers}`);
  const windows = calibrationWindows(tokens, config.maxSeqLen);
  let t = performance.now();
  const { influence, angular, positions } = blockSimilarities(config, weights, windows);
  const similarityMs = performance.now() - t;
  t = performance.now();
  let perplexity: number[] = [];
  let fullPerplexity = NaN;
  let predictions = windows.reduce((n, w) => n + Math.max(0, w.length - 1), 0);
  if (options.perplexity ?? true) {
    const all = fullPlan(config).layers;
    if (config.nLayers > 1) perplexity = all.map((l) => planPerplexity(config, weights, { layers: all.filter((k) => k !== l) }, windows).perplexity);
    ({ perplexity: fullPerplexity, predictions } = planPerplexity(config, weights, { layers: all }, windows));
  }
  return { nLayers: config.nLayers, positions, predictions, influence, angular, perplexity, fullPerplexity, timing: { similarityMs, perplexityMs: performance.now() - t } };
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
