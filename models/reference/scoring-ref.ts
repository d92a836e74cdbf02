/**
 * Test oracle for on-device scoring: depth-pruning block scores and LayerSkip exit rates computed
 * with the plain-TypeScript reference (llama-ref.ts: one token at a time, float64 sums), sharing
 * no arithmetic with the production path (workers/text/block-scoring.ts and exit-calibration.ts
 * run the ONNX probe segments and do their own cosines, log-softmax and overlaps). Only the
 * definitions are shared: the score types and how calibration text is cut into windows
 * (models/llama/scoring.ts). Tests only; production code never imports models/reference/.
 *
 * - Perplexities (with a block removed, full depth) and exit distributions come straight from
 *   `LlamaReference` with the matching plan.
 * - Block similarities need the residual stream between blocks, which the reference does not
 *   expose, so `applyBlock` is its loop body per block (checked against it in
 *   scoring-ref.test.ts): head size, Q/K/V biases and RoPE scaling as the reference handles them.
 *
 * Cost: about (nLayers + 2) reference passes over the calibration tokens for `scoreBlocks`, and
 * n(n + 1)/2 block passes for `exitRates`: seconds for the 2.4M-parameter models, which is why
 * the engine does not use it.
 *
 * @example
 * const want = scoreBlocks(config, weights, tokens);          // oracle
 * const got = await engine.scoreBlocks(tokens);               // ONNX probe segments
 * expect(relative(got.fullPerplexity, want.fullPerplexity)).toBeLessThan(1e-4);
 */
import { WhittleError } from '../../core/errors.ts';
import { calibrationWindows, type BlockScores, type ScoreOptions } from '../llama/scoring.ts';
import { fullPlan, headSizeOf, type LlamaConfig, type LlamaLayerWeights, type LlamaPlan, type LlamaWeights } from '../llama/types.ts';
import { LlamaReference, matvec, rmsnorm, rope, softmaxInPlace } from './llama-ref.ts';

function checkTokens(config: LlamaConfig, tokens: readonly number[]): void {
  if (tokens.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'no calibration tokens');
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= config.vocabSize) throw new WhittleError('INVALID_ARGUMENT', `calibration token ${t} is outside the vocabulary (${config.vocabSize})`, { token: t });
  }
}

function checkWindow(config: LlamaConfig, window: readonly number[]): void {
  if (window.length > config.maxSeqLen) throw new WhittleError('INVALID_ARGUMENT', `window of ${window.length} tokens exceeds the context (${config.maxSeqLen})`);
}

/** Sees the inputs of a block's q/k/v [dim], o_proj [nHeads * hs], gate/up [dim] and down_proj [hidden] (the arrays are the block's own: copy to keep). */
export interface BlockTaps {
  qkv?: (x: Float32Array) => void;
  gateUp?: (x: Float32Array) => void;
  wo?: (x: Float32Array) => void;
  down?: (x: Float32Array) => void;
}

/**
 * One transformer block at position `pos`, in place on the residual stream `x` [dim], writing
 * this position's K/V into `keyCache`/`valueCache` [maxSeqLen, kvDim]. The same arithmetic as
 * `LlamaReference.forward`'s loop body (no sliding window: the graphs only run models whose
 * window covers the context), exposed per block so the hidden state between blocks can be seen.
 */
export function applyBlock(config: LlamaConfig, lw: LlamaLayerWeights, x: Float32Array, pos: number, keyCache: Float32Array, valueCache: Float32Array, taps?: BlockTaps): void {
  const c = config;
  const hs = headSizeOf(c);
  const kvDim = c.nKvHeads * hs;
  const groups = c.nHeads / c.nKvHeads;
  const addBias = (v: Float32Array, b: Float32Array | undefined) => {
    if (b) for (let i = 0; i < v.length; i++) v[i] = v[i]! + b[i]!;
  };
  // Attention
  const xb = rmsnorm(x, lw.attnNorm, c.normEps); // [dim]
  taps?.qkv?.(xb);
  const q = matvec(lw.wq, xb, c.nHeads * hs); // [nHeads*hs]
  const k = matvec(lw.wk, xb, kvDim); // [kvDim]
  const v = matvec(lw.wv, xb, kvDim); // [kvDim]
  addBias(q, lw.bq);
  addBias(k, lw.bk);
  addBias(v, lw.bv);
  rope(q, c.nHeads, hs, pos, c.ropeTheta, c.ropeLayout, c.ropeScaling);
  rope(k, c.nKvHeads, hs, pos, c.ropeTheta, c.ropeLayout, c.ropeScaling);
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
  taps?.wo?.(heads);
  const attnOut = matvec(lw.wo, heads, c.dim); // [dim]
  for (let i = 0; i < c.dim; i++) x[i] = x[i]! + attnOut[i]!;
  // SwiGLU MLP: w2( silu(w1 x) * w3 x )
  const xf = rmsnorm(x, lw.ffnNorm, c.normEps); // [dim]
  taps?.gateUp?.(xf);
  const gate = matvec(lw.w1, xf, c.hiddenDim); // [hidden]
  const up = matvec(lw.w3, xf, c.hiddenDim); // [hidden]
  for (let i = 0; i < c.hiddenDim; i++) {
    const g = gate[i]!;
    gate[i] = (g / (1 + Math.exp(-g))) * up[i]!;
  }
  taps?.down?.(gate);
  const down = matvec(lw.w2, gate, c.dim); // [dim]
  for (let i = 0; i < c.dim; i++) x[i] = x[i]! + down[i]!;
}

/** cos(a, b) in float64; 1 when both are zero, 0 when only one is. */
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
 * One full-depth pass over each window recording, for every block l and position t,
 * cos(h_in[t], h_out[t]); returns the per-block means of 1 - cos (influence) and arccos(cos) / pi.
 */
export function blockSimilarities(config: LlamaConfig, weights: LlamaWeights, windows: readonly (readonly number[])[]): { influence: number[]; angular: number[]; positions: number } {
  const L = config.nLayers;
  const kvDim = config.nKvHeads * headSizeOf(config);
  const cosSum = new Float64Array(L); // [L]
  const angleSum = new Float64Array(L); // [L]
  let positions = 0;
  for (const window of windows) {
    checkWindow(config, window);
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
  return { influence: Array.from(cosSum, (s) => 1 - s / positions), angular: Array.from(angleSum, (s) => s / positions), positions };
}

/**
 * Teacher-forced perplexity of `windows` under `plan`: exp of the mean of -log p(w[t+1] | w[..t])
 * over every window (each from position 0; a window's first token is not predicted).
 */
export function planPerplexity(config: LlamaConfig, weights: LlamaWeights, plan: LlamaPlan, windows: readonly (readonly number[])[]): { perplexity: number; predictions: number } {
  let nll = 0;
  let predictions = 0;
  const probs = new Float64Array(config.vocabSize); // [vocab]
  for (const window of windows) {
    checkWindow(config, window);
    const ref = new LlamaReference(config, weights, plan);
    for (let pos = 0; pos + 1 < window.length; pos++) {
      probs.set(ref.forward(window[pos]!, pos)); // [vocab] logits
      softmaxInPlace(probs);
      nll -= Math.log(probs[window[pos + 1]!]!);
      predictions++;
    }
  }
  if (predictions === 0) throw new WhittleError('INVALID_ARGUMENT', 'perplexity needs at least 2 tokens in a window');
  return { perplexity: Math.exp(nll / predictions), predictions };
}

/** All three scores for every block from calibration token ids (BOS included by the caller; split into windows of `maxSeqLen`). */
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

/**
 * Per-exit rates of `layers` on one window (cut to the context), from the reference: exit e's
 * logits are `LlamaReference` over the plan `layers.slice(0, e)`, compared at every position with
 * the full plan's. agreement[e - 1]: how often their argmaxes match; acceptance[e - 1]: mean
 * sum_x min(p_e(x), p_n(x)) at `temperature`.
 */
export function exitRates(config: LlamaConfig, weights: LlamaWeights, layers: readonly number[], tokens: readonly number[], temperature = 1): { agreement: number[]; acceptance: number[]; positions: number } {
  checkTokens(config, tokens);
  const window = tokens.slice(0, config.maxSeqLen);
  const n = layers.length;
  const refs = layers.map((_, i) => new LlamaReference(config, weights, { layers: layers.slice(0, i + 1) }));
  const agree = new Float64Array(n); // [n]
  const accept = new Float64Array(n); // [n]
  const argmax = (x: Float32Array) => x.reduce((best, v, i) => (v > x[best]! ? i : best), 0);
  const probs = (x: Float32Array) => {
    const p = Float64Array.from(x, (v) => v / temperature);
    softmaxInPlace(p);
    return p;
  };
  window.forEach((token, pos) => {
    const logits = refs.map((r) => r.forward(token, pos)); // n x [vocab]
    const final = logits[n - 1]!;
    const pFinal = probs(final);
    logits.forEach((l, i) => {
      if (argmax(l) === argmax(final)) agree[i]!++;
      const p = probs(l);
      let overlap = 0;
      for (let v = 0; v < p.length; v++) overlap += Math.min(p[v]!, pFinal[v]!);
      accept[i] = accept[i]! + overlap;
    });
  });
  return { agreement: Array.from(agree, (s) => s / window.length), acceptance: Array.from(accept, (s) => s / window.length), positions: window.length };
}
