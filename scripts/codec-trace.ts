/**
 * Traces Whittle's Lyra encoder against TFLite tensor by tensor: every op output of the encoder
 * is made a subgraph output on both sides (the oracle through withSubgraphOutputs, ours through
 * convertSubgraph's probes), the clip runs frame by frame with state carried, and each frame
 * reports the tensors that differ, in op order (int8 tensors as TFLite levels, floats as the
 * largest |difference|). The first int8 tensor that differs while its inputs agree is the op to
 * look at. How the two causes in bench/RESULTS.md ("Codec exactness") were found.
 *
 *   npx tsx scripts/codec-trace.ts clip.wav [--requant exact-f64] [--order tflite|fast] [--frames 150] [--json]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-web';
import { convertSubgraph } from '../models/import/tflite/convert.ts';
import type { FloatConvOrder } from '../models/import/tflite/float-order.ts';
import { OracleModel, withSubgraphOutputs } from '../models/import/tflite/oracle/tflite-oracle.ts';
import type { RequantMode } from '../models/import/tflite/requant.ts';
import { opName, readTflite } from '../models/import/tflite/schema.ts';
import { readLocalModelFile } from '../models/local.ts';
import { parseWav } from '../core/wav.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    requant: { type: 'string', default: 'exact-f64' },
    order: { type: 'string' },
    frames: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
if (positionals.length !== 1) {
  console.error('usage: npx tsx scripts/codec-trace.ts clip.wav [--requant exact-f64] [--order tflite|fast] [--frames N] [--json]');
  process.exit(2);
}
ort.env.wasm.numThreads = 1;
const requant = values.requant as RequantMode;
const order = (values.order ?? (requant === 'exact-f64' ? 'tflite' : 'fast')) as FloatConvOrder;
const RESOURCE_OPS = new Set([129, 142, 143, 144]); // CALL_ONCE, VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE

const encoderBytes = readLocalModelFile('lyra-v2', 'soundstream_encoder.tflite');
const model = readTflite(encoderBytes, 'soundstream_encoder.tflite');
const sg = model.subgraphs[0]!;
const probes: { tensor: number; op: number; name: string }[] = [];
sg.operators.forEach((op, k) => {
  if (!RESOURCE_OPS.has(op.code)) for (const tensor of op.outputs) probes.push({ tensor, op: k, name: opName(op.code, op.customCode) });
});
const graph = convertSubgraph(
  model,
  0,
  undefined,
  probes.map((p) => p.tensor),
  requant,
  order,
);
const session = await ort.InferenceSession.create(graph.built.model, { externalData: graph.built.externalData });
let state: Record<string, ort.Tensor> = Object.fromEntries(
  graph.states.map((s) => [s.inputName, new ort.Tensor('float32', s.init.slice(), s.shape)]),
);
const oracle = await OracleModel.create(
  withSubgraphOutputs(
    new Uint8Array(encoderBytes),
    probes.map((p) => p.tensor),
  ),
);
const audio = parseWav(readFileSync(positionals[0]!), { mono: true, sampleRate: 16000 }).samples;
const maxFrames = values.frames ? Number(values.frames) : Infinity;
const inputName = graph.inputs[0]!.name;

interface Difference {
  op: number;
  name: string;
  tensor: number;
  int8: boolean;
  differing: number;
  of: number;
  maxAbs: number;
}
let frames = 0;
let firstInt8: { frame: number; differences: Difference[] } | null = null;
let framesWithInt8Differences = 0;
for (let at = 0; at + 320 <= audio.length && frames < maxFrames; at += 320, frames++) {
  const x = audio.subarray(at, at + 320);
  const ours = await session.run({ [inputName]: new ort.Tensor('float32', x.slice(), [1, 320]), ...state });
  state = Object.fromEntries(graph.states.map((s) => [s.inputName, ours[s.outputName]!]));
  const theirs = oracle.run([x]);
  const differences: Difference[] = [];
  probes.forEach((p, k) => {
    const t = sg.tensors[p.tensor]!;
    const int8 = !!t.quant && t.type !== 0;
    const zeroPoint = int8 ? t.quant!.zeroPoint[0]! : 0; // ours: centered levels; TFLite's: raw levels
    const got = ours[`t${p.tensor}`]!.data as Float32Array;
    const want = theirs[k]!;
    let differing = 0;
    let maxAbs = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(got[i]! + zeroPoint - want[i]!);
      if (d > 0) differing++;
      maxAbs = Math.max(maxAbs, d);
    }
    if (differing > 0) differences.push({ op: p.op, name: p.name, tensor: p.tensor, int8, differing, of: want.length, maxAbs });
  });
  const int8Differences = differences.filter((d) => d.int8);
  if (int8Differences.length > 0) {
    framesWithInt8Differences++;
    firstInt8 ??= { frame: frames, differences };
  }
  if (!values.json && differences.length > 0) {
    const first = int8Differences[0];
    const maxFloat = Math.max(0, ...differences.filter((d) => !d.int8).map((d) => d.maxAbs));
    console.log(
      `frame ${frames}: ${differences.length} tensors differ (float max |diff| ${maxFloat.toExponential(2)})` +
        (first
          ? `; first int8: op ${first.op} ${first.name} t${first.tensor}, ${first.differing}/${first.of} levels, max ${first.maxAbs}`
          : ''),
    );
  }
}
oracle.dispose();
console.log(JSON.stringify({ clip: positionals[0], requant, order, frames, framesWithInt8Differences, firstInt8 }));
