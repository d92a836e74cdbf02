/**
 * Hugging Face LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM folder -> LlamaConfig + LlamaWeights (+ the tokenizer.json as
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
import { showValue } from '../../../core/show-value.ts';
import { headSizeOf, type LlamaConfig, type LlamaLayerWeights, type LlamaWeights } from '../../llama/types.ts';
import { llamaConfigFromHf, type HfConfigOptions } from './config.ts';
import { readSafetensors, tensorAsFloat32, type SafetensorsFile } from './safetensors.ts';

/** File name (relative to the model folder) -> bytes. */
export type HfModelFiles = Record<string, ArrayBuffer>;

export interface HfModel {
  config: LlamaConfig;
  weights: LlamaWeights;
  tokenizerJson?: object;
}

/** A JSON file's bytes parsed, or undefined when absent; BAD_MODEL naming the file when not JSON. */
export function parseJsonFile(buf: ArrayBuffer | undefined, name: string): unknown {
  if (!buf) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(buf));
  } catch (err) {
    throw new WhittleError('BAD_MODEL', `${name} is not valid JSON`, { file: name }, { cause: err });
  }
}

const parseJson = (files: HfModelFiles, name: string): unknown => parseJsonFile(files[name], name);

// Config parsing (architectures, rope_scaling, sliding windows) lives in config.ts.
export { llamaConfigFromHf, type HfConfigOptions } from './config.ts';

/** A shard name from an index: a plain relative file name (it is also resolved as a URL beside the index). */
const SHARD_NAME = /^(?!.*\.\.)[\w.-]+(\/[\w.-]+)*$/;

interface Weights {
  /** The safetensors file holding `key` (opened on first use). */
  fileOf(key: string): SafetensorsFile;
  has(key: string): boolean;
}

/**
 * model.safetensors.index.json's weight_map (tensor -> shard file), checked: an object of strings
 * naming plain relative files. Exported for the URL loader, which fetches the shards it names.
 */
export function readWeightMap(raw: unknown): Map<string, string> {
  const bad = (why: string) => new WhittleError('BAD_MODEL', `model.safetensors.index.json: ${why}`, { file: 'model.safetensors.index.json' });
  const map = (raw as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw bad('no weight_map object');
  const out = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(map as Record<string, unknown>)) {
    if (typeof shard !== 'string' || !SHARD_NAME.test(shard)) throw bad(`${tensor} maps to ${showValue(shard)}, not a plain relative file name`);
    out.set(tensor, shard);
  }
  if (out.size === 0) throw bad('weight_map is empty');
  return out;
}

/** Every safetensors file of the folder, and which one holds each tensor. */
function openWeights(files: HfModelFiles): Weights {
  const rawIndex = parseJson(files, 'model.safetensors.index.json');
  if (rawIndex !== undefined) {
    const weightMap = readWeightMap(rawIndex);
    const opened = new Map<string, SafetensorsFile>();
    return {
      has: (key) => weightMap.has(key),
      fileOf: (key) => {
        const shard = weightMap.get(key);
        if (!shard) throw new WhittleError('BAD_MODEL', `model.safetensors.index.json does not list ${key}`, { tensor: key });
        let file = opened.get(shard);
        if (!file) {
          const buf = files[shard];
          if (!buf) throw new WhittleError('BAD_MODEL', `missing shard ${shard}`, { file: shard });
          file = readSafetensors(buf, shard);
          opened.set(shard, file);
        }
        if (!file.tensors.has(key)) throw new WhittleError('BAD_MODEL', `${shard} does not hold ${key}, which the index maps to it`, { file: shard, tensor: key });
        return file;
      },
    };
  }
  const single = files['model.safetensors'];
  if (!single) throw new WhittleError('BAD_MODEL', 'the model folder has neither model.safetensors nor model.safetensors.index.json', { file: 'model.safetensors' });
  const file = readSafetensors(single);
  return { has: (key) => file.tensors.has(key), fileOf: () => file };
}

/** Where each weight lives in an HF checkpoint and the shape the config implies for it. */
export interface HfTensorSpec {
  key: string;
  shape: number[];
}

/** The tensors of layer `i`, by LlamaLayerWeights field (biases only for qkvBias configs). */
export function hfLayerTensors(config: LlamaConfig, i: number): Record<keyof LlamaLayerWeights, HfTensorSpec | undefined> {
  const { dim, hiddenDim, nHeads, nKvHeads } = config;
  const hs = headSizeOf(config);
  const p = `model.layers.${i}.`;
  const t = (key: string, shape: number[]): HfTensorSpec => ({ key: p + key, shape });
  return {
    attnNorm: t('input_layernorm.weight', [dim]),
    wq: t('self_attn.q_proj.weight', [nHeads * hs, dim]),
    wk: t('self_attn.k_proj.weight', [nKvHeads * hs, dim]),
    wv: t('self_attn.v_proj.weight', [nKvHeads * hs, dim]),
    wo: t('self_attn.o_proj.weight', [dim, nHeads * hs]),
    ffnNorm: t('post_attention_layernorm.weight', [dim]),
    w1: t('mlp.gate_proj.weight', [hiddenDim, dim]),
    w2: t('mlp.down_proj.weight', [dim, hiddenDim]),
    w3: t('mlp.up_proj.weight', [hiddenDim, dim]),
    // Qwen2: Q/K/V biases (o_proj has none).
    bq: config.qkvBias ? t('self_attn.q_proj.bias', [nHeads * hs]) : undefined,
    bk: config.qkvBias ? t('self_attn.k_proj.bias', [nKvHeads * hs]) : undefined,
    bv: config.qkvBias ? t('self_attn.v_proj.bias', [nKvHeads * hs]) : undefined,
  };
}

/** Reads one layer's tensors with `read` (sync or async) into LlamaLayerWeights. */
export function assembleLayer(specs: Record<keyof LlamaLayerWeights, HfTensorSpec | undefined>, values: Partial<Record<keyof LlamaLayerWeights, Float32Array>>): LlamaLayerWeights {
  const out = {} as LlamaLayerWeights;
  for (const field of Object.keys(specs) as (keyof LlamaLayerWeights)[]) {
    if (specs[field]) out[field] = values[field]!;
  }
  return out;
}

/** An untied config must ship lm_head.weight (some exporters also write it when tied). */
export function checkHead(config: LlamaConfig, hasHead: boolean): void {
  if (!config.tiedEmbeddings && !hasHead) throw new WhittleError('BAD_MODEL', 'untied config but no lm_head.weight', { tensor: 'lm_head.weight' });
}

export function readHfModel(files: HfModelFiles, options: HfConfigOptions = {}): HfModel {
  const rawConfig = parseJson(files, 'config.json');
  if (rawConfig === undefined) throw new WhittleError('BAD_MODEL', 'the model folder has no config.json', { file: 'config.json' });
  const config = llamaConfigFromHf(rawConfig, options);
  const weightFiles = openWeights(files);
  const t = (spec: HfTensorSpec) => tensorAsFloat32(weightFiles.fileOf(spec.key), spec.key, spec.shape);
  const { dim, vocabSize } = config;

  const tokenEmbedding = t({ key: 'model.embed_tokens.weight', shape: [vocabSize, dim] });
  checkHead(config, weightFiles.has('lm_head.weight'));
  const lmHead = config.tiedEmbeddings ? tokenEmbedding : t({ key: 'lm_head.weight', shape: [vocabSize, dim] });
  const layers = Array.from({ length: config.nLayers }, (_, i): LlamaLayerWeights => {
    const specs = hfLayerTensors(config, i);
    const values: Partial<Record<keyof LlamaLayerWeights, Float32Array>> = {};
    for (const [field, spec] of Object.entries(specs)) if (spec) values[field as keyof LlamaLayerWeights] = t(spec);
    return assembleLayer(specs, values);
  });
  const finalNorm = t({ key: 'model.norm.weight', shape: [dim] });
  const tokenizerJson = parseJson(files, 'tokenizer.json') as object | undefined;
  return { config, weights: { tokenEmbedding, layers, finalNorm, lmHead }, tokenizerJson };
}
