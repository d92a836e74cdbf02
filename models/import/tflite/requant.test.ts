/** The requantization graphs vs TFLite's integer arithmetic, re-implemented here with BigInt. */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { Ctx } from './context.ts';
import { multiplyByQuantizedMultiplier, type RequantMode } from './requant.ts';
import { ruySingleRounding as ruySingle, tfliteDoubleRounding as tfliteDouble } from './testing/tflite-integer-math.ts';

ort.env.wasm.numThreads = 1;

async function run(mults: number[], accs: Float32Array, mode: RequantMode, single: boolean): Promise<Float32Array> {
  const C = mults.length;
  const ctx = new Ctx(
    { name: 'requant', subgraphs: [], signatures: [] },
    { index: 0, name: 'main', tensors: [], inputs: [], outputs: [], operators: [] },
    'requant',
    mode,
  );
  const acc = ctx.g.input('acc', 'float32', [1, C, accs.length / C, 1]);
  ctx.g.output(multiplyByQuantizedMultiplier(ctx, acc, mults, [C, 1, 1], mode, single), 'float32', [1, C, accs.length / C, 1], 'y');
  const built = ctx.g.build();
  const session = await ort.InferenceSession.create(built.model, { externalData: built.externalData });
  const out = await session.run({ acc: new ort.Tensor('float32', accs, [1, C, accs.length / C, 1]) });
  return out.y!.data as Float32Array;
}

describe('requantization', () => {
  // Multipliers like the Lyra layers' (2^-12..2^-1) plus one above 1 (left shift).
  const mults = [0.0052034, 0.3617, 0.000912377, 1.734];
  const per = 4000;
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const accs = Float32Array.from({ length: mults.length * per }, (_, i) => {
    const c = Math.floor(i / per);
    const k = i % per;
    // Small, medium and near-2^23 accumulators, and exact ties of the first rounding.
    if (k < 1000) return Math.round((rand() - 0.5) * 2000);
    if (k < 2000) return Math.round((rand() - 0.5) * 2 ** 24 * (c === 3 ? 2 ** -2 : 1));
    if (k < 3000) return Math.round((rand() - 0.5) * 2 ** 17);
    return Math.round((k - 3500) * 16);
  });

  for (const mode of ['exact-f64', 'exact-f32'] as RequantMode[]) {
    for (const single of [false, true]) {
      it(`${mode}: ${single ? 'single (ruy GEMM)' : 'double (reference kernels)'} rounding matches TFLite's integer math on ${accs.length} accumulators`, async () => {
        const got = await run(mults, accs, mode, single);
        let wrong = 0;
        for (let i = 0; i < accs.length; i++) {
          const m = mults[Math.floor(i / per)]!;
          const want = single ? ruySingle(accs[i]!, m) : tfliteDouble(accs[i]!, m);
          if (got[i] !== want) wrong++;
        }
        expect(wrong).toBe(0);
      });
    }
  }
});
