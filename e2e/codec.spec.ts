/** Lyra v2 as ONNX in a worker, in Chromium: round trips at Lyra's rates, streaming switches, typed errors. */
import { test, expect } from './fixtures.ts';

interface R {
  lsd: number;
  rmsRatio: number;
  samples: number;
  expected: number;
  bytes: number;
  finite: boolean;
}

test('both clips round-trip at 3.2, 6 and 9.2 kbps; distance falls as the bitrate rises', async ({ harness, whittleBackend }) => {
  test.skip(whittleBackend.backend !== 'wasm', 'full clips on WASM; WebGPU runs the short check below');
  test.setTimeout(240_000);
  const r = await harness.evaluate(async () => {
    const { whittle, logSpectralDistance, parseWav } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'codec' });
    const codec = await w.codec('lyra-v2');
    const out: Record<string, { lsd: number; rmsRatio: number; samples: number; expected: number; bytes: number; finite: boolean }> = {};
    for (const clip of ['sample1_16kHz.wav', 'sample2_16kHz.wav']) {
      const wav = await (await fetch(`/models/lyra-testdata/${clip}`)).arrayBuffer();
      const input = parseWav(wav, { mono: true }).samples;
      for (const kbps of [3.2, 6, 9.2]) {
        const packets = await codec.encodeWav(wav, { kbps });
        const pcm = await codec.decode(packets);
        let e1 = 0;
        let e2 = 0;
        for (const x of input) e1 += x * x;
        for (const x of pcm) e2 += x * x;
        out[`${clip}@${kbps}`] = {
          lsd: logSpectralDistance(input, pcm),
          rmsRatio: Math.sqrt(e2 / pcm.length) / Math.sqrt(e1 / input.length),
          samples: pcm.length,
          expected: Math.ceil(input.length / 320) * 320,
          bytes: packets.length,
          finite: pcm.every(Number.isFinite),
        };
      }
    }
    codec.dispose();
    return { out, info: codec.info };
  });
  expect(r.info.runtime.backend).toBe('wasm');
  for (const clip of ['sample1_16kHz.wav', 'sample2_16kHz.wav']) {
    const [lo, mid, hi] = [3.2, 6, 9.2].map((k) => r.out[`${clip}@${k}`]!) as [R, R, R];
    for (const x of [lo, mid, hi]) {
      expect(x.finite).toBe(true);
      expect(x.samples).toBe(x.expected); // frame-aligned: one 320-sample frame per packet, no extra delay
      expect(x.rmsRatio).toBeGreaterThan(0.3); // speech-like energy, not silence
      expect(x.rmsRatio).toBeLessThan(3);
    }
    expect(lo!.lsd).toBeGreaterThan(mid!.lsd);
    expect(mid!.lsd).toBeGreaterThan(hi!.lsd);
    // 3 header bytes + 4 bits per quantizer per frame
    const frames = lo!.expected / 320;
    expect(lo!.bytes).toBe(frames * (3 + 8));
    expect(hi!.bytes).toBe(frames * (3 + 23));
  }
});

test('streaming: the bitrate switches on every frame and the decoder follows the headers', async ({ harness, whittleBackend }) => {
  const r = await harness.evaluate(async (backend) => {
    const { whittle, parseWav } = window.harness;
    const w = await whittle.Whittle.create({ backend, storeName: `codec-stream-${backend}` });
    const codec = await w.codec('lyra-v2');
    const wav = await (await fetch('/models/lyra-testdata/sample1_16kHz.wav')).arrayBuffer();
    const FRAMES = backend === 'webgpu' ? 12 : 24; // SwiftShader emulates the GPU on the CPU: keep it short
    const input = parseWav(wav, { mono: true }).samples.subarray(0, 320 * FRAMES);
    const enc = codec.encoder({ kbps: 6 });
    const dec = codec.decoder();
    const rates = [6, 3.2, 9.2, 0.2, 6, 3.2];
    const decoded: number[] = [];
    const quantizers: number[] = [];
    for (let f = 0; f < FRAMES; f++) {
      enc.setBitrate(rates[f % rates.length]!);
      const { packets } = await enc.encode(input.subarray(f * 320, (f + 1) * 320));
      const out = await dec.decode(packets);
      decoded.push(...out.pcm);
      quantizers.push(...out.quantizers);
    }
    // Streaming with state carried == whole-clip decode of the same packets.
    await enc.reset();
    let all = new Uint8Array(0);
    for (let f = 0; f < FRAMES; f++) {
      enc.setBitrate(rates[f % rates.length]!);
      const { packets } = await enc.encode(input.subarray(f * 320, (f + 1) * 320));
      const next = new Uint8Array(all.length + packets.length);
      next.set(all);
      next.set(packets, all.length);
      all = next;
    }
    const whole = await codec.decode(all);
    let maxDiff = 0;
    for (let i = 0; i < whole.length; i++) maxDiff = Math.max(maxDiff, Math.abs(whole[i]! - decoded[i]!));
    const nan = await codec.encode(new Float32Array(320).fill(Number.NaN)).then(() => null, (e: { code?: string }) => e.code);
    const badRate = await codec.encode(new Float32Array(320), { kbps: 5.1 }).then(() => null, (e: { code?: string }) => e.code);
    codec.dispose();
    return { frames: FRAMES, quantizers, samples: decoded.length, maxDiff, finite: decoded.every(Number.isFinite), nan, badRate, backend: codec.info.runtime.backend };
  }, whittleBackend.backend);
  expect(r.backend).toBe(whittleBackend.backend);
  expect(r.quantizers).toEqual(Array.from({ length: r.frames }, (_, f) => [30, 16, 46, 1, 30, 16][f % 6]));
  expect(r.samples).toBe(r.frames * 320);
  expect(r.finite).toBe(true);
  expect(r.maxDiff).toBeLessThan(1e-6);
  expect(r.nan).toBe('INVALID_ARGUMENT');
  expect(r.badRate).toBe('INVALID_ARGUMENT');
});

test('invalid, stereo and wrong-format WAV files are typed errors', async ({ harness, whittleBackend }) => {
  test.skip(whittleBackend.backend !== 'wasm', 'input validation is backend-independent');
  const r = await harness.evaluate(async () => {
    const { whittle, writeWav } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'codec-errors' });
    const codec = await w.codec('lyra-v2');
    const code = (p: Promise<unknown>) => p.then(() => null, (e: { code?: string; details?: { reason?: string } }) => `${e.code}:${e.details?.reason ?? ''}`);
    const invalid = await (await fetch('/models/lyra-testdata/invalid.wav')).arrayBuffer();
    const stereo = writeWav(new Float32Array(640), 16000, 2);
    const at48k = await (await fetch('/models/lyra-testdata/sample1_48kHz.wav')).arrayBuffer();
    const res = {
      invalid: await code(codec.encodeWav(invalid)),
      stereo: await code(codec.encodeWav(stereo)),
      notWav: await code(codec.encodeWav(new TextEncoder().encode('hello').buffer)),
      // A 48 kHz clip is resampled, not refused.
      at48k: (await codec.encodeWav(at48k, { kbps: 3.2 })).length > 0,
    };
    codec.dispose();
    return res;
  });
  expect(r.invalid).toMatch(/^INVALID_ARGUMENT:/);
  expect(r.stereo).toBe('INVALID_ARGUMENT:stereo');
  expect(r.notWav).toBe('INVALID_ARGUMENT:not-wav');
  expect(r.at48k).toBe(true);
});
