/**
 * Backend choice in a real browser: this machine has no GPU, and Chromium (with
 * --enable-unsafe-webgpu) offers SwiftShader's WebGPU adapter, a CPU emulation. `auto` must
 * see through it and run on WASM; forcing `webgpu` must still use it.
 */
import { test, expect } from './fixtures.ts';

test('auto prefers WASM over a software WebGPU adapter; forcing webgpu still uses it', async ({ harness, whittleBackend }) => {
  test.skip(whittleBackend.backend !== 'webgpu', 'the probe is backend-independent: once, in the project that expects an adapter');
  const r = await harness.evaluate(async () => {
    const { whittle } = window.harness;
    const auto = await whittle.Whittle.create({ backend: 'auto', storeName: 'probe-auto' });
    const forced = await whittle.Whittle.create({ backend: 'webgpu', storeName: 'probe-forced' });
    // The model a default `auto` load runs on: what the playground's user gets.
    const head = await auto.headModel('stories260K');
    await head.logits([1, 2, 3]);
    head.dispose();
    return { adapter: auto.capabilities.webgpu, auto: auto.choice, forced: forced.choice, autoRuntime: head.info.runtime.backend };
  });
  test.info().annotations.push({ type: 'adapter', description: JSON.stringify(r.adapter) });
  expect(r.adapter.available).toBe(true);
  test.skip(!/swiftshader/i.test(r.adapter.architecture ?? ''), `this browser's adapter is not SwiftShader: ${JSON.stringify(r.adapter)}`);

  // What was detected is reported, not only acted on.
  expect(r.adapter.software).toBe(true);
  expect(r.adapter.vendor).toBe('google');
  expect(r.adapter.architecture).toBe('swiftshader');
  expect(r.adapter.softwareReason).toContain('SwiftShader');
  // whittle/playwright's probe (run on the same origin before the test) saw the same adapter.
  expect(whittleBackend.adapter).toMatchObject({ vendor: r.adapter.vendor, architecture: r.adapter.architecture, software: true });

  expect(r.auto.backend).toBe('wasm');
  expect(r.auto.reason).toMatch(/SwiftShader.*software/);
  expect(r.auto.reason).toContain('WASM with');
  expect(r.autoRuntime).toBe('wasm');

  expect(r.forced.backend).toBe('webgpu');
  expect(r.forced.reason).toMatch(/^forced; note that the WebGPU adapter is SwiftShader/);
});
