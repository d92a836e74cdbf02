/**
 * Width pruning composed with compression (issue #14): after `pruneWidth`, `compress` quantizes
 * the narrowed blocks (FLAP's compensation biases stay fp32) and keeps the width plan. The fp32
 * width plan's logits equal the reference forward of the hand-narrowed checkpoint
 * (width-prune.test.ts), so here each quantized form is held to those logits within the error
 * its kernel has on the full-width model (models/compress/model-quality.test.ts: q8 MatMulNBits
 * 1%, q4 12% of the logit range); plans keep that width and a subset of its blocks.
 */
import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../core/errors.ts';
import type { WeightsSetting } from '../../models/llama/types.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { loadOrt } from '../ort/runtime.ts';
import { TextEngine } from './engine.ts';
import { textModelFromLlama2c } from './model.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const newEngine = () => TextEngine.create(ort, 'wasm', textModelFromLlama2c(readLocalModelFile('stories260K', 'stories260K.bin'), readLocalModelFile('stories260K', 'tok512.bin')));
const prompt = [1, 403, 407, 261];
const relErr = (got: Float32Array, want: Float32Array) => {
  const range = Math.max(...want) - Math.min(...want);
  return got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i]!)), 0) / range;
};

describe('compressing a width-pruned plan (stories260K, FLAP 20%)', () => {
  const cases: [WeightsSetting, number][] = [
    [{ linear: 'q8', kernel: 'nbits', group: 32 }, 0.01],
    [{ linear: 'q8' }, 0.03],
    [{ linear: 'q4', group: 32 }, 0.12],
    [{ linear: 'q4', group: 32, method: 'hqq' }, 0.12],
  ];
  for (const [setting, tolerance] of cases) {
    it(`${JSON.stringify(setting)}: the fp32 width plan's logits within ${tolerance * 100}% of their range, width kept`, async () => {
      const engine = await newEngine();
      const { width } = await engine.pruneWidth({ ratio: 0.2, method: 'flap' });
      const fp32 = await engine.logits(prompt);
      await engine.compress(setting);
      expect(engine.weights).toEqual(setting);
      expect(engine.plan.width).toEqual(width);
      const q = await engine.logits(prompt);
      const err = relErr(q, fp32);
      expect(err).toBeGreaterThan(0); // quantized, not the fp32 weights
      expect(err).toBeLessThan(tolerance);
      await engine.dispose();
    });
  }

  it('plans keep the compressed width (a subset of its blocks compiles; full width or another width is UNSUPPORTED)', async () => {
    const engine = await newEngine();
    const { width } = await engine.pruneWidth({ ratio: 0.2, method: 'flap' });
    await engine.compress({ linear: 'q8' });
    await engine.setPlan({ layers: [0, 1, 3, 4], width });
    expect(engine.plan.layers).toEqual([0, 1, 3, 4]);
    expect((await engine.logits(prompt)).length).toBe(512);
    const code = async (p: Promise<unknown>) => ((await p.catch((e: unknown) => e)) as WhittleError).code;
    expect(await code(engine.setPlan({ layers: [0, 1, 2, 3, 4] }))).toBe('UNSUPPORTED');
    const other = { ...width, ffn: width.ffn.map((f) => f.slice(1)) };
    expect(await code(engine.setPlan({ layers: [0, 1, 2, 3, 4], width: other }))).toBe('UNSUPPORTED');
    expect(await code(engine.compress({ linear: 'q4' }))).toBe('INVALID_ARGUMENT'); // one way, as before
    expect(engine.plan.layers).toEqual([0, 1, 3, 4]);
    await engine.dispose();
    const awq = await newEngine();
    await awq.pruneWidth({ ratio: 0.2, method: 'flap' });
    const err = await awq.compress({ linear: 'q8', method: 'awq' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WhittleError);
    expect((err as WhittleError).code).toBe('UNSUPPORTED');
    await awq.dispose();
  });

  it('a load with compress and a width plan (a worker replayed after its death) compiles the same compressed width plan', async () => {
    const engine = await newEngine();
    const { width } = await engine.pruneWidth({ ratio: 0.2, method: 'flap' });
    await engine.compress({ linear: 'q8' });
    const want = await engine.logits(prompt);
    const replayed = await TextEngine.create(ort, 'wasm', textModelFromLlama2c(readLocalModelFile('stories260K', 'stories260K.bin'), readLocalModelFile('stories260K', 'tok512.bin')), { compress: { linear: 'q8' }, plan: engine.plan });
    expect(replayed.plan.width).toEqual(width);
    expect(await replayed.logits(prompt)).toEqual(want);
    await Promise.all([engine.dispose(), replayed.dispose()]);
  });
});
