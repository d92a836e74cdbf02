/**
 * The streamed variant writer against the whole-model path (prepareStored + writeVariant, the
 * writer every earlier variant came from): read back, the two files give the same stored weights
 * and the same info for every dense setting, tied and untied, both backends, from an fp32 source
 * and from bf16 Hugging Face folders (where the floats are declared BF16 before they are read);
 * its size is known before a weight is read; what it cannot stream is UNSUPPORTED, a lying
 * source INTERNAL, an abort ABORTED.
 */
import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../core/errors.ts';
import { openHfModel } from '../import/hf/open-model.ts';
import { hfTensors, writeSafetensors, type TensorSpec } from '../import/hf/testing/folder.ts';
import { randomLlama } from '../llama/testing/random-model.ts';
import type { LlamaConfig, LlamaWeights, WeightsSetting } from '../llama/types.ts';
import { inMemoryReader, type LlamaWeightReader } from '../llama/weight-reader.ts';
import { prepareStored } from '../../workers/text/variant-model.ts';
import type { KernelBackend } from './kernel-choice.ts';
import { readVariant, readVariantInfo, writeVariant, type VariantSource } from './variant.ts';
import { settingTag } from './variant-forms.ts';
import { streamVariant } from './variant-stream.ts';
import { joinParts } from './testing/join-parts.ts';

const SOURCE: VariantSource = { id: 'random', revision: 'r1', format: 'hf' };

/** Plain data for toEqual: typed arrays compared element by element, with their types. */
const plain = (x: unknown) => JSON.parse(JSON.stringify(x, (_k, v: unknown) => (ArrayBuffer.isView(v) ? { type: v.constructor.name, values: Array.from(v as unknown as ArrayLike<number>) } : v))) as unknown;

async function streamed(config: LlamaConfig, reader: LlamaWeightReader, setting: WeightsSetting, backend: KernelBackend): Promise<{ bytes: ArrayBuffer; size: number; chunks: number }> {
  const stream = await streamVariant(config, reader, setting, backend, SOURCE);
  const parts: ArrayBuffer[] = [];
  for await (const chunk of stream.chunks()) parts.push(chunk.slice().buffer);
  return { bytes: joinParts(parts), size: stream.size, chunks: parts.length };
}

async function whole(config: LlamaConfig, reader: LlamaWeightReader, setting: WeightsSetting, backend: KernelBackend): Promise<ArrayBuffer> {
  const stored = await prepareStored({ config, weights: reader } as Parameters<typeof prepareStored>[0], setting, backend);
  return joinParts(writeVariant(stored, setting, SOURCE));
}

/** Both files read back: the same info and stored weights (RoPE tables follow from the config). */
function expectSameVariant(a: ArrayBuffer, b: ArrayBuffer): void {
  const x = readVariant(a);
  const y = readVariant(b);
  expect(x.info).toEqual(y.info);
  expect(plain(x.prepared)).toEqual(plain(y.prepared));
}

const dtypes = (bytes: ArrayBuffer) => {
  const { tensors } = readVariantInfo(bytes);
  return (name: string) => tensors.get(name)?.dtype;
};

/** Bytes of a variant's tensors (the file less its header). */
const dataBytes = (bytes: ArrayBuffer) => [...readVariantInfo(bytes).tensors.values()].reduce((n, e) => n + e.end - e.begin, 0);

/** A Hugging Face folder of `w` in bf16 (Qwen2's q/k/v biases too), opened as the importer opens one. */
async function bf16Folder(c: LlamaConfig, w: LlamaWeights): Promise<LlamaWeightReader> {
  const tensors: Record<string, TensorSpec> = hfTensors(c, w, 'BF16');
  w.layers.forEach((l, i) => {
    for (const [key, v] of [['q', l.bq], ['k', l.bk], ['v', l.bv]] as const) if (v) tensors[`model.layers.${i}.self_attn.${key}_proj.bias`] = { shape: [v.length], data: v, dtype: 'BF16' };
  });
  const config = {
    architectures: [c.qkvBias ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'], model_type: c.qkvBias ? 'qwen2' : 'llama',
    hidden_size: c.dim, intermediate_size: c.hiddenDim, num_hidden_layers: c.nLayers, num_attention_heads: c.nHeads, num_key_value_heads: c.nKvHeads,
    vocab_size: c.vocabSize, max_position_embeddings: c.maxSeqLen, rope_theta: c.ropeTheta, rms_norm_eps: c.normEps, tie_word_embeddings: c.tiedEmbeddings,
    bos_token_id: c.bosTokenId, eos_token_id: c.eosTokenId, hidden_act: 'silu', torch_dtype: 'bfloat16',
  };
  const files = { 'config.json': new TextEncoder().encode(JSON.stringify(config)).buffer as ArrayBuffer, 'model.safetensors': writeSafetensors(tensors) };
  return (await openHfModel(files)).reader;
}

const SETTINGS: WeightsSetting[] = [
  { linear: 'q8' },
  { linear: 'q4', group: 32 },
  { linear: 'q4', group: 64, head: 'q8' },
  { linear: 'q4', group: 32, method: 'hqq' },
  { linear: 'q8', head: 'q8', group: 128 },
];

describe('a streamed variant = the whole-model writer, read back', () => {
  for (const tied of [true, false]) {
    for (const setting of SETTINGS) {
      for (const backend of ['wasm', 'webgpu'] as const) {
        // hqq on q8 resolves to the int8 kernel on WASM, which HQQ does not refine (kernel-choice.ts).
        if (setting.method === 'hqq' && setting.linear === 'q8' && backend === 'wasm') continue;
        it(`${settingTag(setting)} on ${backend}, ${tied ? 'tied' : 'untied'}, fp32 source`, async () => {
          // dim 40, hidden 72: K not a multiple of the group, so the last block is padded.
          const model = randomLlama({ dim: 40, hiddenDim: 72, nHeads: 4, nKvHeads: 2, vocabSize: 50, qkvBias: true, tiedEmbeddings: tied }, 11);
          const s = await streamed(model.config, inMemoryReader(model.weights), setting, backend);
          expect(s.bytes.byteLength).toBe(s.size);
          expect(s.chunks).toBeGreaterThan(model.config.nLayers); // header, table, blocks: produced piece by piece
          expectSameVariant(s.bytes, await whole(model.config, inMemoryReader(model.weights), setting, backend));
          // An fp32 source's floats are declared F32 (none is known to be a bfloat16).
          expect(dtypes(s.bytes)('embedding')).toBe('F32');
        });
      }
    }
  }

  for (const [what, overrides] of [
    ['Qwen2-like (biases, head size 8: the scaled Q bias is not a bfloat16), tied', { dim: 32, hiddenDim: 64, nHeads: 4, nKvHeads: 2, vocabSize: 300, qkvBias: true, tiedEmbeddings: true }],
    ['Llama-like (head size 16), untied', { dim: 64, hiddenDim: 96, nHeads: 4, nKvHeads: 2, vocabSize: 200, tiedEmbeddings: false }],
    ['Qwen2-like (biases, head size 16: the scaled Q bias stays a bfloat16), tied', { dim: 64, hiddenDim: 96, nHeads: 4, nKvHeads: 1, vocabSize: 120, qkvBias: true, tiedEmbeddings: true }],
  ] as const) {
    for (const setting of [SETTINGS[0]!, SETTINGS[1]!, SETTINGS[2]!]) {
      it(`${what}, bf16 folder, ${settingTag(setting)}: floats declared BF16 up front, same weights`, async () => {
        const model = randomLlama({ ...overrides, ropeLayout: 'half' }, 5);
        const s = await streamed(model.config, await bf16Folder(model.config, model.weights), setting, 'wasm');
        expect(s.bytes.byteLength).toBe(s.size);
        expectSameVariant(s.bytes, await whole(model.config, await bf16Folder(model.config, model.weights), setting, 'wasm'));
        const dtype = dtypes(s.bytes);
        expect([dtype('embedding'), dtype('final_norm'), dtype('layers.0.attn_norm')]).toEqual(['BF16', 'BF16', 'BF16']);
        if (model.config.qkvBias) expect(dtype('layers.0.qkv_bias')).toBe(model.config.dim / model.config.nHeads === 16 ? 'BF16' : 'F32');
      });
    }
  }

  it.each([1, 7, 64, 1000])('table chunks of %s rows make the same file (the last chunk short or the whole table)', async (rows) => {
    const model = randomLlama({ dim: 32, hiddenDim: 48, vocabSize: 64, tiedEmbeddings: true }, 4);
    const stream = await streamVariant(model.config, inMemoryReader(model.weights), { linear: 'q8', head: 'q8' }, 'wasm', SOURCE, undefined, rows);
    const file = await collect(stream.chunks());
    expect(file.byteLength).toBe(stream.size);
    expectSameVariant(file.buffer as ArrayBuffer, await whole(model.config, inMemoryReader(model.weights), { linear: 'q8', head: 'q8' }, 'wasm'));
    // A reader without row reads gives its table once.
    let tables = 0;
    const base = inMemoryReader(model.weights);
    const noRows: LlamaWeightReader = { tokenEmbedding: () => (tables++, base.tokenEmbedding()), lmHead: base.lmHead, finalNorm: base.finalNorm, layer: base.layer };
    const again = await collect((await streamVariant(model.config, noRows, { linear: 'q8' }, 'wasm', SOURCE, undefined, rows)).chunks());
    expectSameVariant(again.buffer as ArrayBuffer, await whole(model.config, inMemoryReader(model.weights), { linear: 'q8' }, 'wasm'));
    expect(tables).toBe(1);
  });

  it("knows its size before reading a weight: the reader is asked for nothing but the final norm until the stream is read", async () => {
    const model = randomLlama({ dim: 32, hiddenDim: 48, vocabSize: 64 }, 3);
    const asked: string[] = [];
    const base = inMemoryReader(model.weights);
    const reader: LlamaWeightReader = {
      ...base,
      tokenEmbedding: () => (asked.push('table'), base.tokenEmbedding()),
      layer: (i) => (asked.push(`layer ${i}`), base.layer(i)),
      lmHead: () => (asked.push('head'), base.lmHead()),
      embeddingRange: (f, n) => (asked.push('rows'), base.embeddingRange!(f, n)),
    };
    const stream = await streamVariant(model.config, reader, { linear: 'q8' }, 'wasm', SOURCE);
    expect(asked).toEqual([]);
    const full = await whole(model.config, inMemoryReader(model.weights), { linear: 'q8' }, 'wasm');
    // The size announced is the file's, and its tensors' bytes are the whole-model writer's.
    const file = await collect(stream.chunks());
    expect(file.byteLength).toBe(stream.size);
    expect(dataBytes(file.buffer as ArrayBuffer)).toBe(dataBytes(full));
  });

  it('refuses what needs more than the source (sparsity, AWQ) or compresses nothing, as UNSUPPORTED', async () => {
    const model = randomLlama({}, 2);
    for (const setting of [{ linear: 'q8', sparsity: { pattern: '2:4', method: 'magnitude' } }, { linear: 'q4', method: 'awq' }, { linear: 'f32' }] as WeightsSetting[]) {
      await expect(streamVariant(model.config, inMemoryReader(model.weights), setting, 'wasm', SOURCE)).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    }
  });

  it('a source that claims bf16 floats but has others fails INTERNAL at that tensor, typed', async () => {
    const model = randomLlama({}, 2);
    const liar: LlamaWeightReader = { ...inMemoryReader(model.weights), floatsExactInBf16: true };
    const stream = await streamVariant(model.config, liar, { linear: 'q8' }, 'wasm', SOURCE);
    const err = await collect(stream.chunks()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WhittleError);
    expect(err).toMatchObject({ code: 'INTERNAL', details: { tensor: 'embedding' } });
  });

  it('stops between blocks on abort, ABORTED', async () => {
    const model = randomLlama({ nLayers: 4 }, 2);
    const stream = await streamVariant(model.config, inMemoryReader(model.weights), { linear: 'q8' }, 'wasm', SOURCE);
    const ac = new AbortController();
    let seen = 0;
    const err = await (async () => {
      for await (const _ of stream.chunks(ac.signal)) if (++seen === 3) ac.abort();
    })().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ABORTED' });
    expect(seen).toBe(3);
  });
});

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
