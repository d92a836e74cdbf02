/**
 * Writes the text benchmark's peer model: the same weights Whittle runs, as a transformers.js
 * folder (config.json, generation_config.json, tokenizer.json, tokenizer_config.json,
 * onnx/model.onnx) under bench/out/transformersjs/<id>/, served by the dev server.
 *
 *   tsx bench/export-peer.ts [--model stories260K --model stories-layerskip] (default: both) [--quantized]
 *
 * `--quantized` also writes onnx/model_quantized.onnx (q8) and onnx/model_q4.onnx (q4), the
 * files transformers.js loads for those dtypes (models/export/optimum.ts says how they are made).
 */
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, readLocalModelFile } from '../models/local.ts';
import { readLlama2cCheckpoint } from '../models/import/llama2c/checkpoint.ts';
import { llama2cTokenizerToHf, readLlama2cTokenizer } from '../models/import/llama2c/tokenizer.ts';
import { readHfModel } from '../models/import/hf/model.ts';
import { exportOptimumDecoder, PEER_ONNX_FILE } from '../models/export/optimum.ts';

const { values } = parseArgs({ options: { model: { type: 'string', multiple: true, default: ['stories260K', 'stories-layerskip'] }, quantized: { type: 'boolean', default: false } } });

for (const id of values.model ?? []) {
  let config, weights, tokenizer: unknown;
  if (id === 'stories260K') {
    ({ config, weights } = readLlama2cCheckpoint(readLocalModelFile(id, 'stories260K.bin'), 'stories260K.bin'));
    tokenizer = llama2cTokenizerToHf(readLlama2cTokenizer(readLocalModelFile(id, 'tok512.bin'), config.vocabSize));
  } else {
    // A Hugging Face folder fetched by `npm run models` (e.g. the LayerSkip-trained models).
    const dir = join(REPO_ROOT, 'public/models', id);
    const read = (n: string) => readLocalModelFile(id, n);
    const files: Record<string, ArrayBuffer> = { 'config.json': read('config.json'), 'model.safetensors': read('model.safetensors') };
    if (existsSync(join(dir, 'tokenizer.json'))) files['tokenizer.json'] = read('tokenizer.json');
    const hf = readHfModel(files);
    ({ config, weights } = hf);
    tokenizer = hf.tokenizerJson;
  }
  const exp = exportOptimumDecoder(config, weights);
  const out = join(REPO_ROOT, 'bench/out/transformersjs', id);
  mkdirSync(join(out, 'onnx'), { recursive: true });
  writeFileSync(join(out, 'onnx', PEER_ONNX_FILE.f32), exp.model.model);
  // transformers.js's quantized dtypes of the same weights (the scale benchmark's same-quantization peers).
  for (const dtype of values.quantized ? (['q8', 'q4'] as const) : []) {
    writeFileSync(join(out, 'onnx', PEER_ONNX_FILE[dtype]), exportOptimumDecoder(config, weights, dtype).model.model);
  }
  writeFileSync(join(out, 'config.json'), JSON.stringify(exp.config, null, 2));
  writeFileSync(join(out, 'generation_config.json'), JSON.stringify(exp.generationConfig, null, 2));
  writeFileSync(join(out, 'tokenizer.json'), JSON.stringify(tokenizer));
  writeFileSync(
    join(out, 'tokenizer_config.json'),
    JSON.stringify({ tokenizer_class: 'LlamaTokenizer', bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, add_eos_token: false, model_max_length: config.maxSeqLen }, null, 2),
  );
  console.error(`peer model ${id}: ${out} (${(exp.model.model.byteLength / 1024).toFixed(0)} KiB)`);
}
