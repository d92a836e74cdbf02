/**
 * A linear layer's weight in one of the forms the graphs can run, and the ONNX node(s) each form
 * becomes. Y = X @ W with X [1, S, K] and W [K, N] in every case:
 * - `Float32Array` [K, N]: plain `MatMul` (fp32 weights, or weights dequantized once at compile
 *   time: the quality of the quantized grid at fp32 speed, for runtimes with no fast low-bit kernel).
 * - `{ kind: 'int8' }`: `com.microsoft.DynamicQuantizeMatMul` with per-column int8 weights
 *   (per-channel.ts); A is quantized to uint8 per tensor at run time by the op itself.
 * - `{ kind: 'nbits' }`: `com.microsoft.MatMulNBits` (blockwise.ts), with `accuracy_level` always
 *   written out: 1 keeps A in fp32 (weight-only quantization, the error the tests bound), 4 lets
 *   the kernel quantize A to int8 per block (faster int8 dot products where the backend has them).
 *   Leaving it unset is not an option here: onnxruntime's WebGPU kernel then takes the int8 path.
 *
 * @example
 * const y = emitLinear(g, x, 'down.3', prepared.layers[3]!.down, hidden, dim); // [1, S, dim]
 */
import { WhittleError } from '../../core/errors.ts';
import type { GraphBuilder, Value } from '../onnx/builder.ts';
import { blobBytes, blockCount, zeroPointBytes, type BlockwiseWeight } from './blockwise.ts';
import type { PerChannelInt8Weight } from './per-channel.ts';

/** MatMulNBits `accuracy_level`: 1 = fp32 activations, 4 = int8 activations (per block). */
export type AccuracyLevel = 1 | 4;

export type LinearWeight =
  | Float32Array // [K, N]
  | { kind: 'int8'; weight: PerChannelInt8Weight }
  | { kind: 'nbits'; weight: BlockwiseWeight; accuracyLevel: AccuracyLevel };

/** Bytes the weight occupies in the graph (what a session holds for it). */
export function linearBytes(w: LinearWeight): number {
  if (w instanceof Float32Array) return w.byteLength;
  if (w.kind === 'int8') return w.weight.b.byteLength + w.weight.scales.byteLength;
  return w.weight.b.byteLength + w.weight.scales.byteLength + w.weight.zeroPoints.byteLength;
}

/** Emits X [.., K] @ W [K, N] -> [.., N] as the node `w`'s form needs; `name` prefixes its initializers. */
export function emitLinear(g: GraphBuilder, x: Value, name: string, w: LinearWeight, K: number, N: number, outputName?: string): Value {
  return linearOp(g, x, w, linearInitializers(g, name, w, K, N), outputName);
}

/**
 * The initializers of `w`'s form in `g` (weight first), for a linear emitted more than once or
 * inside a subgraph (`linearOp` in an If branch reads them from the enclosing graph, no copy).
 */
export function linearInitializers(g: GraphBuilder, name: string, w: LinearWeight, K: number, N: number): Value[] {
  if (w instanceof Float32Array) {
    if (w.length !== K * N) throw new WhittleError('INTERNAL', `linear ${name}: ${w.length} weights for [${K}, ${N}]`);
    return [g.constant(name, 'float32', [K, N], w)];
  }
  if (w.weight.K !== K || w.weight.N !== N) {
    throw new WhittleError('INTERNAL', `linear ${name}: quantized as [${w.weight.K}, ${w.weight.N}], used as [${K}, ${N}]`);
  }
  if (w.kind === 'int8') return [g.constant(name, 'int8', [K, N], w.weight.b), g.constant(`${name}.scale`, 'float32', [N], w.weight.scales)];
  const q = w.weight;
  const nBlocks = blockCount(K, q.blockSize);
  return [
    g.constant(name, 'uint8', [N, nBlocks, blobBytes(q.blockSize, q.bits)], q.b),
    g.constant(`${name}.scales`, 'float32', [N * nBlocks], q.scales),
    g.constant(`${name}.zero_points`, 'uint8', [N * zeroPointBytes(nBlocks, q.bits)], q.zeroPoints),
  ];
}

/** The node of `w`'s form over `initializers` (from `linearInitializers`, in `g` or an enclosing graph). */
export function linearOp(g: GraphBuilder, x: Value, w: LinearWeight, initializers: readonly Value[], outputName?: string): Value {
  const out = outputName === undefined ? {} : { outputName };
  if (w instanceof Float32Array) return g.op('MatMul', [x, initializers[0]!], {}, out);
  if (w.kind === 'int8') return g.op('DynamicQuantizeMatMul', [x, ...initializers], {}, { domain: 'com.microsoft', ...out });
  const q = w.weight;
  return g.op('MatMulNBits', [x, ...initializers], { K: q.K, N: q.N, bits: q.bits, block_size: q.blockSize, accuracy_level: w.accuracyLevel }, { domain: 'com.microsoft', ...out });
}
