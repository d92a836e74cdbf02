/**
 * Whittle's ONNX Lyra vs the real TFLite interpreter (tfjs-tflite WASM), frame by frame with
 * streaming state carried on both sides, over both 16 kHz test clips.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import * as ort from 'onnxruntime-web';
import { importLyra, type LyraGraphs } from './lyra.ts';
import { OracleModel, swapSubgraphs } from './oracle/tflite-oracle.ts';
import { readLocalModelFile } from '../../local.ts';
import { parseWav } from '../../../core/wav.ts';
import { rvqDecode, rvqEncode } from '../../../workers/codec/rvq.ts';
import { StatefulSession } from '../../../workers/codec/stateful-session.ts';

ort.env.wasm.numThreads = 1;

const FRAME = 320;
const RATES = [16, 30, 46];

function clip(name: string): Float32Array {
  return parseWav(readLocalModelFile('lyra-testdata', name), { mono: true, sampleRate: 16000 }).samples;
}

describe('Lyra v2 import vs the TFLite oracle', () => {
  let lyra: LyraGraphs;
  let quantizerBytes: Uint8Array;
  beforeAll(() => {
    quantizerBytes = new Uint8Array(readLocalModelFile('lyra-v2', 'quantizer.tflite'));
    lyra = importLyra({
      encoder: readLocalModelFile('lyra-v2', 'soundstream_encoder.tflite'),
      quantizer: quantizerBytes,
      decoder: readLocalModelFile('lyra-v2', 'lyragan.tflite'),
    });
  });

  it('imports the three models with their streaming state', () => {
    expect(lyra.encoder.states).toHaveLength(14);
    expect(lyra.decoder.states).toHaveLength(18);
    expect(lyra.codebooks).toMatchObject({ stages: 46, entries: 16, dims: 64 });
    // Node counts are reported, not pinned exactly: they change when lowering improves.
    for (const g of [lyra.encoder, lyra.quantizerEncode!, lyra.quantizerDecode!, lyra.decoder]) expect(g.nodeCount).toBeGreaterThan(100);
  });

  /** Runs `frames` frames of a clip through both sides; returns counts for the assertions. */
  async function compareClip(name: string, lyra: LyraGraphs, maxFrames = Infinity): Promise<void> {
    const audio = clip(name);
    const encBytes = new Uint8Array(readLocalModelFile('lyra-v2', 'soundstream_encoder.tflite'));
    const oEnc = await OracleModel.create(encBytes);
    const oQe = await OracleModel.create(swapSubgraphs(quantizerBytes, 0, 1)); // run the `encode` subgraph
    const oDec = await OracleModel.create(new Uint8Array(readLocalModelFile('lyra-v2', 'lyragan.tflite')));
    const enc = await StatefulSession.create(ort, lyra.encoder, 'wasm');
    const qGraph = lyra.quantizerEncode ? await StatefulSession.create(ort, lyra.quantizerEncode, 'wasm') : null;
    const dec = await StatefulSession.create(ort, lyra.decoder, 'wasm');
    let frames = 0;
    let featureMismatch = 0;
    let maxDecodeDiff = 0;
    try {
      for (let f = 0; f + FRAME <= audio.length && frames < maxFrames; f += FRAME, frames++) {
        const x = audio.subarray(f, f + FRAME);
        const want = oEnc.run([x])[0] as Float32Array;
        const got = (await enc.run({ input_audio: new ort.Tensor('float32', x.slice(), [1, FRAME]) })).output_0!.data as Float32Array;
        if (got.some((v, i) => v !== want[i])) featureMismatch++;
        for (const nq of RATES) {
          const oracle = oQe.run([Int32Array.of(nq), want]).find((t) => t.length === 46) as Int32Array;
          // Our pipeline end to end: our features -> pure-function RVQ.
          expect(Array.from(rvqEncode(lyra.codebooks, got, nq)), `frame ${frames} at ${nq} quantizers`).toEqual(Array.from(oracle));
          // The imported quantizer graph, every 8th frame (it costs ~1 ms a call).
          if (frames % 8 === 0 && lyra.quantizerEncode) {
            const g = await qGraph!.run({
              input_frames: new ort.Tensor('float32', got.slice(), [1, 1, 64]),
              num_quantizers: new ort.Tensor('int32', Int32Array.of(nq), []),
            });
            expect(Array.from(g.output_0!.data as Int32Array)).toEqual(Array.from(oracle));
            expect(Number(g.output_1!.data[0])).toBe(4);
          }
        }
        // Decoder: same 6 kbps features into both, state carried.
        const features = rvqDecode(lyra.codebooks, rvqEncode(lyra.codebooks, got, 30));
        const wantPcm = oDec.run([features])[0] as Float32Array;
        const gotPcm = (await dec.run({ input_audio: new ort.Tensor('float32', features, [1, 1, 64]) })).output_0!.data as Float32Array;
        for (let i = 0; i < FRAME; i++) maxDecodeDiff = Math.max(maxDecodeDiff, Math.abs(gotPcm[i]! - wantPcm[i]!));
      }
    } finally {
      oEnc.dispose();
      oQe.dispose();
      oDec.dispose();
    }
    expect(frames).toBeGreaterThanOrEqual(Math.min(maxFrames, 100));
    expect(featureMismatch).toBe(0); // the int8 tail is emulated bit-exactly, so features match exactly
    expect(maxDecodeDiff).toBeLessThan(1e-5); // float32 summation order only
    console.log(`${name}: ${frames} frames, feature mismatches ${featureMismatch}, decoder max |diff| ${maxDecodeDiff.toExponential(2)}`);
  }

  for (const name of ['sample1_16kHz.wav', 'sample2_16kHz.wav']) {
    it(
      `${name}: identical features and identical codes at 16/30/46 quantizers on every frame; decoder within 1e-5`,
      () => compareClip(name, lyra),
      120_000,
    );
  }

  it("requant 'exact-f32' (float32-only graphs of WebGPU-implemented ops): the same on the first 30 frames of sample2", async () => {
    const f32 = importLyra(
      {
        encoder: readLocalModelFile('lyra-v2', 'soundstream_encoder.tflite'),
        quantizer: quantizerBytes,
        decoder: readLocalModelFile('lyra-v2', 'lyragan.tflite'),
      },
      { requant: 'exact-f32', quantizerGraphs: false },
    );
    // Only ops onnxruntime-web's WebGPU EP implements (its op-resolve-rules), plus shape-only ones.
    const webgpuOps = new Set([
      'Add',
      'Cast',
      'Clip',
      'Concat',
      'Conv',
      'ConvTranspose',
      'Div',
      'Floor',
      'LeakyRelu',
      'Less',
      'Mul',
      'Slice',
      'Split',
      'Sub',
      'Transpose',
      'Identity',
      'Reshape',
    ]);
    for (const g of [f32.encoder, f32.decoder]) {
      // GraphBuilder names nodes `${opType}_${index}`.
      const ops = new Set([...new TextDecoder('latin1').decode(g.built.model).matchAll(/\b([A-Z][A-Za-z]+)_\d+\b/g)].map((m) => m[1]!));
      expect([...ops].filter((op) => !webgpuOps.has(op))).toEqual([]);
    }
    await compareClip('sample2_16kHz.wav', f32, 30);
  }, 60_000);

  it('decodes codes to the same features as the quantizer decode graph', async () => {
    const qd = await StatefulSession.create(ort, lyra.quantizerDecode!, 'wasm');
    const oQd = await OracleModel.create(quantizerBytes);
    for (let t = 0; t < 8; t++) {
      const codes = Int32Array.from({ length: 46 }, (_, s) => (s < 16 + t * 4 ? (s * 7 + t) % 16 : -1));
      const want = oQd.run([codes])[0] as Float32Array;
      const got = (await qd.run({ encoding_indices: new ort.Tensor('int32', codes, [46, 1, 1]) })).output_0!.data as Float32Array;
      expect(Array.from(rvqDecode(lyra.codebooks, codes))).toEqual(Array.from(want));
      for (let i = 0; i < 64; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-5);
    }
    oQd.dispose();
  });
});
