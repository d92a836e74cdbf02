/**
 * CONV_2D, DEPTHWISE_CONV_2D and TRANSPOSE_CONV (float and int8) as ONNX Conv/ConvTranspose.
 *
 * TFLite is NHWC with weights [Cout, KH, KW, Cin/groups] (conv), [1, KH, KW, Cout]
 * (depthwise) and [Cout, KH, KW, Cin] (transpose conv). ONNX is NCHW with weights
 * [Cout, Cin/groups, KH, KW] (Conv) and [Cin, Cout, KH, KW] (ConvTranspose). Weights are
 * permuted here at import time; activations get a Transpose in and out, which onnxruntime's
 * transpose optimizer cancels between consecutive convs.
 */
import type { Value } from '../../onnx/builder.ts';
import { type Ctx, copy, dequantizeConst, f32, i32, type QParams, type Tv } from './context.ts';
import { TfType, type TfOperator } from './schema.ts';
import { multiplyByQuantizedMultiplier } from './requant.ts';
import { sequentialConvRows, sequentialDepthwise } from './float-order.ts';

const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCHW_TO_NHWC = [0, 2, 3, 1];

/** Permute a dense row-major array of `shape` by `perm` (numpy transpose). */
export function permute(data: Float32Array, shape: readonly number[], perm: readonly number[]): { data: Float32Array; shape: number[] } {
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = strides(shape);
  const out = new Float32Array(data.length);
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let k = 0; k < perm.length; k++) src += idx[k]! * inStrides[perm[k]!]!;
    out[o] = data[src]!;
    for (let k = perm.length - 1; k >= 0; k--) {
      if (++idx[k]! < outShape[k]!) break;
      idx[k] = 0;
    }
  }
  return { data: out, shape: outShape };
}

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let k = shape.length - 2; k >= 0; k--) s[k] = s[k + 1]! * shape[k + 1]!;
  return s;
}

/** Weights as float32 (raw integers for int8, centered by the weight zero point, which must be 0). */
function weights(ctx: Ctx, op: TfOperator, index: number): { data: Float32Array; shape: number[]; scales: number[] | null } {
  const t = ctx.tensor(index);
  if (!t.data) throw ctx.fail(op, `with non-constant weights ${t.name}`);
  if (t.type === TfType.FLOAT32) return { data: f32(t.data), shape: t.shape, scales: null };
  if (t.type === TfType.INT8 && t.quant) {
    if (t.quant.zeroPoint.some((z) => z !== 0)) throw ctx.fail(op, `with asymmetric weights ${t.name}`);
    // 'float' mode folds the per-channel scales into float weights once, here.
    if (ctx.float) return { data: dequantizeConst(t)!, shape: t.shape, scales: null };
    return { data: Float32Array.from(new Int8Array(copy(t.data))), shape: t.shape, scales: t.quant.scale };
  }
  throw ctx.fail(op, `with weights of TFLite type ${t.type}`);
}

/** Bias as float32: float, or the int32 accumulator-scale integers of a quantized conv. */
function bias(ctx: Ctx, op: TfOperator, index: number | undefined, cout: number): Float32Array | null {
  if (index === undefined || index < 0) return null;
  const t = ctx.tensor(index);
  if (!t.data) throw ctx.fail(op, `with non-constant bias ${t.name}`);
  if (t.type === TfType.FLOAT32) return f32(t.data);
  if (t.type === TfType.INT32 && ctx.float && t.quant) return dequantizeConst(t); // scale = s_in * s_w[c]
  if (t.type === TfType.INT32) {
    const b = i32(t.data);
    // Exact in float32 only below 2^24; larger biases would silently round.
    if (b.some((v) => Math.abs(v) >= 1 << 24)) throw ctx.fail(op, `with an int32 bias beyond 2^24 (${t.name})`);
    if (b.length !== cout) throw ctx.fail(op, `bias length ${b.length} != ${cout}`);
    return Float32Array.from(b);
  }
  throw ctx.fail(op, `with bias of TFLite type ${t.type}`);
}

/** SAME/VALID padding for one spatial dim, TFLite's rule (extra padding goes after). */
function pads(padding: number, inSize: number, k: number, stride: number, dilation: number, outSize: number): [number, number] {
  if (padding === 1) return [0, 0]; // VALID
  const eff = (k - 1) * dilation + 1;
  const total = Math.max((outSize - 1) * stride + eff - inSize, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/**
 * Fused activation + (for int8) requantization, applied on the NCHW accumulator.
 * `mult` is the per-output-channel multiplier in_scale * w_scale[c] / out_scale.
 */
export function finishConv(
  ctx: Ctx,
  op: TfOperator,
  acc: Value,
  act: number,
  outQ: QParams | null,
  mult: Float64Array | null,
  cout: number,
  nchw: boolean,
  singleRounding = false,
): Value {
  const g = ctx.g;
  if (!outQ) return activation(ctx, op, acc, act);
  // TFLite's double-rounding fixed-point requantization (see requant.ts).
  const y = mult ? multiplyByQuantizedMultiplier(ctx, acc, mult, nchw ? [cout, 1, 1] : [cout], ctx.requant, singleRounding) : acc;
  const [lo, hi] = clampBounds(ctx, op, act, outQ);
  return g.op('Clip', [y, g.scalar(lo, 'lo'), g.scalar(hi, 'hi')]);
}

/** The centered-integer range of an int8 output, narrowed by a fused activation. */
export function clampBounds(ctx: Ctx, op: TfOperator, act: number, q: QParams): [number, number] {
  const t = ctx.tensor(op.outputs[0]!);
  const [qmin, qmax] = t.type === TfType.UINT8 ? [0, 255] : [-128, 127];
  let lo = qmin - q.zeroPoint;
  let hi = qmax - q.zeroPoint;
  const level = (x: number) => Math.round(x / q.scale);
  if (act === 1) lo = Math.max(lo, level(0));
  else if (act === 3) [lo, hi] = [Math.max(lo, level(0)), Math.min(hi, level(6))];
  else if (act === 2) [lo, hi] = [Math.max(lo, level(-1)), Math.min(hi, level(1))];
  else if (act !== 0) throw ctx.fail(op, `with fused activation ${act} on int8`);
  return [lo, hi];
}

/** Float fused activation (ActivationFunctionType). */
export function activation(ctx: Ctx, op: TfOperator, x: Value, act: number): Value {
  const g = ctx.g;
  switch (act) {
    case 0:
      return x;
    case 1:
      return g.op('Relu', [x]);
    case 2:
      return g.op('Clip', [x, g.scalar(-1), g.scalar(1)]);
    case 3:
      return g.op('Clip', [x, g.scalar(0), g.scalar(6)]);
    case 4:
      return g.op('Tanh', [x]);
    default:
      throw ctx.fail(op, `with fused activation ${act}`);
  }
}

function quantPair(
  ctx: Ctx,
  op: TfOperator,
  x: Tv,
  wScales: number[] | null,
  cout: number,
): { outQ: QParams | null; mult: Float64Array | null } {
  const outQ = ctx.qOf(op.outputs[0]!);
  if (!x.q && !outQ && !wScales) return { outQ: null, mult: null };
  if (!x.q || !outQ || !wScales) throw ctx.fail(op, 'mixing float and quantized input/weights/output');
  // In float64, as TFLite does (double(s_in) * double(s_w) / double(s_out)) before splitting it into
  // a Q31 significand and a shift: a float32 multiplier keeps only 24 of q31's 31 bits and moved
  // ties of the first rounding (found on espeak speech, models/codec/testdata/speech-set).
  const mult = Float64Array.from({ length: cout }, (_, c) => (x.q!.scale * (wScales[wScales.length === 1 ? 0 : c] ?? NaN)) / outQ.scale);
  return { outQ, mult };
}

/** CONV_2D and DEPTHWISE_CONV_2D. */
export function conv2d(ctx: Ctx, op: TfOperator, depthwise: boolean): void {
  const g = ctx.g;
  const o = op.options;
  const padding = o?.i8(0) ?? 0;
  const strideW = o?.i32(1) || 1;
  const strideH = o?.i32(2) || 1;
  const act = depthwise ? (o?.i8(4) ?? 0) : (o?.i8(3) ?? 0);
  const dilW = depthwise ? (o?.i32(5, 1) ?? 1) : (o?.i32(4, 1) ?? 1);
  const dilH = depthwise ? (o?.i32(6, 1) ?? 1) : (o?.i32(5, 1) ?? 1);
  const x = ctx.get(op.inputs[0]!); // [N, H, W, Cin]
  const w = weights(ctx, op, op.inputs[1]!);
  const out = ctx.tensor(op.outputs[0]!); // [N, OH, OW, Cout]
  const [, kh, kw] = w.shape;
  const cin = x.shape[3]!;
  let wOnnx: { data: Float32Array; shape: number[] };
  let group: number;
  let cout: number;
  if (depthwise) {
    // [1, KH, KW, Cout] -> [Cout, 1, KH, KW], group = Cin (Cout = Cin * multiplier).
    cout = w.shape[3]!;
    wOnnx = permute(w.data, w.shape, [3, 0, 1, 2]);
    group = cin;
  } else {
    // [Cout, KH, KW, Cin/g] -> [Cout, Cin/g, KH, KW]; grouped when the filter is thinner than the input.
    cout = w.shape[0]!;
    wOnnx = permute(w.data, w.shape, [0, 3, 1, 2]);
    group = cin / w.shape[3]!;
    if (!Number.isInteger(group)) throw ctx.fail(op, `input channels ${cin} not a multiple of filter channels ${w.shape[3]}`);
  }
  const b = bias(ctx, op, op.inputs[2], cout);
  const { outQ, mult } = quantPair(ctx, op, x, w.scales, cout);
  const [pt, pb] = pads(padding, x.shape[1]!, kh!, strideH, dilH, out.shape[1]!);
  const [pl, pr] = pads(padding, x.shape[2]!, kw!, strideW, dilW, out.shape[2]!);
  const conv1d: Conv1d = { x, out: out.shape, k: kh!, stride: strideH, dilation: dilH, cin, cout, group, depthwise };
  // 'exact-f32' is the WebGPU mode: keep its pinned op set (lyra.oracle.test.ts) and GPU Convs.
  if (ctx.requant !== 'exact-f32' && conv1dEligible(conv1d, [pt, pb, pl, pr], kw!, w.shape)) {
    const acc = depthwise ? depthwiseTaps(ctx, op, conv1d, w.data, b) : convGemm(ctx, op, conv1d, w.data, b);
    const y = finishConv(ctx, op, acc, act, outQ, mult, cout, false, !depthwise && group === 1);
    ctx.set(op.outputs[0]!, y, 'float32', outQ);
    return;
  }
  const xt = g.op('Transpose', [x.value], { perm: NHWC_TO_NCHW });
  const wv = g.constant(`w${op.outputs[0]}`, 'float32', wOnnx.shape, wOnnx.data);
  const bv = b ? g.constant(`b${op.outputs[0]}`, 'float32', [cout], b) : null;
  const conv = g.op('Conv', bv ? [xt, wv, bv] : [xt, wv], {
    group,
    kernel_shape: [kh!, kw!],
    strides: [strideH, strideW],
    dilations: [dilH, dilW],
    pads: [pt, pl, pb, pr],
  });
  // Non-grouped int8 CONV_2D runs through ruy's GEMM in TFLite, which rounds once.
  const y = finishConv(ctx, op, conv, act, outQ, mult, cout, true, !depthwise && group === 1);
  ctx.set(op.outputs[0]!, g.op('Transpose', [y], { perm: NCHW_TO_NHWC }), 'float32', outQ);
}

/** A conv along H only (TFLite [1, T, 1, C], Lyra's streaming layout), in NHWC terms. */
interface Conv1d {
  x: Tv;
  out: number[];
  k: number;
  stride: number;
  dilation: number;
  cin: number;
  cout: number;
  group: number;
  depthwise: boolean;
}

/**
 * Whether a conv can run as im2col + Gemm on the NHWC tensor itself: batch 1, width 1, no
 * padding (Lyra pads by concatenating its state), depth multiplier 1. Why: onnxruntime's WASM
 * Conv repacks its weights on every call and needs NCHW (a Transpose pair per conv); a Gemm with
 * a constant B is packed once at session creation. Measured on [T, C] = [2, 256] 1x1 convs:
 * 66 us as Conv vs 10 us as Gemm per layer (Node, one WASM thread).
 */
function conv1dEligible(c: Conv1d, padsAll: number[], kw: number, wShape: number[]): boolean {
  const [n, , w] = c.x.shape;
  if (n !== 1 || w !== 1 || kw !== 1 || c.out[2] !== 1 || padsAll.some((p) => p !== 0)) return false;
  if (c.depthwise) return c.cout === c.cin && wShape[0] === 1;
  return true;
}

/** Input rows [T_out, K] each output position reads: im2col as one Gather along T. */
function im2colIndices(c: Conv1d): Int32Array {
  const tOut = c.out[1]!;
  return Int32Array.from({ length: tOut * c.k }, (_, i) => Math.floor(i / c.k) * c.stride + (i % c.k) * c.dilation);
}

/** x [1, T, 1, C] -> the K taps of every output position, [1, T_out, K, 1, C] (or x itself for 1x1). */
function gatherTaps(ctx: Ctx, op: TfOperator, c: Conv1d): Value {
  const tIn = c.x.shape[1]!;
  const tOut = c.out[1]!;
  if (c.k === 1 && c.stride === 1) return c.x.value;
  // One window covering the whole input: already in im2col order for the Gemm's Reshape.
  if (!c.depthwise && tOut === 1 && c.k === tIn && c.dilation === 1) return c.x.value;
  const idx = ctx.g.constant(`im2col${op.outputs[0]}`, 'int32', [tOut, c.k], im2colIndices(c));
  return ctx.g.op('Gather', [c.x.value, idx], { axis: 1 });
}

/**
 * Conv (grouped or not) as Gemm over im2col rows: [T_out, K*Cin] x [K*Cin, Cout] + bias. Grouped
 * filters become block-diagonal dense matrices (zeros across groups): Lyra's groups are 2-4 on
 * at most 4 output positions, where one packed Gemm still beats the per-group Conv.
 * Returns the NHWC accumulator [1, T_out, 1, Cout]. Integer inputs stay exact (as in Conv).
 */
function convGemm(ctx: Ctx, op: TfOperator, c: Conv1d, w: Float32Array, b: Float32Array | null): Value {
  const g = ctx.g;
  const tOut = c.out[1]!;
  const cg = c.cin / c.group;
  const perGroupOut = c.cout / c.group;
  // TFLite [Cout, K, 1, Cin/g] -> dense [K*Cin, Cout].
  const dense = new Float32Array(c.k * c.cin * c.cout);
  for (let o = 0; o < c.cout; o++) {
    const g0 = Math.floor(o / perGroupOut) * cg;
    for (let k = 0; k < c.k; k++) for (let i = 0; i < cg; i++) dense[(k * c.cin + g0 + i) * c.cout + o] = w[(o * c.k + k) * cg + i]!;
  }
  const rows = g.op('Reshape', [gatherTaps(ctx, op, c), g.ints([tOut, c.k * c.cin], 'shape')]);
  // Float convs in an exact mode: TFLite's summation order (float-order.ts). Integer-valued
  // (int8) accumulators are exact in any order and keep the Gemm.
  if (ctx.floatConvOrder === 'tflite' && !c.x.q)
    return sequentialConvRows(ctx, String(op.outputs[0]), rows, { tOut, k: c.k, cin: c.cin, cout: c.cout, group: c.group }, w, b);
  const wv = g.constant(`w${op.outputs[0]}`, 'float32', [c.k * c.cin, c.cout], dense);
  const bv = g.constant(`b${op.outputs[0]}`, 'float32', [c.cout], b ?? new Float32Array(c.cout));
  const y = g.op('Gemm', [rows, wv, bv]);
  return g.op('Reshape', [y, g.ints([1, tOut, 1, c.cout], 'shape')]);
}

/** Depthwise conv as sum over taps of x_tap * w_tap (per channel, on the last axis) + bias. */
function depthwiseTaps(ctx: Ctx, op: TfOperator, c: Conv1d, w: Float32Array, b: Float32Array | null): Value {
  const g = ctx.g;
  // TFLite [1, K, 1, C] -> [K, 1, C] against taps [1, T_out, K, 1, C].
  const taps = gatherTaps(ctx, op, c);
  const tapped = !(c.k === 1 && c.stride === 1);
  // Float depthwise convs in an exact mode: TFLite's summation order (float-order.ts).
  if (tapped && ctx.floatConvOrder === 'tflite' && !c.x.q) return sequentialDepthwise(ctx, String(op.outputs[0]), taps, c.k, c.cout, w, b);
  const wv = g.constant(`w${op.outputs[0]}`, 'float32', [c.k, 1, c.cout], w);
  const k = tapped ? g.ints([2]) : null;
  const summed = k ? g.op('ReduceSum', [g.op('Mul', [taps, wv]), k], { keepdims: 0 }) : g.op('Mul', [taps, g.op('Reshape', [wv, g.ints([c.cout])])]);
  return b ? g.op('Add', [summed, g.constant(`b${op.outputs[0]}`, 'float32', [c.cout], b)]) : summed;
}

/** TRANSPOSE_CONV: inputs (output_shape, weights [Cout, KH, KW, Cin], x, bias?). */
export function transposeConv(ctx: Ctx, op: TfOperator): void {
  const g = ctx.g;
  const o = op.options;
  const padding = o?.i8(0) ?? 0;
  const strideW = o?.i32(1) || 1;
  const strideH = o?.i32(2) || 1;
  const act = o?.i8(3) ?? 0;
  const outShape = ctx.constInts(op.inputs[0]!, op);
  const w = weights(ctx, op, op.inputs[1]!);
  const x = ctx.get(op.inputs[2]!);
  const [cout, kh, kw, cin] = w.shape as [number, number, number, number];
  if (cin !== x.shape[3]) throw ctx.fail(op, `weights for ${cin} input channels on an input with ${x.shape[3]}`);
  const b = bias(ctx, op, op.inputs[3], cout);
  const { outQ, mult } = quantPair(ctx, op, x, w.scales, cout);
  const wOnnx = permute(w.data, w.shape, [3, 0, 1, 2]); // -> [Cin, Cout, KH, KW]
  const padsFor = (inSize: number, k: number, s: number, outSize: number): [number, number] => {
    const natural = (inSize - 1) * s + k;
    const total = natural - outSize;
    if (total < 0) throw ctx.fail(op, `output ${outSize} larger than the full transposed conv ${natural}`);
    const before = padding === 1 ? 0 : Math.floor(total / 2);
    return [before, total - before];
  };
  const [pt, pb] = padsFor(x.shape[1]!, kh, strideH, outShape[1]!);
  const [pl, pr] = padsFor(x.shape[2]!, kw, strideW, outShape[2]!);
  const gemmable = x.shape[0] === 1 && x.shape[2] === 1 && kw === 1 && kh % strideH === 0 && [pt, pb, pl, pr].every((p) => p === 0);
  if (ctx.requant !== 'exact-f32' && gemmable) {
    const acc = transposeConvGemm(ctx, op, x, w.data, b, { k: kh, stride: strideH, cout });
    ctx.set(op.outputs[0]!, finishConv(ctx, op, acc, act, outQ, mult, cout, false), 'float32', outQ);
    return;
  }
  const xt = g.op('Transpose', [x.value], { perm: NHWC_TO_NCHW });
  const wv = g.constant(`w${op.outputs[0]}`, 'float32', wOnnx.shape, wOnnx.data);
  const bv = b ? g.constant(`b${op.outputs[0]}`, 'float32', [cout], b) : null;
  const conv = g.op('ConvTranspose', bv ? [xt, wv, bv] : [xt, wv], {
    kernel_shape: [kh, kw],
    strides: [strideH, strideW],
    pads: [pt, pl, pb, pr],
  });
  const y = finishConv(ctx, op, conv, act, outQ, mult, cout, true);
  ctx.set(op.outputs[0]!, g.op('Transpose', [y], { perm: NCHW_TO_NHWC }), 'float32', outQ);
}


/**
 * TRANSPOSE_CONV along H on [1, T, 1, Cin] (K a multiple of the stride S, no padding) without
 * ConvTranspose or transposes: Y = x [T, Cin] x W [Cin, K*Cout] (packed once), then the overlap-add
 * of the m = K/S blocks each input row writes as one MatMul with a constant 0/1 matrix
 * P [T-1+m, T*m] (skipped when nothing overlaps). Sums of integers stay exact for the int8 modes.
 */
function transposeConvGemm(
  ctx: Ctx,
  op: TfOperator,
  x: Tv,
  w: Float32Array,
  b: Float32Array | null,
  c: { k: number; stride: number; cout: number },
): Value {
  const g = ctx.g;
  const [tIn, cin] = [x.shape[1]!, x.shape[3]!];
  const m = c.k / c.stride;
  // TFLite [Cout, K, 1, Cin] -> [Cin, K*Cout], column k*Cout + o.
  const dense = new Float32Array(cin * c.k * c.cout);
  for (let o = 0; o < c.cout; o++) for (let k = 0; k < c.k; k++) for (let i = 0; i < cin; i++) dense[i * c.k * c.cout + k * c.cout + o] = w[(o * c.k + k) * cin + i]!;
  const rows = g.op('Reshape', [x.value, g.ints([tIn, cin], 'shape')]);
  const y = g.op('Gemm', [rows, g.constant(`w${op.outputs[0]}`, 'float32', [cin, c.k * c.cout], dense)]);
  const blocks = tIn - 1 + m;
  let out = y;
  if (tIn > 1 && m > 1) {
    const p = new Float32Array(blocks * tIn * m);
    for (let t = 0; t < tIn; t++) for (let j = 0; j < m; j++) p[(t + j) * tIn * m + t * m + j] = 1;
    const byBlock = g.op('Reshape', [y, g.ints([tIn * m, c.stride * c.cout], 'shape')]);
    out = g.op('MatMul', [g.constant(`overlap${op.outputs[0]}`, 'float32', [blocks, tIn * m], p), byBlock]);
  }
  const shaped = g.op('Reshape', [out, g.ints([1, blocks * c.stride, 1, c.cout], 'shape')]);
  return b ? g.op('Add', [shaped, g.constant(`b${op.outputs[0]}`, 'float32', [c.cout], b)]) : shaped;
}
