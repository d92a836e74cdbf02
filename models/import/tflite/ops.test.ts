/**
 * Per-op tests of the TFLite importer on tiny hand-made models: each case is checked against
 * numbers computed here by a naive reference, and against the real TFLite interpreter.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { convertSubgraph } from './convert.ts';
import { OracleModel } from './oracle/tflite-oracle.ts';
import { readTflite } from './schema.ts';
import { bytesOf, writeTflite, type OptField, type WOp, type WSubgraph, type WTensor } from './testing/tflite-writer.ts';
import { quantizeMultiplier } from './requant.ts';

ort.env.wasm.numThreads = 1;

type Arr = Float32Array | Int32Array;

const f32 = (shape: number[], data?: number[]): WTensor => ({ shape, type: 0, data: data ? bytesOf(Float32Array.from(data)) : undefined });
const i32 = (shape: number[], data?: number[]): WTensor => ({ shape, type: 2, data: data ? bytesOf(Int32Array.from(data)) : undefined });
const opt = (type: number, fields: [number, OptField['kind'], number][]) => ({
  type,
  fields: fields.map(([slot, kind, value]) => ({ slot, kind, value })),
});

/** Runs a one-subgraph model through the importer + onnxruntime and through TFLite. */
async function run(sg: WSubgraph, inputs: Arr[], extra: WSubgraph[] = []): Promise<{ ours: Arr[]; tflite: Arr[] }> {
  const bytes = writeTflite([sg, ...extra]);
  const g = convertSubgraph(readTflite(bytes, 'case.tflite'), 0);
  const session = await ort.InferenceSession.create(g.built.model, { externalData: g.built.externalData });
  const feeds: Record<string, ort.Tensor> = {};
  g.inputs.forEach((io, k) => (feeds[io.name] = new ort.Tensor(io.dtype === 'int32' ? 'int32' : 'float32', inputs[k]!, io.shape)));
  for (const s of g.states) feeds[s.inputName] = new ort.Tensor('float32', s.init, s.shape);
  const out = await session.run(feeds);
  const ours = g.outputs.map((io) => out[io.name]!.data as Arr);
  const oracle = await OracleModel.create(bytes);
  const tflite = oracle.run(inputs);
  oracle.dispose();
  return { ours, tflite };
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++)
    expect(Math.abs(got[i]! - want[i]!), `element ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol);
}

const ramp = (n: number, f = 0.37) => Array.from({ length: n }, (_, i) => Math.sin(i * f) * 2);

/** NHWC conv reference with TFLite's SAME rule (extra padding after). */
function convRef(
  x: number[],
  [h, w, c]: [number, number, number],
  wt: number[],
  [co, kh, kw]: [number, number, number],
  b: number[],
  s: number,
  pad: 'SAME' | 'VALID',
  dil = 1,
) {
  const eff = (kh - 1) * dil + 1;
  const oh = pad === 'SAME' ? Math.ceil(h / s) : Math.floor((h - eff) / s) + 1;
  const effw = (kw - 1) * dil + 1;
  const ow = pad === 'SAME' ? Math.ceil(w / s) : Math.floor((w - effw) / s) + 1;
  const pt = pad === 'SAME' ? Math.floor(Math.max((oh - 1) * s + eff - h, 0) / 2) : 0;
  const pl = pad === 'SAME' ? Math.floor(Math.max((ow - 1) * s + effw - w, 0) / 2) : 0;
  const out: number[] = [];
  for (let i = 0; i < oh; i++)
    for (let j = 0; j < ow; j++)
      for (let o = 0; o < co; o++) {
        let acc = b[o]!;
        for (let p = 0; p < kh; p++)
          for (let q = 0; q < kw; q++) {
            const y = i * s + p * dil - pt;
            const z = j * s + q * dil - pl;
            if (y < 0 || y >= h || z < 0 || z >= w) continue;
            for (let k = 0; k < c; k++) acc += x[(y * w + z) * c + k]! * wt[((o * kh + p) * kw + q) * c + k]!;
          }
        out.push(acc);
      }
  return out;
}

describe('TFLite ops -> ONNX', () => {
  it('CONV_2D float, SAME padding, stride 2, fused RELU', async () => {
    const x = ramp(50);
    const w = ramp(54, 0.91);
    const b = [0.1, -0.2, 0.3];
    const sg: WSubgraph = {
      tensors: [f32([1, 5, 5, 2]), f32([3, 3, 3, 2], w), f32([3], b), f32([1, 3, 3, 3])],
      inputs: [0],
      outputs: [3],
      ops: [
        {
          code: 3,
          inputs: [0, 1, 2],
          outputs: [3],
          options: opt(1, [
            [0, 'i8', 0],
            [1, 'i32', 2],
            [2, 'i32', 2],
            [3, 'i8', 1],
            [4, 'i32', 1],
            [5, 'i32', 1],
          ]),
        },
      ],
    };
    const want = convRef(x, [5, 5, 2], w, [3, 3, 3], b, 2, 'SAME').map((v) => Math.max(0, v));
    const { ours, tflite } = await run(sg, [Float32Array.from(x)]);
    close(ours[0]!, want);
    close(tflite[0]!, want);
  });

  it('DEPTHWISE_CONV_2D float, VALID, dilation 2, multiplier 2', async () => {
    const x = ramp(14); // [1,7,1,2]
    const w = ramp(12, 0.5); // [1,3,1,4]
    const b = [0, 1, 2, 3];
    const sg: WSubgraph = {
      tensors: [f32([1, 7, 1, 2]), f32([1, 3, 1, 4], w), f32([4], b), f32([1, 3, 1, 4])],
      inputs: [0],
      outputs: [3],
      ops: [
        {
          code: 4,
          inputs: [0, 1, 2],
          outputs: [3],
          options: opt(2, [
            [0, 'i8', 1],
            [1, 'i32', 1],
            [2, 'i32', 1],
            [3, 'i32', 2],
            [4, 'i8', 0],
            [5, 'i32', 1],
            [6, 'i32', 2],
          ]),
        },
      ],
    };
    const want: number[] = [];
    for (let i = 0; i < 3; i++)
      for (let o = 0; o < 4; o++) {
        let acc = b[o]!;
        for (let p = 0; p < 3; p++) acc += x[(i + 2 * p) * 2 + Math.floor(o / 2)]! * w[p * 4 + o]!;
        want.push(acc);
      }
    const { ours, tflite } = await run(sg, [Float32Array.from(x)]);
    close(ours[0]!, want);
    close(tflite[0]!, want);
  });

  it('TRANSPOSE_CONV float, VALID, stride 2 (overlapping taps)', async () => {
    const x = ramp(6); // [1,3,1,2]
    const w = ramp(16, 0.7); // [Cout=2, KH=4, KW=1, Cin=2]
    const b = [0.5, -0.5];
    const sg: WSubgraph = {
      tensors: [i32([4], [1, 8, 1, 2]), f32([2, 4, 1, 2], w), f32([1, 3, 1, 2]), f32([2], b), f32([1, 8, 1, 2])],
      inputs: [2],
      outputs: [4],
      ops: [
        {
          code: 67,
          inputs: [0, 1, 2, 3],
          outputs: [4],
          options: opt(49, [
            [0, 'i8', 1],
            [1, 'i32', 1],
            [2, 'i32', 2],
          ]),
        },
      ],
    };
    const want = Array.from({ length: 16 }, (_, k) => b[k % 2]!);
    for (let i = 0; i < 3; i++)
      for (let o = 0; o < 2; o++)
        for (let p = 0; p < 4; p++) for (let c = 0; c < 2; c++) want[(i * 2 + p) * 2 + o]! += x[i * 2 + c]! * w[(o * 4 + p) * 2 + c]!;
    const { ours, tflite } = await run(sg, [Float32Array.from(x)]);
    close(ours[0]!, want);
    close(tflite[0]!, want);
  });

  it('int8 CONV_2D (per-channel) with QUANTIZE/DEQUANTIZE: bit-exact, incl. TFLite rounding', async () => {
    const x = ramp(24, 0.9); // [1,4,1,6] float
    const wq = Array.from({ length: 3 * 2 * 6 }, (_, i) => ((i * 37) % 255) - 127); // [3,2,1,6] int8
    const ws = [0.011, 0.0137, 0.0093];
    const sIn = 0.017;
    const zIn = 3;
    const sOut = 0.041;
    const zOut = -5;
    const bq = [100, -250, 37];
    const sg: WSubgraph = {
      tensors: [
        f32([1, 4, 1, 6]),
        { shape: [1, 4, 1, 6], type: 9, quant: { scale: [sIn], zeroPoint: [zIn] } },
        { shape: [3, 2, 1, 6], type: 9, data: bytesOf(Int8Array.from(wq)), quant: { scale: ws, zeroPoint: [0, 0, 0] } },
        { shape: [3], type: 2, data: bytesOf(Int32Array.from(bq)), quant: { scale: ws.map((s) => s * sIn), zeroPoint: [0, 0, 0] } },
        { shape: [1, 3, 1, 3], type: 9, quant: { scale: [sOut], zeroPoint: [zOut] } },
        f32([1, 3, 1, 3]),
      ],
      inputs: [0],
      outputs: [5],
      ops: [
        { code: 114, inputs: [0], outputs: [1] },
        {
          code: 3,
          inputs: [1, 2, 3],
          outputs: [4],
          options: opt(1, [
            [0, 'i8', 1],
            [1, 'i32', 1],
            [2, 'i32', 1],
            [3, 'i8', 0],
            [4, 'i32', 1],
            [5, 'i32', 1],
          ]),
        },
        { code: 6, inputs: [4], outputs: [5] },
      ],
    };
    // Reference: integer accumulator, then ruy's single-rounding requantization (non-grouped conv).
    const q = x.map((v) => Math.max(-128, Math.min(127, Math.round(v / sIn) + zIn)) - zIn);
    const want: number[] = [];
    for (let i = 0; i < 3; i++)
      for (let o = 0; o < 3; o++) {
        let acc = bq[o]!;
        for (let p = 0; p < 2; p++) for (let c = 0; c < 6; c++) acc += q[(i + p) * 6 + c]! * wq[(o * 2 + p) * 6 + c]!;
        const [q31, shift] = quantizeMultiplier((sIn * ws[o]!) / sOut);
        const total = 31 - shift;
        const y = Number((BigInt(acc) * BigInt(q31) + (1n << BigInt(total - 1))) >> BigInt(total));
        want.push((Math.max(-128, Math.min(127, y + zOut)) - zOut) * sOut);
      }
    const { ours, tflite } = await run(sg, [Float32Array.from(x)]);
    close(tflite[0]!, want, 1e-6);
    close(ours[0]!, want, 1e-6);
  });

  it('STRIDED_SLICE with begin/end/shrink masks and a negative stride; CONCATENATION; SPLIT; RESHAPE', async () => {
    const x = ramp(24); // [2,3,4]
    const sg: WSubgraph = {
      tensors: [
        f32([2, 3, 4]),
        i32([3], [1, 0, 3]),
        i32([3], [2, 2, 0]),
        i32([3], [1, 1, -2]),
        f32([2, 2]),
        f32([2, 4]),
        i32([], [1]),
        f32([2, 2]),
        f32([2, 2]),
        i32([1], [4]),
        f32([4]),
      ],
      inputs: [0],
      outputs: [4, 5, 7, 8, 10],
      ops: [
        // x[1, :2, 3:0:-2] -> shrink axis 0 -> [2, 2]
        {
          code: 45,
          inputs: [0, 1, 2, 3],
          outputs: [4],
          options: opt(32, [
            [0, 'i32', 0b010],
            [1, 'i32', 0],
            [2, 'i32', 0],
            [3, 'i32', 0],
            [4, 'i32', 0b001],
          ]),
        },
        {
          code: 2,
          inputs: [4, 4],
          outputs: [5],
          options: opt(10, [
            [0, 'i32', -1],
            [1, 'i8', 0],
          ]),
        },
        { code: 49, inputs: [6, 5], outputs: [7, 8], options: opt(35, [[0, 'i32', 2]]) },
        { code: 22, inputs: [7, 9], outputs: [10] },
      ],
    };
    const at = (a: number, b: number, c: number) => x[(a * 3 + b) * 4 + c]!;
    const sliced = [at(1, 0, 3), at(1, 0, 1), at(1, 1, 3), at(1, 1, 1)];
    const cat = [sliced[0], sliced[1], sliced[0], sliced[1], sliced[2], sliced[3], sliced[2], sliced[3]] as number[];
    const { ours, tflite } = await run(sg, [Float32Array.from(x)]);
    for (const got of [ours, tflite]) {
      close(got[0]!, sliced);
      close(got[1]!, cat);
      close(got[2]!, [cat[0]!, cat[1]!, cat[4]!, cat[5]!]);
      close(got[3]!, [cat[2]!, cat[3]!, cat[6]!, cat[7]!]);
      close(got[4]!, [cat[0]!, cat[1]!, cat[4]!, cat[5]!]);
    }
  });

  it('quantizer ops: SQUARED_DIFFERENCE, SUM, ARG_MIN (first of ties), ONE_HOT, GATHER, PACK, ARG_MAX, LESS, CAST, NOT_EQUAL, MAXIMUM, MUL, SUB, LEAKY_RELU', async () => {
    const book = [1, 1, 0, 0, 1, 1, 5, 5]; // [1,4,2]: entries 0 and 2 tie
    const tensors: WTensor[] = [
      f32([1, 1, 2]), // 0 x
      f32([1, 4, 2], book), // 1
      f32([1, 4, 2]), // 2 sqdiff
      i32([], [2]), // 3 axis
      f32([1, 4]), // 4 dist
      i32([], [1]), // 5 axis 1
      i32([1]), // 6 argmin
      i32([], [4]), // 7 depth
      f32([], [1]), // 8 on
      f32([], [0]), // 9 off
      f32([1, 4]), // 10 one-hot
      f32([4, 2], book), // 11 table
      f32([1, 2]), // 12 gathered
      f32([2, 1, 4]), // 13 pack
      i32([2, 1]), // 14 argmax over last axis
      i32([2, 1]), // 15 maximum with const
      i32([2, 1], [1, 1]), // 16
      { shape: [2, 1], type: 6 }, // 17 not_equal
    ];
    tensors.push(f32([2, 1])); // 18 cast
    tensors.push({ shape: [2, 1], type: 6 }); // 19 less
    tensors.push(f32([1, 1, 2])); // 20 leaky(gathered - x) * x (broadcast to x's rank)
    tensors.push(f32([1, 1, 2])); // 21
    tensors.push(f32([1, 1, 2])); // 22
    const ops: WOp[] = [
      { code: 99, inputs: [0, 1], outputs: [2] },
      { code: 74, inputs: [2, 3], outputs: [4], options: opt(27, [[0, 'i8', 0]]) },
      { code: 79, inputs: [4, 5], outputs: [6], options: opt(57, [[0, 'i8', 2]]) },
      { code: 85, inputs: [6, 7, 8, 9], outputs: [10], options: opt(61, [[0, 'i32', -1]]) },
      { code: 36, inputs: [11, 6], outputs: [12], options: opt(23, [[0, 'i32', 0]]) },
      {
        code: 83,
        inputs: [10, 10],
        outputs: [13],
        options: opt(59, [
          [0, 'i32', 2],
          [1, 'i32', 0],
        ]),
      },
      { code: 56, inputs: [13, 3], outputs: [14], options: opt(40, [[0, 'i8', 2]]) },
      { code: 55, inputs: [14, 16], outputs: [15] },
      { code: 72, inputs: [15, 16], outputs: [17] },
      { code: 53, inputs: [17], outputs: [18] },
      { code: 58, inputs: [14, 16], outputs: [19] },
      { code: 41, inputs: [12, 0], outputs: [21], options: opt(28, [[0, 'i8', 0]]) },
      { code: 98, inputs: [21], outputs: [22], options: opt(75, [[0, 'f32', 0.25]]) },
      { code: 18, inputs: [22, 0], outputs: [20], options: opt(21, [[0, 'i8', 0]]) },
    ];
    const sg: WSubgraph = { tensors, inputs: [0], outputs: [4, 6, 10, 12, 14, 18, 19, 20], ops };
    const x = [0.5, 0.5];
    const dist = [0.5, 0.5, 0.5, 40.5];
    const gathered = [1, 1];
    const leaky = gathered.map((g, k) => {
      const d = g - x[k]!;
      return (d > 0 ? d : 0.25 * d) * x[k]!;
    });
    const { ours, tflite } = await run(sg, [Float32Array.from(x)]);
    for (const got of [ours, tflite]) {
      close(got[0]!, dist);
      expect(Array.from(got[1]!)).toEqual([0]); // first of the three tied minima
      close(got[2]!, [1, 0, 0, 0]);
      close(got[3]!, gathered);
      expect(Array.from(got[4]!)).toEqual([0, 0]);
      close(got[5]!, [0, 0]);
      close(got[6]!, [1, 1]);
      close(got[7]!, leaky);
    }
  });

  it('resource variables: CALL_ONCE initial values become state inputs, ASSIGN_VARIABLE the state output', async () => {
    const shared = (name: string): WOp['options'] => ({ type: 0, fields: [{ slot: 1, kind: 'str', value: name }] });
    const main: WSubgraph = {
      tensors: [f32([1, 2]), { shape: [], type: 13 }, f32([1, 2]), f32([1, 2])],
      inputs: [0],
      outputs: [3],
      ops: [
        { code: 129, inputs: [], outputs: [], options: opt(103, [[0, 'i32', 1]]) },
        { code: 142, inputs: [], outputs: [1], options: shared('history') },
        { code: 143, inputs: [1], outputs: [2] },
        { code: 0, inputs: [2, 0], outputs: [3], options: opt(11, [[0, 'i8', 0]]) },
        { code: 144, inputs: [1, 0], outputs: [] },
      ],
    };
    const init: WSubgraph = {
      name: 'init',
      tensors: [{ shape: [], type: 13 }, f32([1, 2], [10, 20])],
      inputs: [],
      outputs: [],
      ops: [
        { code: 142, inputs: [], outputs: [0], options: shared('history') },
        { code: 144, inputs: [0, 1], outputs: [] },
      ],
    };
    // BuiltinOptions union indices: 103 CallOnceOptions, 111 VarHandleOptions.
    main.ops[1]!.options!.type = 111;
    init.ops[0]!.options!.type = 111;
    const bytes = writeTflite([main, init]);
    const g = convertSubgraph(readTflite(bytes, 'state.tflite'), 0);
    expect(g.states.map((s) => [s.name, Array.from(s.init)])).toEqual([['history', [10, 20]]]);
    const session = await ort.InferenceSession.create(g.built.model, { externalData: g.built.externalData });
    const oracle = await OracleModel.create(bytes);
    let state: ort.Tensor = new ort.Tensor('float32', g.states[0]!.init, [1, 2]);
    for (const step of [
      [1, 2],
      [3, 4],
      [5, 6],
    ]) {
      const out = await session.run({
        [g.inputs[0]!.name]: new ort.Tensor('float32', Float32Array.from(step), [1, 2]),
        [g.states[0]!.inputName]: state,
      });
      state = out[g.states[0]!.outputName]!;
      close(out[g.outputs[0]!.name]!.data as Float32Array, oracle.run([Float32Array.from(step)])[0]!);
    }
    oracle.dispose();
  });
});
