/**
 * An engine built from a compressed variant's stored (packed) weights keeps whichever form is
 * smaller: WASM's q4 kernel form (fp32 or int8 from the packed grid) is bigger than the grid, so
 * the engine keeps the packed grid and derives the kernel form again for each compile. Every
 * compile must give what an engine holding the kernel form gives.
 */
import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../models/local.ts';
import { preparedBytes } from '../../models/llama/prepare.ts';
import { toKernelForms } from '../../models/compress/variant-forms.ts';
import type { WeightsSetting } from '../../models/llama/types.ts';
import { loadOrt } from '../ort/runtime.ts';
import { TextEngine } from './engine.ts';
import { textModelFromHf } from './model.ts';
import { prepareStored } from './variant-model.ts';
import { TextService } from './service.ts';

const FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const model = () => textModelFromHf(Object.fromEntries(FILES.map((f) => [f, readLocalModelFile('stories-layerskip', f)])));
const IDS = [1, 403, 407, 261, 378, 290];

describe('TextEngine.fromStored', async () => {
  const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

  it.each<[string, WeightsSetting]>([
    ['q4 g32, dequantized (a small model on WASM)', { linear: 'q4', group: 32 }],
    ['q4 g32 as int8', { linear: 'q4', group: 32, kernel: 'int8' }],
  ])('%s: holds the packed grid only, and every compile equals an engine holding the kernel form', async (_, setting) => {
    const m = model();
    const stored = await prepareStored(m, setting, 'wasm');
    const kernel = toKernelForms(stored, setting, 'wasm');
    expect(preparedBytes(stored)).toBeLessThan(preparedBytes(kernel));
    const holding = new TextEngine(ort, 'wasm', m, kernel, { compress: setting });
    await holding.setPlan();
    const lean = await TextEngine.fromStored(ort, 'wasm', m, stored, setting);
    expect(lean.heldWeightBytes).toBe(preparedBytes(stored));
    expect(holding.heldWeightBytes).toBe(preparedBytes(kernel));
    expect(await lean.logits(IDS)).toEqual(await holding.logits(IDS));
    // A later compile (a pruned plan with an early exit) re-derives the kernel form from the grid.
    const plan = { layers: [0, 1, 2, 4, 5, 6, 7], exit: 3 };
    await lean.setPlan(plan);
    await holding.setPlan(plan);
    expect(await lean.logits(IDS)).toEqual(await holding.logits(IDS));
    expect(await lean.logits(IDS, { exit: true })).toEqual(await holding.logits(IDS, { exit: true }));
    expect(lean.heldWeightBytes).toBe(preparedBytes(stored));
    await lean.dispose();
    await holding.dispose();
  }, 120_000);

  it('q8 on WASM (stored = kernel form, int8 per channel): holds it as it is', async () => {
    const m = model();
    const setting: WeightsSetting = { linear: 'q8' };
    const stored = await prepareStored(m, setting, 'wasm');
    const lean = await TextEngine.fromStored(ort, 'wasm', m, stored, setting);
    expect(lean.heldWeightBytes).toBe(preparedBytes(stored));
    await lean.dispose();
  });
});

describe('the first load with compress and keepVariant (TextService)', () => {
  it.each<[string, WeightsSetting]>([
    ['q4 g32', { linear: 'q4', group: 32 }],
    ['q8', { linear: 'q8' }],
  ])('%s: once the variant is exported the engine holds nothing and compiles from the files to the same logits', async (_, setting) => {
    const files = () => Object.fromEntries(FILES.map((f) => [f, readLocalModelFile('stories-layerskip', f)]));
    const maker = new TextService();
    await maker.init({ backend: 'wasm', numThreads: 1 });
    const plain = new TextService();
    await plain.init({ backend: 'wasm', numThreads: 1 });
    try {
      const info = await maker.load({ format: 'hf', files: files() }, { compress: setting, keepVariant: true });
      expect(info.memory.heldWeightBytes).toBeGreaterThan(0); // the stored form, for the export
      const before = await maker.logits(IDS);
      maker.exportVariant({ id: 'stories-layerskip', revision: 'r' });
      expect(maker.describe().memory.heldWeightBytes).toBe(0);
      expect(await maker.logits(IDS)).toEqual(before);
      // A re-plan reads and compresses the files again: what a load with compress alone compiles.
      await plain.load({ format: 'hf', files: files() }, { compress: setting });
      const plan = { layers: [0, 1, 2, 4, 5, 6, 7], exit: 3 };
      await maker.setPlan(plan);
      await plain.setPlan(plan);
      expect(await maker.logits(IDS)).toEqual(await plain.logits(IDS));
      expect(await maker.logits(IDS, { exit: true })).toEqual(await plain.logits(IDS, { exit: true }));
    } finally {
      await maker.dispose();
      await plain.dispose();
    }
  }, 120_000);
});
