/**
 * Hugging Face LlamaForCausalLM folder -> LlamaConfig + LlamaWeights (+ the tokenizer.json as
 * parsed JSON). Input is the folder's files as bytes keyed by file name, so it works the same on
 * a worker's cached blobs and on Node's readFileSync.
 *
 * Weights stay in HF's layout except for naming: HF's q/k rows are in 'half' RoPE order
 * (`rotate_half`), which the config records as `ropeLayout: 'half'`; the graph preparation
 * permutes them (models/llama/prepare.ts), the reference applies 'half' RoPE directly.
 *
 * @example
 * const { config, weights, tokenizerJson } = readHfModel({ 'config.json': c, 'model.safetensors': w, 'tokenizer.json': t });
 */
import { WhittleError } from '../../../core/errors.ts';
import type { LlamaConfig, LlamaLayerWeights, LlamaWeights } from '../../llama/types.ts';
import { readSafetensors, tensorAsFloat32, type SafetensorsFile } from './safetensors.ts';

/** File name (relative to the model folder) -> bytes. */
export type HfModelFiles = Record<string, ArrayBuffer>;

export interface HfModel {
  config: LlamaConfig;
  weights: LlamaWeights;
  tokenizerJson?: object;
}

function parseJson(files: HfModelFiles, name: string): unknown {
  const buf = files[name];
  if (!buf) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(buf));
  } catch (err) {
    throw new WhittleError('BAD_MODEL', `${name} is not valid JSON`, { file: name }, { cause: err });
  }
}

/** HF config.json -> LlamaConfig; UNSUPPORTED for other architectures and Llama variants we do not run. */
export function llamaConfigFromHf(raw: unknown): LlamaConfig {
  const c = (raw ?? {}) as Record<string, unknown>;
  const archs = Array.isArray(c.architectures) ? (c.architectures as unknown[]) : [];
  if (!archs.includes('LlamaForCausalLM')) {
    throw new WhittleError('UNSUPPORTED', `config.json: architecture ${JSON.stringify(archs)} is not supported (only LlamaForCausalLM)`, { architectures: archs.join(',') });
  }
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new WhittleError('BAD_MODEL', `config.json: ${key} must be a positive integer, got ${JSON.stringify(v)}`, { key });
    return v;
  };
  const num = (key: string, fallback: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !(v > 0)) throw new WhittleError('BAD_MODEL', `config.json: ${key} must be a positive number`, { key });
    return v;
  };
  const unsupported = (why: string) => {
    throw new WhittleError('UNSUPPORTED', `config.json: ${why}`);
  };
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) unsupported('rope_scaling is not supported yet');
  if (c.attention_bias === true || c.mlp_bias === true) unsupported('attention/MLP biases are not supported');
  if (c.hidden_act !== undefined && c.hidden_act !== 'silu') unsupported(`hidden_act ${String(c.hidden_act)} (only silu)`);
  const dim = int('hidden_size');
  const nHeads = int('num_attention_heads');
  if (c.head_dim !== undefined && c.head_dim !== null && c.head_dim !== dim / nHeads) unsupported(`head_dim ${String(c.head_dim)} != hidden_size / num_attention_heads`);
  const firstId = (v: unknown, fallback: number) => (Array.isArray(v) ? (v[0] as number) : typeof v === 'number' ? v : fallback);
  const config: LlamaConfig = {
    dim,
    hiddenDim: int('intermediate_size'),
    nLayers: int('num_hidden_layers'),
    nHeads,
    nKvHeads: int('num_key_value_heads', nHeads),
    vocabSize: int('vocab_size'),
    maxSeqLen: int('max_position_embeddings'),
    ropeTheta: num('rope_theta', 10000),
    normEps: num('rms_norm_eps', 1e-6),
    tiedEmbeddings: c.tie_word_embeddings === true,
    ropeLayout: 'half',
    bosTokenId: firstId(c.bos_token_id, 1),
    eosTokenId: firstId(c.eos_token_id, 2),
  };
  if (dim % nHeads !== 0 || nHeads % config.nKvHeads !== 0) throw new WhittleError('BAD_MODEL', 'config.json: heads do not divide hidden_size / each other');
  return config;
}

/** Every safetensors file of the folder, and which one holds each tensor. */
function openWeights(files: HfModelFiles): (key: string) => SafetensorsFile {
  const index = parseJson(files, 'model.safetensors.index.json') as { weight_map?: Record<string, string> } | undefined;
  if (index) {
    if (!index.weight_map) throw new WhittleError('BAD_MODEL', 'model.safetensors.index.json has no weight_map');
    const opened = new Map<string, SafetensorsFile>();
    return (key) => {
      const shard = index.weight_map![key];
      if (!shard) throw new WhittleError('BAD_MODEL', `model.safetensors.index.json does not list ${key}`, { tensor: key });
      let file = opened.get(shard);
      if (!file) {
        const buf = files[shard];
        if (!buf) throw new WhittleError('BAD_MODEL', `missing shard ${shard}`, { file: shard });
        file = readSafetensors(buf, shard);
        opened.set(shard, file);
      }
      return file;
    };
  }
  const single = files['model.safetensors'];
  if (!single) throw new WhittleError('BAD_MODEL', 'the model folder has neither model.safetensors nor model.safetensors.index.json', { file: 'model.safetensors' });
  const file = readSafetensors(single);
  return () => file;
}

export function readHfModel(files: HfModelFiles): HfModel {
  const rawConfig = parseJson(files, 'config.json');
  if (rawConfig === undefined) throw new WhittleError('BAD_MODEL', 'the model folder has no config.json', { file: 'config.json' });
  const config = llamaConfigFromHf(rawConfig);
  const fileOf = openWeights(files);
  const t = (key: string, shape: number[]) => tensorAsFloat32(fileOf(key), key, shape);
  const { dim, hiddenDim, nHeads, nKvHeads, vocabSize } = config;
  const hs = dim / nHeads;

  const tokenEmbedding = t('model.embed_tokens.weight', [vocabSize, dim]);
  // Some exporters write lm_head even when tied; an untied config without one is broken.
  const hasHead = (() => {
    try {
      return fileOf('lm_head.weight').tensors.has('lm_head.weight');
    } catch {
      return false;
    }
  })();
  if (!config.tiedEmbeddings && !hasHead) throw new WhittleError('BAD_MODEL', 'untied config but no lm_head.weight', { tensor: 'lm_head.weight' });
  const lmHead = config.tiedEmbeddings ? tokenEmbedding : t('lm_head.weight', [vocabSize, dim]);
  const layers = Array.from({ length: config.nLayers }, (_, i): LlamaLayerWeights => {
    const p = `model.layers.${i}.`;
    return {
      attnNorm: t(`${p}input_layernorm.weight`, [dim]),
      wq: t(`${p}self_attn.q_proj.weight`, [nHeads * hs, dim]),
      wk: t(`${p}self_attn.k_proj.weight`, [nKvHeads * hs, dim]),
      wv: t(`${p}self_attn.v_proj.weight`, [nKvHeads * hs, dim]),
      wo: t(`${p}self_attn.o_proj.weight`, [dim, nHeads * hs]),
      ffnNorm: t(`${p}post_attention_layernorm.weight`, [dim]),
      w1: t(`${p}mlp.gate_proj.weight`, [hiddenDim, dim]),
      w2: t(`${p}mlp.down_proj.weight`, [dim, hiddenDim]),
      w3: t(`${p}mlp.up_proj.weight`, [hiddenDim, dim]),
    };
  });
  const finalNorm = t('model.norm.weight', [dim]);
  const tokenizerJson = parseJson(files, 'tokenizer.json') as object | undefined;
  return { config, weights: { tokenEmbedding, layers, finalNorm, lmHead }, tokenizerJson };
}
