import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, readLocalModelFile } from '../../local.ts';
import { randomLlama } from '../../llama/testing/random-model.ts';
import type { LlamaConfig, LlamaWeights } from '../../llama/types.ts';
import { LlamaReference, referenceGreedy } from '../../reference/llama-ref.ts';
import { loadOrt } from '../../../workers/ort/runtime.ts';
import { TextEngine } from '../../../workers/text/engine.ts';
import { textModelFromHf } from '../../../workers/text/model.ts';
import { llama2cTokenizerToHf, readLlama2cTokenizer } from '../llama2c/tokenizer.ts';
import { readHfModel, type HfModelFiles } from './model.ts';

/** Test-side safetensors writer (F32 or BF16 by truncation), independent of the reader. */
function writeSafetensors(tensors: Record<string, { shape: number[]; data: Float32Array; dtype?: 'F32' | 'BF16' }>): ArrayBuffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    let bytes: Uint8Array;
    if (t.dtype === 'BF16') {
      const u32 = new Uint32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
      bytes = new Uint8Array(Uint16Array.from(u32, (x) => x >>> 16).buffer);
    } else bytes = new Uint8Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
    header[name] = { dtype: t.dtype ?? 'F32', shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    blobs.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8); // keep the data 8-byte aligned, like the Rust writer
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let p = 8 + head.length;
  for (const b of blobs) {
    out.set(b, p);
    p += b.length;
  }
  return out.buffer;
}

function hfTensors(c: LlamaConfig, w: LlamaWeights, dtype: 'F32' | 'BF16' = 'F32') {
  const hs = c.dim / c.nHeads;
  const t: Record<string, { shape: number[]; data: Float32Array; dtype: 'F32' | 'BF16' }> = {
    'model.embed_tokens.weight': { shape: [c.vocabSize, c.dim], data: w.tokenEmbedding, dtype },
    'model.norm.weight': { shape: [c.dim], data: w.finalNorm, dtype },
  };
  if (!c.tiedEmbeddings) t['lm_head.weight'] = { shape: [c.vocabSize, c.dim], data: w.lmHead, dtype };
  w.layers.forEach((l, i) => {
    const p = `model.layers.${i}.`;
    t[`${p}input_layernorm.weight`] = { shape: [c.dim], data: l.attnNorm, dtype };
    t[`${p}self_attn.q_proj.weight`] = { shape: [c.nHeads * hs, c.dim], data: l.wq, dtype };
    t[`${p}self_attn.k_proj.weight`] = { shape: [c.nKvHeads * hs, c.dim], data: l.wk, dtype };
    t[`${p}self_attn.v_proj.weight`] = { shape: [c.nKvHeads * hs, c.dim], data: l.wv, dtype };
    t[`${p}self_attn.o_proj.weight`] = { shape: [c.dim, c.nHeads * hs], data: l.wo, dtype };
    t[`${p}post_attention_layernorm.weight`] = { shape: [c.dim], data: l.ffnNorm, dtype };
    t[`${p}mlp.gate_proj.weight`] = { shape: [c.hiddenDim, c.dim], data: l.w1, dtype };
    t[`${p}mlp.up_proj.weight`] = { shape: [c.hiddenDim, c.dim], data: l.w3, dtype };
    t[`${p}mlp.down_proj.weight`] = { shape: [c.dim, c.hiddenDim], data: l.w2, dtype };
  });
  return t;
}

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
    // BF16 keeps the top 16 bits: equal to the float32 value truncated the same way
    const trunc = (x: number) => new Float32Array(new Uint32Array([new Uint32Array(new Float32Array([x]).buffer)[0]! & 0xffff0000]).buffer)[0]!;
    expect(weights.layers[2]!.w3[5]).toBe(trunc(tiny.weights.layers[2]!.w3[5]!));
    expect(weights.lmHead[77]).toBe(trunc(tiny.weights.lmHead[77]!));
  });

  it('rejects other architectures with UNSUPPORTED', () => {
    const bad = { ...files, 'config.json': json(hfConfig(tiny.config, { architectures: ['MistralForCausalLM'] })) };
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
