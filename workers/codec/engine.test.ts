/** The codec engine end to end in Node (onnxruntime-web WASM, one thread) on both clips. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrt } from '../ort/runtime.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { LyraCodecEngine } from './engine.ts';
import { parseWav } from '../../core/wav.ts';
import { logSpectralDistance, rms } from '../../core/audio-metrics.ts';
import { packPacket, unpackPacket } from './packet.ts';
import { FRAME_SAMPLES, REFERENCE_QUANTIZERS } from '../../models/codec/bitrates.ts';
import { WhittleError } from '../../core/errors.ts';

let engine: LyraCodecEngine;

beforeAll(async () => {
  const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
  engine = await LyraCodecEngine.create(ort, 'wasm', {
    encoder: readLocalModelFile('lyra-v2', 'soundstream_encoder.tflite'),
    quantizer: readLocalModelFile('lyra-v2', 'quantizer.tflite'),
    decoder: readLocalModelFile('lyra-v2', 'lyragan.tflite'),
  });
});
afterAll(() => engine.dispose());

/** Encoder codes of every frame at 46 quantizers (lower rates are prefixes: see the test below). */
async function encodeAll(audio: Float32Array): Promise<Int32Array[]> {
  engine.resetEncoder();
  const codes: Int32Array[] = [];
  for (let f = 0; f + FRAME_SAMPLES <= audio.length; f += FRAME_SAMPLES)
    codes.push(await engine.encode(audio.subarray(f, f + FRAME_SAMPLES), 46));
  return codes;
}

/** Packet -> unpack -> decode every frame at `numQuantizers`, as a receiver would. */
async function decodeAll(codes: Int32Array[], numQuantizers: number): Promise<Float32Array> {
  engine.resetDecoder();
  const out = new Float32Array(codes.length * FRAME_SAMPLES);
  for (const [f, c] of codes.entries()) {
    const packet = unpackPacket(packPacket(c, numQuantizers, f)); // keeps the first numQuantizers codes
    expect(packet.frameIndex).toBe(f & 0xffff);
    out.set(await engine.decode(packet.codes), f * FRAME_SAMPLES);
  }
  return out;
}

describe('LyraCodecEngine', () => {
  for (const name of ['sample1_16kHz.wav', 'sample2_16kHz.wav']) {
    it(`${name}: round trip at 3.2/6/9.2 kbps is speech-like and gets closer as the rate rises`, async () => {
      const audio = parseWav(readLocalModelFile('lyra-testdata', name), { mono: true, sampleRate: 16000 }).samples;
      const lsd: number[] = [];
      // The encoder runs once: a frame's first n codes are the same at every rate (asserted below).
      const codes = await encodeAll(audio);
      for (const nq of REFERENCE_QUANTIZERS) {
        const out = await decodeAll(codes, nq);
        const ref = audio.subarray(0, out.length);
        // Speech-like: not silent, not clipping, level within 6 dB of the input.
        expect(rms(out) / rms(ref)).toBeGreaterThan(0.5);
        expect(rms(out) / rms(ref)).toBeLessThan(2);
        expect(out.every((x) => Number.isFinite(x) && Math.abs(x) <= 1.5)).toBe(true);
        lsd.push(logSpectralDistance(ref, out));
      }
      console.log(`${name}: LSD dB at 3.2/6/9.2 kbps = ${lsd.map((d) => d.toFixed(2)).join(' / ')}`);
      expect(lsd[0]!).toBeLessThan(20);
      expect(lsd[1]!).toBeLessThan(lsd[0]!);
      expect(lsd[2]!).toBeLessThan(lsd[1]!);
    }, 120_000);
  }

  it('switches bitrate per frame without a reset, and reset() restores the initial state', async () => {
    const audio = parseWav(readLocalModelFile('lyra-testdata', 'sample1_16kHz.wav'), { mono: true, sampleRate: 16000 }).samples;
    engine.reset();
    const first: Int32Array[] = [];
    for (let f = 0; f < 6; f++) first.push(await engine.encode(audio.subarray(f * 320, (f + 1) * 320), [16, 46, 30][f % 3]!));
    // The first quantizers' codes do not depend on the rate.
    engine.reset();
    for (let f = 0; f < 6; f++) {
      const c = await engine.encode(audio.subarray(f * 320, (f + 1) * 320), 46);
      expect(Array.from(c.subarray(0, 16))).toEqual(Array.from(first[f]!.subarray(0, 16)));
      expect(first[f]!.filter((x) => x >= 0).length).toBe([16, 46, 30][f % 3]);
    }
  });

  it("rvq: 'graph' (the imported quantizer graphs) gives the same codes and features as the JS RVQ", async () => {
    const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
    const graph = await LyraCodecEngine.create(
      ort,
      'wasm',
      {
        encoder: readLocalModelFile('lyra-v2', 'soundstream_encoder.tflite'),
        quantizer: readLocalModelFile('lyra-v2', 'quantizer.tflite'),
        decoder: readLocalModelFile('lyra-v2', 'lyragan.tflite'),
      },
      { rvq: 'graph' },
    );
    expect(graph.nodeCounts.quantizerEncode).toBeGreaterThan(500);
    const audio = parseWav(readLocalModelFile('lyra-testdata', 'sample2_16kHz.wav'), { mono: true, sampleRate: 16000 }).samples;
    engine.reset();
    for (let f = 20; f < 30; f++) {
      const frame = audio.subarray(f * 320, (f + 1) * 320);
      const a = await engine.encode(frame, 30);
      const b = await graph.encode(frame, 30);
      expect(Array.from(b)).toEqual(Array.from(a));
      const fa = await engine.dequantize(a);
      const fb = await graph.dequantize(b);
      for (let i = 0; i < 64; i++) expect(Math.abs(fa[i]! - fb[i]!)).toBeLessThan(1e-5);
    }
    await graph.dispose();
  });

  it('rejects bad frames and quantizer counts with typed errors', async () => {
    await expect(engine.encode(new Float32Array(100), 30)).rejects.toBeInstanceOf(WhittleError);
    await expect(engine.encode(new Float32Array(320), 47)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(engine.decode(Int32Array.of(16))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
