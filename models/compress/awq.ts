/**
 * AWQ-lite (after Lin et al., "AWQ: Activation-aware Weight Quantization", 2023): scale each
 * input channel k of a linear W [K, N] by s_k before quantizing, and divide the input by s_k, so
 * channels that carry large activations get finer weight steps. Only the scaling search of the
 * paper (no weight clipping search).
 *
 *   y = x W = (x / s) (diag(s) W)                       exact in fp32, for any s > 0
 *   y ~ (x / s) Q(diag(s) W)                           what runs after quantization
 *   s = m^alpha / sqrt(max(m^alpha) min(m^alpha)),    m = mean |x| per input channel
 * alpha is searched on a grid (default 0, 0.1, .., 1; alpha 0 is plain round-to-nearest) for the
 * smallest output error || X W - (X / s) Q(diag(s) W) ||^2 over calibration rows X, per weight.
 *
 * Where x / s comes from (no extra node: 1/s is folded into the op that produces x):
 *   qkv input    = RMSNorm(h) * attnNorm    -> attnNorm / s  (q|k|v share the input: one s)
 *   gateUp input = RMSNorm(h) * ffnNorm     -> ffnNorm / s   (gate|up share it: one s)
 *   down input   = silu(gate) * up          -> up columns of gateUp / s (the product is linear in up)
 *   wo input     = attention(q, k, v)       -> v columns of qkv / s (attention output is a convex
 *                  combination of V rows per head, so it is linear in V); with GQA, query head h
 *                  reads KV head h / G, so s must be equal across the G query heads of a group:
 *                  the statistic is averaged over the group before the search.
 * Q/K/V biases (Qwen2) follow their columns: the V part of the bias is divided by s too.
 *
 * The inputs' statistics come from the compiled fp32 graphs (workers/text/activation-stats.ts);
 * this file is pure arithmetic over typed arrays.
 *
 * @example
 * const { layer, alphas } = awqLayer(fp32Layer, config, headSize, stats, (w, K, N) => dequantizeBlockwise(quantizeBlockwise(w, K, N, 4, 32)));
 * compressLayer(layer, i, config, headSize, form); // the scaled weights, quantized
 */
import { WhittleError } from '../../core/errors.ts';
import type { PreparedLayer } from '../llama/prepare.ts';
import type { LlamaConfig } from '../llama/types.ts';

/** Calibration statistics of one linear's input x [.., K]. */
export interface LinearInputStats {
  /** float32 [K]: mean |x_k| over every calibration position. */
  meanAbs: Float32Array;
  /** float32 [R, K]: R calibration inputs, spread evenly over the positions (the error's X). */
  rows: Float32Array;
}

/** The four linear inputs of one block, in the order the block multiplies them. */
export interface BlockInputStats {
  qkv: LinearInputStats; // [.., dim]
  wo: LinearInputStats; // [.., nHeads * headSize]
  gateUp: LinearInputStats; // [.., dim]
  down: LinearInputStats; // [.., hidden]
}

/** Per-input-channel scales of one block's four linears (s > 0; 1 = unscaled). */
export interface BlockScales {
  qkv: Float32Array; // [dim]
  wo: Float32Array; // [nHeads * headSize], equal across the query heads of a KV group
  gateUp: Float32Array; // [dim]
  down: Float32Array; // [hidden]
}

/** W [K, N] -> the fp32 values the quantized form multiplies by (quantize, then dequantize). */
export type QuantizeDequantize = (w: Float32Array, K: number, N: number) => Float32Array;

/** The alpha chosen per linear, and its calibration output error next to alpha 0's (RTN). */
export interface AwqChoice {
  alpha: number;
  error: number;
  rtnError: number;
}

export const DEFAULT_ALPHAS: readonly number[] = Array.from({ length: 11 }, (_, i) => i / 10);

/** s = m^alpha, normalised to geometric middle 1 (so the weights' overall range stays put). */
export function awqScales(meanAbs: Float32Array, alpha: number): Float32Array {
  let top = 0;
  for (const v of meanAbs) top = Math.max(top, v);
  // A channel silent on the calibration text must not get a scale near 0: its 1/s, folded into a
  // norm weight, would blow up any input that does reach it on other text.
  const floor = top > 0 ? top * 1e-4 : 1;
  const s = Float64Array.from(meanAbs, (v) => Math.pow(Math.max(v, floor), alpha));
  let lo = Infinity;
  let hi = 0;
  for (const v of s) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const mid = Math.sqrt(lo * hi);
  return Float32Array.from(s, (v) => v / mid);
}

/** || X W - (X / s) Q(diag(s) W) ||^2 over the rows of X [R, K], W [K, N]. */
export function awqOutputError(w: Float32Array, K: number, N: number, rows: Float32Array, s: Float32Array, qdq: QuantizeDequantize): number {
  const scaled = new Float32Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) scaled[k * N + n] = w[k * N + n]! * s[k]!;
  const q = qdq(scaled, K, N);
  // delta = W - diag(1/s) Q(diag(s) W): the effective weight error in the unscaled model's terms.
  const delta = new Float64Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) delta[k * N + n] = w[k * N + n]! - q[k * N + n]! / s[k]!;
  const R = rows.length / K;
  const y = new Float64Array(N);
  let err = 0;
  for (let r = 0; r < R; r++) {
    y.fill(0);
    for (let k = 0; k < K; k++) {
      const x = rows[r * K + k]!;
      if (x === 0) continue;
      const base = k * N;
      for (let n = 0; n < N; n++) y[n]! += x * delta[base + n]!;
    }
    for (let n = 0; n < N; n++) err += y[n]! * y[n]!;
  }
  return err;
}

/** The alpha on `alphas` with the smallest calibration output error for W [K, N], and its scales. */
export function searchAwqScale(w: Float32Array, K: number, N: number, stats: LinearInputStats, qdq: QuantizeDequantize, alphas: readonly number[] = DEFAULT_ALPHAS): { scales: Float32Array; choice: AwqChoice } {
  checkStats(stats, K, 'linear');
  if (w.length !== K * N) throw new WhittleError('INVALID_ARGUMENT', `awq: weight has ${w.length} values, not ${K} * ${N}`);
  if (alphas.length === 0 || alphas.some((a) => !(a >= 0 && a <= 1))) throw new WhittleError('INVALID_ARGUMENT', `awq: alphas must lie in [0, 1]: ${alphas.join(', ')}`);
  let best: { scales: Float32Array; choice: AwqChoice } | null = null;
  // alpha 0 is round-to-nearest itself: always measured, so the search never picks worse than RTN.
  const rtnError = awqOutputError(w, K, N, stats.rows, new Float32Array(K).fill(1), qdq);
  for (const alpha of alphas) {
    const scales = awqScales(stats.meanAbs, alpha);
    const error = alpha === 0 ? rtnError : awqOutputError(w, K, N, stats.rows, scales, qdq);
    if (!best || error < best.choice.error) best = { scales, choice: { alpha, error, rtnError } };
  }
  if (best!.choice.error > rtnError) return { scales: new Float32Array(K).fill(1), choice: { alpha: 0, error: rtnError, rtnError } };
  return best!;
}

function checkStats(stats: LinearInputStats, K: number, name: string): void {
  if (stats.meanAbs.length !== K || stats.rows.length === 0 || stats.rows.length % K !== 0) {
    throw new WhittleError('INVALID_ARGUMENT', `awq: ${name} statistics are for ${stats.meanAbs.length} input channels with ${stats.rows.length} row values; the weight has ${K}`, { name, K });
  }
}

/**
 * mean |x| of the attention output [H * hs] averaged over the G query heads that read each KV
 * head, repeated back to [H * hs]: the one scale per V channel that wo's input can take.
 */
export function tieToKvGroups(meanAbs: Float32Array, nHeads: number, nKvHeads: number, hs: number): Float32Array {
  const G = nHeads / nKvHeads;
  const out = new Float32Array(nHeads * hs);
  for (let kv = 0; kv < nKvHeads; kv++) {
    for (let d = 0; d < hs; d++) {
      let sum = 0;
      for (let g = 0; g < G; g++) sum += meanAbs[(kv * G + g) * hs + d]!;
      for (let g = 0; g < G; g++) out[(kv * G + g) * hs + d] = sum / G;
    }
  }
  return out;
}

const fp32 = (w: PreparedLayer[keyof PreparedLayer], name: string): Float32Array => {
  if (w instanceof Float32Array) return w;
  throw new WhittleError('INVALID_ARGUMENT', `awq: ${name} is already quantized; scale the fp32 prepared weights`);
};

/**
 * One fp32 prepared layer with `s` applied: each linear's rows multiplied by its input scales,
 * and 1/s folded into what produces that input (see the file header). The block computes the
 * same function as before in exact arithmetic (float32 rounding aside). New arrays; `l` is not
 * modified.
 */
export function foldAwqScales(l: PreparedLayer, c: LlamaConfig, hs: number, s: BlockScales): PreparedLayer {
  const H = c.nHeads;
  const KV = c.nKvHeads;
  const G = H / KV;
  const qkvCols = (H + 2 * KV) * hs;
  const check = (v: Float32Array, n: number, name: string) => {
    if (v.length !== n || v.some((x) => !(x > 0) || !Number.isFinite(x))) throw new WhittleError('INVALID_ARGUMENT', `awq: ${name} scales need ${n} finite positive values`);
  };
  check(s.qkv, c.dim, 'qkv');
  check(s.wo, H * hs, 'wo');
  check(s.gateUp, c.dim, 'gateUp');
  check(s.down, c.hiddenDim, 'down');
  // V channel (kv, d) scales attention output channels (kv * G + g, d) for every g: one value.
  const vScale = new Float32Array(KV * hs);
  for (let kv = 0; kv < KV; kv++) {
    for (let d = 0; d < hs; d++) {
      const v = s.wo[kv * G * hs + d]!;
      for (let g = 1; g < G; g++) {
        if (s.wo[(kv * G + g) * hs + d] !== v) throw new WhittleError('INVALID_ARGUMENT', `awq: wo scales differ across the query heads of KV head ${kv} (channel ${d}); tie them (tieToKvGroups)`);
      }
      vScale[kv * hs + d] = v;
    }
  }
  const vCol0 = (H + KV) * hs;

  const qkv = fp32(l.qkv, 'qkv').slice(); // [dim, qkvCols]
  for (let k = 0; k < c.dim; k++) {
    const sk = s.qkv[k]!;
    for (let n = 0; n < qkvCols; n++) qkv[k * qkvCols + n]! *= sk;
    for (let j = 0; j < KV * hs; j++) qkv[k * qkvCols + vCol0 + j]! /= vScale[j]!;
  }
  let qkvBias = l.qkvBias;
  if (qkvBias) {
    qkvBias = qkvBias.slice();
    for (let j = 0; j < KV * hs; j++) qkvBias[vCol0 + j]! /= vScale[j]!;
  }
  const wo = fp32(l.wo, 'wo').slice(); // [H * hs, dim]
  for (let r = 0; r < H * hs; r++) for (let n = 0; n < c.dim; n++) wo[r * c.dim + n]! *= s.wo[r]!;

  const F = c.hiddenDim;
  const gateUp = fp32(l.gateUp, 'gateUp').slice(); // [dim, 2F], columns gate | up
  for (let k = 0; k < c.dim; k++) {
    const sk = s.gateUp[k]!;
    for (let n = 0; n < 2 * F; n++) gateUp[k * 2 * F + n]! *= sk;
    for (let j = 0; j < F; j++) gateUp[k * 2 * F + F + j]! /= s.down[j]!;
  }
  const down = fp32(l.down, 'down').slice(); // [F, dim]
  for (let j = 0; j < F; j++) for (let n = 0; n < c.dim; n++) down[j * c.dim + n]! *= s.down[j]!;

  return {
    ...l,
    attnNorm: Float32Array.from(l.attnNorm, (g, k) => g / s.qkv[k]!),
    qkv,
    ...(qkvBias ? { qkvBias } : {}),
    wo,
    ffnNorm: Float32Array.from(l.ffnNorm, (g, k) => g / s.gateUp[k]!),
    gateUp,
    down,
  };
}

/**
 * Searches the four scales of one fp32 layer on its input statistics and folds them in. wo and
 * down are searched first: their 1/s lands in qkv's V columns and gateUp's up columns, and the
 * qkv / gateUp searches must measure the weights that will really be quantized.
 */
export function awqLayer(l: PreparedLayer, c: LlamaConfig, hs: number, stats: BlockInputStats, qdq: QuantizeDequantize, alphas: readonly number[] = DEFAULT_ALPHAS): { layer: PreparedLayer; choices: Record<keyof BlockScales, AwqChoice> } {
  const H = c.nHeads;
  const F = c.hiddenDim;
  checkStats(stats.qkv, c.dim, 'qkv');
  checkStats(stats.wo, H * hs, 'wo');
  checkStats(stats.gateUp, c.dim, 'gateUp');
  checkStats(stats.down, F, 'down');
  const ones = (n: number) => new Float32Array(n).fill(1);
  const woStats = { meanAbs: tieToKvGroups(stats.wo.meanAbs, H, c.nKvHeads, hs), rows: stats.wo.rows };
  const wo = searchAwqScale(fp32(l.wo, 'wo'), H * hs, c.dim, woStats, qdq, alphas);
  const down = searchAwqScale(fp32(l.down, 'down'), F, c.dim, stats.down, qdq, alphas);
  // Fold wo / down first (identity for qkv / gateUp), then search those on the folded weights.
  const partial = foldAwqScales(l, c, hs, { qkv: ones(c.dim), wo: wo.scales, gateUp: ones(c.dim), down: down.scales });
  const qkv = searchAwqScale(partial.qkv as Float32Array, c.dim, (H + 2 * c.nKvHeads) * hs, stats.qkv, qdq, alphas);
  const gateUp = searchAwqScale(partial.gateUp as Float32Array, c.dim, 2 * F, stats.gateUp, qdq, alphas);
  const layer = foldAwqScales(l, c, hs, { qkv: qkv.scales, wo: wo.scales, gateUp: gateUp.scales, down: down.scales });
  return { layer, choices: { qkv: qkv.choice, wo: wo.choice, gateUp: gateUp.choice, down: down.choice } };
}
