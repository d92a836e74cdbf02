/**
 * Prepared weights (models/llama/prepare.ts) -> the same weights with every linear layer in the
 * form a `WeightsSetting` resolves to (kernel-choice.ts). Norms, RoPE tables and the embedding
 * (a Gather: kept fp32, i.e. never below 8 bits) are shared with the input, not copied.
 *
 * `setting.method` picks how the block linears' grids are chosen: 'rtn' round-to-nearest,
 * 'hqq' (hqq.ts) refined per group from the weights alone, 'awq' (awq.ts) scaled per input
 * channel from calibration statistics of each block's linear inputs (`stats`, one entry per
 * layer, from workers/text/activation-stats.ts), then round-to-nearest. The head is always
 * round-to-nearest (it is never below 8 bits).
 *
 * @example
 * const q4 = compressPrepared(prepareWeights(config, weights), { linear: 'q4', group: 32 }, 'wasm');
 * buildSegment(q4, segment, 'onnx'); // same graph shape, quantized weights
 */
import { WhittleError } from '../../core/errors.ts';
import { awqLayer, type AwqChoice, type BlockInputStats, type BlockScales, type QuantizeDequantize } from './awq.ts';
import { quantizeBlockwise, dequantizeBlockwise } from './blockwise.ts';
import { quantizeBlockwiseHqq } from './hqq.ts';
import { resolveForms, type KernelBackend, type WeightForm } from './kernel-choice.ts';
import type { LinearWeight } from './linear.ts';
import { dequantizePerChannelInt8, quantizePerChannelInt8 } from './per-channel.ts';
import type { PreparedLayer, PreparedWeights } from '../llama/prepare.ts';
import type { LlamaConfig, WeightsSetting } from '../llama/types.ts';

/** The fp32 [K, N] matrix behind a linear weight: only fp32 inputs can be (re)quantized. */
function fp32Of(w: LinearWeight, name: string): Float32Array {
  if (w instanceof Float32Array) return w;
  // Quantizing already-quantized weights again would compound two roundings silently.
  throw new WhittleError('INVALID_ARGUMENT', `compressPrepared: ${name} is already quantized; compress from the fp32 prepared weights`, { tensor: name });
}

/**
 * One weight W [K, N] in `form`, its grids chosen by `form.method` ('hqq' refines them; absent =
 * round-to-nearest). A form still marked 'awq' has not been through AWQ's scaling: refused.
 */
export function compressLinear(w: Float32Array, K: number, N: number, form: WeightForm): LinearWeight {
  if (form.form !== 'f32' && form.method === 'awq') {
    throw new WhittleError('INVALID_ARGUMENT', "method 'awq' needs the model's activations: use TextEngine.compress, or compressPrepared with calibration statistics (workers/text/activation-stats.ts)");
  }
  const hqq = form.form !== 'f32' && form.method === 'hqq';
  const blockwise = (bits: 4 | 8, blockSize: 32 | 64 | 128) => (hqq ? quantizeBlockwiseHqq(w, K, N, bits, blockSize) : quantizeBlockwise(w, K, N, bits, blockSize));
  switch (form.form) {
    case 'f32':
      return w;
    case 'int8':
      // The 4-bit grid first (refined by 'hqq' when asked), then its values per channel to int8.
      if (form.grid) return { kind: 'int8', weight: quantizePerChannelInt8(dequantizeBlockwise(blockwise(form.grid.bits, form.grid.blockSize)), K, N) };
      // kernel-choice.ts refuses 'hqq' with q8's int8 kernel; reaching here with it is a caller's bug.
      if (hqq) throw new WhittleError('INTERNAL', "compressLinear: 'hqq' has no zero point to refine in the int8 per-channel form");
      return { kind: 'int8', weight: quantizePerChannelInt8(w, K, N) };
    case 'nbits':
      return { kind: 'nbits', weight: blockwise(form.bits, form.blockSize), accuracyLevel: form.accuracyLevel };
    case 'dequantized':
      return dequantizeBlockwise(blockwise(form.bits, form.blockSize));
  }
}

/** Quantize-then-dequantize for `form` with round-to-nearest: what AWQ's search measures. */
export function roundTripFor(form: WeightForm): QuantizeDequantize {
  switch (form.form) {
    case 'f32':
      return (w) => w;
    case 'int8': {
      const grid = form.grid;
      if (grid) return (w, K, N) => dequantizePerChannelInt8(quantizePerChannelInt8(dequantizeBlockwise(quantizeBlockwise(w, K, N, grid.bits, grid.blockSize)), K, N));
      return (w, K, N) => dequantizePerChannelInt8(quantizePerChannelInt8(w, K, N));
    }
    case 'nbits':
    case 'dequantized':
      return (w, K, N) => dequantizeBlockwise(quantizeBlockwise(w, K, N, form.bits, form.blockSize));
  }
}

/**
 * One prepared layer with its four linears in `form`. prepareWeights calls it right after
 * preparing each layer, so a load with compression never holds every layer in fp32 at once.
 */
/** `consumed` is told of each fp32 linear once its compressed form exists (a streamed load releases it then). */
export function compressLayer(l: PreparedLayer, i: number, c: LlamaConfig, hs: number, form: WeightForm, consumed: (fp32: Float32Array) => void = () => {}): PreparedLayer {
  // A width-pruned layer (width-slice.ts) has its own KV heads and FFN width (prepare.ts' layerWidth, inlined: prepare.ts imports this file).
  const nKvHeads = l.kvHeads ?? c.nKvHeads;
  const nHeads = nKvHeads * (c.nHeads / c.nKvHeads);
  const hidden = l.hidden ?? c.hiddenDim;
  const qkvCols = (nHeads + 2 * nKvHeads) * hs;
  const one = (w: LinearWeight, name: string, K: number, N: number): LinearWeight => {
    const fp32 = fp32Of(w, name);
    const out = compressLinear(fp32, K, N, form);
    if (out !== fp32) consumed(fp32);
    return out;
  };
  return {
    ...l,
    qkv: one(l.qkv, `qkv.${i}`, c.dim, qkvCols),
    wo: one(l.wo, `wo.${i}`, nHeads * hs, c.dim),
    gateUp: one(l.gateUp, `gate_up.${i}`, c.dim, 2 * hidden),
    down: one(l.down, `down.${i}`, hidden, c.dim),
  };
}

/**
 * One fp32 prepared layer scaled by AWQ on its input statistics (norm / V / up weights carry the
 * folded 1/s), then its four linears quantized in `form` with round-to-nearest.
 */
export function compressLayerAwq(l: PreparedLayer, i: number, c: LlamaConfig, hs: number, form: WeightForm, stats: BlockInputStats): { layer: PreparedLayer; choices: Record<keyof BlockScales, AwqChoice> } {
  for (const [name, w] of [['qkv', l.qkv], ['wo', l.wo], ['gate_up', l.gateUp], ['down', l.down]] as const) fp32Of(w, `${name}.${i}`);
  if (form.form === 'f32') throw new WhittleError('INVALID_ARGUMENT', "method 'awq' scales weights for quantization; linear 'f32' quantizes nothing");
  // The scaled weights are quantized with round-to-nearest: AWQ's search measured exactly that.
  const rtn: WeightForm = { ...form, method: undefined };
  delete rtn.method;
  const { layer, choices } = awqLayer(l, c, hs, stats, roundTripFor(rtn));
  return { layer: compressLayer(layer, i, c, hs, rtn), choices };
}

/** The LM head W [dim, vocab] in `form`. */
export function compressHead(head: LinearWeight, c: LlamaConfig, form: WeightForm): LinearWeight {
  return compressLinear(fp32Of(head, 'lm_head'), c.dim, c.vocabSize, form);
}

/**
 * `stats` (one per layer, the fp32 model's linear inputs) is required with method 'awq' and
 * refused otherwise, so a caller cannot believe calibration was used when it was not.
 */
export function compressPrepared(prepared: PreparedWeights, setting: WeightsSetting, backend: KernelBackend, stats?: readonly BlockInputStats[]): PreparedWeights {
  const { block, head } = resolveForms(setting, backend, prepared.config);
  const c = prepared.config;
  const method = setting.method ?? 'rtn';
  if (method === 'awq' && stats?.length !== prepared.layers.length) {
    throw new WhittleError('INVALID_ARGUMENT', `method 'awq' needs calibration statistics for each of the ${prepared.layers.length} layers (workers/text/activation-stats.ts), got ${stats?.length ?? 'none'}`);
  }
  if (method !== 'awq' && stats !== undefined) throw new WhittleError('INVALID_ARGUMENT', `calibration statistics are only used by method 'awq', not '${method}'`);
  const layers = prepared.layers.map((l, i) =>
    method === 'awq' ? compressLayerAwq(l, i, c, prepared.headSize, block, stats![i]!).layer : compressLayer(l, i, c, prepared.headSize, block),
  );
  return { ...prepared, layers, head: compressHead(prepared.head, c, head) };
}
