/**
 * Which form a weight takes for a `WeightsSetting` on a backend, resolving 'auto' from the
 * measurements in README.md (`npx tsx models/compress/bench-kernels.ts`, WASM, 1 thread):
 * - WASM, q8: `DynamicQuantizeMatMul` (int8 per channel): 2.0–2.7x fp32 at S = 64, 1.1x for the
 *   FFN shapes at S = 1 (0.56–0.86x for the small attention projections, which cost less), a
 *   quarter of the memory. MatMulNBits is 2–30x slower than fp32 here (it dequantizes the whole
 *   weight on every call, with accuracy_level 1 or 4 alike), so it is never chosen on WASM.
 * - WASM, q4: no kernel runs 4-bit weights faster than fp32 MatMul on WASM. Two forms run the
 *   4-bit grid: its exact values dequantized once to fp32 (`MatMul`, 'dequantized': 4 bytes per
 *   weight) or its values requantized to int8 per channel (`DynamicQuantizeMatMul`, 'int8' with
 *   `grid`: 1 byte per weight, q8's speed, a second rounding finer than the grid's but with
 *   DynamicQuantizeMatMul's uint8 activations: +40% KL to fp32 on the trained models, README.md).
 *   'auto' runs the exact grid where its fp32 copy is small (block linears up to
 *   DEQUANTIZED_Q4_LIMIT: the stories models) and int8 above, where fp32 would not be q4 in any
 *   useful sense (SmolLM2-135M: 425 MB vs 106 MB; Llama-3.2-1B: 3.9 GB, which with the embedding
 *   does not fit a 4 GiB WASM heap). Without a config the model is taken to be large.
 * - WASM head: fp32 by default: at S = 1 the int8 kernel is 0.47x fp32 for 576 x 49152.
 * - WASM decode steps of the 'int8' form (and an int8 head) run on Whittle's own SIMD kernels
 *   by default (workers/text/kernel-decoder.ts, ~1.9x DynamicQuantizeMatMul's step at
 *   SmolLM2-135M), reading the same int8 values; the graphs above still run everything else.
 * - WebGPU: `MatMulNBits` for both widths and an 8-bit head (onnxruntime's WebGPU kernels read
 *   the packed weights directly; not measured here: no GPU in this environment).
 *
 * @example
 * resolveForms({ linear: 'q4', group: 64 }, 'wasm'); // { block: { form: 'int8', grid: { bits: 4, blockSize: 64 } }, head: { form: 'f32' } }
 */
import { validateSparsity } from './sparsity-select.ts';
import { WhittleError } from '../../core/errors.ts';
import { headSizeOf, type LlamaConfig, type WeightsSetting } from '../llama/types.ts';
import type { BlockSize, NBits } from './blockwise.ts';
import type { AccuracyLevel } from './linear.ts';
import { blockParams } from './width-select.ts';

export type KernelBackend = 'wasm' | 'webgpu';

/** One resolved weight form: what compressLinear() builds. */
export type WeightForm =
  | { form: 'f32' }
  | ({ form: 'int8'; grid?: Grid } & Refined)
  | ({ form: 'nbits'; bits: NBits; blockSize: BlockSize; accuracyLevel: AccuracyLevel } & Refined)
  | ({ form: 'dequantized'; bits: NBits; blockSize: BlockSize } & Refined);

/**
 * The grouped grid an int8 per-channel weight was requantized from (q4 on WASM): the weight's
 * values are the grid's dequantized ones rounded once more, per output column, to int8. Absent:
 * int8 straight from fp32 (q8).
 */
export interface Grid {
  bits: 4;
  blockSize: BlockSize;
}

/**
 * `WeightsSetting.method` when it is not round-to-nearest (absent = 'rtn'), carried on the block
 * form so every caller that quantizes a layer (prepareWeights, compressPrepared) sees it: 'hqq'
 * changes how compressLinear picks grids; 'awq' needs calibration statistics, which only
 * compressPrepared's `stats` can supply (compressLayer refuses it alone).
 */
interface Refined {
  method?: 'hqq' | 'awq';
}

/** Throws INVALID_ARGUMENT for a setting no kernel implements. */
export function validateWeights(s: WeightsSetting): void {
  const bad = (msg: string) => new WhittleError('INVALID_ARGUMENT', `weights: ${msg}`, { weights: JSON.stringify(s) });
  if (!['f32', 'q8', 'q4'].includes(s.linear)) throw bad(`linear must be 'f32', 'q8' or 'q4', not ${String(s.linear)}`);
  if (s.group !== undefined && ![32, 64, 128].includes(s.group)) throw bad(`group must be 32, 64 or 128, not ${s.group}`);
  if (s.kernel !== undefined && !['auto', 'int8', 'nbits', 'dequantized'].includes(s.kernel)) throw bad(`unknown kernel ${String(s.kernel)}`);
  if (s.head !== undefined && !['f32', 'q8'].includes(s.head)) throw bad(`head must be 'f32' or 'q8' (never below 8 bits), not ${String(s.head)}`);
  if (s.accuracyLevel !== undefined && s.accuracyLevel !== 1 && s.accuracyLevel !== 4) throw bad(`accuracyLevel must be 1 or 4, not ${String(s.accuracyLevel)}`);
  if (s.method !== undefined && !['rtn', 'hqq', 'awq'].includes(s.method)) throw bad(`method must be 'rtn', 'hqq' or 'awq', not ${String(s.method)}`);
  // Asking for a refinement of fp32 weights is a mistake to report, not a no-op to hide.
  if (s.linear === 'f32' && (s.method ?? 'rtn') !== 'rtn') throw bad(`method '${s.method}' refines quantized weights; linear 'f32' quantizes nothing`);
  if (s.method === 'hqq' && s.kernel === 'int8' && s.linear === 'q8') throw bad(HQQ_INT8);
  if (s.sparsity !== undefined) validateSparsity(s.sparsity);
}

/**
 * Why 'hqq' and the int8 kernel do not mix: HQQ's variable is the zero point of an asymmetric
 * group (hqq.ts); DynamicQuantizeMatMul's weights are symmetric per output column (no zero
 * point, 255 levels over a whole column, already +0.02% perplexity with round-to-nearest), so
 * there is nothing for it to refine. Refusing is clearer than silently falling back to RTN.
 */
const HQQ_INT8 = "method 'hqq' refines the zero points of 4/8-bit groups; q8's int8 per-channel kernel is symmetric (no zero point). Use kernel 'nbits' or 'dequantized' with 'hqq', or method 'rtn' / 'awq' with int8 (q4 on the int8 kernel refines its 4-bit grid first, so 'hqq' applies there)";

function formFor(bits: NBits, kernel: Exclude<WeightsSetting['kernel'], undefined | 'auto'>, s: WeightsSetting): WeightForm {
  const blockSize = s.group ?? 32;
  // q4 on the int8 kernel: the 4-bit grid (its groups, its method) requantized per channel.
  if (kernel === 'int8') return bits === 4 ? { form: 'int8', grid: { bits: 4, blockSize } } : { form: 'int8' };
  if (kernel === 'dequantized') return { form: 'dequantized', bits, blockSize };
  return { form: 'nbits', bits, blockSize, accuracyLevel: s.accuracyLevel ?? 1 };
}

/**
 * fp32 head bytes from which a compressed model's head is int8 on WASM by default: 4x less
 * memory (113 MB -> 28 MB at SmolLM2-135M, 1.05 GB -> 262 MB at Llama-3.2-1B), which decides
 * it even where the int8 kernel is slower per step (models/compress/README.md has both
 * measurements). Below it (the stories models) the head stays fp32: there is little to save.
 */
export const BIG_HEAD_BYTES = 64 * 2 ** 20;

/** Bytes of fp32 block linears up to which WASM's 'auto' runs a q4 grid dequantized (exact) rather than as int8. */
export const DEQUANTIZED_Q4_LIMIT = 256 * 2 ** 20;

/** Parameters of a model's block linears (Q/K/V, O, gate|up, down over every layer). */
export function blockLinearParams(c: LlamaConfig): number {
  return c.nLayers * blockParams({ dim: c.dim, headSize: headSizeOf(c), nHeads: c.nHeads, nKvHeads: c.nKvHeads, hidden: c.hiddenDim });
}

/**
 * The forms of the block linears (Q/K/V, O, gate|up, down) and of the LM head. `config` sizes
 * WASM's q4 choice (see the header); absent, the model is taken to be large.
 */
export function resolveForms(s: WeightsSetting, backend: KernelBackend, config?: LlamaConfig): { block: WeightForm; head: WeightForm } {
  validateWeights(s);
  const autoKernel = backend === 'webgpu' ? 'nbits' : 'int8';
  const smallQ4 = config !== undefined && blockLinearParams(config) * 4 <= DEQUANTIZED_Q4_LIMIT;
  const blockAuto = backend === 'wasm' && s.linear === 'q4' && smallQ4 ? 'dequantized' : autoKernel;
  const block: WeightForm = s.linear === 'f32' ? { form: 'f32' } : formFor(s.linear === 'q8' ? 8 : 4, s.kernel === undefined || s.kernel === 'auto' ? blockAuto : s.kernel, s);
  // A compressed model's head is 8-bit on WebGPU, and on WASM once `config` shows it is big
  // (BIG_HEAD_BYTES; without a config, fp32 as before).
  const bigHead = config !== undefined && config.vocabSize * config.dim * 4 >= BIG_HEAD_BYTES;
  const headWidth = s.head ?? (s.linear !== 'f32' && (backend === 'webgpu' || bigHead) ? 'q8' : 'f32');
  // The head follows the block kernel when that one holds 8 bits; a 4-bit block kernel gives the head its 8-bit version.
  const headKernel = s.kernel === undefined || s.kernel === 'auto' ? autoKernel : s.kernel;
  const head: WeightForm = headWidth === 'f32' ? { form: 'f32' } : formFor(8, headKernel, s);
  // 'auto' may resolve q8 to the int8 kernel (WASM): only known here, with the backend.
  if (s.method === 'hqq' && block.form === 'int8' && !block.grid) {
    throw new WhittleError('INVALID_ARGUMENT', `weights: ${HQQ_INT8} (q8 on ${backend} resolves to the int8 kernel)`, { weights: JSON.stringify(s), backend });
  }
  // The head stays round-to-nearest: it is never below 8 bits, and AWQ would need its input's statistics too.
  if (block.form !== 'f32' && s.method !== undefined && s.method !== 'rtn') return { block: { ...block, method: s.method }, head };
  return { block, head };
}
