/**
 * A text model as the engine takes it: config + weights + tokenizer, whatever files they came
 * from. Loaders here turn raw bytes (ArrayBuffers a worker received or read from its cache) into
 * that; they never fetch and never touch the DOM or Node.
 *
 * @example
 * const model = textModelFromLlama2c(checkpointBytes, tokenizerBinBytes);
 * const engine = await TextEngine.create(ort, 'wasm', model);
 */
import { WhittleError } from '../../core/errors.ts';
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { llama2cTokenizerToHf, readLlama2cTokenizer } from '../../models/import/llama2c/tokenizer.ts';
import { parseJsonFile, readHfModel, type HfModelFiles } from '../../models/import/hf/model.ts';
import type { LlamaConfig, LlamaWeights } from '../../models/llama/types.ts';
import type { LlamaWeightReader } from '../../models/llama/weight-reader.ts';
import { openHfModel, type HfFolderFiles } from '../../models/import/hf/open-model.ts';
import { readWhole } from '../../models/import/hf/byte-source.ts';
import { bosSettingOf, TextTokenizer } from './tokenizer.ts';
import { ChatTemplate } from './chat.ts';

export interface TextModel {
  config: LlamaConfig;
  weights: LlamaWeights;
  tokenizer: TextTokenizer;
  /** From tokenizer_config.json's `chat_template`, when the model has one. */
  chatTemplate?: ChatTemplate;
}

/**
 * A text model whose weights stream layer by layer from their files (Blobs) through a reader
 * (models/llama/weight-reader.ts): the engine then never holds the checkpoint whole.
 */
export type StreamedTextModel = Omit<TextModel, 'weights'> & { weights: LlamaWeightReader };

/** tokenizer_config.json's chat template, if the folder has that file and it has one. */
function chatTemplateOf(files: HfModelFiles): ChatTemplate | undefined {
  const bytes = files['tokenizer_config.json'];
  if (!bytes) return undefined;
  let config: unknown;
  try {
    config = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new WhittleError('BAD_MODEL', 'tokenizer_config.json is not JSON', { file: 'tokenizer_config.json' }, { cause: err });
  }
  return chatTemplateFromConfig(config);
}

function chatTemplateFromConfig(config: unknown): ChatTemplate | undefined {
  if (typeof config !== 'object' || config === null) throw new WhittleError('BAD_MODEL', 'tokenizer_config.json is not an object', { file: 'tokenizer_config.json' });
  return ChatTemplate.fromTokenizerConfig(config as Record<string, unknown>);
}

/** A llama2.c tokenizer.bin / tok*.bin in an HF folder without tokenizer.json. */
const llama2cTokenizerName = (names: string[]) => names.find((n) => n === 'tokenizer.bin' || /^tok.*\.bin$/.test(n));

/**
 * llama2.c checkpoint (legacy or v1) + its tokenizer: either the llama2.c `tokenizer.bin`
 * (converted to tokenizer.json here) or an already parsed tokenizer.json.
 */
export function textModelFromLlama2c(checkpoint: ArrayBuffer, tokenizer: ArrayBuffer | object | null | undefined, name = 'checkpoint'): TextModel {
  const { config, weights } = readLlama2cCheckpoint(checkpoint, name);
  if (tokenizer === null || tokenizer === undefined) {
    throw new WhittleError('BAD_MODEL', `${name}: no tokenizer; a llama2.c model needs its tokenizer.bin (or a tokenizer.json)`, { name });
  }
  const json = tokenizer instanceof ArrayBuffer ? llama2cTokenizerToHf(readLlama2cTokenizer(tokenizer, config.vocabSize)) : tokenizer;
  // llama2.c checkpoints are trained on BOS-prefixed text, whatever tokenizer file comes with them.
  return { config, weights, tokenizer: TextTokenizer.fromJson(json, {}, { prependsBos: true }) };
}

/**
 * A Hugging Face LlamaForCausalLM folder's files (config.json, safetensors shards, tokenizer.json).
 * Without tokenizer.json, a llama2.c `tokenizer.bin` / `tok*.bin` in the folder is converted instead
 * (models ported from llama2.c vocabularies).
 */
export function textModelFromHf(files: HfModelFiles): TextModel {
  const { config, weights, tokenizerJson } = readHfModel(files);
  const chatTemplate = chatTemplateOf(files);
  const chat = chatTemplate ? { chatTemplate } : {};
  if (tokenizerJson !== undefined) return { config, weights, tokenizer: TextTokenizer.fromJson(tokenizerJson, {}, { bos: bosSettingOf(parseJsonFile(files['tokenizer_config.json'], 'tokenizer_config.json')) }), ...chat };
  const tokBin = llama2cTokenizerName(Object.keys(files));
  if (tokBin === undefined) {
    throw new WhittleError('BAD_MODEL', 'the model folder has no tokenizer.json (nor a llama2.c tokenizer.bin)', { file: 'tokenizer.json' });
  }
  return { config, weights, tokenizer: TextTokenizer.fromJson(llama2cTokenizerToHf(readLlama2cTokenizer(files[tokBin]!, config.vocabSize, tokBin)), {}, { prependsBos: true }), ...chat };
}

/**
 * textModelFromHf for files that stay where they are (Blobs: OPFS or Cache Storage in a worker,
 * `fs.openAsBlob` in Node): config, tokenizer and shard headers are read now, the weights layer by
 * layer when the engine prepares them. A load then holds the prepared weights and one layer's raw
 * tensors, never the checkpoint whole.
 */
export async function openTextModelFromHf(files: HfFolderFiles): Promise<StreamedTextModel> {
  const { config, reader, tokenizerJson, tokenizerConfig } = await openHfModel(files);
  const chatTemplate = tokenizerConfig === undefined ? undefined : chatTemplateFromConfig(tokenizerConfig);
  const chat = chatTemplate ? { chatTemplate } : {};
  if (tokenizerJson !== undefined) return { config, weights: reader, tokenizer: TextTokenizer.fromJson(tokenizerJson, {}, { bos: bosSettingOf(tokenizerConfig) }), ...chat };
  const tokBin = llama2cTokenizerName(Object.keys(files));
  if (tokBin === undefined) {
    throw new WhittleError('BAD_MODEL', 'the model folder has no tokenizer.json (nor a llama2.c tokenizer.bin)', { file: 'tokenizer.json' });
  }
  const bin = await readWhole(files[tokBin]!);
  return { config, weights: reader, tokenizer: TextTokenizer.fromJson(llama2cTokenizerToHf(readLlama2cTokenizer(bin, config.vocabSize, tokBin)), {}, { prependsBos: true }), ...chat };
}
