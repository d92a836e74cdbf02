/**
 * Float convs summed in TFLite's order ('tflite', float-order.ts) give TFLite's bits exactly:
 * one-op models on TFLite's builtin kernels (as in the Lyra encoder) vs the oracle, for the
 * shapes the encoder has and the edge cases of the rule (a time-step block plus a remainder,
 * more than 256 products, groups, depthwise taps).
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { convertSubgraph } from './convert.ts';
import type { FloatConvOrder } from './float-order.ts';
import { OracleModel } from './oracle/tflite-oracle.ts';
import { readTflite } from './schema.ts';
import { onBuiltinKernels } from './testing/builtin-kernels.ts';
import { bytesOf, writeTflite, type WSubgraph } from './testing/tflite-writer.ts';
import { GraphBuilder } from '../../onnx/builder.ts';
import { createRng } from '../../../core/random.ts';

ort.env.wasm.numThreads = 1;

const f32 = (shape: number[], d?: Float32Array) => ({ shape, type: 0, data: d ? bytesOf(d) : undefined });

interface ConvCase {
  t: number;
  k: number;
  cin: number;
  cout: number;
  /** Filter input channels (cin / groups); depthwise when undefined and `depthwise`. */
  groups?: number;
  depthwise?: boolean;
}

/** A float conv along T over [1, T+K-1, 1, Cin] (VALID, stride 1), as a one-op model. */
function convModel(c: ConvCase, seed: number): { bytes: Uint8Array; x: Float32Array } {
  const rng = createRng(seed);
  const rand = (n: number, s: number) => Float32Array.from({ length: n }, () => (rng() * 2 - 1) * s);
  const tIn = c.t + c.k - 1;
  const x = rand(tIn * c.cin, 2);
  const b = rand(c.cout, 0.5);
  const out = f32([1, c.t, 1, c.cout]);
  let sg: WSubgraph;
  if (c.depthwise) {
    const w = rand(c.k * c.cout, 0.5);
    const options = {
      type: 2,
      fields: [0, 1, 1, 1, 0].map((value, slot) => ({
        slot,
        kind: slot === 0 || slot === 4 ? ('i8' as const) : ('i32' as const),
        value: slot === 0 ? 1 : value,
      })),
    };
    sg = {
      tensors: [f32([1, tIn, 1, c.cin]), f32([1, c.k, 1, c.cout], w), f32([c.cout], b), out],
      inputs: [0],
      outputs: [3],
      ops: [{ code: 4, inputs: [0, 1, 2], outputs: [3], options }],
    };
  } else {
    const cg = c.cin / (c.groups ?? 1);
    const w = rand(c.cout * c.k * cg, 0.3);
    const options = {
      type: 1,
      fields: [
        { slot: 0, kind: 'i8' as const, value: 1 }, // VALID
        { slot: 1, kind: 'i32' as const, value: 1 },
        { slot: 2, kind: 'i32' as const, value: 1 },
        { slot: 3, kind: 'i8' as const, value: 0 },
      ],
    };
    sg = {
      tensors: [f32([1, tIn, 1, c.cin]), f32([c.cout, c.k, 1, cg], w), f32([c.cout], b), out],
      inputs: [0],
      outputs: [3],
      ops: [{ code: 3, inputs: [0, 1, 2], outputs: [3], options }],
    };
  }
  return { bytes: writeTflite(onBuiltinKernels(sg)), x };
}

async function ours(bytes: Uint8Array, x: Float32Array, order: FloatConvOrder): Promise<Float32Array> {
  const g = convertSubgraph(readTflite(bytes, 'conv.tflite'), 0, undefined, [], 'exact-f64', order);
  const session = await ort.InferenceSession.create(g.built.model, { externalData: g.built.externalData });
  const feeds: Record<string, ort.Tensor> = { [g.inputs[0]!.name]: new ort.Tensor('float32', x, g.inputs[0]!.shape) };
  for (const s of g.states) feeds[s.inputName] = new ort.Tensor('float32', s.init, s.shape);
  const out = await session.run(feeds);
  return out[g.outputs[0]!.name]!.data as Float32Array;
}

function differing(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) n++;
  return n;
}

describe("float convs in TFLite's summation order", () => {
  const cases: [string, ConvCase][] = [
    ['1x1, 20 steps (5 blocks of 4), 64 products', { t: 20, k: 1, cin: 64, cout: 64 }],
    ['10 taps x 64 channels = 640 products (past one MatMul), 4 steps', { t: 4, k: 10, cin: 64, cout: 128 }],
    ['2 steps (no full block: one accumulator), 256 products', { t: 2, k: 1, cin: 256, cout: 256 }],
    ['6 steps: a block of 4 and 2 left over; 15 products (8 paired, 7 after)', { t: 6, k: 3, cin: 5, cout: 8 }],
    ['8 steps, 20 products (16 paired, 4 after)', { t: 8, k: 1, cin: 20, cout: 8 }],
    ['4 steps, 6 products (none paired)', { t: 4, k: 2, cin: 3, cout: 8 }],
    ['grouped (2 groups), 4 steps', { t: 4, k: 1, cin: 128, cout: 128, groups: 2 }],
    ['grouped (2 groups), 4 taps x 64 = 256 products per group', { t: 2, k: 4, cin: 128, cout: 256, groups: 2 }],
    ['depthwise, 3 taps', { t: 20, k: 3, cin: 64, cout: 64, depthwise: true }],
  ];
  cases.forEach(([name, c], i) => {
    it(`${name}: every output bit-identical to TFLite's builtin kernel`, async () => {
      const { bytes, x } = convModel(c, 100 + i);
      const oracle = await OracleModel.create(bytes);
      const want = oracle.run([x])[0] as Float32Array;
      oracle.dispose();
      expect(differing(await ours(bytes, x, 'tflite'), want)).toBe(0);
      // Where TFLite's GEMM uses two accumulators, one Gemm per conv ('fast') differs in the last
      // bits. (Elsewhere it can agree: onnxruntime's Gemm also sums in order and adds the bias last.)
      if (c.t >= 4 && c.k * c.cin >= 8 && !c.groups && !c.depthwise)
        expect(differing(await ours(bytes, x, 'fast'), want)).toBeGreaterThan(0);
    });
  });

  it("onnxruntime's WASM MatMul sums up to 256 products per output in order from 0 (what 'tflite' relies on)", async () => {
    const rng = createRng(7);
    for (const [t, depth, n] of [
      [20, 32, 64],
      [4, 256, 128],
      [1, 200, 512],
    ] as const) {
      const a = Float32Array.from({ length: t * depth }, () => rng() * 2 - 1);
      const w = Float32Array.from({ length: depth * n }, () => rng() - 0.5);
      const g = new GraphBuilder('matmul');
      g.output(g.op('MatMul', [g.input('a', 'float32', [t, depth]), g.constant('w', 'float32', [depth, n], w)]), 'float32', [t, n], 'y');
      const built = g.build();
      const session = await ort.InferenceSession.create(built.model, { externalData: built.externalData });
      const y = (await session.run({ a: new ort.Tensor('float32', a, [t, depth]) })).y!.data as Float32Array;
      const inOrder = new Float32Array(t * n);
      for (let r = 0; r < t; r++)
        for (let c = 0; c < n; c++) {
          let acc = 0;
          for (let k = 0; k < depth; k++) acc = Math.fround(acc + Math.fround(a[r * depth + k]! * w[k * n + c]!));
          inOrder[r * n + c] = acc;
        }
      expect(differing(y, inOrder)).toBe(0);
    }
  });
});
