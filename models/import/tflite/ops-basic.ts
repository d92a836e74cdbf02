/** Element-wise, shape, reduction and index ops (everything that is not a convolution). */
import { float, type DType, type Value } from '../../onnx/builder.ts';
import { type Ctx, onnxType, type QParams } from './context.ts';
import { activation, clampBounds } from './ops-conv.ts';
import { roundNearest } from './requant.ts';
import type { TfOperator } from './schema.ts';

function out0(op: TfOperator): number {
  return op.outputs[0]!;
}

/** ADD / SUB / MUL with a fused activation; int8 ADD requantizes both sides to the output scale. */
export function binary(ctx: Ctx, op: TfOperator, onnxOp: 'Add' | 'Sub' | 'Mul'): void {
  const g = ctx.g;
  const a = ctx.get(op.inputs[0]!);
  const b = ctx.get(op.inputs[1]!);
  const act = op.options?.i8(0) ?? 0;
  const outT = ctx.tensor(out0(op));
  const outQ = ctx.qOf(out0(op));
  if (!a.q && !b.q && !outQ) {
    ctx.set(out0(op), activation(ctx, op, g.op(onnxOp, [a.value, b.value]), act), onnxType(outT));
    return;
  }
  if (!a.q || !b.q || !outQ || onnxOp === 'Mul') throw ctx.fail(op, 'on this mix of quantized tensors');
  // real = s_a*a_c (+/-) s_b*b_c; out_c = round(real / s_out).
  const sa = g.op('Mul', [a.value, g.scalar(a.q.scale / outQ.scale)]);
  const sb = g.op('Mul', [b.value, g.scalar(b.q.scale / outQ.scale)]);
  const sum = g.op(onnxOp, [sa, sb]);
  const [lo, hi] = clampBounds(ctx, op, act, outQ);
  ctx.set(out0(op), g.op('Clip', [roundNearest(ctx, sum), g.scalar(lo), g.scalar(hi)]), 'float32', outQ);
}

export function leakyRelu(ctx: Ctx, op: TfOperator): void {
  const g = ctx.g;
  const x = ctx.get(op.inputs[0]!);
  const alpha = op.options?.f32(0) ?? 0.2;
  const outQ = ctx.qOf(out0(op));
  if (!x.q && !outQ) {
    ctx.set(out0(op), g.op('LeakyRelu', [x.value], { alpha: float(alpha) }), 'float32');
    return;
  }
  if (!x.q || !outQ) throw ctx.fail(op, 'mixing float and quantized tensors');
  // TFLite's int8 LEAKY_RELU is a lookup table built in float: round(f(s_in * c) / s_out).
  const real = g.op('LeakyRelu', [g.op('Mul', [x.value, g.scalar(x.q.scale)])], { alpha: float(alpha) });
  const [lo, hi] = clampBounds(ctx, op, 0, outQ);
  ctx.set(
    out0(op),
    g.op('Clip', [roundNearest(ctx, g.op('Div', [real, g.scalar(outQ.scale)])), g.scalar(lo), g.scalar(hi)]),
    'float32',
    outQ,
  );
}

/** out_c = clip(round(v * k)) for an int8 output with params `q`. */
function requantized(ctx: Ctx, op: TfOperator, v: Value, k: number, q: QParams): void {
  const g = ctx.g;
  const scaled = k === 1 ? v : g.op('Mul', [v, g.scalar(k)]);
  const [lo, hi] = clampBounds(ctx, op, 0, q);
  ctx.set(out0(op), g.op('Clip', [roundNearest(ctx, scaled), g.scalar(lo), g.scalar(hi)]), 'float32', q);
}

/** QUANTIZE: float -> int8 (x / scale, rounded), or int8 -> int8 with new params. */
export function quantize(ctx: Ctx, op: TfOperator): void {
  const g = ctx.g;
  const x = ctx.get(op.inputs[0]!);
  if (ctx.float) {
    ctx.set(out0(op), x.value, 'float32'); // 'float' mode: activations stay real, nothing to round
    return;
  }
  const q = ctx.qOf(out0(op));
  if (!q) throw ctx.fail(op, 'without output quantization parameters');
  if (x.q) {
    requantized(ctx, op, x.value, x.q.scale / q.scale, q);
    return;
  }
  // TFLite divides by the scale (reference AffineQuantize); Div keeps that rounding.
  const scaled = g.op('Div', [x.value, g.scalar(q.scale)]);
  const [lo, hi] = clampBounds(ctx, op, 0, q);
  ctx.set(out0(op), g.op('Clip', [roundNearest(ctx, scaled), g.scalar(lo), g.scalar(hi)]), 'float32', q);
}

export function dequantize(ctx: Ctx, op: TfOperator): void {
  const x = ctx.get(op.inputs[0]!);
  if (ctx.float) {
    ctx.set(out0(op), x.value, 'float32'); // already real values
    return;
  }
  if (!x.q) throw ctx.fail(op, 'on a tensor without quantization parameters');
  ctx.set(out0(op), ctx.g.op('Mul', [x.value, ctx.g.scalar(x.q.scale)]), 'float32');
}

/** Ops that move data without changing it keep the input's quantization; TFLite guarantees equal params. */
function passQ(ctx: Ctx, op: TfOperator, q: QParams | null): QParams | null {
  const outQ = ctx.qOf(out0(op));
  if (!q && !outQ) return null;
  if (!q || !outQ || Math.abs(q.scale - outQ.scale) > 1e-12 * q.scale || q.zeroPoint !== outQ.zeroPoint) {
    throw ctx.fail(op, 'changing quantization parameters');
  }
  return q;
}

export function concatenation(ctx: Ctx, op: TfOperator): void {
  const xs = op.inputs.map((i) => ctx.get(i));
  const rank = xs[0]!.shape.length;
  let axis = op.options?.i32(0) ?? 0;
  if (axis < 0) axis += rank;
  const q = xs[0]!.q;
  if (xs.some((x) => (x.q === null) !== (q === null) || (x.q && q && (x.q.scale !== q.scale || x.q.zeroPoint !== q.zeroPoint)))) {
    throw ctx.fail(op, 'of inputs with different quantization');
  }
  const y = ctx.g.op(
    'Concat',
    xs.map((x) => x.value),
    { axis },
  );
  ctx.set(out0(op), activation(ctx, op, y, op.options?.i8(1) ?? 0), xs[0]!.dtype, passQ(ctx, op, q));
}

export function reshape(ctx: Ctx, op: TfOperator): void {
  const x = ctx.get(op.inputs[0]!);
  const to = ctx.tensor(out0(op)).shape;
  ctx.set(out0(op), ctx.reshape(x.value, x.shape, to), x.dtype, passQ(ctx, op, x.q));
}

/** STRIDED_SLICE with constant begin/end/strides, resolved statically against the known shape. */
export function stridedSlice(ctx: Ctx, op: TfOperator): void {
  const g = ctx.g;
  const x = ctx.get(op.inputs[0]!);
  const begin = ctx.constInts(op.inputs[1]!, op);
  const end = ctx.constInts(op.inputs[2]!, op);
  const steps = op.inputs[3] !== undefined ? ctx.constInts(op.inputs[3], op) : begin.map(() => 1);
  const o = op.options;
  const beginMask = o?.i32(0) ?? 0;
  const endMask = o?.i32(1) ?? 0;
  if ((o?.i32(2) ?? 0) !== 0 || (o?.i32(3) ?? 0) !== 0) throw ctx.fail(op, 'with ellipsis/new-axis masks');
  const offset = o?.bool(5) ?? false;
  const starts: number[] = [];
  const ends: number[] = [];
  for (let k = 0; k < begin.length; k++) {
    const dim = x.shape[k]!;
    const s = steps[k]!;
    const norm = (v: number) => (v < 0 ? v + dim : v);
    let b = beginMask & (1 << k) ? (s > 0 ? 0 : dim - 1) : norm(begin[k]!);
    let e = endMask & (1 << k) ? (s > 0 ? dim : -dim - 1) : offset ? b + end[k]! : norm(end[k]!);
    // Clamp the way TFLite does, then express "before the start" for negative steps as INT_MIN.
    b = s > 0 ? Math.min(Math.max(b, 0), dim) : Math.min(Math.max(b, -1), dim - 1);
    if (!(endMask & (1 << k))) e = s > 0 ? Math.min(Math.max(e, 0), dim) : Math.min(Math.max(e, -1), dim - 1);
    starts.push(b);
    ends.push(e < 0 && s < 0 ? -(2 ** 31) : e);
  }
  const axes = begin.map((_, k) => k);
  const sliced = g.op('Slice', [x.value, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)]);
  // shrink_axis_mask only drops dims: a Reshape to the declared output shape covers it.
  const full = starts.map((b, k) => Math.max(0, Math.ceil((Math.min(ends[k]!, x.shape[k]!) - b) / steps[k]!)));
  const to = ctx.tensor(out0(op)).shape;
  ctx.set(out0(op), ctx.reshape(sliced, full, to), x.dtype, passQ(ctx, op, x.q));
}

/** SPLIT: inputs (axis, x) into num_splits equal parts. */
export function split(ctx: Ctx, op: TfOperator): void {
  const g = ctx.g;
  const [axisT] = ctx.constInts(op.inputs[0]!, op);
  const x = ctx.get(op.inputs[1]!);
  const axis = axisT! < 0 ? axisT! + x.shape.length : axisT!;
  const n = op.outputs.length;
  const parts = g.opN('Split', [x.value, g.ints(new Array<number>(n).fill(x.shape[axis]! / n))], n, { axis });
  parts.forEach((p, k) => ctx.set(op.outputs[k]!, p, x.dtype, x.q));
}

/** SUM / reductions: inputs (x, axes). */
export function reduce(ctx: Ctx, op: TfOperator, onnxOp: 'ReduceSum' | 'ReduceMean' | 'ReduceMax' | 'ReduceMin'): void {
  const x = ctx.get(op.inputs[0]!);
  if (x.q) throw ctx.fail(op, 'on quantized tensors');
  const axes = ctx.constInts(op.inputs[1]!, op).map((a) => (a < 0 ? a + x.shape.length : a));
  const keep = op.options?.bool(0) ?? false;
  const y = ctx.g.op(onnxOp, [x.value, ctx.g.ints(axes)], { keepdims: keep ? 1 : 0 });
  ctx.set(out0(op), ctx.reshape(y, reducedShape(x.shape, axes, keep), ctx.tensor(out0(op)).shape), x.dtype);
}

function reducedShape(shape: readonly number[], axes: readonly number[], keep: boolean): number[] {
  return shape.flatMap((d, k) => (axes.includes(k) ? (keep ? [1] : []) : [d]));
}

/** ARG_MIN / ARG_MAX: first index on ties, like TFLite. */
export function argMinMax(ctx: Ctx, op: TfOperator, onnxOp: 'ArgMin' | 'ArgMax'): void {
  const g = ctx.g;
  const x = ctx.get(op.inputs[0]!);
  const [a] = ctx.constInts(op.inputs[1]!, op);
  const axis = a! < 0 ? a! + x.shape.length : a!;
  const idx = g.op(onnxOp, [x.value], { axis, keepdims: 0, select_last_index: 0 }); // int64
  const outT = ctx.tensor(out0(op));
  const dtype = onnxType(outT);
  ctx.set(out0(op), dtype === 'int64' ? idx : g.op('Cast', [idx], { to: DTYPE_CODE[dtype] }), dtype);
}

/**
 * ONE_HOT: inputs (indices, depth, on_value, off_value), as Where(idx == arange(depth), on, off)
 * because onnxruntime-web's build lacks most OneHot type combinations.
 */
export function oneHot(ctx: Ctx, op: TfOperator): void {
  const g = ctx.g;
  const idx = ctx.get(op.inputs[0]!);
  const [depth] = ctx.constInts(op.inputs[1]!, op);
  const on = ctx.get(op.inputs[2]!);
  const off = ctx.get(op.inputs[3]!);
  const axis = op.options?.i32(0) ?? -1;
  if (axis !== -1 && axis !== idx.shape.length) throw ctx.fail(op, `on axis ${axis}`);
  const range =
    idx.dtype === 'int64'
      ? g.constant(
          `arange${op.outputs[0]}`,
          'int64',
          [depth!],
          BigInt64Array.from({ length: depth! }, (_, k) => BigInt(k)),
        )
      : g.constant(
          `arange${op.outputs[0]}`,
          'int32',
          [depth!],
          Int32Array.from({ length: depth! }, (_, k) => k),
        );
  if (idx.dtype !== 'int64' && idx.dtype !== 'int32') throw ctx.fail(op, `with ${idx.dtype} indices`);
  const eq = g.op('Equal', [g.op('Unsqueeze', [idx.value, g.ints([idx.shape.length])]), range]);
  ctx.set(out0(op), g.op('Where', [eq, on.value, off.value]), on.dtype);
}

export function gather(ctx: Ctx, op: TfOperator): void {
  const params = ctx.get(op.inputs[0]!);
  const idx = ctx.get(op.inputs[1]!);
  let axis = op.options?.i32(0) ?? 0;
  if ((op.options?.i32(1) ?? 0) !== 0) throw ctx.fail(op, 'with batch_dims');
  if (axis < 0) axis += params.shape.length;
  ctx.set(out0(op), ctx.g.op('Gather', [params.value, idx.value], { axis }), params.dtype, params.q);
}

/** PACK (stack): Concat on `axis` then Reshape, which is the same memory layout as stacking. */
export function pack(ctx: Ctx, op: TfOperator): void {
  const xs = op.inputs.map((i) => ctx.get(i));
  const rank = xs[0]!.shape.length;
  let axis = op.options?.i32(1) ?? 0;
  if (axis < 0) axis += rank + 1;
  const to = ctx.tensor(out0(op)).shape;
  const g = ctx.g;
  let y: Value;
  if (axis === rank) {
    y = g.op(
      'Concat',
      xs.map((x) => g.op('Unsqueeze', [x.value, g.ints([axis])])),
      { axis },
    );
  } else {
    const cat = g.op(
      'Concat',
      xs.map((x) => x.value),
      { axis },
    );
    const catShape = xs[0]!.shape.map((d, k) => (k === axis ? d * xs.length : d));
    y = ctx.reshape(cat, catShape, to);
  }
  ctx.set(out0(op), y, xs[0]!.dtype, xs[0]!.q);
}

export function cast(ctx: Ctx, op: TfOperator): void {
  const x = ctx.get(op.inputs[0]!);
  const dtype = onnxType(ctx.tensor(out0(op)));
  ctx.set(out0(op), x.dtype === dtype ? x.value : ctx.g.op('Cast', [x.value], { to: DTYPE_CODE[dtype] }), dtype);
}

export function compare(ctx: Ctx, op: TfOperator, kind: 'Less' | 'Greater' | 'Equal' | 'NotEqual'): void {
  const g = ctx.g;
  const a = ctx.get(op.inputs[0]!);
  const b = ctx.get(op.inputs[1]!);
  if (a.q || b.q) throw ctx.fail(op, 'on quantized tensors');
  const y = kind === 'NotEqual' ? g.op('Not', [g.op('Equal', [a.value, b.value])]) : g.op(kind, [a.value, b.value]);
  ctx.set(out0(op), y, 'bool');
}

export function maxMin(ctx: Ctx, op: TfOperator, kind: 'Max' | 'Min'): void {
  const a = ctx.get(op.inputs[0]!);
  const b = ctx.get(op.inputs[1]!);
  if (a.q || b.q) throw ctx.fail(op, 'on quantized tensors');
  ctx.set(out0(op), ctx.g.op(kind, [a.value, b.value]), a.dtype);
}

/** SQUARED_DIFFERENCE as (a - b) * (a - b), the same two roundings TFLite's kernel does. */
export function squaredDifference(ctx: Ctx, op: TfOperator): void {
  const a = ctx.get(op.inputs[0]!);
  const b = ctx.get(op.inputs[1]!);
  if (a.q || b.q) throw ctx.fail(op, 'on quantized tensors');
  const d = ctx.g.op('Sub', [a.value, b.value]);
  ctx.set(out0(op), ctx.g.op('Mul', [d, d]), a.dtype);
}

export const DTYPE_CODE: Record<DType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10 };
