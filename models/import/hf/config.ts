/**
 * Hugging Face config.json -> LlamaConfig for the decoder families that share LLaMA's block:
 * `LlamaForCausalLM` (incl. `rope_scaling` 'linear' / 'llama3' and an explicit `head_dim`),
 * `MistralForCausalLM` (sliding window) and `Qwen2ForCausalLM` (Q/K/V biases).
 *
 * The rule: every key that changes what transformers computes is either implemented or refused
 * with UNSUPPORTED, never ignored. Keys without effect at inference (dropout, init range,
 * `use_cache`, `pretraining_tp`, which only splits matmuls, nanotron's `rope_interleaved`, which
 * transformers does not read) are ignored. Defaults are each transformers config class's own,
 * for the keys published configs sometimes leave out.
 *
 * @example
 * const config = llamaConfigFromHf(JSON.parse(configText), { maxContext: 4096 });
 */
import { WhittleError } from '../../../core/errors.ts';
import { showValue } from '../../../core/show-value.ts';
import { checkSupported } from '../../llama/prepare.ts';
import type { LlamaConfig, RopeScaling } from '../../llama/types.ts';

export interface HfConfigOptions {
  /**
   * The longest context the model will run (positions), when shorter than the checkpoint's
   * `max_position_embeddings`: RoPE tables and caches are sized to it, and a sliding window at
   * least this long is plain causal attention (so Mistral 7B v0.1 loads with maxContext <= 4096).
   */
  maxContext?: number;
}

/** What differs between the architectures this importer takes (transformers' config defaults). */
interface Family {
  /** `num_key_value_heads` when the key is absent (null: same as num_attention_heads). */
  kvHeadsDefault: number | null;
  /** `sliding_window` when the key is absent (MistralConfig's default; Qwen2 reads it only with use_sliding_window). */
  slidingDefault: number | null;
  qkvBias: boolean;
}

const FAMILIES: Readonly<Record<string, Family>> = {
  LlamaForCausalLM: { kvHeadsDefault: null, slidingDefault: null, qkvBias: false },
  MistralForCausalLM: { kvHeadsDefault: 8, slidingDefault: 4096, qkvBias: false },
  Qwen2ForCausalLM: { kvHeadsDefault: 32, slidingDefault: 4096, qkvBias: true },
};

const unsupported = (why: string, details: Record<string, string | number | boolean> = {}): never => {
  throw new WhittleError('UNSUPPORTED', `config.json: ${why}`, details);
};
const bad = (why: string, key: string): never => {
  throw new WhittleError('BAD_MODEL', `config.json: ${why}`, { key });
};
const isSet = (v: unknown) => v !== undefined && v !== null;

const positiveFinite = (v: unknown, key: string): number =>
  typeof v === 'number' && v > 0 && Number.isFinite(v) ? v : bad(`${key} must be a positive finite number, got ${showValue(v)}`, key);

/** Largest dim (int32) and the most elements one tensor may have (the longest typed array). */
const MAX_DIM = 2 ** 31 - 1;
const MAX_ELEMENTS = 2 ** 32;

/** `rope_scaling` (transformers <= 4.x) or `rope_parameters` (5.x) -> RopeScaling | undefined. */
function ropeScalingFrom(raw: unknown, key: string): RopeScaling | undefined {
  if (!isSet(raw)) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) return bad(`${key} must be an object or null`, key);
  const r = raw as Record<string, unknown>;
  // Older configs say "type", newer "rope_type"; transformers accepts both.
  const type = r.rope_type ?? r.type ?? 'default';
  const positive = (name: string): number => positiveFinite(r[name], `${key}.${name}`);
  if (type === 'default') return undefined;
  if (type === 'linear') return { type: 'linear', factor: positive('factor') };
  if (type === 'llama3') {
    const scaling: RopeScaling = {
      type: 'llama3',
      factor: positive('factor'),
      lowFreqFactor: positive('low_freq_factor'),
      highFreqFactor: positive('high_freq_factor'),
      originalMaxPositionEmbeddings: positive('original_max_position_embeddings'),
    };
    // The smoothing divides by high - low; transformers requires high > low too.
    if (scaling.highFreqFactor <= scaling.lowFreqFactor) bad(`${key}: high_freq_factor must exceed low_freq_factor`, key);
    return scaling;
  }
  return unsupported(`${key} type ${showValue(type)} is not supported (only linear and llama3)`, { ropeType: showValue(type) });
}

/** HF config.json -> LlamaConfig; UNSUPPORTED for other architectures and for settings the graphs do not implement. */
export function llamaConfigFromHf(raw: unknown, options: HfConfigOptions = {}): LlamaConfig {
  const c = (raw ?? {}) as Record<string, unknown>;
  const archs = Array.isArray(c.architectures) ? (c.architectures as unknown[]) : [];
  const arch = archs.find((a): a is string => typeof a === 'string' && a in FAMILIES);
  if (arch === undefined || archs.length !== 1) {
    return unsupported(`architecture [${archs.map(showValue).join(', ')}] is not supported (one of ${Object.keys(FAMILIES).join(', ')})`, { architectures: archs.map(showValue).join(',') });
  }
  const family = FAMILIES[arch]!;
  // Sizes are int32 in every runtime the graphs run on: a dim of 2^31 or more is no model's.
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > MAX_DIM) return bad(`${key} must be a positive integer below 2^31, got ${showValue(v)}`, key);
    return v;
  };
  const num = (key: string, fallback: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) return bad(`${key} must be a positive finite number, got ${showValue(v)}`, key);
    return v;
  };

  // transformers maps both names to SiLU (ACT2FN).
  if (isSet(c.hidden_act) && c.hidden_act !== 'silu' && c.hidden_act !== 'swish') unsupported(`hidden_act ${showValue(c.hidden_act)} (only silu)`);
  // LlamaConfig.attention_bias puts a bias on o_proj too; Qwen2 has Q/K/V biases by architecture, never o_proj.
  if (!family.qkvBias && c.attention_bias === true) unsupported('attention_bias (biases on q/k/v/o projections) is not supported');
  if (c.mlp_bias === true) unsupported('mlp_bias is not supported');
  if (isSet(c.partial_rotary_factor) && c.partial_rotary_factor !== 1) unsupported(`partial_rotary_factor ${showValue(c.partial_rotary_factor)} (RoPE on part of a head) is not supported`);
  if (c.use_mrope === true) unsupported('use_mrope (multimodal RoPE) is not supported');

  const dim = int('hidden_size');
  const nHeads = int('num_attention_heads');
  const nKvHeads = int('num_key_value_heads', family.kvHeadsDefault ?? nHeads);
  const headDim = isSet(c.head_dim) ? int('head_dim') : undefined;
  if (headDim === undefined && dim % nHeads !== 0) bad(`hidden_size ${dim} is not a multiple of num_attention_heads ${nHeads} and no head_dim is given`, 'hidden_size');
  if (nHeads % nKvHeads !== 0) bad(`num_attention_heads ${nHeads} is not a multiple of num_key_value_heads ${nKvHeads}`, 'num_key_value_heads');
  // An explicit head_dim may differ from hidden_size / heads (Mistral-Nemo, Qwen3): the graphs,
  // the KV caches (workers/text/runner.ts) and the probe graphs all size heads by it.
  if (headDim !== undefined && headDim % 2 !== 0) bad(`head_dim ${headDim} must be even (RoPE rotates pairs)`, 'head_dim');

  const maxPositions = int('max_position_embeddings');
  if (options.maxContext !== undefined && (!Number.isInteger(options.maxContext) || options.maxContext <= 0)) {
    throw new WhittleError('INVALID_ARGUMENT', `maxContext must be a positive integer, got ${options.maxContext}`);
  }
  const maxSeqLen = Math.min(maxPositions, options.maxContext ?? maxPositions);

  // transformers 5 folds rope_theta and rope_scaling into one rope_parameters object.
  const ropeParameters = isSet(c.rope_parameters) ? (c.rope_parameters as Record<string, unknown>) : undefined;
  const ropeScaling = ropeParameters ? ropeScalingFrom(ropeParameters, 'rope_parameters') : ropeScalingFrom(c.rope_scaling, 'rope_scaling');
  const ropeTheta = ropeParameters && isSet(ropeParameters.rope_theta) ? positiveFinite(ropeParameters.rope_theta, 'rope_parameters.rope_theta') : num('rope_theta', 10000);

  const slidingWindow = slidingWindowOf(c, arch, family);
  // A token id, or the first of a list (eos_token_id may list several); absent or null: the default.
  const firstId = (key: string, fallback: number): number => {
    const raw = c[key];
    const v = Array.isArray(raw) ? raw[0] : raw;
    if (v === undefined || v === null || (typeof v !== 'number' && !Array.isArray(raw))) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_DIM) return bad(`${key} must be a token id (a non-negative integer), got ${showValue(raw)}`, key);
    return v;
  };
  const config: LlamaConfig = {
    dim,
    hiddenDim: int('intermediate_size'),
    nLayers: int('num_hidden_layers'),
    nHeads,
    nKvHeads,
    vocabSize: int('vocab_size'),
    maxSeqLen,
    ropeTheta,
    normEps: num('rms_norm_eps', 1e-6),
    tiedEmbeddings: c.tie_word_embeddings === true,
    ropeLayout: 'half',
    bosTokenId: firstId('bos_token_id', 1),
    eosTokenId: firstId('eos_token_id', 2),
    ...(headDim !== undefined ? { headDim } : {}),
    ...(ropeScaling ? { ropeScaling } : {}),
    ...(family.qkvBias ? { qkvBias: true } : {}),
    ...(slidingWindow !== undefined ? { slidingWindow } : {}),
  };
  checkAddressable(config);
  checkSupported(config);
  return config;
}

/**
 * Every weight and the RoPE tables must fit one typed array (at most 2^32 elements): a config
 * whose dims multiply past that describes no loadable file, and the tables are allocated from
 * the config alone, so they are refused here, before anything is allocated.
 */
function checkAddressable(c: LlamaConfig): void {
  const hs = c.headDim ?? c.dim / c.nHeads;
  const largest = Math.max(c.vocabSize * c.dim, c.hiddenDim * c.dim, c.nHeads * hs * c.dim, c.maxSeqLen * hs);
  if (largest > MAX_ELEMENTS) {
    unsupported(`a tensor of ${largest} elements (more than a typed array holds); for a long context pass a smaller maxContext`, { elements: largest });
  }
}

/**
 * The attention window, or undefined for full causal attention.
 * Mistral: `sliding_window` (null = none; absent = MistralConfig's 4096).
 * Qwen2: only with `use_sliding_window`, and only for layers from `max_window_layers` on (or
 * where `layer_types` says 'sliding_attention'); recorded for the whole model because the graphs
 * only run windows that cover the whole context, where every layer is plain causal attention.
 */
function slidingWindowOf(c: Record<string, unknown>, arch: string, family: Family): number | undefined {
  const windowValue = (): number | undefined => {
    const v = c.sliding_window === undefined ? family.slidingDefault : c.sliding_window;
    if (v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) return bad(`sliding_window must be a positive integer or null, got ${showValue(v)}`, 'sliding_window');
    return v;
  };
  if (arch === 'MistralForCausalLM') return windowValue();
  if (arch === 'Qwen2ForCausalLM') {
    const layerTypes = Array.isArray(c.layer_types) ? (c.layer_types as unknown[]) : undefined;
    const sliding = layerTypes ? layerTypes.some((t) => t === 'sliding_attention') : c.use_sliding_window === true && (typeof c.max_window_layers === 'number' ? c.max_window_layers : 28) < (c.num_hidden_layers as number);
    return sliding ? windowValue() : undefined;
  }
  // LlamaConfig has no window; a Llama config that names one came from elsewhere and would be run without it.
  if (isSet(c.sliding_window)) unsupported('sliding_window on a LlamaForCausalLM config is not supported');
  return undefined;
}
