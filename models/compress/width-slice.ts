/**
 * Structured width pruning applied to prepared weights (models/llama/prepare.ts layout): a block
 * keeps whole KV groups and FFN channels, and its linears shrink to them:
 *
 *   qkv    [dim, (H + 2K) * hs] -> [dim, (H' + 2K') * hs]   the kept groups' q | k | v columns
 *   wo     [H * hs, dim]        -> [H' * hs, dim]           the kept query heads' rows
 *   gateUp [dim, 2F]            -> [dim, 2F']               kept gate | kept up columns
 *   down   [F, dim]             -> [F', dim]                the kept channels' rows
 *
 * (H' = K' * H / K: query head h belongs to KV group floor(h / G).) The slice records its own
 * `kvHeads` / `hidden`, so the graphs, KV caches and probes take each block's shape from it.
 *
 * FLAP's bias compensation: a removed input channel c of o_proj or down_proj still contributed
 * x_c * W[c, :] to the output; replacing x_c by its calibration mean keeps the output's mean:
 *   bias[o] = sum over removed c of mean(x_c) * W[c, o]
 * added after the linear (prepare.ts `woBias` / `downBias`).
 *
 * fp32 linears only: a quantized matrix's groups run along the input rows, so slicing it would
 * need requantizing; prune the width first, then compress.
 *
 * @example
 * const narrow = sliceWidth(prepared, { kvHeads, ffn, bias: true }, (l) => means[l]);
 */
import { WhittleError } from '../../core/errors.ts';
import type { PreparedLayer, PreparedWeights } from '../llama/prepare.ts';
import type { WidthPlan } from '../llama/types.ts';
import type { KeptWidth } from './width-select.ts';

/** Calibration means of a block's o_proj input [nHeads * hs] and down_proj input [hidden]. */
export interface InputMeans {
  wo: Float32Array;
  down: Float32Array;
}

function fp32(name: string, w: PreparedLayer[keyof Pick<PreparedLayer, 'qkv' | 'wo' | 'gateUp' | 'down'>]): Float32Array {
  if (!(w instanceof Float32Array)) throw new WhittleError('UNSUPPORTED', `width pruning slices fp32 weights; ${name} is compressed (prune the width before compressing)`);
  return w;
}

function checkKept(name: string, kept: readonly number[], n: number): void {
  if (!Array.isArray(kept) || kept.length === 0) throw new WhittleError('INVALID_ARGUMENT', `width: ${name} keeps nothing (at least one is needed)`);
  let prev = -1;
  for (const i of kept) {
    if (!Number.isInteger(i) || i <= prev || i >= n) throw new WhittleError('INVALID_ARGUMENT', `width: ${name} must be ascending distinct indices below ${n}`, { index: i });
    prev = i;
  }
}

/** Throws INVALID_ARGUMENT unless `width` names, per block, ascending kept KV heads and FFN channels that exist. */
export function validateWidth(width: WidthPlan, nLayers: number, nKvHeads: number, hidden: number): void {
  if (!width || !Array.isArray(width.kvHeads) || !Array.isArray(width.ffn) || width.kvHeads.length !== nLayers || width.ffn.length !== nLayers) {
    throw new WhittleError('INVALID_ARGUMENT', `a width plan needs kvHeads and ffn lists for each of the ${nLayers} blocks`);
  }
  for (let l = 0; l < nLayers; l++) {
    checkKept(`block ${l} kvHeads`, width.kvHeads[l]!, nKvHeads);
    checkKept(`block ${l} ffn`, width.ffn[l]!, hidden);
  }
}

/** Columns [from, from + n) of a row-major [rows, cols] matrix for each kept block of `n`, into out [rows, outCols] at column `at`. */
function copyColumns(src: Float32Array, rows: number, cols: number, out: Float32Array, outCols: number, at: number, starts: readonly number[], n: number): void {
  for (let r = 0; r < rows; r++) {
    let o = r * outCols + at;
    for (const s of starts) {
      out.set(src.subarray(r * cols + s, r * cols + s + n), o);
      o += n;
    }
  }
}

/** Rows [s, s + n) of a row-major [*, cols] matrix for each start, concatenated. */
function copyRows(src: Float32Array, cols: number, starts: readonly number[], n: number): Float32Array {
  const out = new Float32Array(starts.length * n * cols);
  starts.forEach((s, i) => out.set(src.subarray(s * cols, (s + n) * cols), i * n * cols));
  return out;
}

/** bias[o] = sum over rows c not kept of mean[c] * w[c, o] (float64 sums). */
function compensation(w: Float32Array, cols: number, mean: Float32Array, keptRow: (c: number) => boolean): Float32Array {
  const acc = new Float64Array(cols);
  for (let c = 0; c < mean.length; c++) {
    if (keptRow(c)) continue;
    const m = mean[c]!;
    for (let o = 0; o < cols; o++) acc[o]! += m * w[c * cols + o]!;
  }
  return Float32Array.from(acc);
}

/**
 * One full-width block narrowed to `kept` (config shape: nHeads H, nKvHeads K, hidden F; head
 * size hs); with `means`, the compensation biases of what was removed.
 */
export function sliceLayer(l: PreparedLayer, shape: { dim: number; headSize: number; nHeads: number; nKvHeads: number; hidden: number }, kept: KeptWidth, means?: InputMeans): PreparedLayer {
  const { dim, headSize: hs, nHeads: H, nKvHeads: K, hidden: F } = shape;
  if (l.kvHeads !== undefined || l.hidden !== undefined) throw new WhittleError('INTERNAL', 'width pruning starts from full-width blocks');
  checkKept('kvHeads', kept.kvHeads, K);
  checkKept('ffn', kept.ffn, F);
  const G = H / K;
  const K2 = kept.kvHeads.length;
  const H2 = K2 * G;
  const F2 = kept.ffn.length;
  const qkv = fp32('qkv', l.qkv);
  const wo = fp32('wo', l.wo);
  const gateUp = fp32('gateUp', l.gateUp);
  const down = fp32('down', l.down);

  // Column starts of the kept query heads, KV heads, in the fused q | k | v layout.
  const qStarts = kept.kvHeads.flatMap((g) => Array.from({ length: G }, (_, i) => (g * G + i) * hs));
  const kStarts = kept.kvHeads.map((g) => H * hs + g * hs);
  const vStarts = kept.kvHeads.map((g) => (H + K) * hs + g * hs);
  const cols = (H + 2 * K) * hs;
  const cols2 = (H2 + 2 * K2) * hs;
  const qkv2 = new Float32Array(dim * cols2);
  copyColumns(qkv, dim, cols, qkv2, cols2, 0, qStarts, hs);
  copyColumns(qkv, dim, cols, qkv2, cols2, H2 * hs, kStarts, hs);
  copyColumns(qkv, dim, cols, qkv2, cols2, (H2 + K2) * hs, vStarts, hs);
  let qkvBias: Float32Array | undefined;
  if (l.qkvBias) {
    qkvBias = new Float32Array(cols2);
    copyColumns(l.qkvBias, 1, cols, qkvBias, cols2, 0, qStarts, hs);
    copyColumns(l.qkvBias, 1, cols, qkvBias, cols2, H2 * hs, kStarts, hs);
    copyColumns(l.qkvBias, 1, cols, qkvBias, cols2, (H2 + K2) * hs, vStarts, hs);
  }
  const wo2 = copyRows(wo, dim, qStarts, hs); // [H' * hs, dim]
  const gateUp2 = new Float32Array(dim * 2 * F2);
  copyColumns(gateUp, dim, 2 * F, gateUp2, 2 * F2, 0, kept.ffn, 1);
  copyColumns(gateUp, dim, 2 * F, gateUp2, 2 * F2, F2, kept.ffn.map((j) => F + j), 1);
  const down2 = copyRows(down, dim, kept.ffn, 1); // [F', dim]

  const out: PreparedLayer = { attnNorm: l.attnNorm, qkv: qkv2, wo: wo2, ffnNorm: l.ffnNorm, gateUp: gateUp2, down: down2, kvHeads: K2, hidden: F2 };
  if (qkvBias) out.qkvBias = qkvBias;
  if (means) {
    if (means.wo.length !== H * hs || means.down.length !== F) throw new WhittleError('INVALID_ARGUMENT', `input means of ${means.wo.length} / ${means.down.length} channels do not fit ${H * hs} / ${F}`);
    const keptGroups = new Set(kept.kvHeads);
    const keptChannels = new Set(kept.ffn);
    out.woBias = compensation(wo, dim, means.wo, (c) => keptGroups.has(Math.floor(c / (G * hs))));
    out.downBias = compensation(down, dim, means.down, (c) => keptChannels.has(c));
  }
  return out;
}

/**
 * `w` with the blocks in `layers` (default: all) narrowed as `width` says; blocks outside them or
 * that keep everything are shared, not copied (a depth-pruned plan compiles only its own blocks).
 * `meansOf(l)` gives block l's input means when `width.bias` asks for compensation.
 */
export function sliceWidth(w: PreparedWeights, width: WidthPlan, meansOf?: (layer: number) => InputMeans | undefined, layers?: readonly number[]): PreparedWeights {
  const c = w.config;
  validateWidth(width, c.nLayers, c.nKvHeads, c.hiddenDim);
  const shape = { dim: c.dim, headSize: w.headSize, nHeads: c.nHeads, nKvHeads: c.nKvHeads, hidden: c.hiddenDim };
  const wanted = new Set(layers ?? w.layers.keys());
  const narrowed = w.layers.map((l, i) => {
    const kept = { kvHeads: width.kvHeads[i]!, ffn: width.ffn[i]! };
    if (!wanted.has(i) || (kept.kvHeads.length === c.nKvHeads && kept.ffn.length === c.hiddenDim)) return l;
    const means = width.bias ? meansOf?.(i) : undefined;
    if (width.bias && !means) throw new WhittleError('INTERNAL', `width plan asks for bias compensation but block ${i} has no input means`);
    return sliceLayer(l, shape, kept, means);
  });
  return { ...w, layers: narrowed };
}
