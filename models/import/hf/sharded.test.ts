/**
 * A trained model (stories-layerskip) rewritten as real checkpoints are published: BF16 in three
 * shards, F16 in two, with model.safetensors.index.json. The engine must give the logits of an
 * independent reference run on the same rounded weights, and stay within the dtype's rounding of
 * the float32 original.
 */
import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../local.ts';
import type { LlamaWeights } from '../../llama/types.ts';
import { LlamaReference } from '../../reference/llama-ref.ts';
import { loadOrt } from '../../../workers/ort/runtime.ts';
import { TextEngine } from '../../../workers/text/engine.ts';
import { textModelFromHf } from '../../../workers/text/model.ts';
import { readHfModel, type HfModelFiles } from './model.ts';
import { reshardHfFolder, roundThrough, type HfDtype } from './testing/folder.ts';

const ID = 'stories-layerskip';
const original: HfModelFiles = Object.fromEntries(
  ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].map((n) => [n, readLocalModelFile(ID, n)]),
);
const fp32 = readHfModel(original);
const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const PROMPT = [1, 403, 407, 261, 378, 432, 383, 286];

function mapWeights(w: LlamaWeights, f: (a: Float32Array) => Float32Array): LlamaWeights {
  const embedding = f(w.tokenEmbedding);
  return {
    tokenEmbedding: embedding,
    layers: w.layers.map((l) => Object.fromEntries(Object.entries(l).map(([k, v]) => [k, f(v as Float32Array)])) as unknown as LlamaWeights['layers'][number]),
    finalNorm: f(w.finalNorm),
    lmHead: w.lmHead === w.tokenEmbedding ? embedding : f(w.lmHead),
  };
}

function referenceLogits(weights: LlamaWeights): Float32Array {
  const ref = new LlamaReference(fp32.config, weights);
  let out: Float32Array = new Float32Array(0);
  PROMPT.forEach((t, p) => (out = ref.forward(t, p)));
  return out;
}

/** max |a - b| / max |b| */
function relError(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  }
  return worst / scale;
}

const fp32Logits = referenceLogits(fp32.weights);

describe.each<[HfDtype, number, number]>([
  // dtype, shards, how far the rounded model's logits may move from the float32 model's: four
  // unit roundoffs of the dtype (2^-8 for BF16's 8-bit significand, 2^-11 for F16's 11); measured
  // 1.8e-3 and 2.6e-4 on this model.
  ['BF16', 3, 4 * 2 ** -8],
  ['F16', 2, 4 * 2 ** -11],
])('%s checkpoint of stories-layerskip in %i shards', (dtype, shards, drift) => {
  const folder = reshardHfFolder(original, { dtype, shards });

  it('has the layout of a published sharded checkpoint', () => {
    const names = Object.keys(folder).sort();
    expect(names).toContain('model.safetensors.index.json');
    expect(names).not.toContain('model.safetensors');
    expect(names.filter((n) => n.endsWith('.safetensors'))).toHaveLength(shards);
  });

  it('widens every tensor to exactly the rounded float32 value', () => {
    const { weights } = readHfModel(folder);
    const rounded = mapWeights(fp32.weights, (a) => roundThrough(a, dtype));
    expect(weights.tokenEmbedding).toEqual(rounded.tokenEmbedding);
    expect(weights.layers[5]!.w2).toEqual(rounded.layers[5]!.w2);
    expect(weights.finalNorm).toEqual(rounded.finalNorm);
  });

  it('gives the reference logits on the rounded weights, within the dtype rounding of float32', async () => {
    const model = textModelFromHf(folder);
    const engine = await TextEngine.create(ort, 'wasm', model);
    const got = await engine.logits(PROMPT);
    await engine.dispose();
    const want = referenceLogits(mapWeights(fp32.weights, (a) => roundThrough(a, dtype)));
    expect(relError(got, want)).toBeLessThan(1e-4);
    const moved = relError(got, fp32Logits);
    expect(moved).toBeGreaterThan(0); // the weights really were rounded
    expect(moved).toBeLessThan(drift);
  });
});
