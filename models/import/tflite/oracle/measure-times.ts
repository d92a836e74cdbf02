/**
 * TEST-ONLY timing script: per-frame time of each Lyra stage in Node, Whittle (onnxruntime-web
 * WASM, one thread) vs the TFLite oracle (tfjs-tflite WASM, one thread), over sample1_16kHz.wav.
 *
 *   npx tsx models/import/tflite/oracle/measure-times.ts
 */
import { importLyra } from '../lyra.ts';
import type { ConvertedGraph } from '../convert.ts';
import type { RequantMode } from '../requant.ts';
import { OracleModel, swapSubgraphs } from './tflite-oracle.ts';
import { readLocalModelFile } from '../../../local.ts';
import { parseWav } from '../../../../workers/codec/wav.ts';
import { loadOrt, type OrtModule } from '../../../../workers/ort/runtime.ts';
import { rvqDecode, rvqEncode } from '../../../../workers/codec/rvq.ts';

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
  for (const mode of ['exact-f64', 'exact-f32', 'approx'] as RequantMode[]) {
    const lyra = importLyra(bytes, { requant: mode });
    console.log(
      `nodes (${mode}): encoder ${lyra.encoder.nodeCount}, quantizer encode ${lyra.quantizerEncode!.nodeCount}, quantizer decode ${lyra.quantizerDecode!.nodeCount}, decoder ${lyra.decoder.nodeCount}`,
    );
    const enc = await stepper(lyra.encoder);
    const dec = await stepper(lyra.decoder);
    const qe = await stepper(lyra.quantizerEncode!);
    const qd = await stepper(lyra.quantizerDecode!);
    const t: Record<string, number[]> = { encoder: [], rvqJs: [], qGraph: [], dqJs: [], dqGraph: [], decoder: [] };
    for (let pass = 0; pass < 2; pass++) {
      for (const k of Object.keys(t)) t[k] = [];
      for (let f = 0; f < frames; f++) {
        const x = audio.slice(f * 320, (f + 1) * 320);
        let t0 = performance.now();
        const feat = (await enc({ input_audio: new ort.Tensor('float32', x, [1, 320]) })).output_0!.data as Float32Array;
        t.encoder!.push(performance.now() - t0);
        t0 = performance.now();
        const codes = rvqEncode(lyra.codebooks, feat, 30);
        t.rvqJs!.push(performance.now() - t0);
        t0 = performance.now();
        await qe({
          input_frames: new ort.Tensor('float32', feat, [1, 1, 64]),
          num_quantizers: new ort.Tensor('int32', Int32Array.of(30), []),
        });
        t.qGraph!.push(performance.now() - t0);
        t0 = performance.now();
        const feats = rvqDecode(lyra.codebooks, codes);
        t.dqJs!.push(performance.now() - t0);
        t0 = performance.now();
        await qd({ encoding_indices: new ort.Tensor('int32', codes, [46, 1, 1]) });
        t.dqGraph!.push(performance.now() - t0);
        t0 = performance.now();
        await dec({ input_audio: new ort.Tensor('float32', feats, [1, 1, 64]) });
        t.decoder!.push(performance.now() - t0);
      }
    }
    for (const [k, v] of Object.entries(t)) console.log(`whittle ${mode} ${k}: ${stats(v)}`);
  }
  const oEnc = await OracleModel.create(new Uint8Array(bytes.encoder));
  const oQe = await OracleModel.create(swapSubgraphs(q, 0, 1));
  const oQd = await OracleModel.create(q);
  const oDec = await OracleModel.create(new Uint8Array(bytes.decoder));
  const o: Record<string, number[]> = { encoder: [], quantizerEncode: [], quantizerDecode: [], decoder: [] };
  for (let pass = 0; pass < 2; pass++) {
    for (const k of Object.keys(o)) o[k] = [];
    for (let f = 0; f < frames; f++) {
      const x = audio.slice(f * 320, (f + 1) * 320);
      let t0 = performance.now();
      const feat = oEnc.run([x])[0] as Float32Array;
      o.encoder!.push(performance.now() - t0);
      t0 = performance.now();
      const codes = oQe.run([Int32Array.of(30), feat]).find((a) => a.length === 46) as Int32Array;
      o.quantizerEncode!.push(performance.now() - t0);
      t0 = performance.now();
      const feats = oQd.run([codes])[0] as Float32Array;
      o.quantizerDecode!.push(performance.now() - t0);
      t0 = performance.now();
      oDec.run([feats]);
      o.decoder!.push(performance.now() - t0);
    }
  }
  for (const [k, v] of Object.entries(o)) console.log(`tflite oracle ${k}: ${stats(v)}`);
  console.log(`${frames} frames of 20 ms; second pass timed`);
}

await main();
