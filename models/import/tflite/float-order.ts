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
 *    j = tap * Cin + channel; outputs in full blocks of 4 time steps sum even j and odd j in two
 *    accumulators from 0 and add them, the time steps left over (T mod 4) sum all j in one; the
 *    bias is added last. Products are rounded before each add (WASM has no fused multiply-add).
 *  - 'reference' (grouped CONV_2D, TFLite's reference kernel): one accumulator from 0 over the
 *    group's j, then the bias.
 *  - depthwise (DEPTHWISE_CONV_2D): the accumulator starts at the bias and adds the taps in order.
 * (A one-op .tflite runs its conv through XNNPACK instead, which starts at the bias and adds every
 * j in order: the orders belong to the kernels, so they are checked on the real encoder,
 * lyra.speech-set.oracle.test.ts.)
 *
 * The order is sequential by nature, so it costs one Mul and one Add per product column (K * Cin
 * per group), each over all [T, Cout] outputs at once: a slower graph, used only where
 * bit-exactness is asked for (see `FloatConvOrder`).
 */
import type { Value } from '../../onnx/builder.ts';
import type { Ctx } from './context.ts';

/**
 * 'tflite': float convs summed in TFLite's order (bit-exact, one Mul + Add per product column);
 * 'fast': one Gemm per conv (float32 rounding differs in the last bits).
 */
export type FloatConvOrder = 'tflite' | 'fast';

/** Time steps per column block of the GEMM; blocks sum in two accumulators. */
const GEMM_BLOCK = 4;

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
  const steps = k * (cin / group);
  const weightRow = (j: number) => {
    const wj = new Float32Array(cout);
    for (let c = 0; c < cout; c++) wj[c] = w[c * steps + j]!;
    return wj;
  };
  let acc: Value;
  if (group === 1) {
    const blocked = Math.floor(tOut / GEMM_BLOCK) * GEMM_BLOCK;
    const parts: Value[] = [];
    const slice = (from: number, to: number) =>
      from === 0 && to === tOut ? rows : g.op('Slice', [rows, g.ints([from], 'starts'), g.ints([to], 'ends'), g.ints([0], 'axes')]);
    if (blocked > 0) {
      const columns = g.opN('Split', [slice(0, blocked)], steps, { axis: 1, num_outputs: steps }); // [blocked, 1] each
      const even = chain(ctx, `${name}_even`, columns, weightRow, [cout], (j) => j % 2 === 0, steps);
      const odd = steps > 1 ? chain(ctx, `${name}_odd`, columns, weightRow, [cout], (j) => j % 2 === 1, steps) : null;
      parts.push(odd ? g.op('Add', [even, odd]) : even);
    }
    if (blocked < tOut) {
      const columns = g.opN('Split', [slice(blocked, tOut)], steps, { axis: 1, num_outputs: steps });
      parts.push(chain(ctx, `${name}_rest`, columns, weightRow, [cout], () => true, steps));
    }
    acc = parts.length === 1 ? parts[0]! : g.op('Concat', parts, { axis: 0 });
  } else {
    // The input column each output channel reads at step j = tap * cg + i.
    const cg = cin / group;
    const perGroupOut = cout / group;
    const idx = new Int32Array(steps * cout);
    for (let j = 0; j < steps; j++)
      for (let c = 0; c < cout; c++) idx[j * cout + c] = Math.floor(j / cg) * cin + Math.floor(c / perGroupOut) * cg + (j % cg);
    const spread = g.op('Gather', [rows, g.constant(`seqidx${name}`, 'int32', [steps, cout], idx)], { axis: 1 }); // [T, steps, Cout]
    const columns = g.opN('Split', [spread], steps, { axis: 1, num_outputs: steps }); // [T, 1, Cout] each
    acc = chain(ctx, name, columns, weightRow, [1, cout], () => true, steps);
  }
  if (b) acc = g.op('Add', [acc, g.constant(`seqb${name}`, 'float32', [cout], b)]);
  return g.op('Reshape', [acc, g.ints([1, tOut, 1, cout], 'shape')]);
}

/** ((x_j0 * w_j0 + x_j1 * w_j1) + ...) over the steps j that `take`, in order. */
function chain(
  ctx: Ctx,
  name: string,
  columns: Value[],
  weightRow: (j: number) => Float32Array,
  rowShape: number[],
  take: (j: number) => boolean,
  steps: number,
): Value {
  const g = ctx.g;
  let acc: Value | null = null;
  for (let j = 0; j < steps; j++) {
    if (!take(j)) continue;
    const product = g.op('Mul', [columns[j]!, g.constant(`seqw${name}_${j}`, 'float32', rowShape, weightRow(j))]);
    acc = acc ? g.op('Add', [acc, product]) : product;
  }
  if (!acc) throw new Error(`float-order: no products for ${name}`);
  return acc;
}

/**
 * Depthwise taps [1, T, K, 1, C] against weights [K, C]: y = ((b + x0*w0) + x1*w1) + ..., the
 * accumulator [1, T, 1, C].
 */
export function sequentialDepthwise(ctx: Ctx, name: string, taps: Value, k: number, c: number, w: Float32Array, b: Float32Array | null): Value {
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
