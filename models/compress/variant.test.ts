/**
 * Compressed variants (variant.ts, variant-forms.ts): every setting x backend round-trips to the
 * exact arrays in-memory compression builds; through the real worker service (onnxruntime-web
 * WASM) a variant of stories-layerskip gives bit-identical logits to compressing at load; hostile
 * files fail with typed errors before anything is allocated from their claims.
 */
import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../core/errors.ts';
import { readLocalModelFile } from '../local.ts';
import { prepareWeights, type PreparedWeights } from '../llama/prepare.ts';
import { randomLlama } from '../llama/testing/random-model.ts';
import type { WeightsSetting } from '../llama/types.ts';
import { TextService } from '../../workers/text/service.ts';
import { dequantizePerChannelInt8, quantizePerChannelInt8 } from './per-channel.ts';
import { dequantizeBlockwise } from './blockwise.ts';
import type { KernelBackend } from './kernel-choice.ts';
import { readVariant, readVariantInfo, VARIANT_FILE, writeVariant, type VariantSource } from './variant.ts';
import { int8ToBlockwise, settingTag, storagePlan, toKernelForms, withStoredHead } from './variant-forms.ts';
import { joinParts } from './testing/join-parts.ts';

const SOURCE: VariantSource = { id: 'random', revision: 'r1', format: 'hf' };

/** Stored-form prepared weights -> variant bytes. */
function variantOf(config: ReturnType<typeof randomLlama>['config'], weights: ReturnType<typeof randomLlama>['weights'], setting: WeightsSetting, backend: KernelBackend): ArrayBuffer {
  const plan = storagePlan(setting, backend);
  const stored = withStoredHead(prepareWeights(config, weights, { weights: plan.prepare, backend }), plan);
  return joinParts(writeVariant(stored, setting, SOURCE));
}

/** Plain data for toEqual: typed arrays compared element by element, with their types. */
const plain = (p: PreparedWeights) => JSON.parse(JSON.stringify(p, (_k, v: unknown) => (ArrayBuffer.isView(v) ? { type: v.constructor.name, values: Array.from(v as unknown as ArrayLike<number>) } : v))) as unknown;

describe('variant round trip (random GQA model with Q/K/V biases)', () => {
  const settings: WeightsSetting[] = [
    { linear: 'q4', group: 32 },
    { linear: 'q4', group: 64, head: 'q8' },
    { linear: 'q8' },
    { linear: 'q8', group: 128, kernel: 'nbits' },
    { linear: 'q4', group: 128, kernel: 'nbits', accuracyLevel: 4 },
  ];
  for (const tied of [true, false]) {
    for (const setting of settings) {
      for (const backend of ['wasm', 'webgpu'] as const) {
        it(`${settingTag(setting)} ${JSON.stringify(setting)} on ${backend}, ${tied ? 'tied' : 'untied'}: read back = in-memory compression`, () => {
          // dim 40 and hidden 72: K not a multiple of the group, so the last block is padded.
          const { config, weights } = randomLlama({ dim: 40, hiddenDim: 72, nHeads: 4, nKvHeads: 2, vocabSize: 50, qkvBias: true, tiedEmbeddings: tied }, 7);
          const bytes = variantOf(config, weights, setting, backend);
          const { prepared, info } = readVariant(bytes);
          expect(info.setting).toEqual(setting);
          expect(info.source).toEqual(SOURCE);
          expect(info.config).toEqual(config);
          const expected = prepareWeights(config, weights, { weights: setting, backend });
          expect(plain(toKernelForms(prepared, info.setting, backend))).toEqual(plain(expected));
        });
      }
    }
  }

  it('a variant made on one backend serves the other: WASM q4 (fp32 head) on WebGPU quantizes the head, WebGPU q8 (nbits) on WASM runs its grid dequantized', () => {
    const { config, weights } = randomLlama({ tiedEmbeddings: true }, 3);
    const q4 = readVariant(variantOf(config, weights, { linear: 'q4' }, 'wasm'));
    expect(plain(toKernelForms(q4.prepared, q4.info.setting, 'webgpu'))).toEqual(plain(prepareWeights(config, weights, { weights: { linear: 'q4' }, backend: 'webgpu' })));
    const q8 = readVariant(variantOf(config, weights, { linear: 'q8' }, 'webgpu'));
    const onWasm = toKernelForms(q8.prepared, q8.info.setting, 'wasm');
    const stored = q8.prepared.layers[0]!.down;
    if (stored instanceof Float32Array || stored.kind !== 'nbits') throw new Error('expected nbits');
    expect(onWasm.layers[0]!.down).toEqual(dequantizeBlockwise(stored.weight));
  });

  it('int8 per channel -> MatMulNBits 8-bit blocks is exact', () => {
    const w = Float32Array.from({ length: 70 * 5 }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 5)));
    const q = quantizePerChannelInt8(w, 70, 5);
    expect(dequantizeBlockwise(int8ToBlockwise(q, 32))).toEqual(dequantizePerChannelInt8(q));
  });

  it('floats that are bfloat16 values are stored as BF16 (half the bytes), others as F32, both exact', () => {
    const { config, weights } = randomLlama({}, 5);
    const asBf16 = (a: Float32Array) => {
      const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
      for (let i = 0; i < u.length; i++) u[i] = u[i]! & 0xffff0000;
    };
    asBf16(weights.tokenEmbedding);
    const bytes = variantOf(config, weights, { linear: 'q4' }, 'wasm');
    const { tensors } = readVariantInfo(bytes);
    expect(tensors.get('embedding')!.dtype).toBe('BF16');
    expect(tensors.get('final_norm')!.dtype).toBe('F32');
    expect(readVariant(bytes).prepared.embedding).toEqual(weights.tokenEmbedding);
  });

  it('weights in a kernel-only form (WASM q4 dequantized) are refused, not written as fp32', () => {
    const { config, weights } = randomLlama({}, 2);
    const kernel = prepareWeights(config, weights, { weights: { linear: 'q4' }, backend: 'wasm' });
    expect(() => writeVariant(kernel, { linear: 'q4' }, SOURCE)).toThrow(/not a stored form/);
  });
});

describe('hostile variant files: typed errors, nothing allocated from their claims', () => {
  const { config, weights } = randomLlama({ tiedEmbeddings: true }, 9);
  const good = variantOf(config, weights, { linear: 'q4' }, 'wasm');
  const headerLen = Number(new DataView(good).getBigUint64(0, true));
  const header = () => JSON.parse(new TextDecoder().decode(new Uint8Array(good, 8, headerLen))) as Record<string, Record<string, unknown>>;
  /** The same data under an edited header (re-padded). */
  const withHeader = (h: unknown): ArrayBuffer => {
    const json = new TextEncoder().encode(JSON.stringify(h));
    const out = new Uint8Array(8 + json.byteLength + (good.byteLength - 8 - headerLen));
    new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
    out.set(json, 8);
    out.set(new Uint8Array(good, 8 + headerLen), 8 + json.byteLength);
    return out.buffer;
  };
  const meta = (edit: (m: Record<string, unknown>) => void) => {
    const h = header();
    edit(h.__metadata__!);
    return withHeader(h);
  };
  const code = (f: () => unknown): string => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(WhittleError);
      return `${(err as WhittleError).code}: ${(err as WhittleError).message}`;
    }
    return 'no error';
  };
  const config2 = (edit: (c: Record<string, unknown>) => void) =>
    meta((m) => {
      const c = JSON.parse(m.config as string) as Record<string, unknown>;
      edit(c);
      m.config = JSON.stringify(c);
    });

  it('the good file reads', () => expect(code(() => readVariant(good))).toBe('no error'));
  it('a header length past the end of the file', () => {
    const b = good.slice(0);
    new DataView(b).setBigUint64(0, 1n << 60n, true);
    expect(code(() => readVariant(b))).toMatch(/^BAD_MODEL: .*runs past the end/);
  });
  it('a truncated file', () => expect(code(() => readVariant(good.slice(0, good.byteLength - 10)))).toMatch(/^BAD_MODEL: .*truncated or lying header/));
  it('not a variant (a plain safetensors file)', () => expect(code(() => readVariant(meta((m) => delete m.format)))).toMatch(/^BAD_MODEL: .*not a Whittle variant/));
  it('a newer format version is UNSUPPORTED', () => expect(code(() => readVariant(meta((m) => (m.whittle_version = '4'))))).toMatch(/^UNSUPPORTED: .*format 4/));
  it('a dense file claiming the sparse version 2', () => expect(code(() => readVariant(meta((m) => (m.whittle_version = '2'))))).toMatch(/^BAD_MODEL: .*sparsity null/));
  it('metadata that is not JSON', () => expect(code(() => readVariant(meta((m) => (m.setting = '{'))))).toMatch(/^BAD_MODEL: .*setting is not JSON/));
  it('a setting no kernel implements', () => expect(code(() => readVariant(meta((m) => (m.setting = JSON.stringify({ linear: 'q3' })))))).toMatch(/^BAD_MODEL: .*setting: .*linear/));
  it('stored forms of another setting', () => expect(code(() => readVariant(meta((m) => (m.setting = JSON.stringify({ linear: 'q8' })))))).toMatch(/^BAD_MODEL: .*do not belong to setting/));
  it('a config claiming a huge model, before any allocation', () => expect(code(() => readVariant(config2((c) => (c.vocabSize = 2 ** 40))))).toMatch(/^BAD_MODEL: .*config.vocabSize must be an integer/));
  it('a context too long for any RoPE table', () => expect(code(() => readVariant(config2((c) => (c.maxSeqLen = 1e12))))).toMatch(/^BAD_MODEL: .*maxSeqLen/));
  it('a context within the limits whose RoPE tables the file could not hold a model for (found by the variant fuzz target)', () =>
    expect(code(() => readVariant(config2((c) => (c.maxSeqLen = 1 << 20))))).toMatch(/^BAD_MODEL: .*maxSeqLen 1048576 needs \d+ bytes of RoPE tables/));
  it('a config whose shapes the tensors do not have', () => expect(code(() => readVariant(config2((c) => (c.dim = 64))))).toMatch(/^BAD_MODEL: .*has shape .* the config implies/));
  it('a missing tensor', () => {
    const h = header();
    delete h['layers.1.down.scales'];
    expect(code(() => readVariant(withHeader(h)))).toMatch(/^BAD_MODEL: .*missing tensor layers.1.down.scales/);
  });
  it('an unexpected tensor', () => {
    const h = header();
    h['extra'] = { dtype: 'U8', shape: [0], data_offsets: [0, 0] };
    expect(code(() => readVariant(withHeader(h)))).toMatch(/^BAD_MODEL: .*unexpected tensor extra/);
  });
  it('a tensor of the wrong dtype', () => {
    const h = header();
    const e = h['layers.0.qkv.q']!;
    h['layers.0.qkv.q'] = { ...e, dtype: 'I8' };
    expect(code(() => readVariant(withHeader(h)))).toMatch(/^BAD_MODEL: .*layers.0.qkv.q is I8, expected U8/);
  });
  it("a tied head on an untied config", () => expect(code(() => readVariant(config2((c) => (c.tiedEmbeddings = false))))).toMatch(/^BAD_MODEL: .*tied head/));
});

describe('through the worker service: stories-layerskip q4 g32 on WASM', async () => {
  const names = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];
  const files = () => Object.fromEntries(names.map((n) => [n, readLocalModelFile('stories-layerskip', n)]));
  const setting: WeightsSetting = { linear: 'q4', group: 32 };
  const tokens = [1, 403, 407, 300, 19];

  it('a variant gives bit-identical logits and tokens to compressing at load, in under a third of the bytes', async () => {
    const plainLoad = new TextService();
    await plainLoad.init({ backend: 'wasm', numThreads: 1 });
    await plainLoad.load({ format: 'hf', files: files() }, { compress: setting });
    const expected = await plainLoad.logits(tokens);
    const expectedTokens = (await plainLoad.complete('Once upon a time', { maxTokens: 12, greedy: true })).tokens;
    await plainLoad.dispose();

    const maker = new TextService();
    await maker.init({ backend: 'wasm', numThreads: 1 });
    await maker.load({ format: 'hf', files: files() }, { compress: setting, keepVariant: true });
    expect(await maker.logits(tokens)).toEqual(expected);
    const parts = maker.exportVariant({ id: 'stories-layerskip', revision: 'whittle-recipe-1' });
    expect(() => maker.exportVariant({ id: 'x', revision: 'y' })).toThrow(/no variant to export/);
    await maker.dispose();
    const variant = joinParts(parts);
    expect(variant.byteLength).toBeLessThan(readLocalModelFile('stories-layerskip', 'model.safetensors').byteLength / 3);

    const user = new TextService();
    await user.init({ backend: 'wasm', numThreads: 1 });
    const { 'model.safetensors': _source, ...others } = files();
    const info = await user.load({ format: 'variant', files: { ...others, [VARIANT_FILE]: variant } });
    expect(info.weights).toEqual(setting);
    expect(await user.logits(tokens)).toEqual(expected);
    expect((await user.complete('Once upon a time', { maxTokens: 12, greedy: true })).tokens).toEqual(expectedTokens);
    await user.dispose();
  });

  it("a variant beside another model's config.json is BAD_MODEL", async () => {
    const maker = new TextService();
    await maker.init({ backend: 'wasm', numThreads: 1 });
    await maker.load({ format: 'hf', files: files() }, { compress: setting, keepVariant: true });
    const variant = joinParts(maker.exportVariant({ id: 'stories-layerskip', revision: 'r' }));
    await maker.dispose();
    const other = JSON.parse(new TextDecoder().decode(readLocalModelFile('stories-layerskip', 'config.json'))) as Record<string, unknown>;
    other.intermediate_size = 2 * (other.intermediate_size as number);
    const user = new TextService();
    await user.init({ backend: 'wasm', numThreads: 1 });
    const err = await user
      .load({ format: 'variant', files: { [VARIANT_FILE]: variant, 'config.json': new TextEncoder().encode(JSON.stringify(other)).buffer, 'tokenizer.json': readLocalModelFile('stories-layerskip', 'tokenizer.json') } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WhittleError);
    expect((err as WhittleError).code).toBe('BAD_MODEL');
    expect((err as WhittleError).message).toMatch(/hiddenDim/);
  });
});

describe('through the worker service: a llama2.c model (stories260K) q8', () => {
  it('round-trips with its llama2.c tokenizer (BOS always prepended) and no config.json', async () => {
    const src = () => ({ format: 'llama2c' as const, checkpoint: readLocalModelFile('stories260K', 'stories260K.bin'), tokenizer: readLocalModelFile('stories260K', 'tok512.bin') });
    const maker = new TextService();
    await maker.init({ backend: 'wasm', numThreads: 1 });
    await maker.load(src(), { compress: { linear: 'q8' }, keepVariant: true });
    const expected = await maker.complete('Once upon a time', { maxTokens: 12, greedy: true });
    const variant = joinParts(maker.exportVariant({ id: 'stories260K', revision: 'r' }));
    await maker.dispose();
    expect(readVariantInfo(variant).info.source.format).toBe('llama2c');
    const user = new TextService();
    await user.init({ backend: 'wasm', numThreads: 1 });
    await user.load({ format: 'variant', files: { [VARIANT_FILE]: variant, 'tok512.bin': readLocalModelFile('stories260K', 'tok512.bin') } });
    const got = await user.complete('Once upon a time', { maxTokens: 12, greedy: true });
    expect(got.tokens).toEqual(expected.tokens);
    expect(got.text).toEqual(expected.text);
    await user.dispose();
  });
});
