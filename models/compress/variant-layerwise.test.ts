/**
 * Variants read a block at a time (variant-layerwise.ts) against the whole-file reader: every
 * block, the table, its rows and the head equal `toKernelForms(readVariant(file))` exactly, for
 * dense, sparse and width-free settings on both backends, from a Blob (the store's) and an
 * ArrayBuffer; an engine on the file gives the held engine's logits bit for bit while holding
 * no weights; hostile files fail typed, before the tensor they lie about is decoded.
 */
import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../core/errors.ts';
import { prepareWeights, type PreparedLayer } from '../llama/prepare.ts';
import { randomLlama } from '../llama/testing/random-model.ts';
import type { WeightsSetting } from '../llama/types.ts';
import { gatherRows } from '../llama/weight-reader.ts';
import { loadOrt } from '../../workers/ort/runtime.ts';
import { TextEngine } from '../../workers/text/engine.ts';
import { textModelFromHf } from '../../workers/text/model.ts';
import { prepareStored } from '../../workers/text/variant-model.ts';
import { readLocalModelFile } from '../local.ts';
import type { KernelBackend } from './kernel-choice.ts';
import { openVariantFile, variantLayerwise } from './variant-layerwise.ts';
import { readVariant, writeVariant } from './variant.ts';
import { settingTag, storagePlan, toKernelForms, withStoredHead } from './variant-forms.ts';
import { joinParts } from './testing/join-parts.ts';


function variantOf(model: ReturnType<typeof randomLlama>, setting: WeightsSetting, backend: KernelBackend): ArrayBuffer {
  const plan = storagePlan(setting, backend);
  const stored = withStoredHead(prepareWeights(model.config, model.weights, { weights: plan.prepare, backend }), plan);
  return joinParts(writeVariant(stored, setting, { id: 'random', revision: 'r1', format: 'hf' }));
}

/** Plain data for toEqual: typed arrays compared element by element, with their types. */
const plain = (x: unknown) => JSON.parse(JSON.stringify(x, (_k, v: unknown) => (ArrayBuffer.isView(v) ? { type: v.constructor.name, values: Array.from(v as unknown as ArrayLike<number>) } : v))) as unknown;

describe('a variant read block by block = the whole file read and converted', () => {
  const settings: WeightsSetting[] = [
    { linear: 'q8' },
    { linear: 'q4', group: 32 },
    { linear: 'q4', group: 64, head: 'q8' },
    { linear: 'q8', sparsity: { pattern: 'unstructured', method: 'magnitude' } },
    { linear: 'q4', group: 32, sparsity: { pattern: '2:4', method: 'magnitude' } },
  ];
  for (const tied of [true, false]) {
    for (const setting of settings) {
      for (const backend of ['wasm', 'webgpu'] as const) {
        it(`${settingTag(setting)} on ${backend}, ${tied ? 'tied' : 'untied'}, from a Blob and from an ArrayBuffer`, async () => {
          // dim 40, hidden 72: K not a multiple of the group, so the last block is padded.
          const model = randomLlama({ dim: 40, hiddenDim: 72, nHeads: 4, nKvHeads: 2, vocabSize: 50, qkvBias: true, tiedEmbeddings: tied }, 11);
          const bytes = variantOf(model, setting, backend);
          const whole = readVariant(bytes.slice(0));
          const expected = toKernelForms(whole.prepared, whole.info.setting, backend);
          for (const file of [new Blob([bytes]), bytes.slice(0)]) {
            const lw = await variantLayerwise(await openVariantFile(file), backend);
            const layers: PreparedLayer[] = [];
            for (let i = 0; i < model.config.nLayers; i++) layers.push(await lw.layer(i));
            expect(plain(layers)).toEqual(plain(expected.layers));
            const table = await lw.embedding();
            expect(table).toEqual(expected.embedding);
            expect(plain(await lw.head(lw.headReadsTable ? table : undefined))).toEqual(plain(expected.head));
            expect(plain(await lw.head())).toEqual(plain(expected.head)); // a tied head reads the table itself when not given one
            expect(lw.headIsFp32).toBe(expected.head instanceof Float32Array);
            expect(lw.finalNorm).toEqual(expected.finalNorm);
            expect(lw.ropeCos).toEqual(expected.ropeCos);
            const ids = [3, 0, 49, 3];
            expect(await lw.embeddingRows!(ids)).toEqual(gatherRows(expected.embedding, model.config.dim, ids));
            await expect(lw.embeddingRows!([50])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
          }
        });
      }
    }
  }
});

describe('an engine on a variant file (stories-layerskip, WASM)', () => {
  it('gives the held engine logits bit for bit on full, pruned and early-exit plans, holding no weights', async () => {
    const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
    const m = textModelFromHf(Object.fromEntries(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].map((f) => [f, readLocalModelFile('stories-layerskip', f)])));
    for (const setting of [{ linear: 'q4', group: 32 }, { linear: 'q8' }] satisfies WeightsSetting[]) {
      const bytes = joinParts(writeVariant(await prepareStored(m, setting, 'wasm'), setting, { id: 'stories-layerskip', revision: 'r', format: 'hf' }));
      const held = await TextEngine.fromStored(ort, 'wasm', m, readVariant(bytes.slice(0)).prepared, setting);
      const streamed = await TextEngine.fromVariantFile(ort, 'wasm', m, await openVariantFile(new Blob([bytes])));
      try {
        expect(streamed.heldWeightBytes).toBe(0);
        expect(streamed.weights).toEqual(setting);
        const prompt = [1, 403, 407, 261, 378, 290];
        for (const plan of [{ layers: [0, 1, 2, 3, 4, 5, 6, 7] }, { layers: [0, 1, 3, 4, 5, 6, 7] }, { layers: [0, 1, 2, 3, 4, 5, 6, 7], exit: 3 }]) {
          await held.setPlan(plan);
          await streamed.setPlan(plan);
          expect(await streamed.logits(prompt)).toEqual(await held.logits(prompt));
          if (plan.exit !== undefined) expect(await streamed.logits(prompt, { exit: true })).toEqual(await held.logits(prompt, { exit: true }));
        }
        // A call that needs every block (block scoring) reads the whole file for its duration.
        const scores = async (e: TextEngine) => ({ ...(await e.scoreBlocks('Once upon a time there was a cat.', { perplexity: false })), timing: null });
        expect(await scores(streamed)).toEqual(await scores(held));
      } finally {
        await held.dispose();
        await streamed.dispose();
      }
    }
  });
});

describe('hostile variant files read block by block', () => {
  const model = randomLlama({ dim: 40, hiddenDim: 72, nHeads: 4, nKvHeads: 2, vocabSize: 50, tiedEmbeddings: true }, 3);
  const code = async (f: () => Promise<unknown>): Promise<string> => {
    try {
      await f();
    } catch (err) {
      expect(err).toBeInstanceOf(WhittleError);
      return `${(err as WhittleError).code}: ${(err as WhittleError).message}`;
    }
    return 'no error';
  };

  it('a truncated file fails at open, before any tensor is read', async () => {
    const bytes = variantOf(model, { linear: 'q8' }, 'wasm');
    expect(await code(() => openVariantFile(new Blob([bytes.slice(0, bytes.byteLength - 10)])))).toMatch(/^BAD_MODEL: .*truncated or lying header/);
  });

  it("an unstructured index whose popcount is not its values' count fails when its block is read, before it is decoded", async () => {
    const bytes = variantOf(model, { linear: 'q8', sparsity: { pattern: 'unstructured', method: 'magnitude' } }, 'wasm');
    const file = await openVariantFile(new Blob([bytes]));
    const index = file.tensors.get('layers.1.down.q.sparse_index')!;
    const lying = new Uint8Array(bytes.slice(0));
    lying[index.begin] = lying[index.begin]! ^ 0x01; // one more or one fewer kept weight
    const lw = await variantLayerwise(await openVariantFile(new Blob([lying])), 'wasm');
    expect(await code(() => lw.layer(0))).toBe('no error');
    expect(await code(() => lw.layer(1))).toMatch(/^BAD_MODEL: .*layers\.1\.down\.q\.sparse_index marks \d+ kept weights/);
  });

  it('an aborted compile stops before the next block is read', async () => {
    const bytes = variantOf(model, { linear: 'q8' }, 'wasm');
    const controller = new AbortController();
    const lw = await variantLayerwise(await openVariantFile(new Blob([bytes])), 'wasm', controller.signal);
    controller.abort();
    expect(await code(() => lw.layer(0))).toMatch(/^ABORTED/);
  });
});
