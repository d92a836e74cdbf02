/**
 * Prepared weights (models/llama/prepare.ts) -> the same weights with every linear layer in the
 * form a `WeightsSetting` resolves to (kernel-choice.ts). Norms, RoPE tables and the embedding
 * (a Gather: kept fp32, i.e. never below 8 bits) are shared with the input, not copied.
 *
 * @example
 * const q4 = compressPrepared(prepareWeights(config, weights), { linear: 'q4', group: 32 }, 'wasm');
 * buildSegment(q4, segment, 'onnx'); // same graph shape, quantized weights
 */
import { WhittleError } from '../../core/errors.ts';
import { quantizeBlockwise, dequantizeBlockwise } from './blockwise.ts';
import { resolveForms, type KernelBackend, type WeightForm } from './kernel-choice.ts';
import type { LinearWeight } from './linear.ts';
import { quantizePerChannelInt8 } from './per-channel.ts';
import type { PreparedLayer, PreparedWeights } from '../llama/prepare.ts';
import type { LlamaConfig, WeightsSetting } from '../llama/types.ts';

/** The fp32 [K, N] matrix behind a linear weight: only fp32 inputs can be (re)quantized. */
function fp32Of(w: LinearWeight, name: string): Float32Array {
  if (w instanceof Float32Array) return w;
  // Quantizing already-quantized weights again would compound two roundings silently.
  throw new WhittleError('INVALID_ARGUMENT', `compressPrepared: ${name} is already quantized; compress from the fp32 prepared weights`, { tensor: name });
}

/** One weight W [K, N] in `form`. */
export function compressLinear(w: Float32Array, K: number, N: number, form: WeightForm): LinearWeight {
  switch (form.form) {
    case 'f32':
      return w;
    case 'int8':
      return { kind: 'int8', weight: quantizePerChannelInt8(w, K, N) };
    case 'nbits':
      return { kind: 'nbits', weight: quantizeBlockwise(w, K, N, form.bits, form.blockSize), accuracyLevel: form.accuracyLevel };
    case 'dequantized':
      return dequantizeBlockwise(quantizeBlockwise(w, K, N, form.bits, form.blockSize));
  }
}

/**
 * One prepared layer with its four linears in `form`. prepareWeights calls it right after
 * preparing each layer, so a load with compression never holds every layer in fp32 at once.
 */
export function compressLayer(l: PreparedLayer, i: number, c: LlamaConfig, hs: number, form: WeightForm): PreparedLayer {
  const qkvCols = (c.nHeads + 2 * c.nKvHeads) * hs;
  return {
    ...l,
    qkv: compressLinear(fp32Of(l.qkv, `qkv.${i}`), c.dim, qkvCols, form),
    wo: compressLinear(fp32Of(l.wo, `wo.${i}`), c.nHeads * hs, c.dim, form),
    gateUp: compressLinear(fp32Of(l.gateUp, `gate_up.${i}`), c.dim, 2 * c.hiddenDim, form),
    down: compressLinear(fp32Of(l.down, `down.${i}`), c.hiddenDim, c.dim, form),
  };
}

/** The LM head W [dim, vocab] in `form`. */
export function compressHead(head: LinearWeight, c: LlamaConfig, form: WeightForm): LinearWeight {
  return compressLinear(fp32Of(head, 'lm_head'), c.dim, c.vocabSize, form);
}

export function compressPrepared(prepared: PreparedWeights, setting: WeightsSetting, backend: KernelBackend): PreparedWeights {
  const { block, head } = resolveForms(setting, backend);
  const c = prepared.config;
  const layers = prepared.layers.map((l, i) => compressLayer(l, i, c, prepared.headSize, block));
  return { ...prepared, layers, head: compressHead(prepared.head, c, head) };
}
