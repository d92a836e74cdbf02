import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, readLocalModelFile } from '../../local.ts';
import { randomLlama } from '../../llama/testing/random-model.ts';
import type { LlamaConfig } from '../../llama/types.ts';
import { LlamaReference, referenceGreedy } from '../../reference/llama-ref.ts';
import { loadOrt } from '../../../workers/ort/runtime.ts';
import { TextEngine } from '../../../workers/text/engine.ts';
import { textModelFromHf } from '../../../workers/text/model.ts';
import { llama2cTokenizerToHf, readLlama2cTokenizer } from '../llama2c/tokenizer.ts';
import { readHfModel, type HfModelFiles } from './model.ts';
import { hfTensors, roundThrough, writeSafetensors } from './testing/folder.ts';

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)).buffer as ArrayBuffer;
function hfConfig(c: LlamaConfig, extra: Record<string, unknown> = {}) {
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: c.dim, intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers, num_attention_heads: c.nHeads, num_key_value_heads: c.nKvHeads, vocab_size: c.vocabSize,
    max_position_embeddings: c.maxSeqLen, rope_theta: c.ropeTheta, rms_norm_eps: c.normEps, tie_word_embeddings: c.tiedEmbeddings,
    bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', torch_dtype: 'float32', ...extra,
  };
}

const tokenizerJson = llama2cTokenizerToHf(readLlama2cTokenizer(readLocalModelFile('stories260K', 'tok512.bin'), 512));
// GQA (4 heads over 2 KV heads), untied head, HF 'half' RoPE, theta 5e5: every importer path that differs from llama2.c.
const tiny = randomLlama({ vocabSize: 512, maxSeqLen: 64 }, 3);
const files: HfModelFiles = {
  'config.json': json(hfConfig(tiny.config)),
  'model.safetensors': writeSafetensors(hfTensors(tiny.config, tiny.weights)),
  'tokenizer.json': json(tokenizerJson),
};
const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

describe('HF LlamaForCausalLM importer', () => {
  it('round-trips a tiny GQA, untied model: engine logits and greedy tokens equal the reference', async () => {
    const model = textModelFromHf(files);
    expect(model.config).toMatchObject({ ...tiny.config, ropeLayout: 'half' });
    const engine = await TextEngine.create(ort, 'wasm', model);
    const prompt = [1, 17, 300, 42, 9];
    const ref = new LlamaReference(tiny.config, tiny.weights);
    let want: Float32Array = new Float32Array(0);
    prompt.forEach((t, p) => (want = ref.forward(t, p)));
    const got = await engine.logits(prompt);
    let scale = 0;
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      scale = Math.max(scale, Math.abs(want[i]!));
      worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    }
    expect(worst / scale).toBeLessThan(1e-4);
    let last = null;
    for await (const ev of engine.generate(prompt, { maxTokens: 12, greedy: true, stopTokens: [] })) last = ev;
    expect(last?.type === 'done' && last.tokens).toEqual(referenceGreedy(new LlamaReference(tiny.config, tiny.weights), prompt, 12));
    await engine.dispose();
  });

  it('runs the trained models\' shape (head size 20, tied, no lm_head, llama2.c tokenizer.bin) through one-node ONNX attention', async () => {
    const m = randomLlama({ dim: 80, nHeads: 4, nKvHeads: 2, hiddenDim: 96, vocabSize: 512, maxSeqLen: 64, tiedEmbeddings: true, ropeTheta: 10000 }, 5);
    const folder: HfModelFiles = {
      'config.json': json(hfConfig(m.config)),
      'model.safetensors': writeSafetensors(hfTensors(m.config, m.weights)),
      'tok512.bin': readLocalModelFile('stories260K', 'tok512.bin'),
    };
    const engine = await TextEngine.create(ort, 'wasm', textModelFromHf(folder));
    expect(engine.attention).toBe('onnx');
    let last = null;
    for await (const ev of engine.generate([1, 300, 301], { maxTokens: 8, greedy: true, stopTokens: [] })) last = ev;
    expect(last?.type === 'done' && last.tokens).toEqual(referenceGreedy(new LlamaReference(m.config, m.weights), [1, 300, 301], 8));
    await engine.dispose();
  });

  it('reads sharded BF16 checkpoints through model.safetensors.index.json', () => {
    const all = Object.entries(hfTensors(tiny.config, tiny.weights, 'BF16'));
    const half = Math.floor(all.length / 2);
    const shards = { 'model-00001-of-00002.safetensors': all.slice(0, half), 'model-00002-of-00002.safetensors': all.slice(half) };
    const weightMap: Record<string, string> = {};
    const sharded: HfModelFiles = { 'config.json': files['config.json']!, 'tokenizer.json': files['tokenizer.json']! };
    for (const [name, entries] of Object.entries(shards)) {
      sharded[name] = writeSafetensors(Object.fromEntries(entries));
      for (const [k] of entries) weightMap[k] = name;
    }
    sharded['model.safetensors.index.json'] = json({ metadata: {}, weight_map: weightMap });
    const { weights } = readHfModel(sharded);
    // BF16 keeps the top 16 bits of the float32 rounded to nearest even; widening back is exact.
    expect(weights.layers[2]!.w3).toEqual(roundThrough(tiny.weights.layers[2]!.w3, 'BF16'));
    expect(weights.lmHead).toEqual(roundThrough(tiny.weights.lmHead, 'BF16'));
  });

  it('rejects other architectures with UNSUPPORTED', () => {
    const bad = { ...files, 'config.json': json(hfConfig(tiny.config, { architectures: ['GPT2LMHeadModel'] })) };
    expect(() => readHfModel(bad)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED' }));
  });

  it('rejects config/weights mismatches, missing tensors and missing tokenizer.json with BAD_MODEL', () => {
    const wrongShape = { ...files, 'config.json': json(hfConfig(tiny.config, { intermediate_size: 64 })) };
    expect(() => readHfModel(wrongShape)).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
    const t = hfTensors(tiny.config, tiny.weights);
    delete t['model.layers.1.mlp.up_proj.weight'];
    expect(() => readHfModel({ ...files, 'model.safetensors': writeSafetensors(t) })).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
    const truncated = { ...files, 'model.safetensors': files['model.safetensors']!.slice(0, 4000) };
    expect(() => readHfModel(truncated)).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
    const { 'tokenizer.json': _, ...noTok } = files;
    expect(() => textModelFromHf(noTok)).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
  });
});

// Models trained by the project's LayerSkip recipe land here; test them once they exist.
for (const id of ['stories-layerskip', 'stories-baseline']) {
  const dir = join(REPO_ROOT, 'models', id);
  const ready = existsSync(join(dir, 'model.safetensors')) && existsSync(join(dir, 'config.json'));
  describe.skipIf(!ready)(`${id} (trained HF-format model)`, () => {
    it('loads and generates the reference greedy tokens', async () => {
      const folder: HfModelFiles = {};
      for (const f of readdirSync(dir)) if (/\.(json|safetensors)$|^tok.*\.bin$|^tokenizer\.bin$/.test(f)) {
        const b = readFileSync(join(dir, f));
        folder[f] = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
      }
      const model = textModelFromHf(folder);
      const engine = await TextEngine.create(ort, 'wasm', model);
      let last = null;
      for await (const ev of engine.generate('Once upon a time', { maxTokens: 16, greedy: true, stopTokens: [] })) last = ev;
      expect(last?.type).toBe('done');
      if (last?.type === 'done') {
        expect(last.text.length).toBeGreaterThan(0);
        const prompt = [model.config.bosTokenId, ...model.tokenizer.encode('Once upon a time')];
        expect(last.tokens).toEqual(referenceGreedy(new LlamaReference(model.config, model.weights), prompt, 16));
      }
      await engine.dispose();
    });
  });
}
