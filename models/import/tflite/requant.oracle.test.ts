/**
 * int8 convolutions' requantization vs the real TFLite at its edges: every int8 input level, per
 * channel multipliers whose float32 rounding would change TFLite's answer, ties of both
 * roundings, negative accumulators, and outputs that saturate at -128 / 127. One-op models run
 * on TFLite's builtin kernels (as Lyra's do): non-grouped CONV_2D (ruy, one rounding), grouped
 * CONV_2D and DEPTHWISE_CONV_2D (reference kernels, two roundings).
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { convertSubgraph } from './convert.ts';
import { OracleModel } from './oracle/tflite-oracle.ts';
import { quantizeMultiplier, type RequantMode } from './requant.ts';
import { readTflite } from './schema.ts';
import { onBuiltinKernels } from './testing/builtin-kernels.ts';
import { ruySingleRounding, tfliteDoubleRounding } from './testing/tflite-integer-math.ts';
import { bytesOf, writeTflite, type WOp, type WSubgraph } from './testing/tflite-writer.ts';
import { createRng } from '../../../core/random.ts';

ort.env.wasm.numThreads = 1;

const S_IN = 3.6988601684570312; // Lyra encoder scales, as float32 values
const Z_IN = -34;
const S_OUT = 2.0950300693511963;
const Z_OUT = 35;
const LEVELS = 256; // one time step per int8 input level

type Kind = 'conv' | 'grouped' | 'depthwise';

interface Channel {
  wScale: number;
  bias: number;
}

const roundingOf = (kind: Kind) => (kind === 'conv' ? ruySingleRounding : tfliteDoubleRounding);

/** The accumulators channel `bias` sees: bias + level (weight 1) for every centered input level. */
const accumulators = (bias: number) => Array.from({ length: LEVELS }, (_, t) => bias + (t - 128 - Z_IN));

/**
 * The same roundings in float64 for the search below only (exact while |acc * q31| < 2^53, which
 * holds there; the assertions use the BigInt reference): one rounding (ruy) or two.
 */
function fastRounding(kind: Kind, [q31, shift]: [number, number]): (acc: number) => number {
  if (kind === 'conv') {
    const total = 2 ** (31 - shift);
    return (acc) => Math.floor((acc * q31 + total / 2) / total);
  }
  const left = 2 ** Math.max(shift, 0);
  const right = 2 ** Math.max(-shift, 0);
  return (acc) => {
    const p = acc * left * q31;
    const h = Math.trunc((p + (p >= 0 ? 2 ** 30 : 1 - 2 ** 30)) / 2 ** 31);
    const floor = Math.floor(h / right);
    const remainder = h - floor * right;
    const threshold = (right > 1 ? right / 2 - 1 : 0) + (h < 0 ? 1 : 0);
    return floor + (remainder > threshold ? 1 : 0);
  };
}

/**
 * Channels whose multiplier rounded to float32 would change TFLite's result (found by search),
 * plus channels that saturate high and low.
 */
function channels(kind: Kind, count: number): Channel[] {
  const rng = createRng(kind.length * 977);
  const out: Channel[] = [];
  while (out.length < count - 2) {
    const wScale = Math.fround(0.002 + rng() * 0.01);
    const m64 = (S_IN * wScale) / S_OUT;
    const m32 = Math.fround(m64);
    // An accumulator where the two multipliers disagree and the output does not saturate (|level|
    // below 90, so the whole sweep of 256 levels around it stays mostly in range).
    // Only multipliers float32 moves by more than 2^-27 relative: the rest rarely matter.
    if (Math.abs(m32 - m64) < m64 * 2 ** -27) continue;
    const round64 = fastRounding(kind, quantizeMultiplier(m64));
    const round32 = fastRounding(kind, quantizeMultiplier(m32));
    const limit = Math.floor(90 / m64);
    for (let acc = -limit; acc <= limit; acc++) {
      if (round64(acc) === round32(acc)) continue;
      // Place that accumulator at a random input level of the channel's sweep.
      const level = Math.floor(rng() * LEVELS) - 128 - Z_IN;
      out.push({ wScale, bias: acc - level });
      break;
    }
  }
  out.push({ wScale: 0.01, bias: 30000 }); // saturates at 127
  out.push({ wScale: 0.01, bias: -30000 }); // saturates at -128
  return out;
}

/** float x [1, 256, 1, C] -> QUANTIZE -> int8 conv (weights 1) -> DEQUANTIZE. */
function model(kind: Kind, chans: Channel[]): { bytes: Uint8Array; x: Float32Array } {
  const c = chans.length;
  const cin = kind === 'conv' ? 1 : c;
  const wShape = kind === 'depthwise' ? [1, 1, 1, c] : [c, 1, 1, 1];
  const x = new Float32Array(LEVELS * cin);
  for (let t = 0; t < LEVELS; t++) x.fill((t - 128 - Z_IN) * S_IN, t * cin, (t + 1) * cin);
  const wScales = chans.map((ch) => ch.wScale);
  const tensors: WSubgraph['tensors'] = [
    { shape: [1, LEVELS, 1, cin], type: 0 },
    { shape: [1, LEVELS, 1, cin], type: 9, quant: { scale: [S_IN], zeroPoint: [Z_IN] } },
    {
      shape: wShape,
      type: 9,
      data: bytesOf(new Int8Array(c).fill(1)),
      quant: { scale: wScales, zeroPoint: new Array<number>(c).fill(0), axis: kind === 'depthwise' ? 3 : 0 },
    },
    {
      shape: [c],
      type: 2,
      data: bytesOf(Int32Array.from(chans, (ch) => ch.bias)),
      quant: { scale: wScales.map((s) => s * S_IN), zeroPoint: new Array<number>(c).fill(0) },
    },
    { shape: [1, LEVELS, 1, c], type: 9, quant: { scale: [S_OUT], zeroPoint: [Z_OUT] } },
    { shape: [1, LEVELS, 1, c], type: 0 },
  ];
  const conv: WOp =
    kind === 'depthwise'
      ? {
          code: 4,
          inputs: [1, 2, 3],
          outputs: [4],
          options: {
            type: 2,
            fields: [
              { slot: 0, kind: 'i8', value: 1 },
              { slot: 1, kind: 'i32', value: 1 },
              { slot: 2, kind: 'i32', value: 1 },
              { slot: 3, kind: 'i32', value: 1 },
            ],
          },
        }
      : {
          code: 3,
          inputs: [1, 2, 3],
          outputs: [4],
          options: {
            type: 1,
            fields: [
              { slot: 0, kind: 'i8', value: 1 },
              { slot: 1, kind: 'i32', value: 1 },
              { slot: 2, kind: 'i32', value: 1 },
            ],
          },
        };
  const sg: WSubgraph = {
    tensors,
    inputs: [0],
    outputs: [5],
    ops: [{ code: 114, inputs: [0], outputs: [1] }, conv, { code: 6, inputs: [4], outputs: [5] }],
  };
  return { bytes: writeTflite(onBuiltinKernels(sg)), x };
}

async function ours(bytes: Uint8Array, x: Float32Array, mode: RequantMode): Promise<Float32Array> {
  const g = convertSubgraph(readTflite(bytes, 'requant.tflite'), 0, undefined, [], mode);
  const session = await ort.InferenceSession.create(g.built.model, { externalData: g.built.externalData });
  const feeds: Record<string, ort.Tensor> = { [g.inputs[0]!.name]: new ort.Tensor('float32', x, g.inputs[0]!.shape) };
  for (const s of g.states) feeds[s.inputName] = new ort.Tensor('float32', s.init, s.shape);
  return (await session.run(feeds))[g.outputs[0]!.name]!.data as Float32Array;
}

describe('int8 conv requantization vs TFLite at edge values', () => {
  for (const kind of ['conv', 'grouped', 'depthwise'] as Kind[]) {
    it(`${kind}: every output identical to TFLite's, incl. where a float32 multiplier, a tie or saturation would differ`, async () => {
      const chans = channels(kind, 8);
      const { bytes, x } = model(kind, chans);
      const oracle = await OracleModel.create(bytes);
      const want = oracle.run([x])[0] as Float32Array;
      oracle.dispose();
      const c = chans.length;
      // The BigInt reference agrees with TFLite on every output (float64 multiplier, clamped).
      chans.forEach((ch, k) => {
        const m = (S_IN * ch.wScale) / S_OUT;
        accumulators(ch.bias).forEach((acc, t) => {
          const level = Math.max(-128, Math.min(127, roundingOf(kind)(acc, m) + Z_OUT));
          expect(want[t * c + k], `channel ${k} acc ${acc}`).toBe(Math.fround((level - Z_OUT) * S_OUT));
        });
      });
      // Edges present: saturation both ways, negative accumulators, multipliers float32 would break.
      expect(Math.max(...want)).toBe(Math.fround((127 - Z_OUT) * S_OUT));
      expect(Math.min(...want)).toBe(Math.fround((-128 - Z_OUT) * S_OUT));
      const clampedLevel = (acc: number, m: number) => Math.max(-128, Math.min(127, roundingOf(kind)(acc, m) + Z_OUT));
      const float32Breaks = chans.filter((ch) => {
        const m = (S_IN * ch.wScale) / S_OUT;
        return accumulators(ch.bias).some((acc) => clampedLevel(acc, m) !== clampedLevel(acc, Math.fround(m)));
      });
      expect(float32Breaks).toHaveLength(c - 2);
      for (const mode of ['exact-f64', 'exact-f32'] as RequantMode[]) {
        const got = await ours(bytes, x, mode);
        const wrong = Array.from(got).filter((v, i) => v !== want[i]).length;
        expect(wrong, mode).toBe(0);
      }
    });
  }
});
