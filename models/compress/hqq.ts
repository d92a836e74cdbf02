/**
 * HQQ-style refinement of per-group asymmetric quantization (Badri & Shaji, "Half-Quadratic
 * Quantization of Large Machine Learning Models", 2023): no calibration data, only the weights.
 * The output is the same `BlockwiseWeight` (MatMulNBits layout, blockwise.ts) that
 * round-to-nearest produces, so every kernel path (MatMulNBits, dequantized MatMul) reads it
 * unchanged; only the chosen scales, zero points and codes differ.
 *
 * Per group of `blockSize` consecutive k of one column n (values w, codes q, zero point z):
 *   minimise  sum |w - s (q - z)|^p,  p < 1  (a robust norm: a few large errors are cheap, so
 *   the grid can fit the bulk of the group instead of being dragged by its outliers)
 * HQQ splits it half-quadratically with an auxiliary error variable e and a penalty beta that
 * grows each step (kappa > 1):
 *   q  = clamp(round(w / s + z))                        codes for the current grid
 *   e  = shrink_p(w - s (q - z), beta)                  lp proximal step: the part of the error
 *                                                       the robust norm "lets through"
 *   (s, z) = argmin || (w - e) - s (q - z) ||^2          closed form (least squares, q fixed)
 *   shrink_p(x, beta) = sign(x) max(0, |x| - |x|^(p-1) / beta)
 * Differences from the paper's reference code, and why:
 * - MatMulNBits stores zero points as integers in [0, 2^bits - 1] (uint8, packed); the paper's
 *   zero is a float. An integer zero alone has almost no freedom (round-to-nearest already picks
 *   the nearest one), so the scale is optimised too (the paper's optional scale step): the least
 *   squares fit of (s, s z) is solved jointly, z rounded to the grid, then s refitted for that z.
 * - The error is measured in units of the group's round-to-nearest scale, so beta means the same
 *   for a group of 1e-3 weights as for one of 1e-1 (the reference applies beta to raw weights,
 *   where its shrink step is a no-op for typical small weights).
 * - Every iterate's grid is scored by the objective itself, sum |w - s (q - z)|^p, and the best
 *   seen is kept, starting from round-to-nearest's own (the reference code stops at the first
 *   iterate that does not improve its mean |error|), so no group ends up worse than
 *   round-to-nearest in the lp error. Scoring by plain squared error instead was tried: it cut
 *   the squared weight error by ~8% on stories-layerskip, yet left stories260K's q4 perplexity
 *   above RTN's at every group size (+9.2 / +12.5 / +13.5% vs +8.8 / +10.9 / +12.7%).
 *
 * @example
 * const q = quantizeBlockwiseHqq(w, 576, 1536, 4, 32); // w [576, 1536] as MatMul's B
 * const back = dequantizeBlockwise(q);                  // same layout as quantizeBlockwise's
 */
import { WhittleError } from '../../core/errors.ts';
import { blobBytes, blockCount, zeroPointBytes, type BlockSize, type BlockwiseWeight, type NBits } from './blockwise.ts';

export interface HqqOptions {
  /** The lp norm's p (< 1: robust). Default 0.7, the paper's. */
  p?: number;
  /** Initial half-quadratic penalty, in units of the round-to-nearest scale. Default 1. */
  beta?: number;
  /** Penalty growth per iteration (> 1). Default 1.2. */
  kappa?: number;
  /** Iterations per group. Default 20, the paper's. */
  iters?: number;
}

/** One group's grid: dequantized value of code q is scale * (q - zp). */
interface Grid {
  scale: number;
  zp: number;
}

/** Round-to-nearest's grid from min/max, exactly as blockwise.ts chooses it (the starting point). */
function rtnGrid(lo: number, hi: number, qmax: number): Grid {
  if (hi === lo) {
    if (lo === 0) return { scale: 1, zp: 0 };
    return lo > 0 ? { scale: Math.fround(lo), zp: 0 } : { scale: Math.fround(-lo), zp: 1 };
  }
  const scale = Math.fround((hi - lo) / qmax);
  return { scale, zp: Math.min(qmax, Math.max(0, Math.round(-lo / scale))) };
}

const code = (v: number, g: Grid, qmax: number): number => Math.min(qmax, Math.max(0, Math.round(v / g.scale) + g.zp));

/** sum |w - reconstruction|^p of `w` on grid `g` (float32 scale, as stored): HQQ's objective. */
function lpError(w: Float64Array, m: number, g: Grid, qmax: number, p: number): number {
  let e = 0;
  for (let i = 0; i < m; i++) e += Math.pow(Math.abs(w[i]! - (code(w[i]!, g, qmax) - g.zp) * g.scale), p);
  return e;
}

/**
 * The refined grid of one group: w[0..m) its values (float64 scratch), q and t scratch of the
 * same length. Returns round-to-nearest's grid when no iterate beats it.
 */
function refineGroup(w: Float64Array, m: number, qmax: number, o: Required<HqqOptions>, q: Float64Array, t: Float64Array): Grid {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < m; i++) {
    lo = Math.min(lo, w[i]!);
    hi = Math.max(hi, w[i]!);
  }
  const start = rtnGrid(lo, hi, qmax);
  if (hi === lo) return start; // represented exactly already
  let best = start;
  let bestErr = lpError(w, m, start, qmax, o.p);
  const unit = start.scale; // errors are shrunk in units of the starting step
  let g = start;
  let beta = o.beta;
  for (let it = 0; it < o.iters; it++) {
    // Codes for the current grid, and the target the grid should reproduce: w minus the part of
    // the error that the lp proximal step leaves as "outlier".
    let sq = 0;
    let sqq = 0;
    let st = 0;
    let sqt = 0;
    for (let i = 0; i < m; i++) {
      const qi = code(w[i]!, g, qmax);
      const err = (w[i]! - (qi - g.zp) * g.scale) / unit;
      const a = Math.abs(err);
      const shrunk = a === 0 ? 0 : Math.max(0, a - Math.pow(a, o.p - 1) / beta);
      const ti = w[i]! - Math.sign(err) * shrunk * unit;
      q[i] = qi;
      t[i] = ti;
      sq += qi;
      sqq += qi * qi;
      st += ti;
      sqt += qi * ti;
    }
    beta *= o.kappa;
    // Least squares t ~ a q - b over the group: a = cov(q, t) / var(q), b = a mean(q) - mean(t).
    const varQ = sqq - (sq * sq) / m;
    if (varQ <= 0) break; // every code equal: nothing left to fit
    const a = (sqt - (sq * st) / m) / varQ;
    if (!(a > 0)) break;
    const b = (a * sq) / m - st / m;
    const zp = Math.min(qmax, Math.max(0, Math.round(b / a)));
    // Refit the scale for the integer zero point: s = sum t (q - z) / sum (q - z)^2.
    let num = 0;
    let den = 0;
    for (let i = 0; i < m; i++) {
      const d = q[i]! - zp;
      num += t[i]! * d;
      den += d * d;
    }
    if (!(den > 0) || !(num > 0)) break;
    g = { scale: Math.fround(num / den), zp };
    const err = lpError(w, m, g, qmax, o.p);
    if (err < bestErr) {
      best = g;
      bestErr = err;
    }
  }
  return best;
}

/**
 * Quantizes W (float32 [K, N] row-major, MatMul's B) per block of `blockSize` consecutive k of
 * each column n, to `bits` bits with a per-block zero point, with grids refined by HQQ.
 */
export function quantizeBlockwiseHqq(w: Float32Array, K: number, N: number, bits: NBits, blockSize: BlockSize, options: HqqOptions = {}): BlockwiseWeight {
  if (!Number.isInteger(K) || !Number.isInteger(N) || K < 1 || N < 1 || w.length !== K * N) {
    throw new WhittleError('INVALID_ARGUMENT', `weight has ${w.length} values, not K * N = ${K} * ${N}`, { K, N, length: w.length });
  }
  if (bits !== 4 && bits !== 8) throw new WhittleError('INVALID_ARGUMENT', `bits must be 4 or 8, not ${String(bits)}`);
  if (blockSize !== 32 && blockSize !== 64 && blockSize !== 128) throw new WhittleError('INVALID_ARGUMENT', `block size must be 32, 64 or 128, not ${String(blockSize)}`);
  const o: Required<HqqOptions> = { p: 0.7, beta: 1, kappa: 1.2, iters: 20, ...options };
  if (!(o.p > 0 && o.p < 1) || !(o.beta > 0) || !(o.kappa >= 1) || !Number.isInteger(o.iters) || o.iters < 0) {
    throw new WhittleError('INVALID_ARGUMENT', `hqq options need 0 < p < 1, beta > 0, kappa >= 1 and whole iters >= 0: ${JSON.stringify(options)}`);
  }
  const qmax = (1 << bits) - 1;
  const nBlocks = blockCount(K, blockSize);
  const blob = blobBytes(blockSize, bits);
  const zpBytes = zeroPointBytes(nBlocks, bits);
  const b = new Uint8Array(N * nBlocks * blob);
  const scales = new Float32Array(N * nBlocks);
  const zeroPoints = new Uint8Array(N * zpBytes);
  const vals = new Float64Array(blockSize);
  const qs = new Float64Array(blockSize);
  const ts = new Float64Array(blockSize);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < nBlocks; j++) {
      const k0 = j * blockSize;
      const m = Math.min(K, k0 + blockSize) - k0;
      for (let i = 0; i < m; i++) vals[i] = w[(k0 + i) * N + n]!;
      const g = refineGroup(vals, m, qmax, o, qs, ts);
      scales[n * nBlocks + j] = g.scale;
      pack(zeroPoints, n * zpBytes, j, g.zp, bits);
      const base = (n * nBlocks + j) * blob;
      // Pad elements past K take the zero point (dequantize to 0), as in blockwise.ts.
      for (let i = 0; i < blockSize; i++) pack(b, base, i, i < m ? code(vals[i]!, g, qmax) : g.zp, bits);
    }
  }
  return { K, N, bits, blockSize, b, scales, zeroPoints };
}

/**
 * Writes `value` (< 2^bits) as element `index` of a bit-packed byte array, as blockwise.ts does
 * (its helper is private; the layout is checked against onnxruntime in ops.test.ts, and this
 * copy against `dequantizeBlockwise` in hqq.test.ts).
 */
function pack(out: Uint8Array, byteBase: number, index: number, value: number, bits: NBits): void {
  if (bits === 8) out[byteBase + index] = value;
  else out[byteBase + (index >> 1)]! |= (index & 1) === 0 ? value : value << 4;
}
