/**
 * The codec on WebGPU (SwiftShader here) against WASM in one page, on the same 40 frames of
 * sample1 at 6 kbps.
 *
 * Same requant mode on both ('exact-f32'): WebGPU's codes equal WASM 'exact-f64''s (TFLite's) on
 * every frame and its decoded audio is within 1e-5 of WASM's from the same packets (measured
 * 2026-12-01: 40/40 frames, 5.4e-7). Default modes (WebGPU 'exact-f32', WASM 'float'): they
 * differ by the int8 emulation, not by the backend, within the float-vs-exact tolerances of
 * workers/codec/fast-mode.test.ts (measured: 0.04 dB LSD and 4% RMS on the same packets).
 * bench:codec's old "WebGPU 6.2-6.7 dB vs WASM 6.8-7.2" compared different audio (WebGPU ran a
 * 100-frame excerpt, WASM both clips); on the same excerpt they are within 0.08 dB.
 */
import { test, expect } from './fixtures.ts';

test('default modes: the same packets decode to the same quality on WebGPU and WASM; first codes agree', async ({ harness, whittleBackend }) => {
  test.skip(whittleBackend.backend !== 'webgpu', 'compares WebGPU with WASM in one page');
  test.setTimeout(300_000);
  const r = await harness.evaluate(async () => {
    const { whittle, logSpectralDistance, parseWav } = window.harness;
    const wasm = await (await whittle.Whittle.create({ backend: 'wasm', storeName: 'backends-wasm' })).codec('lyra-v2');
    const gpu = await (await whittle.Whittle.create({ backend: 'webgpu', storeName: 'backends-webgpu' })).codec('lyra-v2');
    const wav = await (await fetch('/models/lyra-testdata/sample1_16kHz.wav')).arrayBuffer();
    const input = parseWav(wav, { mono: true }).samples.subarray(8000, 8000 + 320 * 40); // speech, past the leading silence
    const wasmPackets = await wasm.encode(input, { kbps: 6 });
    const gpuPackets = await gpu.encode(input, { kbps: 6 });
    const wasmPcm = await wasm.decode(wasmPackets);
    const gpuPcm = await gpu.decode(wasmPackets);
    let diff = 0;
    let energy = 0;
    for (let i = 0; i < wasmPcm.length; i++) {
      diff += (wasmPcm[i]! - gpuPcm[i]!) ** 2;
      energy += wasmPcm[i]! ** 2;
    }
    // First code of each packet: byte 3's high nibble (3 header bytes, then 4 bits per quantizer, first code most significant).
    const packetBytes = 3 + 15;
    let firstCodeSame = 0;
    for (let f = 0; f < 40; f++) if (wasmPackets[f * packetBytes + 3]! >> 4 === gpuPackets[f * packetBytes + 3]! >> 4) firstCodeSame++;
    const out = {
      backends: [wasm.info.runtime.backend, gpu.info.runtime.backend],
      packetLengths: [wasmPackets.length, gpuPackets.length],
      lsdWasm: logSpectralDistance(input, wasmPcm),
      lsdWebgpuSamePackets: logSpectralDistance(input, gpuPcm),
      relativeDifference: Math.sqrt(diff / energy),
      firstCodeSame,
    };
    wasm.dispose();
    gpu.dispose();
    return out;
  });
  console.log(JSON.stringify(r));
  expect(r.backends).toEqual(['wasm', 'webgpu']);
  expect(r.packetLengths).toEqual([40 * 18, 40 * 18]);
  expect(Math.abs(r.lsdWebgpuSamePackets - r.lsdWasm)).toBeLessThan(0.15);
  expect(r.relativeDifference).toBeLessThan(0.1);
  expect(r.firstCodeSame).toBeGreaterThanOrEqual(36); // float vs exact: 94-99% of frames (fast-mode test)
});

test("the same requant mode on both: WebGPU 'exact-f32' against WASM 'exact-f32' and TFLite-exact 'exact-f64'", async ({ harness, whittleBackend }) => {
  test.skip(whittleBackend.backend !== 'webgpu', 'compares WebGPU with WASM in one page');
  test.setTimeout(300_000);
  const r = await harness.evaluate(async () => {
    const { whittle, parseWav } = window.harness;
    const wasmWhittle = await whittle.Whittle.create({ backend: 'wasm', storeName: 'backends-exact-wasm' });
    const gpuWhittle = await whittle.Whittle.create({ backend: 'webgpu', storeName: 'backends-exact-webgpu' });
    const refused = await gpuWhittle.codec('lyra-v2', { requant: 'exact-f64' }).then(
      () => null,
      (e: { code?: string }) => e.code,
    );
    const exact = await wasmWhittle.codec('lyra-v2', { requant: 'exact-f64' });
    const wasmF32 = await wasmWhittle.codec('lyra-v2', { requant: 'exact-f32' });
    const gpu = await gpuWhittle.codec('lyra-v2', { requant: 'exact-f32' });
    const wav = await (await fetch('/models/lyra-testdata/sample1_16kHz.wav')).arrayBuffer();
    const FRAMES = 40;
    const input = parseWav(wav, { mono: true }).samples.subarray(8000, 8000 + 320 * FRAMES);
    const packetBytes = 3 + 15; // 6 kbps
    const exactPackets = await exact.encode(input, { kbps: 6 });
    const gpuPackets = await gpu.encode(input, { kbps: 6 });
    let framesIdentical = 0;
    for (let f = 0; f < FRAMES; f++) {
      let same = true;
      for (let b = 3; b < packetBytes; b++) if (exactPackets[f * packetBytes + b] !== gpuPackets[f * packetBytes + b]) same = false;
      if (same) framesIdentical++;
    }
    const pcmWasm = await wasmF32.decode(exactPackets);
    const pcmGpu = await gpu.decode(exactPackets);
    const pcmExact = await exact.decode(exactPackets);
    let maxGpuWasm = 0;
    let maxWasmExact = 0;
    for (let i = 0; i < pcmWasm.length; i++) {
      maxGpuWasm = Math.max(maxGpuWasm, Math.abs(pcmGpu[i]! - pcmWasm[i]!));
      maxWasmExact = Math.max(maxWasmExact, Math.abs(pcmExact[i]! - pcmWasm[i]!));
    }
    for (const c of [exact, wasmF32, gpu]) c.dispose();
    return { refused, frames: FRAMES, framesIdentical, maxGpuWasm, maxWasmExact, backend: gpu.info.runtime.backend };
  });
  console.log(JSON.stringify(r));
  expect(r.backend).toBe('webgpu');
  expect(r.refused).toBe('INVALID_ARGUMENT');
  expect(r.framesIdentical).toBe(r.frames);
  expect(r.maxGpuWasm).toBeLessThan(1e-5); // float32 summation order on the GPU only
  expect(r.maxWasmExact).toBeLessThan(1e-5);
});
