/**
 * The synthetic generator at tiny sizes, through the same code path as the published shapes
 * (folder.ts with a SyntheticShape): the folders load through the HF importer and the text engine,
 * with each tokenizer kind, and two runs write byte-identical files.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readHfModel, type HfModelFiles } from '../import/hf/model.ts';
import { LlamaReference } from '../reference/llama-ref.ts';
import { loadOrt } from '../../workers/ort/runtime.ts';
import { TextEngine } from '../../workers/text/engine.ts';
import { textModelFromHf } from '../../workers/text/model.ts';
import { planShards } from './safetensors-stream.ts';
import { SHAPES, publishedShape, type SyntheticShape } from './shapes.ts';
import { writeSyntheticFolder } from './folder.ts';
import { checkpointLayout, elementCount } from './checkpoint-layout.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const root = mkdtempSync(join(tmpdir(), 'whittle-synthetic-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const gen = '{\n  "bos_token_id": 1,\n  "eos_token_id": 2\n}\n';
const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

/** Tiny models in the published families' formats, one per tokenizer kind. */
const TINY: SyntheticShape[] = [
  {
    id: 'tiny-llama3', source: 'test', tokenizer: 'llama3', generationConfigJson: gen,
    configJson: json({
      architectures: ['LlamaForCausalLM'], attention_bias: false, bos_token_id: 128000, eos_token_id: 128001, head_dim: 8, hidden_act: 'silu',
      hidden_size: 64, intermediate_size: 96, max_position_embeddings: 256, mlp_bias: false, model_type: 'llama', num_attention_heads: 8,
      num_hidden_layers: 2, num_key_value_heads: 2, rms_norm_eps: 1e-5,
      rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
      rope_theta: 500000.0, tie_word_embeddings: true, torch_dtype: 'bfloat16', vocab_size: 128256,
    }),
  },
  {
    id: 'tiny-qwen2', source: 'test', tokenizer: 'qwen2.5', generationConfigJson: gen,
    configJson: json({
      architectures: ['Qwen2ForCausalLM'], bos_token_id: 151643, eos_token_id: 151643, hidden_act: 'silu', hidden_size: 32, intermediate_size: 64,
      max_position_embeddings: 128, max_window_layers: 2, model_type: 'qwen2', num_attention_heads: 4, num_hidden_layers: 2, num_key_value_heads: 2,
      rms_norm_eps: 1e-6, rope_theta: 1000000.0, sliding_window: 128, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_sliding_window: false, vocab_size: 151936,
    }),
  },
  {
    id: 'tiny-smollm2', source: 'test', tokenizer: 'smollm2', generationConfigJson: gen,
    configJson: json({
      architectures: ['LlamaForCausalLM'], bos_token_id: 0, eos_token_id: 0, hidden_act: 'silu', hidden_size: 48, intermediate_size: 64,
      max_position_embeddings: 128, model_type: 'llama', num_attention_heads: 3, num_hidden_layers: 3, num_key_value_heads: 1, rms_norm_eps: 1e-5,
      rope_interleaved: false, rope_scaling: null, rope_theta: 100000, tie_word_embeddings: false, torch_dtype: 'bfloat16', vocab_size: 49152,
    }),
  },
];

function readFolder(dir: string): HfModelFiles {
  const files: HfModelFiles = {};
  for (const name of readdirSync(dir)) {
    const b = readFileSync(join(dir, name));
    files[name] = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }
  return files;
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe.each(TINY)('$id through the generator', (shape) => {
  const dir = join(root, shape.id);
  // 1 MB shards: the embedding gets a shard of its own, the layers share the rest.
  const result = writeSyntheticFolder(shape, dir, { seed: 7, maxShardBytes: 1e6 });
  const files = readFolder(dir);

  it('writes a complete, sharded Hugging Face folder with config.json as given', () => {
    expect(Object.keys(files).sort()).toEqual(result.files);
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors.index.json']) expect(files[f]).toBeDefined();
    expect(new TextDecoder().decode(files['config.json'])).toBe(shape.configJson);
    const index = JSON.parse(new TextDecoder().decode(files['model.safetensors.index.json'])) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(index.metadata.total_size).toBe(result.weightBytes);
    expect(new Set(Object.values(index.weight_map)).size).toBeGreaterThan(1);
  });

  it('loads through the HF importer: published shape, norms at 1, matrices at std 0.02', () => {
    const { config, weights } = readHfModel(files);
    const raw = JSON.parse(shape.configJson) as { vocab_size: number; num_hidden_layers: number };
    expect(config.vocabSize).toBe(raw.vocab_size);
    expect(weights.layers).toHaveLength(raw.num_hidden_layers);
    expect(weights.finalNorm.every((v) => v === 1)).toBe(true);
    const w = weights.layers[1]!.w1;
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
    expect(Math.abs(mean)).toBeLessThan(0.002);
    expect(std).toBeGreaterThan(0.018);
    expect(std).toBeLessThan(0.022);
  });

  it('runs in the text engine: real tokenizer, logits equal the reference, finite and not flat', async () => {
    const model = textModelFromHf(files);
    const ids = model.tokenizer.encode('Once upon a time, there was a little robot.');
    expect(ids.length).toBeGreaterThan(5);
    expect(Math.max(...ids)).toBeLessThan(model.config.vocabSize);
    expect(model.tokenizer.decode(ids)).toBe('Once upon a time, there was a little robot.');
    const prompt = [model.config.bosTokenId, ...ids];
    const engine = await TextEngine.create(ort, 'wasm', model);
    const got = await engine.logits(prompt);
    await engine.dispose();
    const ref = new LlamaReference(model.config, model.weights);
    let want: Float32Array = new Float32Array(0);
    prompt.forEach((t, p) => (want = ref.forward(t, p)));
    let scale = 0;
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      scale = Math.max(scale, Math.abs(want[i]!));
      worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    }
    expect(got.every(Number.isFinite)).toBe(true);
    expect(scale).toBeGreaterThan(0.05); // logits spread, not all ~0
    expect(worst / scale).toBeLessThan(1e-4);
  });
});

describe('determinism', () => {
  it('two runs with the same seed write byte-identical files; another seed changes the weights only', () => {
    const shape = TINY[1]!;
    const a = writeSyntheticFolder(shape, join(root, 'a'), { seed: 3, maxShardBytes: 1e6 });
    writeSyntheticFolder(shape, join(root, 'b'), { seed: 3, maxShardBytes: 1e6 });
    writeSyntheticFolder(shape, join(root, 'c'), { seed: 4, maxShardBytes: 1e6 });
    for (const f of a.files) expect(sha(join(root, 'b', f)), f).toBe(sha(join(root, 'a', f)));
    const changed = a.files.filter((f) => sha(join(root, 'c', f)) !== sha(join(root, 'a', f)));
    expect(changed.filter((f) => f.endsWith('.safetensors')).length).toBe(a.files.filter((f) => f.endsWith('.safetensors')).length);
    expect(changed.filter((f) => f.endsWith('.json'))).toEqual([]);
  });
});

describe('published shapes (layout only: the folders are not generated here)', () => {
  it.each([
    ['smollm2-135m', 134_515_008],
    ['smollm2-360m', 361_821_120],
    ['qwen2.5-0.5b', 494_032_768],
    ['llama-3.2-1b', 1_235_814_400],
  ] as const)('%s has the published parameter count', (id, parameters) => {
    const layout = checkpointLayout(JSON.parse(publishedShape(id).configJson) as Record<string, unknown>, 0.02);
    expect(layout.reduce((n, t) => n + elementCount(t), 0)).toBe(parameters);
  });

  it('every shape is listed', () => {
    expect(Object.keys(SHAPES).sort()).toEqual(['llama-3.2-1b', 'qwen2.5-0.5b', 'smollm2-135m', 'smollm2-360m']);
  });

  it('shards like huggingface_hub: an oversized tensor alone, otherwise a new shard when the next would not fit', () => {
    const t = (name: string, n: number) => ({ name, shape: [n], init: { kind: 'ones' as const } });
    const shards = planShards([t('embed', 10), t('a', 3), t('b', 3), t('c', 3), t('d', 1)], (x) => elementCount(x), 6);
    expect(shards.map((s) => s.map((x) => x.name))).toEqual([['embed'], ['a', 'b'], ['c', 'd']]);
  });
});
