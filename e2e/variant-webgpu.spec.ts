/**
 * The first load with `compress` on WebGPU (sdk/text-variant.ts saveStreamedVariant): the
 * variant is compressed for WebGPU's kernels (4-bit MatMulNBits blocks, the 8-bit head built from
 * the table's rows) a block at a time into the store, then loaded; its logits are those of the
 * same model compressed in place in the worker (`lm.compress`, the weights never leaving it), and
 * the next load runs from the cached variant with the same logits. WebGPU here is SwiftShader: the
 * tiny stories260K keeps it short.
 */
import { test, expect } from './fixtures.ts';

test('WebGPU: a first load with compress streams its variant into the store and runs it, as lm.compress would; the next load reuses it', async ({ harness, whittleBackend }) => {
  test.skip(whittleBackend.backend !== 'webgpu', "WebGPU's stored forms; the WASM project runs e2e/variant.spec.ts");
  test.setTimeout(240_000);
  const r = await harness.evaluate(async () => {
    const { whittle } = window.harness;
    const storeName = 'variant-webgpu';
    await (await whittle.Whittle.create({ backend: 'webgpu', storeName })).store.clear();
    const setting = { linear: 'q4', group: 32 } as const;
    const prompt = [1, 403, 407, 261, 378];
    const run = async () => {
      const w = await whittle.Whittle.create({ backend: 'webgpu', storeName });
      const events: string[] = [];
      const lm = await w.text('stories260K', { compress: setting, onProgress: (e) => e.type === 'variant' && events.push(e.action) });
      const out = { variant: lm.variant ?? null, backend: lm.info.runtime.backend, weights: lm.info.weights, logits: Array.from(await lm.logits(prompt)), events: [...new Set(events)] };
      lm.dispose();
      return out;
    };
    const first = await run();
    const second = await run();
    const inPlace = await (await whittle.Whittle.create({ backend: 'webgpu', storeName: 'variant-webgpu-ref' })).text('stories260K');
    await inPlace.compress(setting);
    const reference = Array.from(await inPlace.logits(prompt));
    inPlace.dispose();
    return { first, second, reference };
  });
  expect(r.first.backend).toBe('webgpu');
  expect(r.first.weights).toEqual({ linear: 'q4', group: 32 });
  expect(r.first.variant).toBe('stories260K#q4-g32-rtn');
  expect(r.first.events).toEqual(['compressing', 'saved', 'loaded']);
  expect(r.second.events).toEqual(['loaded']);
  const maxDiff = (a: number[], b: number[]) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
  const scale = Math.max(...r.reference.map(Math.abs));
  // The same stored weights through the same kernels: equal up to the GPU's summation order.
  expect(maxDiff(r.first.logits, r.reference) / scale).toBeLessThan(1e-4);
  expect(r.second.logits).toEqual(r.first.logits);
});
