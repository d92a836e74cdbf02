/**
 * requant 'float' (int8 weights folded to float32 at import, no int8 emulation) vs the bit-exact
 * 'exact-f64' mode, on both clips in Node (onnxruntime-web WASM, one thread). Not bit-exact by
 * design: the assertions bound how far its codes and its decoded quality may drift.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrt } from '../ort/runtime.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { LyraCodecEngine } from './engine.ts';
import { parseWav } from '../../core/wav.ts';
import { logSpectralDistance } from '../../core/audio-metrics.ts';
import { FRAME_SAMPLES, REFERENCE_QUANTIZERS } from '../../models/codec/bitrates.ts';

let exact: LyraCodecEngine;
let fast: LyraCodecEngine;

beforeAll(async () => {
  const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
  const bytes = {
    encoder: readLocalModelFile('lyra-v2', 'soundstream_encoder.tflite'),
    quantizer: readLocalModelFile('lyra-v2', 'quantizer.tflite'),
    decoder: readLocalModelFile('lyra-v2', 'lyragan.tflite'),
  };
  exact = await LyraCodecEngine.create(ort, 'wasm', bytes, { requant: 'exact-f64' });
  fast = await LyraCodecEngine.create(ort, 'wasm', bytes, { requant: 'float' });
}, 60_000); // two imports + four sessions: over vitest's 10 s default on a loaded machine
afterAll(async () => {
  await exact.dispose();
  await fast.dispose();
});

async function encodeAll(engine: LyraCodecEngine, audio: Float32Array): Promise<Int32Array[]> {
  engine.reset();
  const codes: Int32Array[] = [];
  for (let f = 0; f + FRAME_SAMPLES <= audio.length; f += FRAME_SAMPLES) codes.push(await engine.encode(audio.subarray(f, f + FRAME_SAMPLES), 46));
  return codes;
}

async function decodeAll(engine: LyraCodecEngine, codes: Int32Array[], n: number): Promise<Float32Array> {
  engine.reset();
  const out = new Float32Array(codes.length * FRAME_SAMPLES);
  for (const [f, c] of codes.entries()) out.set(await engine.decode(Int32Array.from(c, (v, s) => (s < n ? v : -1))), f * FRAME_SAMPLES);
  return out;
}

/** Fraction of frames whose first `stages` codes are all equal. */
function agreement(a: Int32Array[], b: Int32Array[], stages: number): number {
  return a.filter((c, f) => c.subarray(0, stages).every((v, s) => v === b[f]![s])).length / a.length;
}

describe("requant 'float' vs 'exact-f64'", () => {
  it('has far fewer nodes', () => {
    expect(fast.nodeCounts.encoder).toBeLessThan(exact.nodeCounts.encoder * 0.6);
    expect(fast.nodeCounts.decoder).toBeLessThan(exact.nodeCounts.decoder * 0.6);
  });

  for (const name of ['sample1_16kHz.wav', 'sample2_16kHz.wav']) {
    it(`${name}: first codes agree on most frames; decoded LSD within 0.15 dB of exact at 3.2/6/9.2 kbps`, async () => {
      const audio = parseWav(readLocalModelFile('lyra-testdata', name), { mono: true, sampleRate: 16000 }).samples;
      const codesExact = await encodeAll(exact, audio);
      const codesFast = await encodeAll(fast, audio);
      const agree = [1, 2, 4, 16].map((s) => agreement(codesExact, codesFast, s));
      const rows: string[] = [];
      for (const nq of REFERENCE_QUANTIZERS) {
        const ref = audio.subarray(0, codesExact.length * FRAME_SAMPLES);
        const lsdExact = logSpectralDistance(ref, await decodeAll(exact, codesExact, nq));
        const lsdFast = logSpectralDistance(ref, await decodeAll(fast, codesFast, nq));
        rows.push(`${nq}q: exact ${lsdExact.toFixed(3)} float ${lsdFast.toFixed(3)}`);
        // "Within noise": the float/exact gap stays well under the 0.2-0.3 dB between adjacent rates.
        expect(Math.abs(lsdFast - lsdExact)).toBeLessThan(0.15);
      }
      console.log(`${name}: frames with equal first 1/2/4/16 codes ${agree.map((a) => (100 * a).toFixed(0)).join('/')}%; LSD dB ${rows.join(', ')}`);
      // The first RVQ stage carries most of the signal: it must match on most frames.
      expect(agree[0]!).toBeGreaterThan(0.9);
    }, 120_000);
  }
});
