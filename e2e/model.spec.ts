/**
 * The first real model through the whole path: registry manifest -> verified store -> worker
 * -> onnxruntime-web (WebGPU or WASM) -> logits, checked against an independent reference.
 */
import { test, expect } from './fixtures.ts';

const TOKENS = [1, 403, 407, 261, 378, 432, 383, 286, 2, 0, 511];

test('stories260K zero-block plan runs in a worker and matches the reference', async ({ harness, backendName }) => {
  const result = await harness.evaluate(
    async ({ tokens, backend }) => {
      const { whittle, referenceHeadLogits, maxRelativeError } = window.harness;
      const w = await whittle.Whittle.create({ backend, storeName: `model-${backend}` });
      const head = await w.headModel('stories260K');
      const logits = await head.logits(tokens);
      // Independent computation from the same bytes, fetched separately.
      const file = await (await fetch('/models/stories260K/stories260K.bin')).arrayBuffer();
      const expected = referenceHeadLogits(file, tokens);
      head.dispose();
      return {
        info: head.info,
        length: logits.length,
        maxRelErr: maxRelativeError(logits, expected),
        argmax0: logits.slice(0, 512).indexOf(Math.max(...logits.slice(0, 512))),
        expectedArgmax0: expected.slice(0, 512).indexOf(Math.max(...expected.slice(0, 512))),
      };
    },
    { tokens: TOKENS, backend: backendName },
  );
  expect(result.info.runtime.backend).toBe(backendName);
  expect(result.length).toBe(TOKENS.length * 512);
  expect(result.maxRelErr).toBeLessThan(1e-4);
  expect(result.argmax0).toBe(result.expectedArgmax0);
});

test('webgpu and wasm produce matching logits in the same page', async ({ harness, backendName }) => {
  test.skip(backendName !== 'webgpu', 'needs the WebGPU adapter');
  const diff = await harness.evaluate(async (tokens) => {
    const { whittle, maxRelativeError } = window.harness;
    // Forced: `auto` would (rightly) skip SwiftShader's software adapter.
    const w = await whittle.Whittle.create({ backend: 'webgpu', storeName: 'cross-backend' });
    const gpu = await w.headModel('stories260K', { backend: 'webgpu' });
    const cpu = await w.headModel('stories260K', { backend: 'wasm' });
    const [a, b] = await Promise.all([gpu.logits(tokens), cpu.logits(tokens)]);
    gpu.dispose();
    cpu.dispose();
    return { err: maxRelativeError(a, b), gpu: gpu.info.runtime.backend, cpu: cpu.info.runtime.backend, adapter: w.capabilities.webgpu };
  }, TOKENS);
  expect(diff.gpu).toBe('webgpu');
  expect(diff.cpu).toBe('wasm');
  expect(diff.adapter.available).toBe(true);
  expect(diff.err).toBeLessThan(1e-4);
});

test('multi-threaded WASM is active under COOP/COEP', async ({ harness, backendName }) => {
  test.skip(backendName !== 'wasm', 'threads are a WASM property');
  const info = await harness.evaluate(async () => {
    const { whittle } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'threads' });
    const head = await w.headModel('stories260K');
    await head.logits([1, 2, 3]);
    head.dispose();
    return { pageIsolated: crossOriginIsolated, choice: w.choice, runtime: head.info.runtime, cores: navigator.hardwareConcurrency };
  });
  expect(info.pageIsolated).toBe(true);
  expect(info.runtime.crossOriginIsolated).toBe(true);
  expect(info.runtime.numThreads).toBeGreaterThan(1);
  expect(info.choice.reason).toContain('cross-origin isolated');
});
