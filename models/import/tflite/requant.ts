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
 *  - 'exact' (default): float32 only, so the same graph runs on WebGPU (no float64 there).
 *    acc is split into two 12-bit limbs and q into three (12, 12, 7 bits): all six partial
 *    products are exact in float32. Their integer parts are summed exactly (< 2^24) and only
 *    the sum of six fractions in [0, 1) rounds, which can move the result only when acc * q
 *    lies within ~1e-6 of a rounding boundary.
 *  - 'float64': the product in float64 (Cast nodes); fewer nodes, CPU only.
 *  - 'float32': plain float32 product; off by one level on a few outputs per thousand.
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

export type RequantMode = 'exact' | 'float64' | 'float32';

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
  if (mode === 'exact') {
    h = limbProduct(ctx, acc, qs, channelShape, name);
  } else if (mode === 'float64') {
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
  // Round half away from zero of h / 2^right: sign(h) * floor((|h| + half) * 2^-right).
  const halfV = n === 1 ? g.scalar(half[0]!) : g.constant(name('half'), 'float32', shape, half);
  const invV = n === 1 ? g.scalar(inv[0]!) : g.constant(name('inv'), 'float32', shape, inv);
  const mag = g.op('Floor', [g.op('Mul', [g.op('Add', [g.op('Abs', [h]), halfV]), invV])]);
  return g.op('Mul', [mag, g.op('Sign', [h])]);
}

/**
 * floor(acc * Q + 1/2) with float32 ops only (see the 'exact' mode above).
 * acc: [1, C, H, W] integers below 2^24 in magnitude; Q[c] = q31 * 2^k (31 significant bits).
 */
function limbProduct(ctx: Ctx, acc: Value, qs: Float64Array, channelShape: number[], name: (p: string) => string): Value {
  const g = ctx.g;
  const n = qs.length;
  // Q = Qh + Qm + Qs with 12, 12 and 7 significant bits (the top bit of q31 is bit 30).
  const pieces = new Float32Array(3 * n);
  for (let c = 0; c < n; c++) {
    const q = qs[c]!;
    if (q === 0) continue;
    const e = Math.floor(Math.log2(q)); // q in [2^e, 2^(e+1))
    const ulp31 = 2 ** (e - 30); // weight of q31's lowest bit
    const q31 = Math.round(q / ulp31);
    const a = Math.floor(q31 / 2 ** 19);
    const b = Math.floor((q31 - a * 2 ** 19) / 2 ** 7);
    const r = q31 - a * 2 ** 19 - b * 2 ** 7;
    pieces[c] = a * 2 ** 19 * ulp31;
    pieces[n + c] = b * 2 ** 7 * ulp31;
    pieces[2 * n + c] = r * ulp31;
  }
  // Shapes: limbs [2, 1, 1, C, H, W] x pieces [1, 3, 1, C, 1, 1] -> products [2, 3, 1, C, H, W].
  const qShape = n === 1 ? [1, 3, 1, 1, 1, 1] : [1, 3, 1, ...channelShape];
  const q = g.constant(name('qlimbs'), 'float32', qShape, n === 1 ? pieces.subarray(0, 3) : pieces);
  const high = g.op('Mul', [g.op('Floor', [g.op('Mul', [acc, g.scalar(2 ** -12)])]), g.scalar(2 ** 12)]); // acc - (acc mod 4096)
  const low = g.op('Sub', [acc, high]); // in [0, 4096)
  const axes = g.ints([0, 1]);
  const limbs = g.op('Concat', [g.op('Unsqueeze', [high, axes]), g.op('Unsqueeze', [low, axes])], { axis: 0 });
  const products = g.op('Mul', [limbs, q]); // each exact: at most 12 x 12 significant bits
  const whole = g.op('Floor', [products]);
  const frac = g.op('Sub', [products, whole]); // exact
  const sumWhole = g.op('ReduceSum', [whole, axes], { keepdims: 0 });
  const sumFrac = g.op('ReduceSum', [frac, axes], { keepdims: 0 });
  return g.op('Add', [sumWhole, g.op('Floor', [g.op('Add', [sumFrac, g.scalar(0.5)])])]);
}
