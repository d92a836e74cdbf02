/**
 * Sparsity through the engine on stories260K (dim 64, 172 FFN channels, 5 blocks), against the
 * reference forward (models/reference): `compress({ linear: 'f32', sparsity })` masks exactly
 * what Wanda by hand picks from the reference blocks' inputs (sparsity-ref.ts), and the compiled
 * graphs give the reference forward's logits over those masked weights within 1e-4 and its greedy
 * tokens; a q4 + 2:4 model's stored form makes a sparse variant whose engine is bit-identical to
 * the one that compressed it; depth pruning keeps its blocks through compress.
 */
import { describe, expect, it } from 'vitest';
import { readVariant, VARIANT_FILE, writeVariant } from '../../models/compress/variant.ts';
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import type { WeightsSetting } from '../../models/llama/types.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { LlamaReference, referenceGreedy } from '../../models/reference/llama-ref.ts';
import { wandaByHand } from '../../models/reference/sparsity-ref.ts';
import { loadOrt } from '../ort/runtime.ts';
import { DEFAULT_CALIBRATION_TEXT } from './calibration.ts';
import { TextEngine } from './engine.ts';
import { textModelFromLlama2c } from './model.ts';
import { TextService } from './service.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const bin = () => readLocalModelFile('stories260K', 'stories260K.bin');
const tok = () => readLocalModelFile('stories260K', 'tok512.bin');
const { config: c, weights } = readLlama2cCheckpoint(bin());
const prompt = [1, 403, 407, 261];
const newEngine = () => TextEngine.create(ort, 'wasm', textModelFromLlama2c(bin(), tok()));

async function greedy(engine: TextEngine, n: number): Promise<number[]> {
  for await (const ev of engine.generate(prompt, { maxTokens: n, greedy: true, stopTokens: [] })) if (ev.type === 'done') return ev.tokens;
  return [];
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('Wanda sparsity on stories260K through the compiled graphs', async () => {
  const calibration = (await newEngine()).tokenIds(DEFAULT_CALIBRATION_TEXT);
  for (const pattern of ['2:4', 'unstructured'] as const) {
    it(`${pattern}: logits and greedy tokens of the reference forward over Wanda's masked weights (by hand)`, async () => {
      const engine = await newEngine();
      await engine.compress({ linear: 'f32', sparsity: { pattern } });
      const masked = wandaByHand(c, weights, calibration, pattern);
      const ref = new LlamaReference(c, masked);
      let want: Float32Array = new Float32Array(0);
      prompt.forEach((t, p) => (want = ref.forward(t, p)));
      expect(maxDiff(await engine.logits(prompt), want)).toBeLessThan(1e-4);
      expect(await greedy(engine, 16)).toEqual(referenceGreedy(new LlamaReference(c, masked), prompt, 16));
      // Half of every block linear is zero in the weights the engine holds.
      const zeros = masked.layers[2]!.w2.filter((v) => v === 0).length;
      expect(zeros).toBe(masked.layers[2]!.w2.length / 2);
      await engine.dispose();
    });
  }

  it('q4 + 2:4 Wanda: the stored form written as a sparse variant and read back compiles to bit-identical logits', async () => {
    const setting: WeightsSetting = { linear: 'q4', group: 32, sparsity: { pattern: '2:4' } };
    const engine = await newEngine();
    await engine.compress(setting, { keepStored: true });
    const stored = engine.takeStored()!;
    expect(engine.takeStored()).toBeNull();
    const parts = writeVariant(stored, setting, { id: 'stories260K', revision: 'test', format: 'llama2c' });
    const file = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
    parts.reduce((o, p) => (file.set(new Uint8Array(p), o), o + p.byteLength), 0);
    const { prepared, info } = readVariant(file.buffer);
    const { tokenizer } = textModelFromLlama2c(bin(), tok());
    const again = await TextEngine.fromStored(ort, 'wasm', { config: info.config, tokenizer }, prepared, info.setting);
    expect(await again.logits(prompt)).toEqual(await engine.logits(prompt));
    await Promise.all([engine.dispose(), again.dispose()]);
  });

  it("TextService: a load with compress { q8, 2:4 wanda } and keepVariant exports a sparse variant that loads to the same logits (what w.text caches)", async () => {
    const setting: WeightsSetting = { linear: 'q8', sparsity: { pattern: '2:4' } };
    const maker = new TextService();
    await maker.init({ backend: 'wasm', numThreads: 1 });
    const made = await maker.load({ format: 'llama2c', checkpoint: bin(), tokenizer: tok() }, { compress: setting, keepVariant: true });
    expect(made.weights).toEqual(setting);
    const parts = maker.exportVariant({ id: 'stories260K', revision: 'r' });
    const file = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
    parts.reduce((o, p) => (file.set(new Uint8Array(p), o), o + p.byteLength), 0);
    const user = new TextService();
    await user.init({ backend: 'wasm', numThreads: 1 });
    await user.load({ format: 'variant', files: { [VARIANT_FILE]: file.buffer, 'tok512.bin': tok() } });
    expect(await user.logits(prompt)).toEqual(await maker.logits(prompt));
    // Without keepVariant the stored form is not kept: nothing to export.
    await maker.load({ format: 'llama2c', checkpoint: bin(), tokenizer: tok() }, { compress: setting });
    expect(() => maker.exportVariant({ id: 'x', revision: 'r' })).toThrow(/no variant to export/);
    await Promise.all([maker.dispose(), user.dispose()]);
  });

  it('a depth-pruned plan keeps its blocks through a sparse compress; the masks come from the full depth', async () => {
    const engine = await newEngine();
    await engine.setPlan({ layers: [0, 1, 3, 4] });
    await engine.compress({ linear: 'f32', sparsity: { pattern: 'unstructured', ratio: 0.3 } });
    expect(engine.plan.layers).toEqual([0, 1, 3, 4]);
    const ref = new LlamaReference(c, wandaByHand(c, weights, calibration, 'unstructured', 0.3), { layers: [0, 1, 3, 4] });
    let want: Float32Array = new Float32Array(0);
    prompt.forEach((t, p) => (want = ref.forward(t, p)));
    expect(maxDiff(await engine.logits(prompt), want)).toBeLessThan(1e-4);
    await engine.dispose();
  });
});
