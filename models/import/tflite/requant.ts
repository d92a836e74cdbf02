/**
 * TFLite's integer requantization, reproduced bit for bit.
 *
 * TFLite does not compute round(acc * M). It splits M = q * 2^shift (q in [0.5, 1) as a
 * Q31 integer) and rounds twice (MultiplyByQuantizedMultiplier):
 *   h = SaturatingRoundingDoublingHighMul(acc << max(shift, 0), q31)   // round half up
 *   y = RoundingDivideByPOT(h, max(-shift, 0))                         // round half away from 0
 * The first rounding is why a plain float requantization misses by one level on ~0.4% of
 * outputs (measured on the Lyra encoder). Step 1 needs acc * q to ~55 bits, more than
 * float32's 24; everything after it is on integers < 2^24, exact in float32.
 *
 * Modes for step 1:
 *  - 'exact-f32': float32 only and only ops onnxruntime-web's WebGPU EP implements (it has no
 *    float64, Round or Sign), so the whole graph stays on the GPU.
 *    The product is computed as an unevaluated sum p + err (Dekker's error-free two-product
 *    on 12-bit limbs) and only the final fraction rounds, which can move the result only
 *    when acc * q lies within ~1e-6 of a rounding boundary.
 *  - 'exact-f64' (default): the product in float64 (Cast nodes); ~14 fewer nodes per conv, for
 *    the WASM/CPU backend.
 *  - 'approx': plain float32 product; fewest nodes, off by one level on a few int8 outputs per
 *    thousand (measured: decoder output within ~1e-2 of TFLite instead of ~2e-6).
 */
import type { Value } from '../../onnx/builder.ts';
import type { Ctx } from './context.ts';

/** TFLite QuantizeMultiplier: [q31, shift] with M = q31 * 2^(shift - 31). */
export function quantizeMultiplier(m: number): [number, number] {
  if (m === 0) return [0, 0];
  let shift = Math.floor(Math.log2(m)) + 1; // frexp: m = q * 2^shift, q in [0.5, 1)
  let q = m / 2 ** shift;
  if (q >= 1) [q, shift] = [q / 2, shift + 1];
  if (q < 0.5) [q, shift] = [q * 2, shift - 1];
  let q31 = Math.round(q * 2 ** 31);
  if (q31 === 2 ** 31) [q31, shift] = [q31 / 2, shift + 1];
  if (shift < -31) return [0, 0];
  return [q31, shift];
}

/**
 * 'float' is not a requantization at all: int8 weights are dequantized to float32 once at import
 * and the int8 layers run as float convs (QUANTIZE/DEQUANTIZE become no-ops), so the graphs are
 * plain float networks. Not bit-exact with TFLite; see ops-conv.ts and workers/codec/README.md
 * for what it costs in quality.
 *
 * @example
 * const mode: RequantMode = 'exact-f64'; // w.codec('lyra-v2', { backend: 'wasm', requant: mode })
 */
export type RequantMode = 'exact-f64' | 'exact-f32' | 'approx' | 'float';

/**
 * y = MultiplyByQuantizedMultiplier(acc, M[c]) for per-channel multipliers along axis 1 of an
 * NCHW accumulator (or one multiplier for all). `acc` holds exact integers in float32.
 */
export function multiplyByQuantizedMultiplier(
  ctx: Ctx,
  acc: Value,
  mult: ArrayLike<number>,
  channelShape: number[],
  mode: RequantMode,
  /**
   * Single rounding, floor(acc * q31 * 2^(shift-31) + 1/2): what ruy's GEMM applies, i.e.
   * TFLite's optimized non-grouped CONV_2D. The reference kernels (grouped conv, depthwise,
   * transpose conv) round twice.
   */
  single = false,
): Value {
  const g = ctx.g;
  const n = mult.length;
  const qs = new Float64Array(n); // q31 * 2^leftShift / 2^31: exact in float64
  const half = new Float32Array(n);
  const inv = new Float32Array(n);
  for (let c = 0; c < n; c++) {
    const [q31, shift] = quantizeMultiplier(mult[c]!);
    const left = single ? shift : Math.max(shift, 0);
    const right = single ? 0 : Math.max(-shift, 0);
    qs[c] = (q31 * 2 ** left) / 2 ** 31;
    half[c] = right > 0 ? 2 ** (right - 1) : 0;
    inv[c] = 2 ** -right;
  }
  const shape = n === 1 ? [] : channelShape;
  const name = (p: string) => `${p}_${acc.name}`;
  let h: Value;
  if (mode === 'exact-f32') {
    h = limbProduct(ctx, acc, qs, channelShape, name);
  } else if (mode === 'exact-f64') {
    // Float64 has no external-data path in the builder's dtype list; it is small, so we emulate
    // with a Cast of float32 pieces: q = hi + lo with hi, lo float32 (exact split of a 31-bit q).
    const hi = Float32Array.from(qs);
    const lo = Float32Array.from(qs, (v, k) => v - hi[k]!);
    const accD = g.op('Cast', [acc], { to: 11 });
    const hiD = g.op('Cast', [g.constant(name('qhi'), 'float32', shape, hi)], { to: 11 });
    const loD = g.op('Cast', [g.constant(name('qlo'), 'float32', shape, lo)], { to: 11 });
    const prod = g.op('Add', [g.op('Mul', [accD, hiD]), g.op('Mul', [accD, loD])]);
    const halfD = g.op('Cast', [g.scalar(0.5)], { to: 11 });
    h = g.op('Cast', [g.op('Floor', [g.op('Add', [prod, halfD])])], { to: 1 });
  } else {
    const q = g.constant(name('q'), 'float32', shape, Float32Array.from(qs));
    h = g.op('Floor', [g.op('Add', [g.op('Mul', [acc, q]), g.scalar(0.5)])]);
  }
  if (half.every((v) => v === 0)) return h;
  // Round half away from zero of the integer h / 2^right, without Sign/Abs (absent on WebGPU):
  //   h >= 0: floor((h + half) / 2^right);  h < 0: ceil((h - half) / 2^right) = floor((h + half - 1) / 2^right)
  // (the second form holds for right >= 1; channels with right = 0 pass h through: half = 0, no -1).
  const halfV = n === 1 ? g.scalar(half[0]!) : g.constant(name('half'), 'float32', shape, half);
  const invV = n === 1 ? g.scalar(inv[0]!) : g.constant(name('inv'), 'float32', shape, inv);
  let negative = g.op('Cast', [g.op('Less', [h, g.scalar(0)])], { to: 1 });
  if (half.some((v) => v === 0)) {
    const hasShift = Float32Array.from(half, (v) => (v > 0 ? 1 : 0));
    negative = g.op('Mul', [negative, g.constant(name('hasShift'), 'float32', shape, hasShift)]);
  }
  return g.op('Floor', [g.op('Mul', [g.op('Sub', [g.op('Add', [h, halfV]), negative]), invV])]);
}

/**
 * Round to nearest. TFLite's float -> int8 paths use std::round (ties away from zero); exact ties
 * essentially never occur on real data, so this uses onnx Round (ties to even) on CPU and
 * floor(x + 1/2) in the WebGPU-safe mode, which has no Round.
 */
export function roundNearest(ctx: Ctx, x: Value): Value {
  if (ctx.requant === 'exact-f32') return ctx.g.op('Floor', [ctx.g.op('Add', [x, ctx.g.scalar(0.5)])]);
  return ctx.g.op('Round', [x]);
}

/**
 * floor(acc * Q + 1/2) with float32 ops only (see the 'exact-f32' mode above).
 * acc: [1, C, H, W] integers below 2^24 in magnitude; Q[c] = q31 * 2^k (31 significant bits).
 *
 * Q = Q1 + Q2 with Q1 = fl32(Q) split into 12-bit halves Qh + Ql, and acc = ah + al with
 * al = acc mod 4096. Then acc * Q1 = p + err exactly (Dekker's two-product: every partial
 * product below has at most 12 x 12 significant bits, so it is exact even if a GPU fuses
 * it into an FMA), and acc * Q2 is 2^-24 of the total, so rounding it is harmless.
 */
function limbProduct(ctx: Ctx, acc: Value, qs: Float64Array, channelShape: number[], name: (p: string) => string): Value {
  const g = ctx.g;
  const n = qs.length;
  const q1 = Float32Array.from(qs);
  const q2 = Float32Array.from(qs, (v, c) => v - q1[c]!);
  const qh = Float32Array.from(q1, (v) => {
    if (v === 0) return 0;
    const ulp12 = 2 ** (Math.floor(Math.log2(Math.abs(v))) - 11); // keep the top 12 bits
    return Math.floor(v / ulp12) * ulp12;
  });
  const ql = Float32Array.from(q1, (v, c) => v - qh[c]!);
  const shape = n === 1 ? [] : channelShape;
  const k = (p: string, d: Float32Array) => (n === 1 ? g.scalar(d[0]!) : g.constant(name(p), 'float32', shape, d));
  const [Q1, Q2, Qh, Ql] = [k('q1', q1), k('q2', q2), k('qh', qh), k('ql', ql)];
  const ah = g.op('Mul', [g.op('Floor', [g.op('Mul', [acc, g.scalar(2 ** -12)])]), g.scalar(2 ** 12)]);
  const al = g.op('Sub', [acc, ah]); // in [0, 4096)
  const p = g.op('Mul', [acc, Q1]);
  // err = ((ah*Qh - p) + ah*Ql + al*Qh) + al*Ql, each step exact (Dekker).
  let err = g.op('Sub', [g.op('Mul', [ah, Qh]), p]);
  err = g.op('Add', [err, g.op('Mul', [ah, Ql])]);
  err = g.op('Add', [err, g.op('Mul', [al, Qh])]);
  err = g.op('Add', [err, g.op('Mul', [al, Ql])]);
  const small = g.op('Add', [err, g.op('Mul', [acc, Q2])]);
  const whole = g.op('Floor', [p]);
  const frac = g.op('Sub', [p, whole]); // exact
  return g.op('Add', [whole, g.op('Floor', [g.op('Add', [g.op('Add', [frac, small]), g.scalar(0.5)])])]);
}
