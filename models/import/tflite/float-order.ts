/**
 * Float convolutions summed in TFLite's order, so float layers give TFLite's bits, not just its
 * values to within rounding.
 *
 * Why it matters: in the Lyra encoder, the last bits of a float activation decide, now and then,
 * on which side of a rounding boundary it lands when QUANTIZE takes it to int8 (a 1e-5
 * difference at a tie), and the int8 tail's streaming state then carries the flipped level for
 * dozens of frames: the codes diverge in bursts. onnxruntime's Gemm sums in its own blocks and
 * differs from TFLite in the last bits of ~80% of outputs.
 *
 * The orders, measured against the oracle (tfjs-tflite's WASM TFLite running the real encoder,
 * whose float convs run TFLite's builtin kernels; every output of every float conv matched):
 *  - 'gemm' (non-grouped CONV_2D: im2col + an Eigen GEMM): each output is a dot product over
 *    j = tap * Cin + channel; outputs in full blocks of 4 time steps sum even j and odd j of the
 *    first 8 * floor(steps / 8) in two accumulators from 0, add them, then add the remaining j in
 *    order; the time steps left over (T mod 4) sum all j in one accumulator from 0; the bias is
 *    added last. Products are rounded before each add (WASM has no fused multiply-add).
 *  - 'reference' (grouped CONV_2D, TFLite's reference kernel): one accumulator from 0 over the
 *    group's j, then the bias.
 *  - depthwise (DEPTHWISE_CONV_2D): the accumulator starts at the bias and adds the taps in order.
 * (A one-op .tflite runs its conv through XNNPACK instead, which starts at the bias and adds every
 * j in order: the orders belong to the kernels, so they are checked on the real encoder,
 * lyra.speech-set.oracle.test.ts.)
 *
 * In-order sums of up to 256 products are one MatMul (onnxruntime's WASM SGEMM sums that deep in
 * order, see MLAS_IN_ORDER_DEPTH); deeper ones continue one Mul + Add per product. Used where
 * bit-exactness is asked for (see `FloatConvOrder`): a few more nodes than one Gemm per conv.
 */
import type { Value } from '../../onnx/builder.ts';
import type { Ctx } from './context.ts';

/**
 * 'tflite': float convs summed in TFLite's order (bit-exact; a few more nodes);
 * 'fast': one Gemm per conv (float32 rounding differs in the last bits).
 */
export type FloatConvOrder = 'tflite' | 'fast';

/** Time steps per column block of the GEMM; blocks sum in two accumulators. */
const GEMM_BLOCK = 4;
/** Depth steps the GEMM's two accumulators take together (the rest is added after them). */
const GEMM_PEEL = 8;

/**
 * How many products onnxruntime's WASM SGEMM (MLAS) sums per output in one pass: within such a
 * depth block it starts each output at 0 and adds the products in order, without fused
 * multiply-add (measured, and checked by float-order.test.ts; deeper products are summed per
 * block and the blocks added, which is not TFLite's order, so steps past it run as Mul + Add).
 */
const MLAS_IN_ORDER_DEPTH = 256;

/**
 * Conv (grouped or not) over im2col rows [T, K*Cin] (tap-major, channel-minor), weights in
 * TFLite's layout [Cout, K, Cin/groups] (= [Cout, steps]). Returns the NHWC accumulator
 * [1, T, 1, Cout] summed in TFLite's order (see above): 'gemm' for group 1, 'reference' else.
 */
export function sequentialConvRows(
  ctx: Ctx,
  name: string,
  rows: Value,
  dims: { tOut: number; k: number; cin: number; cout: number; group: number },
  w: Float32Array,
  b: Float32Array | null,
): Value {
  const g = ctx.g;
  const { tOut, k, cin, cout, group } = dims;
  const cg = cin / group;
  const perGroupOut = cout / group;
  const steps = k * cg;
  const slice = (x: Value, axis: number, from: number, to: number, size: number) =>
    from === 0 && to === size ? x : g.op('Slice', [x, g.ints([from], 'starts'), g.ints([to], 'ends'), g.ints([axis], 'axes')]);
  // Sums over the (ordered) input columns `cols` of `x` [T', K*Cin] for the output channels [c0, c1).
  const sumOver = (tag: string, x: Value, cols: number[], c0: number, c1: number, start: Value | null = null) => {
    const weights = new Float32Array(cols.length * (c1 - c0)); // [cols, c1 - c0]
    cols.forEach((col, r) => {
      const j = group === 1 ? col : Math.floor(col / cin) * cg + (col % cin) - Math.floor(c0 / perGroupOut) * cg;
      for (let c = c0; c < c1; c++) weights[r * (c1 - c0) + c - c0] = w[c * steps + j]!;
    });
    return inOrderSum(ctx, `${name}_${tag}`, x, cols, weights, c1 - c0, start);
  };
  const columnsOf = (pick: (j: number) => boolean, g0: number) => {
    const cols: number[] = [];
    for (let j = 0; j < steps; j++) if (pick(j)) cols.push(Math.floor(j / cg) * cin + g0 + (j % cg));
    return cols;
  };
  let acc: Value;
  if (group === 1) {
    const blocked = Math.floor(tOut / GEMM_BLOCK) * GEMM_BLOCK;
    const parts: Value[] = [];
    if (blocked > 0) {
      // Eigen's GEBP peels the depth by 8 into two accumulators (even and odd steps), adds them,
      // then adds the remaining (depth mod 8) steps one by one.
      const x = slice(rows, 0, 0, blocked, tOut);
      const peeled = Math.floor(steps / GEMM_PEEL) * GEMM_PEEL;
      let sum: Value | null = null;
      if (peeled > 0) {
        const even = sumOver(
          'even',
          x,
          columnsOf((j) => j < peeled && j % 2 === 0, 0),
          0,
          cout,
        );
        sum = g.op('Add', [
          even,
          sumOver(
            'odd',
            x,
            columnsOf((j) => j < peeled && j % 2 === 1, 0),
            0,
            cout,
          ),
        ]);
      }
      if (peeled < steps)
        sum = sumOver(
          'tail',
          x,
          columnsOf((j) => j >= peeled, 0),
          0,
          cout,
          sum,
        );
      parts.push(sum!);
    }
    if (blocked < tOut)
      parts.push(
        sumOver(
          'rest',
          slice(rows, 0, blocked, tOut, tOut),
          columnsOf(() => true, 0),
          0,
          cout,
        ),
      );
    acc = parts.length === 1 ? parts[0]! : g.op('Concat', parts, { axis: 0 });
  } else {
    const parts: Value[] = [];
    for (let grp = 0; grp < group; grp++)
      parts.push(
        sumOver(
          `g${grp}`,
          rows,
          columnsOf(() => true, grp * cg),
          grp * perGroupOut,
          (grp + 1) * perGroupOut,
        ),
      );
    acc = g.op('Concat', parts, { axis: 1 });
  }
  if (b) acc = g.op('Add', [acc, g.constant(`seqb${name}`, 'float32', [cout], b)]);
  return g.op('Reshape', [acc, g.ints([1, tOut, 1, cout], 'shape')]);
}

/**
 * y[t][n] = ((x[t][cols[0]] * w[0][n] + x[t][cols[1]] * w[1][n]) + ...) in exactly this order,
 * from 0 (or from `start`), each product rounded before its add. x: [T, C]; w: [cols.length, N].
 * Returns [T, N]. From 0, the first MLAS_IN_ORDER_DEPTH products are one MatMul (which sums them
 * in this order); the rest are added one Mul + Add at a time.
 */
function inOrderSum(ctx: Ctx, name: string, x: Value, cols: number[], w: Float32Array, n: number, start: Value | null): Value {
  const g = ctx.g;
  // A MatMul starts at 0, so a sum that continues from `start` is all Mul + Add.
  const head = start ? 0 : Math.min(cols.length, MLAS_IN_ORDER_DEPTH);
  const picked = g.op('Gather', [x, g.constant(`seqcols${name}`, 'int32', [cols.length], Int32Array.from(cols))], { axis: 1 }); // [T, cols]
  let acc = start;
  if (head > 0) {
    const headX =
      head === cols.length ? picked : g.op('Slice', [picked, g.ints([0], 'starts'), g.ints([head], 'ends'), g.ints([1], 'axes')]);
    acc = g.op('MatMul', [headX, g.constant(`seqw${name}`, 'float32', [head, n], w.slice(0, head * n))]);
  }
  if (head < cols.length) {
    const tailCount = cols.length - head;
    const tail = g.op('Slice', [picked, g.ints([head], 'starts'), g.ints([cols.length], 'ends'), g.ints([1], 'axes')]);
    const columns = g.opN('Split', [tail], tailCount, { axis: 1, num_outputs: tailCount }); // [T, 1] each
    for (let r = 0; r < tailCount; r++) {
      const row = g.constant(`seqw${name}_${head + r}`, 'float32', [n], w.slice((head + r) * n, (head + r + 1) * n));
      const product = g.op('Mul', [columns[r]!, row]);
      acc = acc ? g.op('Add', [acc, product]) : product;
    }
  }
  if (!acc) throw new Error(`float-order: no products for ${name}`);
  return acc;
}

/**
 * Depthwise taps [1, T, K, 1, C] against weights [K, C]: y = ((b + x0*w0) + x1*w1) + ..., the
 * accumulator [1, T, 1, C].
 */
export function sequentialDepthwise(
  ctx: Ctx,
  name: string,
  taps: Value,
  k: number,
  c: number,
  w: Float32Array,
  b: Float32Array | null,
): Value {
  const g = ctx.g;
  const perTap = g.opN('Split', [taps], k, { axis: 2, num_outputs: k }); // [1, T, 1, 1, C] each
  let acc: Value | null = b ? g.constant(`seqb${name}`, 'float32', [c], b) : null;
  for (let j = 0; j < k; j++) {
    const product = g.op('Mul', [perTap[j]!, g.constant(`seqw${name}_${j}`, 'float32', [c], w.slice(j * c, (j + 1) * c))]);
    acc = acc ? g.op('Add', [acc, product]) : product;
  }
  if (!acc) throw new Error('float-order: a depthwise conv without taps');
  return g.op('Reshape', [acc, g.ints([1, -1, 1, c], 'shape')]);
}
