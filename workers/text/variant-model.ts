/**
 * The worker side of compressed variants (models/compress/variant.ts): a variant folder's files
 * -> tokenizer + stored weights, and a source model -> its weights in stored and kernel forms
 * (so the engine runs the kernel form and `exportVariant` writes the stored one).
 *
 * @example
 * const { model, stored, info } = await textVariantFromFiles(files);
 * const engine = await TextEngine.fromStored(ort, 'wasm', model, stored, info.setting); // compiles the kernel form
 */
import { WhittleError } from '../../core/errors.ts';
import { llamaConfigFromHf } from '../../models/import/hf/config.ts';
import { llama2cTokenizerToHf, readLlama2cTokenizer } from '../../models/import/llama2c/tokenizer.ts';
import { checkVariantAgainstConfig, readVariant, VARIANT_FILE, type VariantInfo, type VariantSource } from '../../models/compress/variant.ts';
import { streamVariant, type VariantStream } from '../../models/compress/variant-stream.ts';
import { storagePlan, withStoredHead } from '../../models/compress/variant-forms.ts';
import { openVariantFile, type VariantFile } from '../../models/compress/variant-layerwise.ts';
import type { KernelBackend } from '../../models/compress/kernel-choice.ts';
import { prepareWeightsFrom, type PreparedWeights } from '../../models/llama/prepare.ts';
import type { WeightsSetting } from '../../models/llama/types.ts';
import { inMemoryReader, type LlamaWeightReader } from '../../models/llama/weight-reader.ts';
import { ChatTemplate } from './chat.ts';
import type { StreamedTextModel, TextModel } from './model.ts';
import { TextTokenizer } from './tokenizer.ts';

/** A variant folder's files as the worker gets them (the store's Blobs, or ArrayBuffers). */
export type VariantFiles = Record<string, ArrayBuffer | Blob>;

const bytesOf = (f: ArrayBuffer | Blob): Promise<ArrayBuffer> => (f instanceof Blob ? f.arrayBuffer() : Promise.resolve(f));

async function jsonOf(files: VariantFiles, name: string): Promise<unknown> {
  const f = files[name];
  if (!f) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(await bytesOf(f)));
  } catch (err) {
    throw new WhittleError('BAD_MODEL', `${name} is not JSON`, { file: name }, { cause: err });
  }
}

/**
 * Tokenizer and chat template as the source's loader made them: an HF folder's tokenizer.json
 * decides whether BOS is prepended; llama2.c models always prepend it (workers/text/model.ts).
 */
async function tokenizerOf(files: VariantFiles, info: VariantInfo): Promise<Omit<TextModel, 'weights' | 'config'>> {
  const tokJson = await jsonOf(files, 'tokenizer.json');
  const tokConfig = await jsonOf(files, 'tokenizer_config.json');
  if (tokConfig !== undefined && (typeof tokConfig !== 'object' || tokConfig === null)) throw new WhittleError('BAD_MODEL', 'tokenizer_config.json is not an object', { file: 'tokenizer_config.json' });
  const chatTemplate = tokConfig === undefined ? undefined : ChatTemplate.fromTokenizerConfig(tokConfig as Record<string, unknown>);
  const chat = chatTemplate ? { chatTemplate } : {};
  const bos = info.source.format === 'llama2c' ? { prependsBos: true } : {};
  if (tokJson !== undefined) return { tokenizer: TextTokenizer.fromJson(tokJson, {}, bos), ...chat };
  const bin = Object.keys(files).find((n) => n === 'tokenizer.bin' || /^tok.*\.bin$/.test(n));
  if (!bin) throw new WhittleError('BAD_MODEL', 'the variant folder has no tokenizer.json (nor a llama2.c tokenizer.bin)', { file: 'tokenizer.json' });
  const tok = readLlama2cTokenizer(await bytesOf(files[bin]!), info.config.vocabSize, bin);
  return { tokenizer: TextTokenizer.fromJson(llama2cTokenizerToHf(tok), {}, { prependsBos: true }), ...chat };
}

/**
 * A variant folder (model.whittle.safetensors + tokenizer files, config.json for HF sources) ->
 * the model's config and tokenizer, its stored-form weights (run `toKernelForms` on them) and
 * what the variant is. A config.json beside it must describe the same shapes.
 */
export async function textVariantFromFiles(files: VariantFiles): Promise<{ model: Omit<TextModel, 'weights'>; stored: PreparedWeights; info: VariantInfo }> {
  const { model, file, info } = await openTextVariant(files);
  return { model, stored: readVariant(await bytesOf(file.file)).prepared, info };
}

/**
 * A variant folder's model (config, tokenizer) and its weights file with only the header read
 * (models/compress/variant-layerwise.ts): for `TextEngine.fromVariantFile`, which reads the
 * blocks from the file as plans compile. A config.json beside it must describe the same shapes.
 */
export async function openTextVariant(files: VariantFiles): Promise<{ model: Omit<TextModel, 'weights'>; file: VariantFile; info: VariantInfo }> {
  const weights = files[VARIANT_FILE];
  if (!weights) throw new WhittleError('BAD_MODEL', `a variant folder needs ${VARIANT_FILE}`, { file: VARIANT_FILE });
  const file = await openVariantFile(weights);
  const rawConfig = await jsonOf(files, 'config.json');
  if (rawConfig !== undefined) checkVariantAgainstConfig(file.info, llamaConfigFromHf(rawConfig));
  return { model: { config: file.info.config, ...(await tokenizerOf(files, file.info)) }, file, info: file.info };
}

const isReader = (w: TextModel['weights'] | LlamaWeightReader): w is LlamaWeightReader => typeof (w as { layer?: unknown }).layer === 'function';

/**
 * A source model's variant for `setting` as a stream written a block at a time
 * (models/compress/variant-stream.ts): UNSUPPORTED for the settings that need the whole model
 * (`unstreamableReason`), for which prepareStored + writeVariant remain.
 */
export function variantStreamOf(model: TextModel | StreamedTextModel, setting: WeightsSetting, backend: KernelBackend, source: VariantSource, signal?: AbortSignal): Promise<VariantStream> {
  const reader = isReader(model.weights) ? model.weights : inMemoryReader(model.weights);
  return streamVariant(model.config, reader, setting, backend, source, signal);
}

/** A source model's weights prepared for `setting` in their stored form (what a variant holds), layer by layer. */
export async function prepareStored(model: TextModel | StreamedTextModel, setting: WeightsSetting, backend: KernelBackend, signal?: AbortSignal): Promise<PreparedWeights> {
  const reader = isReader(model.weights) ? model.weights : inMemoryReader(model.weights);
  const plan = storagePlan(setting, backend, model.config);
  return withStoredHead(await prepareWeightsFrom(model.config, reader, { weights: plan.prepare, backend, ...(signal ? { signal } : {}) }), plan);
}
