import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AutoModelForCausalLM, AutoTokenizer, env, type Tensor } from '@huggingface/transformers';
import { readLlama2cCheckpoint } from '../../import/llama2c/checkpoint.ts';
import { llama2cTokenizerToHf, readLlama2cTokenizer } from '../../import/llama2c/tokenizer.ts';
import { readLocalModelFile } from '../../local.ts';
import { LlamaReference, referenceGreedy } from '../../reference/llama-ref.ts';
import { exportForTransformersJs } from './transformersjs.ts';

const GOLDEN = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];
const { config, weights } = readLlama2cCheckpoint(readLocalModelFile('stories260K', 'stories260K.bin'));
const tokenizerJson = llama2cTokenizerToHf(readLlama2cTokenizer(readLocalModelFile('stories260K', 'tok512.bin'), config.vocabSize));
const root = mkdtempSync(join(tmpdir(), 'whittle-tjs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
env.allowRemoteModels = false;
env.localModelPath = root;

function write(name: string, files: Record<string, Uint8Array>): void {
  for (const [file, bytes] of Object.entries(files)) {
    mkdirSync(dirname(join(root, name, file)), { recursive: true });
    writeFileSync(join(root, name, file), bytes);
  }
}

async function greedy(name: string, prompt: number[], steps: number): Promise<number[]> {
  const model = await AutoModelForCausalLM.from_pretrained(name, { dtype: 'fp32', local_files_only: true });
  const { Tensor: T } = await import('@huggingface/transformers');
  const ids = new T('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
  const out = (await model.generate({ input_ids: ids, attention_mask: new T('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]), max_new_tokens: steps, do_sample: false, min_new_tokens: steps })) as Tensor;
  await model.dispose();
  return Array.from(out.data as BigInt64Array, Number).slice(prompt.length);
}

describe('transformers.js export', () => {
  it('stories260K generates run.c greedy tokens through transformers.js', async () => {
    write('stories260K', exportForTransformersJs(config, weights, tokenizerJson));
    expect(await greedy('stories260K', [1], 20)).toEqual(GOLDEN);
    const tok = await AutoTokenizer.from_pretrained('stories260K', { local_files_only: true });
    expect(tok.decode(GOLDEN)).toMatch(/^Once upon a time/);
  }, 60_000);

  it('a pruned plan exports as a smaller model equal to the reference', async () => {
    const plan = { layers: [0, 1, 3, 4] };
    write('pruned', exportForTransformersJs(config, weights, tokenizerJson, plan));
    const prompt = [1, 403, 407];
    expect(await greedy('pruned', prompt, 10)).toEqual(referenceGreedy(new LlamaReference(config, weights, plan), prompt, 10));
  }, 60_000);
});
