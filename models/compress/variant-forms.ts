/**
 * The two forms of a compressed variant's linear weights: the *stored* form (what
 * model.whittle.safetensors holds: packed, backend-independent) and the *kernel* form a backend
 * compiles (kernel-choice.ts). WASM runs q4 as its grid requantized to int8 per channel (or
 * dequantized to fp32 when asked), 2x (8x) the bytes of the packed grid, and a grid
 * requantized per channel cannot be unpacked back to the grid. So a variant stores packed
 * weights, and the kernel form is resolved when it loads:
 *
 *   stored \ kernel   f32            int8               nbits (bits b)              dequantized
 *   f32               as is          quantized now (only the head: a WASM-made variant keeps an
 *                                     fp32 head, WebGPU's default is 8-bit; first rounding, not a second)
 *   int8 per channel  dequantized    as is              exact: zp 128, scale per    dequantized
 *                                                        channel repeated per block
 *   nbits (b bits)    dequantized    requantized per    as is when b matches        dequantized
 *                                     channel when the   (accuracy level from the
 *                                     form names this    setting), else dequantized
 *                                     grid (q4 on WASM),
 *                                     else dequantized
 * "dequantized" runs the stored grid's exact values through fp32 MatMul: the same numbers the
 * packed kernel multiplies by, so nothing is rounded twice. WASM's q4 default rounds them once
 * more, to int8 per channel (kernel-choice.ts says why: a quarter of fp32's memory, q8's speed),
 * and does it here, at load, so the variant stays the 4-bit grid.
 *
 * @example
 * const plan = storagePlan(setting, 'wasm');
 * const stored = withStoredHead(prepareWeights(config, weights, { weights: plan.prepare, backend: 'wasm' }), plan);
 * const runnable = toKernelForms(stored, setting, 'wasm'); // q4: the grid requantized to int8 for DynamicQuantizeMatMul
 */
import { layerWidth, type PreparedLayer, type PreparedWeights } from '../llama/prepare.ts';
import type { LlamaConfig, WeightsSetting } from '../llama/types.ts';
import { WhittleError } from '../../core/errors.ts';
import { blobBytes, blockCount, dequantizeBlockwise, zeroPointBytes, type BlockSize, type BlockwiseWeight } from './blockwise.ts';
import { resolveForms, type KernelBackend, type WeightForm } from './kernel-choice.ts';
import { compressLinear } from './compress-prepared.ts';
import type { LinearWeight } from './linear.ts';
import { dequantizePerChannelInt8, quantizePerChannelInt8, type PerChannelInt8Weight } from './per-channel.ts';

/**
 * How to prepare weights so the result is storable: `prepare` is the setting to give
 * prepareWeights (the caller's, unless a weight would be 'dequantized', fp32 that stands for a
 * grid; then the same grid packed, 'nbits'), and `head`, when set, the form to quantize the
 * fp32 head into afterwards (`withStoredHead`): packing the blocks through the setting's `kernel`
 * would move a per-channel int8 head (WASM's 8-bit head) to blockwise too, another grid.
 */
export interface StoragePlan {
  prepare: WeightsSetting;
  head: WeightForm | null;
}

export function storagePlan(setting: WeightsSetting, backend: KernelBackend, config?: LlamaConfig): StoragePlan {
  // WASM's q4 is 'dequantized' or 'int8' by size, and both store the same grid; `config` decides
  // whether the head is WASM's int8 one (kernel-choice.ts, BIG_HEAD_BYTES).
  const { block, head } = resolveForms(setting, backend, config);
  // Forms that stand for a 4-bit grid (fp32 dequantized, or int8 requantized) store the grid itself.
  const standsForGrid = (f: WeightForm) => f.form === 'dequantized' || (f.form === 'int8' && f.grid !== undefined);
  if (!standsForGrid(block) && !standsForGrid(head)) return { prepare: setting, head: null };
  if (head.form === 'int8') return { prepare: { ...setting, kernel: 'nbits', head: 'f32' }, head };
  return { prepare: { ...setting, kernel: 'nbits' }, head: null };
}

/** Prepared weights (made with `plan.prepare`) with the head in its stored form. */
export function withStoredHead(p: PreparedWeights, plan: StoragePlan): PreparedWeights {
  if (!plan.head) return p;
  if (!(p.head instanceof Float32Array)) throw new WhittleError('INTERNAL', 'withStoredHead: the head was prepared quantized');
  return { ...p, head: compressLinear(p.head, p.config.dim, p.config.vocabSize, plan.head) };
}

export { settingTag } from './variant-name.ts';

/** An int8 per-channel weight as MatMulNBits 8-bit blocks: exact (q + 128 with zero point 128, each column's scale in every block). */
export function int8ToBlockwise(w: PerChannelInt8Weight, blockSize: BlockSize): BlockwiseWeight {
  const { K, N } = w;
  const nBlocks = blockCount(K, blockSize);
  const blob = blobBytes(blockSize, 8);
  const b = new Uint8Array(N * nBlocks * blob).fill(128); // pad elements take the zero point: 0
  const scales = new Float32Array(N * nBlocks);
  const zeroPoints = new Uint8Array(N * zeroPointBytes(nBlocks, 8)).fill(128);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < nBlocks; j++) scales[n * nBlocks + j] = w.scales[n]!;
    for (let k = 0; k < K; k++) b[n * nBlocks * blob + k] = w.b[k * N + n]! + 128; // block j, element i sit at n*nBlocks*blob + j*blob + i = ... + k
  }
  return { K, N, bits: 8, blockSize, b, scales, zeroPoints };
}

/** One stored linear weight W [K, N] in the kernel form `form`. */
export function toKernelForm(w: LinearWeight, form: WeightForm, K: number, N: number): LinearWeight {
  if (w instanceof Float32Array) return compressLinear(w, K, N, form);
  if (w.kind === 'int8') {
    if (form.form === 'int8') return w;
    if (form.form === 'nbits' && form.bits === 8) return { kind: 'nbits', weight: int8ToBlockwise(w.weight, form.blockSize), accuracyLevel: form.accuracyLevel };
    return dequantizePerChannelInt8(w.weight);
  }
  if (form.form === 'nbits' && form.bits === w.weight.bits) return { kind: 'nbits', weight: w.weight, accuracyLevel: form.accuracyLevel };
  // The stored grid is the one the int8 form was meant to hold (q4 on WASM): requantize its values.
  if (form.form === 'int8' && form.grid?.bits === w.weight.bits) return { kind: 'int8', weight: quantizePerChannelInt8(dequantizeBlockwise(w.weight), K, N) };
  return dequantizeBlockwise(w.weight);
}

/** One stored block in the kernel form `block` (its own width: a width-pruned block has its own head count and FFN width). */
export function layerToKernelForm(l: PreparedLayer, block: WeightForm, c: LlamaConfig, hs: number): PreparedLayer {
  const { nHeads, nKvHeads, hidden } = layerWidth(c, l);
  return {
    ...l,
    qkv: toKernelForm(l.qkv, block, c.dim, (nHeads + 2 * nKvHeads) * hs),
    wo: toKernelForm(l.wo, block, nHeads * hs, c.dim),
    gateUp: toKernelForm(l.gateUp, block, c.dim, 2 * hidden),
    down: toKernelForm(l.down, block, hidden, c.dim),
  };
}

/**
 * Stored prepared weights -> what `backend` compiles for `setting`, layer by layer (each layer's
 * fp32 copies, where a form is dequantized, are made one at a time). Norms, embedding, RoPE are shared.
 */
export function toKernelForms(stored: PreparedWeights, setting: WeightsSetting, backend: KernelBackend): PreparedWeights {
  const { block, head } = resolveForms(setting, backend, stored.config);
  const c = stored.config;
  const layers = stored.layers.map((l) => layerToKernelForm(l, block, c, stored.headSize));
  return { ...stored, layers, head: toKernelForm(stored.head, head, c.dim, c.vocabSize) };
}
