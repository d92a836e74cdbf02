/**
 * TEST-ONLY timing script: per-frame time of each Lyra stage in Node, Whittle (onnxruntime-web
 * WASM, one thread; each requant mode, the non-exact 'float' included) vs the TFLite oracle
 * (tfjs-tflite WASM, one thread), over sample1_16kHz.wav. The contenders run interleaved frame by frame so that load from other
 * processes hits them alike; the second of two passes is reported.
 *
 *   npx tsx bench/codec-stage-times.ts
 */
import { importLyra } from '../models/import/tflite/lyra.ts';
import type { ConvertedGraph } from '../models/import/tflite/convert.ts';
import type { RequantMode } from '../models/import/tflite/requant.ts';
import { OracleModel, swapSubgraphs } from '../models/import/tflite/oracle/tflite-oracle.ts';
import { readLocalModelFile } from '../models/local.ts';
import { parseWav } from '../core/wav.ts';
import { rvqDecode, rvqEncode } from '../workers/codec/rvq.ts';
import { loadOrt, type OrtModule } from '../workers/ort/runtime.ts';

// onnxruntime-web comes through workers/ort/runtime.ts (the only module that imports it).
const ort: OrtModule = await loadOrt({ backend: 'wasm', numThreads: 1 });
type Tensor = InstanceType<OrtModule['Tensor']>;

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)]!.toFixed(3)} ms, mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(3)} ms`;
};

async function stepper(g: ConvertedGraph) {
  const session = await ort.InferenceSession.create(g.built.model, { externalData: g.built.externalData, graphOptimizationLevel: 'all' });
  let state: Record<string, Tensor> = Object.fromEntries(
    g.states.map((s) => [s.inputName, new ort.Tensor('float32', s.init.slice(), s.shape)]),
  );
  return async (feeds: Record<string, Tensor>) => {
    const out = await session.run({ ...feeds, ...state });
    state = Object.fromEntries(g.states.map((s) => [s.inputName, out[s.outputName]!]));
    return out;
  };
}

async function main(): Promise<void> {
  const audio = parseWav(readLocalModelFile('lyra-testdata', 'sample1_16kHz.wav'), { mono: true, sampleRate: 16000 }).samples;
  const q = new Uint8Array(readLocalModelFile('lyra-v2', 'quantizer.tflite'));
  const bytes = {
    encoder: readLocalModelFile('lyra-v2', 'soundstream_encoder.tflite'),
    quantizer: q,
    decoder: readLocalModelFile('lyra-v2', 'lyragan.tflite'),
  };
  const frames = Math.floor(audio.length / 320);
  const t: Record<string, number[]> = {};
  const time = async <T>(key: string, fn: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await fn();
    (t[key] ??= []).push(performance.now() - t0);
    return r;
  };
  const modes: RequantMode[] = ['exact-f64', 'exact-f32', 'approx', 'float'];
  const whittle = [];
  for (const mode of modes) {
    const lyra = importLyra(bytes, { requant: mode, quantizerGraphs: mode === 'exact-f64' });
    console.log(
      `nodes (${mode}): encoder ${lyra.encoder.nodeCount}, decoder ${lyra.decoder.nodeCount}` +
        (lyra.quantizerEncode ? `, quantizer encode ${lyra.quantizerEncode.nodeCount}, decode ${lyra.quantizerDecode!.nodeCount}` : ''),
    );
    whittle.push({
      mode,
      lyra,
      enc: await stepper(lyra.encoder),
      dec: await stepper(lyra.decoder),
      qe: lyra.quantizerEncode ? await stepper(lyra.quantizerEncode) : null,
      qd: lyra.quantizerDecode ? await stepper(lyra.quantizerDecode) : null,
    });
  }
  const oEnc = await OracleModel.create(new Uint8Array(bytes.encoder));
  const oQe = await OracleModel.create(swapSubgraphs(q, 0, 1));
  const oQd = await OracleModel.create(q);
  const oDec = await OracleModel.create(new Uint8Array(bytes.decoder));
  for (let pass = 0; pass < 2; pass++) {
    for (const k of Object.keys(t)) t[k] = [];
    for (let f = 0; f < frames; f++) {
      const x = audio.slice(f * 320, (f + 1) * 320);
      for (const w of whittle) {
        const feat = (await time(`whittle ${w.mode} encoder`, () => w.enc({ input_audio: new ort.Tensor('float32', x, [1, 320]) })))
          .output_0!.data as Float32Array;
        const codes = await time(`whittle ${w.mode} RVQ encode (JS)`, () => rvqEncode(w.lyra.codebooks, feat, 30));
        const feats = await time(`whittle ${w.mode} RVQ decode (JS)`, () => rvqDecode(w.lyra.codebooks, codes));
        if (w.qe && w.qd) {
          await time(`whittle quantizer encode graph`, () =>
            w.qe!({
              input_frames: new ort.Tensor('float32', feat, [1, 1, 64]),
              num_quantizers: new ort.Tensor('int32', Int32Array.of(30), []),
            }),
          );
          await time(`whittle quantizer decode graph`, () => w.qd!({ encoding_indices: new ort.Tensor('int32', codes, [46, 1, 1]) }));
        }
        await time(`whittle ${w.mode} decoder`, () => w.dec({ input_audio: new ort.Tensor('float32', feats, [1, 1, 64]) }));
      }
      const feat = await time('tflite encoder', () => oEnc.run([x])[0] as Float32Array);
      const codes = await time(
        'tflite quantizer encode',
        () => oQe.run([Int32Array.of(30), feat]).find((a) => a.length === 46) as Int32Array,
      );
      const feats = await time('tflite quantizer decode', () => oQd.run([codes])[0] as Float32Array);
      await time('tflite decoder', () => oDec.run([feats]));
    }
  }
  for (const [k, v] of Object.entries(t)) console.log(`${k}: ${stats(v)}`);
  console.log(`${frames} frames of 20 ms, 6 kbps; second pass timed`);
}

await main();
