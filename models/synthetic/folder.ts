/**
 * A complete Hugging Face model folder with synthetic weights: config.json and
 * generation_config.json as published, bf16 (or f16/f32) safetensors sharded like
 * `save_pretrained`, a real tokenizer.json + tokenizer_config.json, and a README that says the
 * weights are random. Deterministic: the same shape, seed, dtype and shard size give the same
 * bytes. Weights stream to disk (one chunk of one tensor in memory at a time).
 *
 * Init (so activations stay finite and the logits are not flat): every matrix, embedding and bias
 * ~ N(0, 0.02) (transformers' `initializer_range` for these models), every RMSNorm weight 1.
 *
 * @example
 * writeSyntheticFolder(publishedShape('smollm2-135m'), '/tmp/smollm2-135m', { seed: 0 });
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointLayout, elementCount } from './checkpoint-layout.ts';
import { writeCheckpoint } from './safetensors-stream.ts';
import type { SyntheticShape } from './shapes.ts';
import { tokenizerFiles } from './tokenizers.ts';
import { DTYPE_BYTES, tensorChunks, type SyntheticDtype } from './values.ts';

export interface SyntheticOptions {
  seed?: number;
  dtype?: SyntheticDtype;
  /** Shard limit in bytes (default 500 MB, as `--shard-mb 500`). */
  maxShardBytes?: number;
  /** Init std of matrices, embeddings and biases. */
  std?: number;
}

export interface SyntheticResult {
  files: string[];
  parameters: number;
  weightBytes: number;
}

const TORCH_DTYPE: Record<SyntheticDtype, string> = { bf16: 'bfloat16', f16: 'float16', f32: 'float32' };

export function writeSyntheticFolder(shape: SyntheticShape, dir: string, options: SyntheticOptions = {}): SyntheticResult {
  const { seed = 0, dtype = 'bf16', maxShardBytes = 500e6, std = 0.02 } = options;
  const config = JSON.parse(shape.configJson) as Record<string, unknown>;
  const tokenizer = tokenizerFiles(shape.tokenizer);
  if (typeof config.vocab_size !== 'number' || tokenizer.vocabSize > config.vocab_size) {
    throw new Error(`${shape.id}: the ${shape.tokenizer} tokenizer has ${tokenizer.vocabSize} ids, more than vocab_size ${String(config.vocab_size)} embedding rows`);
  }
  mkdirSync(dir, { recursive: true });
  const layout = checkpointLayout(config, std);
  const files = writeCheckpoint(dir, layout, (t) => tensorChunks(seed, t.name, elementCount(t), t.init, dtype), { dtype, maxShardBytes });

  // config.json stays the published text; only torch_dtype follows a non-default dtype.
  const configJson = dtype === 'bf16' ? shape.configJson : shape.configJson.replace('"torch_dtype": "bfloat16"', `"torch_dtype": "${TORCH_DTYPE[dtype]}"`);
  const parameters = layout.reduce((n, t) => n + elementCount(t), 0);
  const text: Record<string, string> = {
    'config.json': configJson,
    'generation_config.json': shape.generationConfigJson,
    'tokenizer.json': tokenizer.tokenizerJson,
    'tokenizer_config.json': tokenizer.tokenizerConfigJson,
    'README.md': [
      `# Synthetic ${shape.id} (random weights)`,
      '',
      `The shape of ${shape.source} (config.json as published) with **random weights**: seed ${seed}, ${dtype},`,
      `N(0, ${std}) matrices and embeddings, RMSNorm weights 1; ${parameters} parameters.`,
      'For measuring speed, memory and load only: its outputs mean nothing.',
      `Tokenizer: ${shape.tokenizer} (see models/synthetic/tokenizers.ts for how close it is to the real one).`,
      'Written by `npx tsx models/synthetic/generate.ts`.',
      '',
    ].join('\n'),
  };
  for (const [name, body] of Object.entries(text)) writeFileSync(join(dir, name), body);
  return { files: [...Object.keys(text), ...files].sort(), parameters, weightBytes: parameters * DTYPE_BYTES[dtype] };
}
