/**
 * 'exact-f64' Lyra encoder + RVQ vs the TFLite oracle on the varied test set
 * (models/codec/testdata/speech-set: espeak-ng voices and rates, noise, clipping, quiet, an 8 kHz
 * source, chords, tones, a sweep, near-silence): identical encoder features and identical codes
 * at 16, 30 and 46 quantizers on every frame, streaming state carried on both sides.
 *
 * More clips: WHITTLE_CODEC_CLIPS=/dir/of/16kHz/wavs npx vitest run models/import/tflite/lyra.speech-set.oracle.test.ts
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { importLyra, type LyraGraphs } from './lyra.ts';
import { OracleModel, swapSubgraphs } from './oracle/tflite-oracle.ts';
import { StatefulSession } from '../../../workers/codec/stateful-session.ts';
import { readLocalModelFile } from '../../local.ts';
import { parseWav } from '../../../core/wav.ts';
import { rvqEncode } from '../../../workers/codec/rvq.ts';

ort.env.wasm.numThreads = 1;

const FRAME = 320;
const RATES = [16, 30, 46];
const SET_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../codec/testdata/speech-set');

function clipsIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.wav'))
    .sort()
    .map((f) => join(dir, f));
}

const clips = [...clipsIn(SET_DIR), ...(process.env.WHITTLE_CODEC_CLIPS ? clipsIn(process.env.WHITTLE_CODEC_CLIPS) : [])];

describe("Lyra 'exact-f64' vs the TFLite oracle on the varied speech set", () => {
  let lyra: LyraGraphs;
  let encoderBytes: Uint8Array;
  let quantizerEncodeBytes: Uint8Array;
  beforeAll(() => {
    encoderBytes = new Uint8Array(readLocalModelFile('lyra-v2', 'soundstream_encoder.tflite'));
    const quantizer = readLocalModelFile('lyra-v2', 'quantizer.tflite');
    quantizerEncodeBytes = swapSubgraphs(new Uint8Array(quantizer), 0, 1); // the oracle runs subgraph 0: make it `encode`
    lyra = importLyra(
      { encoder: encoderBytes.slice().buffer, quantizer, decoder: readLocalModelFile('lyra-v2', 'lyragan.tflite') },
      { requant: 'exact-f64', quantizerGraphs: false },
    );
  });

  it('has the whole set', () => {
    expect(clipsIn(SET_DIR).length).toBe(19);
  });

  for (const path of clips) {
    const name = path.split('/').pop()!;
    it(`${name}: identical features and codes at ${RATES.join('/')} quantizers on every frame`, async () => {
      const audio = parseWav(readFileSync(path), { mono: true, sampleRate: 16000 }).samples;
      const oracleEncoder = await OracleModel.create(encoderBytes);
      const oracleQuantizer = await OracleModel.create(quantizerEncodeBytes);
      const encoder = await StatefulSession.create(ort, lyra.encoder, 'wasm');
      let frames = 0;
      let featuresDiffer = 0;
      let codesDiffer = 0;
      let firstDivergence = -1;
      try {
        for (let at = 0; at + FRAME <= audio.length; at += FRAME, frames++) {
          const x = audio.subarray(at, at + FRAME);
          const want = oracleEncoder.run([x])[0] as Float32Array;
          const got = (await encoder.run({ input_audio: new ort.Tensor('float32', x.slice(), [1, FRAME]) })).output_0!.data as Float32Array;
          let differs = got.some((v, i) => v !== want[i]);
          if (differs) featuresDiffer++;
          for (const nq of RATES) {
            const tfliteCodes = oracleQuantizer.run([Int32Array.of(nq), want]).find((t) => t.length === 46) as Int32Array;
            const ours = rvqEncode(lyra.codebooks, got, nq);
            if (ours.some((c, i) => c !== tfliteCodes[i])) {
              differs = true;
              if (nq === 46) codesDiffer++;
            }
          }
          if (differs && firstDivergence < 0) firstDivergence = frames;
        }
      } finally {
        oracleEncoder.dispose();
        oracleQuantizer.dispose();
        await encoder.dispose();
      }
      console.log(
        JSON.stringify({
          clip: name,
          frames,
          featuresIdentical: frames - featuresDiffer,
          codesIdenticalAt46: frames - codesDiffer,
          firstDivergence,
        }),
      );
      expect(frames).toBeGreaterThan(100);
      expect({ featuresDiffer, codesDiffer, firstDivergence }).toEqual({ featuresDiffer: 0, codesDiffer: 0, firstDivergence: -1 });
    }, 60_000);
  }
});
