/**
 * A Hugging Face folder opened for streaming: config and tokenizer parsed, every shard's header
 * read and checked, and the weights left where they are (Blobs backed by the browser's storage or
 * a file) until `prepareWeightsFrom` asks for a layer. Only one layer's tensors are in memory at a
 * time, widened from bf16/f16 as they are read; readHfModel (model.ts) is the in-memory version
 * of the same checks for tools and tests.
 *
 * @example
 * const { config, reader, tokenizerJson } = await openHfModel({ 'config.json': c, 'model.safetensors': blob });
 * const prepared = await prepareWeightsFrom(config, reader, { weights: { linear: 'q8' } });
 */
import { WhittleError } from '../../../core/errors.ts';
import { releaseNow } from '../../../core/release.ts';
import { checkRange, readRowByRow, type LlamaWeightReader } from '../../llama/weight-reader.ts';
import type { LlamaConfig, LlamaLayerWeights } from '../../llama/types.ts';
import { byteSource, readSafetensorsHeaderBytes, readWhole, type ByteSource, type FileBytes } from './byte-source.ts';
import { llamaConfigFromHf, type HfConfigOptions } from './config.ts';
import { assembleLayer, checkHead, hfLayerTensors, parseJsonFile, readWeightMap, type HfTensorSpec } from './model.ts';
import { decodeFloatTensor, floatTensorEntry, parseSafetensorsHeader, type SafetensorsEntry } from './safetensors.ts';

export type HfFolderFiles = Record<string, FileBytes>;

export interface OpenedHfModel {
  config: LlamaConfig;
  reader: LlamaWeightReader;
  tokenizerJson?: object;
  /** tokenizer_config.json parsed, when the folder has it. */
  tokenizerConfig?: unknown;
  /** Bytes of the weights as stored (all shards): what the load streams through. */
  weightBytes: number;
}

interface OpenShard {
  source: ByteSource;
  tensors: Map<string, SafetensorsEntry>;
}

async function openShard(file: FileBytes, name: string): Promise<OpenShard> {
  const source = byteSource(file, name);
  return { source, tensors: parseSafetensorsHeader(await readSafetensorsHeaderBytes(source), source.size, name) };
}

async function readJson(files: HfFolderFiles, name: string): Promise<unknown> {
  const f = files[name];
  return f === undefined ? undefined : parseJsonFile(await readWhole(f), name);
}

export async function openHfModel(files: HfFolderFiles, options: HfConfigOptions = {}): Promise<OpenedHfModel> {
  const rawConfig = await readJson(files, 'config.json');
  if (rawConfig === undefined) throw new WhittleError('BAD_MODEL', 'the model folder has no config.json', { file: 'config.json' });
  const config = llamaConfigFromHf(rawConfig, options);

  // Which shard holds each tensor: the index's weight_map, or every tensor of the one file.
  const shards = new Map<string, OpenShard>();
  const shardOf = new Map<string, string>();
  const rawIndex = await readJson(files, 'model.safetensors.index.json');
  if (rawIndex !== undefined) {
    const weightMap = readWeightMap(rawIndex);
    for (const shard of new Set(weightMap.values())) {
      const file = files[shard];
      if (!file) throw new WhittleError('BAD_MODEL', `missing shard ${shard}`, { file: shard });
      shards.set(shard, await openShard(file, shard));
    }
    for (const [tensor, shard] of weightMap) {
      if (!shards.get(shard)!.tensors.has(tensor)) throw new WhittleError('BAD_MODEL', `${shard} does not hold ${tensor}, which the index maps to it`, { file: shard, tensor });
      shardOf.set(tensor, shard);
    }
  } else {
    const single = files['model.safetensors'];
    if (!single) throw new WhittleError('BAD_MODEL', 'the model folder has neither model.safetensors nor model.safetensors.index.json', { file: 'model.safetensors' });
    const opened = await openShard(single, 'model.safetensors');
    shards.set('model.safetensors', opened);
    for (const tensor of opened.tensors.keys()) shardOf.set(tensor, 'model.safetensors');
  }

  /** A tensor's entry (checked against `shape`) and the shard it lives in. */
  const locate = (key: string, shape: readonly number[]): { shard: OpenShard; entry: SafetensorsEntry } => {
    const shardName = shardOf.get(key);
    if (shardName === undefined) throw new WhittleError('BAD_MODEL', `missing tensor ${key}`, { tensor: key });
    const shard = shards.get(shardName)!;
    return { shard, entry: floatTensorEntry({ name: shardName, tensors: shard.tensors }, key, shape) };
  };
  /** Bytes [entry.begin, entry.end) as float32; `ownBuffer` false when the values view the read's buffer. */
  const readFloats = async (shard: OpenShard, entry: SafetensorsEntry): Promise<{ values: Float32Array; ownBuffer: boolean }> => {
    const bytes = await shard.source.read(entry.begin, entry.end);
    const values = decodeFloatTensor(entry, bytes.buffer, bytes.byteOffset);
    const ownBuffer = values.buffer !== bytes.buffer;
    // bf16/f16 were widened into a new array: the bytes read are garbage now.
    if (shard.source.freshReads && ownBuffer) releaseNow(new Uint8Array(bytes.buffer));
    return { values, ownBuffer };
  };
  const read = async (spec: HfTensorSpec): Promise<Float32Array> => {
    const { shard, entry } = locate(spec.key, spec.shape);
    return (await readFloats(shard, entry)).values;
  };

  const { dim, vocabSize } = config;
  checkHead(config, shardOf.has('lm_head.weight'));
  // Every tensor the config implies is checked to exist with its shape now, before any is read:
  // a broken folder fails at open, not half-way through a multi-second load.
  const required: HfTensorSpec[] = [{ key: 'model.embed_tokens.weight', shape: [vocabSize, dim] }, { key: 'model.norm.weight', shape: [dim] }];
  if (!config.tiedEmbeddings) required.push({ key: 'lm_head.weight', shape: [vocabSize, dim] });
  for (let i = 0; i < config.nLayers; i++) for (const spec of Object.values(hfLayerTensors(config, i))) if (spec) required.push(spec);
  for (const spec of required) {
    const shardName = shardOf.get(spec.key);
    if (shardName === undefined) throw new WhittleError('BAD_MODEL', `missing tensor ${spec.key}`, { tensor: spec.key });
    floatTensorEntry({ name: shardName, tensors: shards.get(shardName)!.tensors }, spec.key, spec.shape);
  }

  // Rows of the embedding table [count, dim] in one read (embeddingRows, embeddingRange).
  const table = locate('model.embed_tokens.weight', [vocabSize, dim]);
  const rowBytes = (table.entry.end - table.entry.begin) / vocabSize;
  const readTableRows = (first: number, count: number) => {
    const begin = table.entry.begin + first * rowBytes;
    return readFloats(table.shard, { ...table.entry, shape: [count, dim], begin, end: begin + count * rowBytes });
  };

  const reader: LlamaWeightReader = {
    freshReads: [...shards.values()].every((sh) => sh.source.freshReads),
    floatsExactInBf16: required.every((spec) => shards.get(shardOf.get(spec.key)!)!.tensors.get(spec.key)!.dtype === 'BF16'),
    tokenEmbedding: () => read({ key: 'model.embed_tokens.weight', shape: [vocabSize, dim] }),
    lmHead: async () => (config.tiedEmbeddings ? null : read({ key: 'lm_head.weight', shape: [vocabSize, dim] })),
    finalNorm: () => read({ key: 'model.norm.weight', shape: [dim] }),
    embeddingRows: (ids) => readRowByRow(ids, vocabSize, dim, async (id) => (await readTableRows(id, 1)).values),
    embeddingRange: async (first, count) => {
      checkRange(first, count, vocabSize);
      const { values, ownBuffer } = await readTableRows(first, count);
      // A view of an in-memory file is copied: the caller may release what it gets.
      return ownBuffer || table.shard.source.freshReads ? values : values.slice();
    },
    layer: async (i) => {
      const specs = hfLayerTensors(config, i);
      const values: Partial<Record<keyof LlamaLayerWeights, Float32Array>> = {};
      for (const [field, spec] of Object.entries(specs)) if (spec) values[field as keyof LlamaLayerWeights] = await read(spec);
      return assembleLayer(specs, values);
    },
  };
  const weightBytes = [...shards.values()].reduce((n, s) => n + s.source.size, 0);
  const tokenizerJson = (await readJson(files, 'tokenizer.json')) as object | undefined;
  const tokenizerConfig = await readJson(files, 'tokenizer_config.json');
  return { config, reader, weightBytes, ...(tokenizerJson !== undefined ? { tokenizerJson } : {}), ...(tokenizerConfig !== undefined ? { tokenizerConfig } : {}) };
}
